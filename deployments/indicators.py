"""The indicator deployment: autoscaled replicas that each hold the Panel in memory.

A request carries a chunk of symbols and the WindowSpec as plain data, never prices: the
replica looks the symbols up in the window its `StoreReader` holds (one load per window and
store version) and returns the chunk's measured rows (`technic_v4.scan.evaluate_chunk`), a few
hundred KB. `history` (a symbol's chart) and `explain` (the indicator part of why a symbol
rates as it does) read the same reader. Errors travel as exceptions (StaleDataError,
UnknownSymbolError), which the ingress's routes map like any other. A store the replica cannot
read (missing, or a file pyarrow cannot parse) is a StoreError (`store_read`), which the
ingress answers 503 + Retry-After, never 500.
`validate` replays in this replica's thread pool, block by block in bounded memory; with
TECHNIC_VALIDATE_TASKS = N its blocks run as Ray tasks over the cluster instead, N in flight
(deployments/ray_validate.py), so one validation never holds more than its share of a node.
Startup: the constructor loads the default scan window and runs the kernels once (numba cache
load or compile), so Serve routes nothing to a replica, first or autoscaled, before a scan on
it is fast; a thread then loads the chart history. Methods are sync: Serve runs them in its
thread pool, and numba/numpy do the work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from ray import serve

from deployments.api.work import release_memory
from deployments.ray_validate import RayRunner
from technic_v4.cancel import CancelToken
from technic_v4.data.reader import StoreReader
from technic_v4.data.storeio import store_read
from technic_v4.regimes import regime_timeline
from technic_v4.scan import Block, ScanConfig, WindowSpec, evaluate_chunk
from technic_v4.scan.explain import explain_indicators
from technic_v4.scan.symbol import HISTORY_BARS, symbol_history
from technic_v4.screens.cost import Budget
from technic_v4.validate import ValidateOptions, ValidationReport, validate

log = logging.getLogger("ray.serve")


@serve.deployment(
    max_ongoing_requests=8,
    ray_actor_options={"num_cpus": 0.5},
    autoscaling_config={"min_replicas": 1, "initial_replicas": 1, "max_replicas": 2,
                        "target_ongoing_requests": 2},
)
class Indicators:
    def __init__(self, data_dir: str, block_sessions: int = 0, memory_mb: int = 0,
                 tasks: int = 0):
        self.block_sessions = block_sessions  # validation's (0: from the universe's size)
        self.memory_mb = memory_mb  # a validation block's budget (0: the default)
        # a validation's blocks as Ray tasks from here (never the ingress), `tasks` in flight
        self.runner = RayRunner(data_dir, in_flight=tasks, num_cpus=0.5) if tasks else None
        self.reader = StoreReader(data_dir, auto_demo=False, windows=4)
        t0 = time.perf_counter()
        snap = self.reader.snapshot()
        evaluate_chunk(self.reader, snap.universe["symbol"].iloc[:8].tolist(),
                       WindowSpec.of(ScanConfig()), snap.data_version)
        self.loaded = {"loaded": True, "data_version": snap.data_version,
                       "symbols": len(snap.universe), "sessions": len(snap.sessions),
                       "seconds": round(time.perf_counter() - t0, 2)}
        log.info("technic indicators ready: %s", self.loaded)
        threading.Thread(target=self._load_history, name="technic-history", daemon=True).start()

    def _load_history(self) -> None:
        try:
            self.reader.load(None, HISTORY_BARS)
        except Exception:  # the first /v1/symbols call loads it again and reports the error
            log.exception("technic: loading the chart history failed")

    def ready(self) -> dict[str, Any]:
        manifest = store_read("reading the store's manifest", self.reader.manifest)
        return {**self.loaded, "current_data_version": manifest.data_version}

    def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str) -> Block:
        """Measured rows of one chunk (`technic_v4.scan.evaluate_chunk`)."""
        return store_read("loading the scan window",
                          lambda: evaluate_chunk(self.reader, symbols, spec, data_version))

    async def validate(self, cfg: ScanConfig, options: ValidateOptions,
                       budget: Budget | None = None) -> ValidationReport:
        """A screen replayed over this replica's store (`technic_v4.validate.validate`),
        within the ingress's cost `budget`, in a thread; when Serve cancels the call (the
        ingress's client left), the replay's token is set and it stops between sessions
        (technic_v4/cancel.py)."""
        token = CancelToken()
        try:
            return await asyncio.to_thread(store_read, "replaying the screen over the store",
                                           lambda: validate(cfg, self.reader, options,
                                                            budget=budget, cancel_token=token,
                                                            block_sessions=self.block_sessions,
                                                            memory_mb=self.memory_mb,
                                                            runner=self.runner))
        except asyncio.CancelledError:
            token.cancel("the request was cancelled")
            raise
        finally:
            await asyncio.to_thread(release_memory)  # the replay's arrays, back to the system

    def history(self, symbol: str, days: int) -> dict[str, Any]:
        """Bars + indicator history for one symbol (`technic_v4.scan.symbol_history`)."""
        return store_read("loading the chart history",
                          lambda: symbol_history(self.reader, symbol, days))

    def regimes(self, benchmark: str | None, start: str | None, end: str | None
                ) -> dict[str, Any]:
        """The market regime timeline (`technic_v4.regimes.regime_timeline`)."""
        return store_read("computing the market regimes",
                          lambda: regime_timeline(self.reader, benchmark, start, end))

    def explain(self, symbol: str, as_of: str | None) -> dict[str, Any]:
        """The indicator part of why `symbol` rates as it does (`technic_v4.scan.explain`)."""
        return store_read("loading the symbol's history",
                          lambda: explain_indicators(self.reader, symbol, as_of))
