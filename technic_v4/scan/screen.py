"""Screen: a request's conditions over measured rows, each rejected row with its reason.

The checks run in this order; a row is rejected by the first it fails, so every symbol has
exactly one reason:
  not listed yet   no bar in the window and the first bar comes after the as-of session
  stale            last bar more than `max_stale_sessions` sessions before the as-of session
  no data          no bar at all
  too few bars     fewer than `min_bars` bars in the window
  below min price / below min dollar volume / below min TechRating / signal filtered
  quality flagged  only with `exclude_flagged` / `exclude_flags`
Everything is a vectorized mask over the frame; a detail string is built for rejected rows only.
The rows that pass the first four (data) checks are the scan's universe: what cross-sectional
expression functions (pct_rank, sector_rank, RS_rating) rank within.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from technic_v4.data.quality import FLAGS as QUALITY_FLAGS
from technic_v4.scan.columns import REJECTION_COLUMNS
from technic_v4.scan.config import ScanConfig


def screen(cfg: ScanConfig, frame: pd.DataFrame, as_of: pd.Timestamp
           ) -> tuple[np.ndarray, np.ndarray, list[pd.DataFrame]]:
    """(rows with valid data: the scan's universe, rows that pass every check, rejection
    tables) for the measured `frame` (evaluate.py). The `where` expression is not here: it
    reads the alpha columns, so run.py applies it after the forecasts (`reject_rows`)."""
    symbols = frame["Symbol"].to_numpy(dtype=object)
    first, last = pd.DatetimeIndex(frame["_first_seen"]), pd.DatetimeIndex(frame["_last_seen"])
    bars, age = frame["Bars"].to_numpy(), frame["_age"].to_numpy()
    checks: list[tuple[str, np.ndarray, Detail]] = [
        ("not listed yet", (bars == 0) & (first > as_of),
         lambda i: "first bar " + _days(first[i]) + " is after the as-of session"),
        ("stale", (age > cfg.max_stale_sessions) & (last <= as_of),
         lambda i: "last bar " + _days(last[i]) + f", more than {cfg.max_stale_sessions} "
                   "sessions before the as-of session"),
        ("no data", bars == 0, lambda i: np.full(len(i), "no bar in the store", dtype=object)),
        ("too few bars", bars < cfg.min_bars,
         lambda i: bars[i].astype(str).astype(object) + f" bars < min_bars {cfg.min_bars}"),
    ]
    if cfg.min_price is not None:
        close = frame["Close"].to_numpy()
        checks.append(("below min price", ~(close >= cfg.min_price),
                       lambda i: [f"close {c:.2f} < {cfg.min_price}" for c in close[i]]))
    if cfg.min_dollar_volume is not None:
        dv = frame["DollarVolume"].to_numpy()
        checks.append(("below min dollar volume", ~(dv >= cfg.min_dollar_volume),
                       lambda i: [f"{d:,.0f} < {cfg.min_dollar_volume:,.0f}" for d in dv[i]]))
    if cfg.min_tech_rating is not None:
        rating = frame["TechRating"].to_numpy()
        checks.append(("below min TechRating", rating < cfg.min_tech_rating,
                       lambda i: [f"{r:.1f} < {cfg.min_tech_rating}" for r in rating[i]]))
    if cfg.signals:
        sig = frame["Signal"].to_numpy(dtype=object)
        checks.append(("signal filtered", ~np.isin(sig, list(cfg.signals)),
                       lambda i: "signal " + sig[i].astype(str).astype(object)))
    if cfg.exclude_flagged or cfg.exclude_flags:
        names = tuple(cfg.exclude_flags or QUALITY_FLAGS)
        flagged = np.zeros(len(frame), dtype=bool)
        for name in names:
            flagged |= frame[f"_flag_{name}"].to_numpy(dtype=bool)
        flags = frame["quality_flags"].to_numpy(dtype=object)
        checks.append(("quality flagged", flagged,
                       lambda i: "quality flags: " + flags[i].astype(str).astype(object)))
    parts: list[pd.DataFrame] = []
    alive = np.ones(len(frame), dtype=bool)
    valid = alive
    for k, (reason, bad, detail) in enumerate(checks):
        alive = reject_rows(symbols, alive, bad, reason, detail, parts)
        if k == DATA_CHECKS - 1:
            valid = alive
    return valid, alive, parts


DATA_CHECKS = 4  # the first four checks: listed, fresh, has bars, enough bars


Detail = Callable[[np.ndarray], Sequence[str] | np.ndarray]  # rejected rows -> their details


def _days(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.strftime("%Y-%m-%d"), dtype=object)


def reject_rows(symbols: np.ndarray, alive: np.ndarray, bad: np.ndarray, reason: str,
                detail: Detail, parts: list[pd.DataFrame]) -> np.ndarray:
    """Record the still-alive rows that fail a check (`detail(rows)`: their detail texts, one
    call for all of them); return the rows still alive."""
    hit = np.flatnonzero(alive & bad)
    if len(hit):
        parts.append(pd.DataFrame({"Symbol": symbols[hit], "reason": reason,
                                   "detail": list(detail(hit))}))
    return alive & ~bad


def concat_rejections(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTION_COLUMNS})
    return pd.concat(parts, ignore_index=True)
