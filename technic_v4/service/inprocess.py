"""The whole scanner in this process: `InProcessBackend`, the app's backend without Ray.

What the Serve deployments split over replicas runs here in threads: chunks and forecasts
through a `LocalExecutor` (technic_v4/scan/executor.py) over one StoreReader and one ModelSet,
validations on the same reader, and the watches' loop (`start_watcher`) on a thread of its own,
as the Watcher deployment runs it under Serve. `warm()` loads the default scan window and
checks the models first; until then a scan waits (READY_TIMEOUT_S at most, then
NotReadyError). The demo market is built into an empty local data dir once, at start; a store
deleted while it runs is then an error, not a new synthetic market served in its place.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

from technic_v4.alpha.inference import ModelSet
from technic_v4.cancel import CancelToken
from technic_v4.data.reader import StoreReader
from technic_v4.data.storeio import store_read
from technic_v4.errors import NotReadyError
from technic_v4.regimes import regime_timeline
from technic_v4.scan import ScanConfig, ScanStatus, WindowSpec
from technic_v4.scan.evaluate import evaluate_chunk
from technic_v4.scan.executor import LocalExecutor
from technic_v4.scan.explain import explain_alpha, explain_indicators
from technic_v4.scan.run import Report
from technic_v4.scan.symbol import symbol_history
from technic_v4.screens.cost import Budget
from technic_v4.screens.saved import ScreenStore
from technic_v4.service.backend import BatchStats, ScanBackend
from technic_v4.validate import ValidateOptions, ValidationReport, validate
from technic_v4.watch.deliver import Policy
from technic_v4.watch.evaluate import Engine
from technic_v4.watch.service import WatchService
from technic_v4.watch.store import SqliteWatchStore

READY_TIMEOUT_S = 120.0


class InProcessBackend(ScanBackend):
    """The whole scan in this process: chunks in worker threads, one ModelSet.

    `warm()` (started in a thread unless `warm=False`) loads the default scan window, compiles
    or loads the numba kernels and checks the models; `readiness()` says ready after it.
    """

    def __init__(self, data_dir: str | os.PathLike[str],
                 models_dir: str | os.PathLike[str] | None = None, chunk_size: int = 2500,
                 warm: bool = True, screens: ScreenStore | None = None,
                 budget: Budget | None = None, policy: Policy | None = None,
                 block_sessions: int = 0, memory_mb: int = 0):
        reader = StoreReader(data_dir)
        self.batches = BatchStats()
        self.model_set = ModelSet(models_dir or None)
        executor = LocalExecutor(reader, self.model_set, ready=self._wait_ready,
                                 on_predict=self.batches.record)
        super().__init__(reader, executor, self.model_set.root, chunk_size, screens, budget)
        self.reader.manifest()  # builds the demo market in an empty local data dir, once
        self.reader.auto_demo = False  # from now on a missing store is an error (docstring)
        self.policy = policy or Policy()
        self.block_sessions = block_sessions  # validation's (0: from the universe's size)
        self.memory_mb = memory_mb  # a validation block's budget (0: the default)
        self._ready = threading.Event()
        self._alpha_state: dict[str, Any] = {}
        self._error: str | None = None
        self.watches = self._watch_service()
        if warm:
            threading.Thread(target=self.warm, name="technic-warm", daemon=True).start()

    def observe(self, on_scan: Callable[[ScanStatus], None],
                on_batch: Callable[[int, int], None]) -> None:
        super().observe(on_scan, on_batch)
        self.batches.on_record = on_batch

    def _watch_service(self) -> WatchService:
        """Watches evaluated by this backend's own engine, in its technic.sqlite."""
        engine = Engine(self.executor, self.screens, self.chunk_size, self.evaluations,
                        self.budget)
        return WatchService(SqliteWatchStore(self.screens.path), self.snapshot, engine,
                            self.policy)

    def start_watcher(self, poll_s: float) -> threading.Event:
        """The watcher loop (evaluate new sessions, deliver, retry) in a thread of its own,
        as the Watcher deployment runs it under Serve; set the returned event to stop it."""
        stop = threading.Event()

        async def loop() -> None:
            done = asyncio.Event()
            task = asyncio.create_task(self.watches.run(poll_s, done))
            while not stop.is_set():
                await asyncio.sleep(0.2)
            done.set()
            await task

        threading.Thread(target=asyncio.run, args=(loop(),), name="technic-watcher",
                         daemon=True).start()
        return stop

    def warm(self) -> None:
        try:
            spec = WindowSpec.of(ScanConfig())
            snap = self.reader.snapshot()
            store_read("loading the scan window", lambda: evaluate_chunk(
                self.reader, snap.universe["symbol"].iloc[:8].tolist(), spec))
            self._alpha_state = self.model_set.state()
            self._ready.set()
        except Exception as exc:  # reported by readiness(), not raised in a thread
            self._error = f"{type(exc).__name__}: {exc}"

    async def _wait_ready(self) -> None:
        if not self._ready.is_set():
            ok = await asyncio.to_thread(self._ready.wait, READY_TIMEOUT_S)
            if not ok:
                raise NotReadyError(self._error or "the scan window is still loading")

    async def readiness(self) -> dict[str, Any]:
        ready = self._ready.is_set()
        return {"ready": ready, "checks": {
            "panel": {"loaded": ready, "error": self._error},
            "models": {"checked": ready, "available": bool(self._alpha_state.get("available")),
                       "reason": self._alpha_state.get("reason")}}}

    async def symbol(self, symbol: str, days: int) -> dict[str, Any]:
        return await asyncio.to_thread(store_read, "loading the chart history",
                                       lambda: symbol_history(self.reader, symbol, days))

    async def model_state(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.model_set.state)

    async def _explain_indicators(self, symbol: str, as_of: str | None) -> dict[str, Any]:
        return await asyncio.to_thread(store_read, "loading the symbol's history",
                                       lambda: explain_indicators(self.reader, symbol, as_of))

    async def _explain_alpha(self, features: dict[str, float]) -> dict[str, Any]:
        return await asyncio.to_thread(explain_alpha, self.model_set, features)

    async def stats(self) -> dict[str, Any]:
        return {"alpha": self.batches.as_dict(), "chunk_size": self.chunk_size}

    async def _regimes(self, benchmark: str | None, start: str | None, end: str | None
                       ) -> dict[str, Any]:
        await self._wait_ready()
        return await asyncio.to_thread(store_read, "computing the market regimes",
                                       lambda: regime_timeline(self.reader, benchmark, start,
                                                               end))

    async def _validate(self, cfg: ScanConfig, options: ValidateOptions,
                        report: Report | None = None, cancel_token: CancelToken | None = None
                        ) -> ValidationReport:
        await self._wait_ready()
        return await asyncio.to_thread(store_read, "replaying the screen over the store",
                                       lambda: validate(cfg, self.reader, options, report,
                                                        budget=self.budget,
                                                        cancel_token=cancel_token,
                                                        block_sessions=self.block_sessions,
                                                        memory_mb=self.memory_mb))
