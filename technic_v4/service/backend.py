"""What the HTTP layer asks of a scanner: `ScanBackend` (the in-process one: inprocess.py).

The routers talk to a `ScanBackend` only. It holds a `StoreReader` (snapshots of the store:
universe, sessions, data version; never prices at the Serve ingress), the `Evaluations` memo
(a data version's full-universe evaluation, so a repeated scan only screens, predicts and
ranks), the `ScreenStore` that scans by screen name resolve against (saved screens and presets;
resolved here, at the ingress, before anything is evaluated, in the caller's own namespace:
technic_v4/tenancy.py) and runs the engine's one
orchestrator, `technic_v4.scan.execute`, over an `Executor` (technic_v4/scan/executor.py)
that says where its evaluate and predict steps run: `InProcessBackend` (inprocess.py) in
threads of this process (tests, a laptop without Ray), `ServeBackend`
(deployments/ingress.py) on the Indicators and AlphaModel replicas. The backend keeps the
forecasts of byte-identical features per models version (`FORECASTS` of them) and trusts a
looked-up models version for `MODELS_VERSION_TTL_S`; `on_scan(status)` and
`BatchStats.on_record` let the deployment record metrics.

A store that cannot be read is a `StoreError` wherever it is read (`store_read`): besides the
reader's own errors, a file the reader opens but pyarrow cannot parse (a corrupt or truncated
Parquet file: ArrowInvalid) or an I/O error, so the API answers 503 + Retry-After with the
reason, never 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cachetools import LRUCache

from technic_v4.alpha import registry
from technic_v4.alpha.inference import Forecast
from technic_v4.cancel import CancelToken
from technic_v4.data.reader import Snapshot, StoreReader
from technic_v4.data.storeio import store_read
from technic_v4.formats import RowFragments
from technic_v4.scan import Evaluations, ScanConfig, ScanStatus, WindowSpec, execute
from technic_v4.scan.executor import Executor
from technic_v4.scan.explain import combine, explain_spec
from technic_v4.scan.plan import check_against, check_cost
from technic_v4.scan.result import shown_columns
from technic_v4.scan.run import Features, Report
from technic_v4.screens.cost import Budget
from technic_v4.screens.saved import ScreenStore, resolve_screen
from technic_v4.tenancy import OPEN, Scope
from technic_v4.validate import ValidateOptions, ValidationReport

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

    def __init__(self, on_record: Callable[[int, int], None] | None = None) -> None:
        self.on_record = on_record  # also told of each call (the deployment's metrics)
        self._lock = threading.Lock()
        self.batches = self.requests = self.rows = 0
        self.sizes: dict[int, int] = {}

    def record(self, requests: int, rows: int) -> None:
        with self._lock:
            self.batches += 1
            self.requests += requests
            self.rows += rows
            self.sizes[requests] = self.sizes.get(requests, 0) + 1
        if self.on_record is not None:
            self.on_record(requests, rows)

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

    def __init__(self, reader: StoreReader, executor: Executor,
                 models_dir: str | os.PathLike[str] | None, chunk_size: int,
                 screens: ScreenStore | None = None, budget: Budget | None = None):
        self.reader, self.executor = reader, executor
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
        self._fragments: LRUCache[tuple, RowFragments] = LRUCache(FRAGMENT_SETS)
        self._forecasts: LRUCache[tuple[str, bytes], Forecast] = LRUCache(FORECASTS)
        self._models_version: tuple[float, str] | None = None
        self.watches: Any = None  # set by the subclass (module docstring)
        self.on_scan: Callable[[ScanStatus], None] | None = None  # the deployment's metrics

    def release_idle(self) -> dict[str, int]:
        """What heavy requests left cached, dropped once none runs (deployments/api/work.py):
        Panels longer than a default scan's window (whole histories) and the evaluations
        that kept expression windows; how many of each."""
        return {"windows": self.reader.release(IDLE_WINDOW_BARS),
                "evaluations": self.evaluations.release()}

    # -- hooks ---------------------------------------------------------------------------
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

    async def _regimes(self, benchmark: str | None, start: str | None, end: str | None
                       ) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    async def regimes(self, benchmark: str | None, start: str | None, end: str | None
                      ) -> dict[str, Any]:
        """The regime timeline (technic_v4/regimes.py `regime_timeline`), where the prices
        are."""
        return await self._regimes(benchmark, start, end)

    def observe(self, on_scan: Callable[[ScanStatus], None],
                on_batch: Callable[[int, int], None]) -> None:
        """Tell `on_scan` of each finished scan and `on_batch(requests, rows)` of each model
        call made in this process (the deployment's metrics)."""
        self.on_scan = on_scan

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
        version = await self.executor.models_version()
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
        frame, status = await execute(cfg, self.snapshot, self.executor.evaluate, self._forecast,
                                      chunk_size=self.chunk_size, report=report,
                                      evaluations=None if fresh else self.evaluations,
                                      screens=self.screens.scoped(scope.own()),
                                      budget=self.budget, cancel_token=cancel_token)
        version = status.alpha.get("models_version")
        if isinstance(version, str) and version != self._known_models_version():
            # a newer set learned from the holder; the same one again must not extend the TTL
            # (a memoized forecast repeats the version it was keyed by, forever)
            self._models_version = (time.monotonic(), version)
        if self.on_scan is not None:
            self.on_scan(status)
        return frame, status

    async def _forecast(self, features: Features) -> Forecast:
        """The executor's `predict`, reused for byte-identical features while the models'
        version is the same (the models are deterministic: the same answer), so a data
        version's full scan is predicted once, not per request. The version is the holder's (at most
        MODELS_VERSION_TTL_S old, as for the result cache), and a forecast is kept only under
        the version it says it came from; its arrays are read-only."""
        key = (await self.models_version(), feature_digest(features))
        found = self._forecasts.get(key)
        if found is not None:
            return found
        forecast = await self.executor.predict(features)
        if forecast.state.get("models_version") == key[0]:
            for values in forecast.values.values():
                values.setflags(write=False)
            self._forecasts[key] = forecast
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
