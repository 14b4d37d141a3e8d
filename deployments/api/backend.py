"""What the HTTP layer asks of a scanner, and the in-process implementation of it.

The routers talk to a `ScanBackend` only. It holds a `StoreReader` (snapshots of the store:
universe, sessions, data version; never prices at the Serve ingress), the `Evaluations` memo
(a data version's full-universe evaluation, so a repeated scan only screens, predicts and
ranks), the `ScreenStore` that scans by screen name resolve against (saved screens and presets;
resolved here, at the ingress, before anything is evaluated, in the caller's own namespace:
technic_v4/tenancy.py) and runs the engine's one
orchestrator, `technic_v4.scan.execute`. Subclasses say where
its two remote steps run: `InProcessBackend` in threads of this process (tests, a laptop
without Ray), `ServeBackend` (deployments/ingress.py) on the Indicators and AlphaModel replicas.

A store that cannot be read is a `StoreError` wherever it is read (`store_read`): besides the
reader's own errors, a file the reader opens but pyarrow cannot parse (a corrupt or truncated
Parquet file: ArrowInvalid) or an I/O error, so it answers 503 + Retry-After with the reason
(errors.py), never 500. The in-process backend builds the demo market into an empty local
data dir once, at start; a store deleted while it runs is then an error, not a new synthetic
market served in its place.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deployments import metrics
from deployments.api.errors import NotReadyError
from deployments.storeio import store_read
from technic_v4.alpha import registry
from technic_v4.alpha.inference import Forecast, ModelSet
from technic_v4.cancel import CancelToken
from technic_v4.data.reader import Snapshot, StoreReader
from technic_v4.formats import RowFragments
from technic_v4.scan import Block, Evaluations, ScanConfig, ScanStatus, WindowSpec, execute
from technic_v4.scan.evaluate import evaluate_chunk
from technic_v4.scan.explain import combine, explain_alpha, explain_indicators, explain_spec
from technic_v4.scan.plan import check_against, check_cost
from technic_v4.scan.result import shown_columns
from technic_v4.scan.run import Features, Report
from technic_v4.scan.symbol import symbol_history
from technic_v4.screens.cost import Budget
from technic_v4.screens.saved import ScreenStore, resolve_screen
from technic_v4.settings import Settings
from technic_v4.tenancy import OPEN, Scope
from technic_v4.validate import ValidateOptions, ValidationReport, validate
from technic_v4.watch.deliver import Policy
from technic_v4.watch.evaluate import Engine
from technic_v4.watch.service import WatchService
from technic_v4.watch.store import SqliteWatchStore

READY_TIMEOUT_S = 120.0
SWITCH_INTERVAL_S = 0.001  # the GIL hand-over time when heavy work runs in threads here
MODELS_VERSION_TTL_S = 1.0  # how long a looked-up model version is trusted for cache keys
IDLE_WINDOW_BARS = WindowSpec.of(ScanConfig()).bars  # windows kept when idle (release_idle)
FRAGMENT_SETS = 4  # evaluations whose JSON rows are kept pre-rendered
FORECASTS = 8  # forecasts kept, by models version and features (ScanBackend._forecast)


@dataclass(frozen=True)
class DataInfo:
    data_version: str
    source: str
    as_of: str  # the store's last session
    first_session: str
    n_symbols: int
    n_sessions: int

    @classmethod
    def of(cls, snap: Snapshot) -> DataInfo:
        return cls(snap.data_version, snap.source, snap.last_session, snap.first_session,
                   len(snap.universe), len(snap.sessions))


class BatchStats:
    """Counters of the alpha model's calls: how many requests and rows each batch carried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches = self.requests = self.rows = 0
        self.sizes: dict[int, int] = {}

    def record(self, requests: int, rows: int) -> None:
        with self._lock:
            self.batches += 1
            self.requests += requests
            self.rows += rows
            self.sizes[requests] = self.sizes.get(requests, 0) + 1
        metrics.observe_batch(requests, rows)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"batches": self.batches, "requests": self.requests, "rows": self.rows,
                    "max_batch_requests": max(self.sizes, default=0),
                    "batch_size_histogram": dict(sorted(self.sizes.items()))}


def feature_digest(features: Features) -> bytes:
    """A digest of the feature arrays (names, shapes, float64 bytes): equal digests, equal
    features."""
    h = hashlib.blake2b(digest_size=20)
    for name in sorted(features):
        values = np.ascontiguousarray(features[name], dtype=np.float64)
        h.update(name.encode() + b"\0" + str(values.shape).encode())
        h.update(values.tobytes())
    return h.digest()


def model_metadata(models_dir: Path) -> list[dict[str, Any]]:
    """Every model's metadata file in `models_dir` (unreadable ones as an error entry)."""
    out = []
    for mid in registry.list_model_ids(models_dir):
        try:
            out.append(registry.read_metadata(models_dir, mid))
        except registry.ModelError as exc:
            out.append({"id": mid, "error": str(exc)})
    return out


class ScanBackend:
    """The scan and what the routes read (module docstring); subclasses supply the hooks."""

    def __init__(self, reader: StoreReader, models_dir: str | os.PathLike[str] | None,
                 chunk_size: int, screens: ScreenStore | None = None,
                 budget: Budget | None = None):
        self.reader = reader
        self.budget = budget or Budget()  # what a request's where / rank may cost
        self.screens = screens or ScreenStore.for_data_dir(reader.data_dir)
        # Expressions (and in-process, validations) run in threads of this process, next to
        # the event loop. Each time the loop blocks on I/O it gives up the GIL and then waits
        # for a worker to hand it back, by default after up to 5 ms, so a health check that
        # takes the GIL ~20 times waited 0.5-1.5 s behind three validates; 1 ms: < 0.35 s.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.models_dir = (Path(models_dir).expanduser().resolve() if models_dir
                           else registry.default_models_dir().resolve())
        self.chunk_size = chunk_size
        self.evaluations = Evaluations()
        self._fragments: OrderedDict[tuple, RowFragments] = OrderedDict()
        self._forecasts: OrderedDict[tuple[str, bytes], Forecast] = OrderedDict()
        self._models_version: tuple[float, str] | None = None
        self.watches: Any = None  # set by the subclass (module docstring)

    def release_idle(self) -> dict[str, int]:
        """What heavy requests left cached, dropped once none runs (deployments/api/work.py):
        Panels longer than a default scan's window (whole histories) and the evaluations
        that kept expression windows; how many of each."""
        return {"windows": self.reader.release(IDLE_WINDOW_BARS),
                "evaluations": self.evaluations.release()}

    # -- hooks ---------------------------------------------------------------------------
    async def _evaluate(self, symbols: list[str], spec: WindowSpec, version: str) -> Block:
        raise NotImplementedError

    async def _predict(self, features: Features) -> Forecast:
        raise NotImplementedError

    async def _current_models_version(self) -> str:
        raise NotImplementedError

    async def readiness(self) -> dict[str, Any]:
        raise NotImplementedError

    async def symbol(self, symbol: str, days: int) -> dict[str, Any]:
        raise NotImplementedError

    async def model_state(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _explain_indicators(self, symbol: str, as_of: str | None) -> dict[str, Any]:
        raise NotImplementedError

    async def _explain_alpha(self, features: dict[str, float]) -> dict[str, Any]:
        raise NotImplementedError

    async def stats(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _validate(self, cfg: ScanConfig, options: ValidateOptions,
                        report: Report | None = None, cancel_token: CancelToken | None = None
                        ) -> ValidationReport:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return store_read("reading the store's manifest and universe", self.reader.snapshot)

    def data_info(self) -> DataInfo:
        return DataInfo.of(self.snapshot())

    async def models_version(self) -> str:
        """The model versions a scan would use now (for cache keys), looked up at most once
        per MODELS_VERSION_TTL_S: the version the model holder reports, never the files."""
        cached = self._models_version
        if cached is not None and time.monotonic() - cached[0] < MODELS_VERSION_TTL_S:
            return cached[1]
        version = await self._current_models_version()
        self._models_version = (time.monotonic(), version)
        return version

    def _known_models_version(self) -> str | None:
        return self._models_version[1] if self._models_version else None

    async def validate(self, cfg: ScanConfig, options: ValidateOptions,
                       report: Report | None = None, *, scope: Scope = OPEN,
                       cancel_token: CancelToken | None = None) -> ValidationReport:
        """The screen replayed over history (technic_v4/validate), where the prices are; a
        screen name is resolved here (in `scope`'s namespace), once, and its ref named in the
        report. Cancelled once `cancel_token` is set (technic_v4/cancel.py)."""
        resolved, ref = await self.check(cfg, scope)
        result = await self._validate(replace(resolved, screen=None), options, report,
                                      cancel_token)
        result.report["saved_screen"] = ref
        return result

    async def check(self, cfg: ScanConfig, scope: Scope = OPEN
                    ) -> tuple[ScanConfig, dict[str, Any] | None]:
        """Every check a scan makes before computing (ConfigError), for the stream to run
        before it starts sending; returns the config with its screen resolved (in `scope`'s
        own namespace) and the screen's ref (name, version), which the scan route puts in
        its cache key."""
        resolved, ref = await asyncio.to_thread(resolve_screen, cfg,
                                                self.screens.scoped(scope.own()))
        resolved.validate()
        check_against(resolved, await asyncio.to_thread(self.snapshot), self.budget)
        return resolved, ref

    def check_cost(self, cfg: ScanConfig) -> None:
        """ConfigError when `cfg`'s where / rank, scanned over this store, exceed the budget
        (a screen being saved: refused now rather than at every scan of it)."""
        check_cost(cfg, self.snapshot(), self.budget)

    async def scan(self, cfg: ScanConfig, report: Report | None = None, *,
                   fresh: bool = False, scope: Scope = OPEN,
                   cancel_token: CancelToken | None = None) -> tuple[pd.DataFrame, ScanStatus]:
        """The engine's scan; `fresh` evaluates every chunk again instead of screening this
        data version's kept evaluation (the stream, whose point is the progress); a screen
        name resolves in `scope`'s own namespace. Cancelled once `cancel_token` is set."""
        frame, status = await execute(cfg, self.snapshot, self._evaluate, self._forecast,
                                      chunk_size=self.chunk_size, report=report,
                                      evaluations=None if fresh else self.evaluations,
                                      screens=self.screens.scoped(scope.own()),
                                      budget=self.budget, cancel_token=cancel_token)
        version = status.alpha.get("models_version")
        if isinstance(version, str) and version != self._known_models_version():
            # a newer set learned from the holder; the same one again must not extend the TTL
            # (a memoized forecast repeats the version it was keyed by, forever)
            self._models_version = (time.monotonic(), version)
        metrics.observe_scan(status)
        return frame, status

    async def _forecast(self, features: Features) -> Forecast:
        """`_predict`, reused for byte-identical features while the models' version is the
        same (the models are deterministic: the same answer), so a data version's full scan is
        predicted once, not per request. The version is the holder's (at most
        MODELS_VERSION_TTL_S old, as for the result cache), and a forecast is kept only under
        the version it says it came from; its arrays are read-only."""
        key = (await self.models_version(), feature_digest(features))
        found = self._forecasts.get(key)
        if found is not None:
            self._forecasts.move_to_end(key)
            return found
        forecast = await self._predict(features)
        if forecast.state.get("models_version") == key[0]:
            for values in forecast.values.values():
                values.setflags(write=False)
            self._forecasts[key] = forecast
            while len(self._forecasts) > FORECASTS:
                self._forecasts.popitem(last=False)
        return forecast

    def fragments(self, cfg: ScanConfig, status: ScanStatus) -> RowFragments | None:
        """The pre-rendered JSON rows of the evaluation `status` came from (formats.py), per
        set of result columns and rank expression (RankValue is the request's); None for
        chosen `columns` (rows without the contract's columns are rendered directly)."""
        if cfg.columns is not None:
            return None
        spec = replace(WindowSpec.of(cfg), as_of=None)
        key = (status.data_version, status.as_of, spec.key(), tuple(shown_columns(cfg)),
               cfg.rank)
        found = self._fragments.get(key)
        if found is None:
            found = self._fragments[key] = RowFragments()
            while len(self._fragments) > FRAGMENT_SETS:
                self._fragments.popitem(last=False)
        return found

    async def universe(self) -> tuple[Snapshot, pd.DataFrame]:
        snap = await asyncio.to_thread(self.snapshot)
        return snap, snap.universe

    async def models(self) -> dict[str, Any]:
        return {"state": await self.model_state(), "metadata": model_metadata(self.models_dir)}

    async def explain(self, symbol: str, as_of: str | None) -> dict[str, Any]:
        """Why `symbol` has its rating as of `as_of` (technic_v4/scan/explain.py): checked
        here against the snapshot (ConfigError, UnknownSymbolError), then the indicator part
        where the window is and the alpha part where the models are, combined."""
        explain_spec(await asyncio.to_thread(self.snapshot), symbol, as_of)
        part = await self._explain_indicators(symbol, as_of)
        return combine(part, await self._explain_alpha(part["features"]))


class InProcessBackend(ScanBackend):
    """The whole scan in this process: chunks in worker threads, one ModelSet.

    `warm()` (started in a thread unless `warm=False`) loads the default scan window, compiles
    or loads the numba kernels and checks the models; `readiness()` says ready after it.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None,
                 models_dir: str | os.PathLike[str] | None = None, chunk_size: int = 2500,
                 warm: bool = True, screens: ScreenStore | None = None,
                 budget: Budget | None = None):
        super().__init__(StoreReader(data_dir), models_dir, chunk_size, screens, budget)
        self.reader.manifest()  # builds the demo market in an empty local data dir, once
        self.reader.auto_demo = False  # from now on a missing store is an error (docstring)
        self.model_set = ModelSet(self.models_dir)
        self.batches = BatchStats()
        self._ready = threading.Event()
        self._alpha_state: dict[str, Any] = {}
        self._error: str | None = None
        self.watches = self._watch_service()
        if warm:
            threading.Thread(target=self.warm, name="technic-warm", daemon=True).start()

    def _watch_service(self) -> WatchService:
        """Watches evaluated by this backend's own engine, in its technic.sqlite."""
        engine = Engine(self._evaluate, self._predict, self.screens, self.chunk_size,
                        self.evaluations, self.budget)
        return WatchService(SqliteWatchStore(self.screens.path), self.snapshot, engine,
                            Policy.from_settings(Settings()))

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

    async def _evaluate(self, symbols: list[str], spec: WindowSpec, version: str) -> Block:
        await self._wait_ready()
        return await asyncio.to_thread(store_read, "loading the scan window",
                                       lambda: evaluate_chunk(self.reader, symbols, spec,
                                                              version))

    async def _predict(self, features: Features) -> Forecast:
        out = await asyncio.to_thread(self.model_set.predict, features)
        self.batches.record(1, len(next(iter(features.values()), [])))
        return out

    async def _current_models_version(self) -> str:
        return str((await asyncio.to_thread(self.model_set.state))["models_version"])

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

    async def _validate(self, cfg: ScanConfig, options: ValidateOptions,
                        report: Report | None = None, cancel_token: CancelToken | None = None
                        ) -> ValidationReport:
        await self._wait_ready()
        return await asyncio.to_thread(store_read, "replaying the screen over the store",
                                       lambda: validate(cfg, self.reader, options, report,
                                                        budget=self.budget,
                                                        cancel_token=cancel_token))
