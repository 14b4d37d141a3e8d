"""The indicator deployment: autoscaled replicas that each hold the Panel in memory.

A request carries a chunk of symbols and the scan config as plain data, never prices: the
replica looks the symbols up in the Panel window it loaded (`pipeline.PanelWindows`, one load
per window and store version, reloaded when the manifest's data_version changes) and returns
the chunk's RowBlock (surviving rows + rejections), a few hundred KB.
Startup: the constructor loads the default scan window and runs the kernels once (numba cache
load or compile), so Serve routes nothing to a replica, first or autoscaled, before a scan on
it is fast; a thread then loads the chart history. Methods are sync: Serve runs them in its
thread pool, and numba/numpy do the work.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ray import serve

from deployments.pipeline import (
    HISTORY_MAX_DAYS,
    HISTORY_WARMUP,
    PanelWindows,
    UnknownSymbolError,
    config_to_dict,
    evaluate_chunk,
    symbol_history,
)
from technic_v4.scanner_core import RowBlock, ScanConfig, scan_window

log = logging.getLogger("ray.serve")


@serve.deployment(
    max_ongoing_requests=8,
    ray_actor_options={"num_cpus": 0.5},
    autoscaling_config={"min_replicas": 1, "initial_replicas": 1, "max_replicas": 2,
                        "target_ongoing_requests": 2},
)
class Indicators:
    def __init__(self, data_dir: str):
        self.windows = PanelWindows(data_dir)
        self.deep = PanelWindows(data_dir, size=1)
        t0 = time.perf_counter()
        cfg = ScanConfig()
        panel = self.windows.load(None, scan_window(cfg))
        evaluate_chunk(self.windows, panel.symbols[:8].tolist(), config_to_dict(cfg))
        self.loaded = {"loaded": True, "data_version": panel.data_version,
                       "symbols": panel.n_symbols, "sessions": panel.n_sessions,
                       "seconds": round(time.perf_counter() - t0, 2)}
        log.info("technic indicators ready: %s", self.loaded)
        threading.Thread(target=self._load_history, name="technic-history", daemon=True).start()

    def _load_history(self) -> None:
        try:
            self.deep.load(None, HISTORY_MAX_DAYS + HISTORY_WARMUP)
        except Exception:  # the first /v1/symbols call loads it again and reports the error
            log.exception("technic: loading the chart history failed")

    def ready(self) -> dict[str, Any]:
        return {**self.loaded, "current_data_version": self.windows.manifest().data_version}

    def evaluate(self, symbols: list[str], config: dict[str, Any]) -> RowBlock:
        """Indicators, checks and scores for one chunk (`pipeline.evaluate_chunk`)."""
        return evaluate_chunk(self.windows, symbols, config)

    def history(self, symbol: str, days: int) -> dict[str, Any]:
        """Bars + indicator history for one symbol (`pipeline.symbol_history`); an unknown
        symbol comes back as {"unknown": message}, a 404 rather than a logged traceback."""
        try:
            return symbol_history(self.deep, symbol, days)
        except UnknownSymbolError as exc:
            return {"unknown": str(exc)}
