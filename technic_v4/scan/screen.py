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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from technic_v4.data.quality import FLAGS as QUALITY_FLAGS
from technic_v4.scan.columns import REJECTION_COLUMNS
from technic_v4.scan.config import ScanConfig


def screen(cfg: ScanConfig, frame: pd.DataFrame, as_of: pd.Timestamp
           ) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """(rows that pass, rejection tables) for the measured `frame` (evaluate.py)."""
    symbols = frame["Symbol"].to_numpy(dtype=object)
    first, last = pd.DatetimeIndex(frame["_first_seen"]), pd.DatetimeIndex(frame["_last_seen"])
    bars, age = frame["Bars"].to_numpy(), frame["_age"].to_numpy()
    checks: list[tuple[str, np.ndarray, Callable[[int], str]]] = [
        ("not listed yet", (bars == 0) & (first > as_of),
         lambda i: f"first bar {first[i].date()} is after the as-of session"),
        ("stale", (age > cfg.max_stale_sessions) & (last <= as_of),
         lambda i: f"last bar {last[i].date()}, more than {cfg.max_stale_sessions} "
                   "sessions before the as-of session"),
        ("no data", bars == 0, lambda i: "no bar in the store"),
        ("too few bars", bars < cfg.min_bars,
         lambda i: f"{bars[i]} bars < min_bars {cfg.min_bars}"),
    ]
    if cfg.min_price is not None:
        close = frame["Close"].to_numpy()
        checks.append(("below min price", ~(close >= cfg.min_price),
                       lambda i: f"close {close[i]:.2f} < {cfg.min_price}"))
    if cfg.min_dollar_volume is not None:
        dv = frame["DollarVolume"].to_numpy()
        checks.append(("below min dollar volume", ~(dv >= cfg.min_dollar_volume),
                       lambda i: f"{dv[i]:,.0f} < {cfg.min_dollar_volume:,.0f}"))
    if cfg.min_tech_rating is not None:
        rating = frame["TechRating"].to_numpy()
        checks.append(("below min TechRating", rating < cfg.min_tech_rating,
                       lambda i: f"{rating[i]:.1f} < {cfg.min_tech_rating}"))
    if cfg.signals:
        sig = frame["Signal"].to_numpy(dtype=object)
        checks.append(("signal filtered", ~np.isin(sig, list(cfg.signals)),
                       lambda i: f"signal {sig[i]}"))
    if cfg.exclude_flagged or cfg.exclude_flags:
        names = tuple(cfg.exclude_flags or QUALITY_FLAGS)
        flagged = np.zeros(len(frame), dtype=bool)
        for name in names:
            flagged |= frame[f"_flag_{name}"].to_numpy(dtype=bool)
        flags = frame["quality_flags"].to_numpy(dtype=object)
        checks.append(("quality flagged", flagged, lambda i: f"quality flags: {flags[i]}"))
    parts: list[pd.DataFrame] = []
    alive = np.ones(len(frame), dtype=bool)
    for reason, bad, detail in checks:
        alive = reject_rows(symbols, alive, bad, reason, detail, parts)
    return alive, parts


def reject_rows(symbols: np.ndarray, alive: np.ndarray, bad: np.ndarray, reason: str,
                detail: Callable[[int], str], parts: list[pd.DataFrame]) -> np.ndarray:
    """Record the still-alive rows that fail a check; return the rows still alive."""
    hit = np.flatnonzero(alive & bad)
    if len(hit):
        parts.append(pd.DataFrame({"Symbol": symbols[hit], "reason": reason,
                                   "detail": [detail(int(i)) for i in hit]}))
    return alive & ~bad


def concat_rejections(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTION_COLUMNS})
    return pd.concat(parts, ignore_index=True)
