"""The scan's result table: its columns, and the vectorized pieces that fill it.

Kept apart from `scanner_core` (which decides *what* to scan and in what order) because these
are the contract users see: the column names and order (DESIGN.md), which columns sort, how a
rejection is recorded (Symbol, reason, detail), and how each row's last-bar values are taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from technic_v4.data.panel import Panel

RESULT_COLUMNS = [
    "Symbol", "Sector", "Industry", "Close", "Volume", "RSI", "MACD", "MACD_signal",
    "MACD_hist", "BB_width", "ATR_pct", "Volume_ratio", "mom_21", "mom_63", "mom_126",
    "TechRating", "Signal", "Alpha5d", "Alpha10d",
]
EXTRA_COLUMNS = [
    "Name", "AlphaScore", "mom_5", "SMA20", "SMA50", "SMA200", "dist_high_20", "DollarVolume",
    "Bars", "LastDate", "Incomplete", "Source", "quality_flags",
]
SORTABLE = tuple(c for c in RESULT_COLUMNS + EXTRA_COLUMNS
                 if c not in {"Symbol", "Sector", "Industry", "Signal", "Name", "LastDate",
                              "Incomplete", "Source", "quality_flags"})
# Indicator outputs that are shown per row; a NaN among them for lack of bars is listed
# in the row's `Incomplete` column.
SHOWN_INDICATORS = ["RSI", "MACD", "MACD_signal", "MACD_hist", "BB_width", "ATR_pct",
                    "Volume_ratio", "mom_5", "mom_21", "mom_63", "mom_126",
                    "SMA20", "SMA50", "SMA200", "dist_high_20"]


REJECTION_COLUMNS = ["Symbol", "reason", "detail"]


def reject_rows(symbols: np.ndarray, alive: np.ndarray, bad: np.ndarray, reason: str,
                detail: Callable[[int], str], parts: list[pd.DataFrame]) -> np.ndarray:
    """Record the still-alive rows that fail a check; return the rows still alive."""
    hit = np.flatnonzero(alive & bad)
    if len(hit):
        parts.append(pd.DataFrame({"Symbol": symbols[hit], "reason": reason,
                                   "detail": [detail(i) for i in hit]}))
    return alive & ~bad


def concat_rejections(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTION_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def listing_dates(sub: Panel, last_idx: np.ndarray) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """First and last bar dates per symbol: from the window, else from the store's universe."""
    sessions = sub.sessions
    present = np.isfinite(sub.close)
    first_idx = np.where(present.any(axis=1), present.argmax(axis=1), -1)
    nat = np.datetime64("NaT", "ns")
    first = np.where(first_idx >= 0, sessions.values[np.maximum(first_idx, 0)], nat)
    last = np.where(last_idx >= 0, sessions.values[np.maximum(last_idx, 0)], nat)
    uni = sub.universe
    if "first_session" in uni and "last_session" in uni:
        outside = last_idx < 0
        first[outside] = pd.DatetimeIndex(uni["first_session"]).values[outside]
        last[outside] = pd.DatetimeIndex(uni["last_session"]).values[outside]
    return pd.DatetimeIndex(first), pd.DatetimeIndex(last)


def at_last_bar(values: np.ndarray, last_idx: np.ndarray) -> np.ndarray:
    """Each row's value at its own last bar (NaN for a row with no bar)."""
    out = values[np.arange(len(values)), np.maximum(last_idx, 0)]
    return np.where(last_idx >= 0, out, np.nan)


def result_frame(sub: Panel, table, close, volume, rating, sig, dollar_volume,
                 last_idx) -> pd.DataFrame:
    """One row per symbol of `sub`, result columns in contract order (Alpha filled later)."""
    last = table.last
    incomplete = np.full(sub.n_symbols, "", dtype=object)
    for name in SHOWN_INDICATORS:
        short = table.insufficient[name]
        if short.any():
            incomplete[short] = incomplete[short] + (name + " ")
    last_dates = np.where(last_idx >= 0, sub.sessions.values[np.maximum(last_idx, 0)],
                          np.datetime64("NaT"))
    cols = {
        "Symbol": sub.symbols,
        "Sector": sub.universe["sector"].to_numpy(),
        "Industry": sub.universe["industry"].to_numpy(),
        "Close": close,
        "Volume": volume,
        **{k: last[k] for k in RESULT_COLUMNS[5:15]},
        "TechRating": rating,
        "Signal": sig,
        "Alpha5d": np.nan,
        "Alpha10d": np.nan,
        "Name": sub.universe["name"].to_numpy(),
        "AlphaScore": np.nan,
        **{k: last[k] for k in ["mom_5", "SMA20", "SMA50", "SMA200", "dist_high_20"]},
        "DollarVolume": dollar_volume,
        "Bars": table.bars,
        "LastDate": pd.DatetimeIndex(last_dates),
        "Incomplete": np.char.strip(incomplete.astype(str)).astype(object),
        "Source": sub.source,
    }
    return pd.DataFrame(cols)
