"""The origin design's scan module, kept because users' scripts import it: `from
technic_v4.scanner_core import ScanConfig, run_scan`. It only re-exports the engine, which lives
in `technic_v4/scan/` (run.py walks through `execute`, which `run_scan` runs in this process),
and keeps `_run_symbol_scans(config, universe, regime_tags, ...)` as the origin calls it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.scan import (
    EXTRA_COLUMNS,
    RESULT_COLUMNS,
    SHOWN_INDICATORS,
    SORTABLE,
    ScanConfig,
    ScanStatus,
    run_scan,
)

__all__ = ["EXTRA_COLUMNS", "RESULT_COLUMNS", "SHOWN_INDICATORS", "SORTABLE", "ConfigError",
           "ScanConfig", "ScanStatus", "StaleDataError", "run_scan"]


def _run_symbol_scans(config: ScanConfig, universe: Sequence[Any],
                      regime_tags: Mapping[str, Any] | None = None,
                      effective_lookback: int | None = None, settings: Any = None,
                      progress_cb: Callable[[str, int, int], None] | None = None,
                      price_cache: Mapping[str, pd.DataFrame] | None = None, *,
                      loader: Any = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The origin's per-universe scan: `run_scan` over the `universe` rows' symbols (objects
    with `.symbol`, or the symbols themselves) with at least `effective_lookback` sessions;
    returns (results, stats) with attempted / kept / rejected / errors and `regime_tags`.
    The regime is the engine's, computed from the store (regimes.py), never taken from the
    caller: a `regime_tags` given names at most its `benchmark` (a store symbol). Prices come
    from the store, so a non-empty `price_cache` is refused (ingest those bars instead);
    `settings` is accepted and unused (technic reads its own Settings)."""
    if price_cache:
        raise ConfigError("price_cache", "technic scans the store, not frames passed in: "
                          "ingest them (`technic data ingest`) and scan by symbol")
    symbols = [str(getattr(row, "symbol", row)) for row in universe]
    benchmark = (regime_tags or {}).get("benchmark")
    cfg = replace(config, symbols=symbols or None, lookback_days=max(
        config.lookback_days, int(effective_lookback or 0)),
        regime_benchmark=benchmark if benchmark and benchmark != "equal-weighted universe"
        else config.regime_benchmark)
    frame, status = run_scan(cfg, progress_cb, loader=loader)
    stats = {k: v for k, v in status.summary().items()
             if k in ("attempted", "kept", "rejected", "errors", "rejected_by_reason",
                      "regime_tags", "as_of", "data_version", "source")}
    return frame, stats
