"""What the HTTP layer needs from a scanner, and the in-process implementation of it.

The routers talk to a `ScanBackend` only. `ChunkedBackend` holds what every implementation
shares: the store's manifest and universe (read in this process, never prices), the as-of
check, model versions for the cache key, and the chunked scan with one retry when the store is
replaced mid-scan. Subclasses say where chunks are evaluated and predicted:
`InProcessBackend` in threads of this process (tests, a laptop without Ray), the Serve backend
(`deployments/ingress.py`) through DeploymentHandles.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from deployments import metrics
from deployments.api.errors import InputError, NotReadyError
from deployments.pipeline import (
    BatchStats,
    Features,
    PanelWindows,
    StaleDataError,
    config_to_dict,
    empty_features,
    evaluate_chunk,
    predict_batch,
    run_chunked,
    symbol_history,
)
from technic_v4.alpha import registry
from technic_v4.alpha.inference import HORIZONS
from technic_v4.data import store
from technic_v4.data.store_fs import data_root
from technic_v4.data_engine import ensure_store
from technic_v4.scanner_core import RowBlock, ScanConfig, ScanStatus, scan_window

READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DataInfo:
    data_version: str
    source: str
    as_of: str  # the store's last session
    first_session: str
    n_symbols: int
    n_sessions: int


class ScanBackend(Protocol):
    def data_info(self) -> DataInfo: ...
    def model_versions(self) -> str: ...
    async def readiness(self) -> dict[str, Any]: ...
    async def universe(self) -> pd.DataFrame: ...
    async def check(self, cfg: ScanConfig) -> None: ...
    async def scan(self, cfg: ScanConfig, report: Any = None
                   ) -> tuple[pd.DataFrame, ScanStatus]: ...
    async def symbol(self, symbol: str, days: int) -> dict[str, Any]: ...
    async def models(self) -> dict[str, Any]: ...
    async def stats(self) -> dict[str, Any]: ...


def model_metadata(models_dir: Path) -> list[dict[str, Any]]:
    """Every model's metadata file in `models_dir` (unreadable ones as an error entry)."""
    out = []
    for mid in registry.list_model_ids(models_dir):
        try:
            out.append(registry.read_metadata(models_dir, mid))
        except registry.ModelError as exc:
            out.append({"id": mid, "error": str(exc)})
    return out


class ChunkedBackend:
    """Shared state and the scan (module docstring); `_evaluate`/`_predict` are the hooks."""

    def __init__(self, data_dir: str | os.PathLike[str], models_dir: str | os.PathLike[str] |
                 None, chunk_size: int):
        self.data_dir = data_root(data_dir)  # a local Path or an object-store URI
        self.models_dir = Path(models_dir) if models_dir else registry.default_models_dir()
        self.chunk_size = chunk_size
        self._manifests = PanelWindows(self.data_dir, size=0)  # manifest reads only
        self._universe: tuple[str, pd.DataFrame, pd.DatetimeIndex] | None = None

    async def _evaluate(self, symbols: list[str], config: dict[str, Any]) -> RowBlock:
        raise NotImplementedError

    async def _predict(self, features: Features) -> dict[str, Any]:
        raise NotImplementedError

    def data_info(self) -> DataInfo:
        m = self._manifests.manifest()
        return DataInfo(m.data_version, m.source, m.last_session, m.first_session,
                        m.n_symbols, m.n_sessions)

    def model_versions(self) -> str:
        parts = []
        for h in HORIZONS:
            mid = registry.model_id(h)
            try:
                sha = str(registry.read_metadata(self.models_dir, mid)["sha256"])
                parts.append(f"{mid}:{sha[:12]}")
            except (registry.ModelError, OSError):
                parts.append(f"{mid}:none")
        return ",".join(parts)

    async def _tables(self) -> tuple[str, pd.DataFrame, pd.DatetimeIndex]:
        version = self.data_info().data_version
        cached = self._universe
        if cached is None or cached[0] != version:
            uni, sessions = await asyncio.to_thread(
                lambda: (store.read_universe(self.data_dir), store.read_sessions(self.data_dir)))
            cached = self._universe = (version, uni, sessions)
        return cached

    async def universe(self) -> pd.DataFrame:
        return (await self._tables())[1]

    async def check(self, cfg: ScanConfig) -> None:
        """The checks that need the data: as-of date inside the store, industries known."""
        _, uni, sessions = await self._tables()
        if cfg.as_of_date is not None and pd.Timestamp(str(cfg.as_of_date)) < sessions[0]:
            raise InputError("as_of_date", f"as_of_date {cfg.as_of_date} is before the store's "
                             f"first session {sessions[0].date()}; the store covers "
                             f"{sessions[0].date()} to {sessions[-1].date()}")
        if cfg.industries:
            known = sorted(set(uni["industry"].astype(str)))
            lower = {k.lower() for k in known}
            bad = [i for i in cfg.industries if i.strip().lower() not in lower]
            if bad:
                raise InputError("industries", f"unknown industries {bad}", known)

    async def scan(self, cfg: ScanConfig, report: Any = None) -> tuple[pd.DataFrame, ScanStatus]:
        await self.check(cfg)
        for attempt in (0, 1):
            version, uni, _ = await self._tables()
            try:
                frame, status = await run_chunked(cfg, uni, version, self._evaluate,
                                                  self._predict, self.chunk_size, report)
                metrics.observe_scan(status)
                return frame, status
            except StaleDataError:
                if attempt:
                    raise
        raise AssertionError("unreachable")


class InProcessBackend(ChunkedBackend):
    """The whole scan in this process: chunks in worker threads, the model called per chunk.

    `warm()` (started in a thread unless `warm=False`) loads the default scan window, compiles
    or loads the numba kernels and checks the models; `readiness()` says ready after it.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None,
                 models_dir: str | os.PathLike[str] | None = None, chunk_size: int = 2500,
                 warm: bool = True):
        from technic_v4.data_engine import default_data_dir

        root = data_root(data_dir) if data_dir is not None else default_data_dir()
        ensure_store(root)
        super().__init__(root, models_dir, chunk_size)
        self.windows = PanelWindows(root)
        self.deep = PanelWindows(root, size=1)
        self.batches = BatchStats()
        self._ready = threading.Event()
        self._alpha_state: dict[str, Any] = {}
        self._error: str | None = None
        if warm:
            threading.Thread(target=self.warm, name="technic-warm", daemon=True).start()

    def warm(self) -> None:
        try:
            cfg = ScanConfig()
            panel = self.windows.load(None, scan_window(cfg))
            evaluate_chunk(self.windows, panel.symbols[:8].tolist(), config_to_dict(cfg))
            self._alpha_state = predict_batch([empty_features()], self.models_dir)[0]["state"]
            self._ready.set()
        except Exception as exc:  # reported by readiness(), not raised in a thread
            self._error = f"{type(exc).__name__}: {exc}"

    async def _evaluate(self, symbols: list[str], config: dict[str, Any]) -> RowBlock:
        await self._wait_ready()
        return await asyncio.to_thread(evaluate_chunk, self.windows, symbols, config)

    async def _predict(self, features: Features) -> dict[str, Any]:
        out = await asyncio.to_thread(predict_batch, [features], self.models_dir)
        rows = len(next(iter(features.values()), []))
        self.batches.record(1, rows)
        metrics.observe_batch(1, rows)
        return out[0]

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
        return await asyncio.to_thread(symbol_history, self.deep, symbol, days)

    async def models(self) -> dict[str, Any]:
        state = await asyncio.to_thread(predict_batch, [empty_features()], self.models_dir)
        return {"state": state[0]["state"], "metadata": model_metadata(self.models_dir)}

    async def stats(self) -> dict[str, Any]:
        return {"alpha": self.batches.as_dict(), "chunk_size": self.chunk_size}
