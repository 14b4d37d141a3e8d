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

import numpy as np
import pandas as pd

from technic_v4.data.panel import Panel


def week_starts(sessions: pd.DatetimeIndex) -> np.ndarray:
    """Index of the first session of each calendar week (Monday to Sunday) in `sessions`."""
    if not len(sessions):
        return np.empty(0, dtype=np.int64)
    week = sessions.to_period("W-SUN").asi8
    return np.flatnonzero(np.r_[True, week[1:] != week[:-1]])


def weekly_panel(panel: Panel, last_week_closed: bool) -> Panel:
    """The weekly bars of `panel` (module docstring), one column per closed week."""
    starts = week_starts(panel.sessions)
    ends = np.r_[starts[1:], panel.n_sessions]
    if not last_week_closed and len(starts):
        starts, ends = starts[:-1], ends[:-1]
    n, w = panel.n_symbols, len(starts)
    out = {f: np.full((n, w), np.nan) for f in ("open", "high", "low", "close", "volume")}
    present = np.isfinite(panel.close)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        has = present[:, a:b]
        any_bar = has.any(axis=1)
        if not any_bar.any():
            continue
        first = a + has.argmax(axis=1)
        last = b - 1 - has[:, ::-1].argmax(axis=1)
        rows = np.arange(n)
        out["open"][:, k] = np.where(any_bar, panel.open[rows, first], np.nan)
        out["close"][:, k] = np.where(any_bar, panel.close[rows, last], np.nan)
        with np.errstate(all="ignore"):
            out["high"][:, k] = np.where(any_bar, np.fmax.reduce(panel.high[:, a:b], axis=1),
                                         np.nan)
            out["low"][:, k] = np.where(any_bar, np.fmin.reduce(panel.low[:, a:b], axis=1),
                                        np.nan)
            out["volume"][:, k] = np.where(any_bar, np.nansum(panel.volume[:, a:b], axis=1),
                                           np.nan)
    sessions = panel.sessions[ends - 1] if w else panel.sessions[:0]
    return Panel(symbols=panel.symbols, sessions=pd.DatetimeIndex(sessions, name="session"),
                 universe=panel.universe, data_version=panel.data_version,
                 source=panel.source, meta={**panel.meta, "timeframe": "W"}, **out)
