"""Weekly bars from a daily Panel: one bar per calendar week that has closed.

A week's bar is its first open, highest high, lowest low, last close and summed volume over
the symbol's own daily bars in that week (no bar when it had none). Only CLOSED weeks are bars:
a week is closed once its last trading session has been seen, so a scan as of a Wednesday
reads last week's bar, never a half-built one whose value would change by Friday (no
look-ahead: the weekly value at a past day never depends on the days after it). Whether the
panel's last week is closed is the caller's to say (`last_week_closed`): it knows the
exchange calendar. The weekly Panel's sessions are each week's last session.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit, prange

from technic_v4.data.panel import Panel


def week_starts(sessions: pd.DatetimeIndex) -> np.ndarray:
    """Index of the first session of each calendar week (Monday to Sunday) in `sessions`."""
    if not len(sessions):
        return np.empty(0, dtype=np.int64)
    week = sessions.to_period("W-SUN").asi8
    return np.flatnonzero(np.r_[True, week[1:] != week[:-1]])


FIELDS = ("open", "high", "low", "close", "volume")
_HOW = {"open": 0, "close": 1, "high": 2, "low": 3, "volume": 4}  # _week_field's `how`


def weekly_panel(panel: Panel, last_week_closed: bool,
                 fields: tuple[str, ...] = FIELDS) -> Panel:
    """The weekly bars of `panel` (module docstring), one column per closed week. Only
    `fields` are computed (a weekly RSI reads closes only); the others are all NaN (one
    read-only view: no memory for bars nobody reads)."""
    starts = week_starts(panel.sessions)
    ends = np.r_[starts[1:], panel.n_sessions]
    if not last_week_closed and len(starts):
        starts, ends = starts[:-1], ends[:-1]
    n, w = panel.n_symbols, len(starts)
    close = np.ascontiguousarray(panel.close, dtype=np.float64)
    starts, ends = starts.astype(np.int64), ends.astype(np.int64)
    missing = np.broadcast_to(np.nan, (n, w))  # fields not computed: all NaN, read-only
    out = {f: _week_field(close, np.ascontiguousarray(getattr(panel, f), dtype=np.float64),
                          starts, ends, _HOW[f]) if f in fields else missing
           for f in FIELDS}
    sessions = panel.sessions[ends - 1] if w else panel.sessions[:0]
    return Panel(symbols=panel.symbols, sessions=pd.DatetimeIndex(sessions, name="session"),
                 universe=panel.universe, data_version=panel.data_version,
                 source=panel.source, meta={**panel.meta, "timeframe": "W"}, **out)


@njit(parallel=True, cache=True)
def _week_field(close, values, starts, ends, how):
    """One weekly field, each week [starts[k], ends[k]) of each row in one pass: how = 0
    the first bar's value (open), 1 the last bar's (close), 2 the highest, 3 the lowest
    and 4 the sum of the week's finite values (as np.fmax / np.fmin / np.nansum over its
    days). A week without a bar (no finite close) is NaN."""
    n, w = close.shape[0], starts.shape[0]
    out = np.full((n, w), np.nan)
    for i in prange(n):
        for k in range(w):
            first, last = -1, -1
            acc = 0.0 if how == 4 else np.nan
            for t in range(starts[k], ends[k]):
                if math.isfinite(close[i, t]):
                    if first < 0:
                        first = t
                    last = t
                if how >= 2:
                    x = values[i, t]
                    if math.isnan(x):
                        continue
                    if how == 4:
                        acc += x
                    elif math.isnan(acc) or (x > acc if how == 2 else x < acc):
                        acc = x
            if first >= 0:
                out[i, k] = (values[i, first] if how == 0 else values[i, last] if how == 1
                             else acc)
    return out


def reduce_bins(close: np.ndarray, values: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                field: str) -> np.ndarray:
    """One OHLCV `field` over column bins [starts[k], ends[k]) of (N, T) bars: the first
    bar's open, the last bar's close, the highest high, the lowest low, the summed volume,
    over the bars present (finite close); NaN for a bin without one. Weekly and intraday
    bars are both built with it."""
    return _week_field(np.ascontiguousarray(close, dtype=np.float64),
                       np.ascontiguousarray(values, dtype=np.float64),
                       np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64),
                       _HOW[field])
