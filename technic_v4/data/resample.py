"""Minute bars -> M5/M15/M30/H1 bars aligned to the session open, and -> the daily bar.

Timeframes (the names every part of technic uses): M1, M5, M15, M30, H1 (minutes 1, 5, 15, 30,
60) and D. An intraday bar of k minutes covers [open + j*k, open + (j+1)*k) of its session,
where `open` is the session's regular open (09:30 ET on XNYS): M5 bars start 09:30, 09:35, ...;
H1 bars 09:30, 10:30, ..., 15:30. The close cuts the last bar short (H1 15:30-16:00, or
12:30-13:00 on an early close) and such a bar is marked `partial`; on extended hours the bins
run back from the open the same way (H1 08:30, 07:30, ... with the 04:00 bar cut by the start).

Each bar: open = the first present minute's open, high = the highest high, low = the lowest
low, close = the last present minute's close, volume = the summed volume over the minutes
present (a minute is present when its close is finite); no bar when no minute is present.

The daily bar is the same reduction over a session's regular-hours minutes. `check_daily`
compares it with the daily store's bar where both exist: any difference beyond `rtol` (or a
bar on one side only) is a quality flag, counted and listed (`technic data intraday check`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.data.calendar import get_calendar
from technic_v4.data.intraday import IntradayError, IntradayPanel
from technic_v4.data.panel import FIELDS, Array2D, Panel
from technic_v4.data.weekly import reduce_bins

TIMEFRAME_MINUTES = {"M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 60}
TIMEFRAMES = (*TIMEFRAME_MINUTES, "D")
_MINUTE = 60_000_000_000


def check_timeframe(timeframe: str) -> str:
    """`timeframe` if it is an intraday one; IntradayError listing them otherwise."""
    if timeframe not in TIMEFRAME_MINUTES:
        raise IntradayError(f"unknown intraday timeframe {str(timeframe)[:12]!r}: one of "
                            f"{', '.join(TIMEFRAME_MINUTES)}")
    return timeframe


def bins(panel: IntradayPanel, minutes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column bins of a one-minute panel for bars of `minutes`: (starts, ends, bin start
    times in ns), each bin one bar aligned to its session's regular open."""
    cal = get_calendar(panel.calendar)
    opens = np.array([cal.session_open(s).value for s in panel.sessions], dtype=np.int64)
    t = panel.times.asi8
    offset = (t - opens[panel.session_of]) // _MINUTE
    key = panel.session_of * (1 << 32) + np.floor_divide(offset, minutes)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(t) else np.empty(0, int)
    ends = np.r_[starts[1:], len(t)].astype(np.int64)
    start_ns = opens[panel.session_of[starts]] + np.floor_divide(offset[starts], minutes) * (
        minutes * _MINUTE)
    return starts.astype(np.int64), ends, start_ns


def resample(panel: IntradayPanel, timeframe: str) -> IntradayPanel:
    """The `timeframe` bars of a one-minute IntradayPanel (module docstring)."""
    minutes = TIMEFRAME_MINUTES[check_timeframe(timeframe)]
    if panel.timeframe != "M1":
        raise IntradayError(f"resample takes one-minute bars, got {panel.timeframe}")
    if minutes == 1:
        return panel
    starts, ends, start_ns = bins(panel, minutes)
    out: dict[str, Any] = {f: reduce_bins(panel.close, getattr(panel, f), starts, ends, f)
                           for f in FIELDS}
    length = ends - starts
    return replace(panel, times=pd.DatetimeIndex(start_ns, tz="UTC", name="ts"),
                   session_of=panel.session_of[starts], minutes=length,
                   partial=length < minutes, timeframe=timeframe, **out)


def daily_bars(panel: IntradayPanel) -> dict[str, Array2D]:
    """Each session's daily bar from its regular-hours minutes: (N, sessions) per field."""
    if panel.timeframe != "M1":
        raise IntradayError(f"daily bars are built from one-minute bars, got {panel.timeframe}")
    cal = get_calendar(panel.calendar)
    opens = np.array([cal.session_open(s).value for s in panel.sessions], dtype=np.int64)
    closes = np.array([cal.session_close(s).value for s in panel.sessions], dtype=np.int64)
    t = panel.times.asi8
    s = np.arange(len(panel.sessions))
    starts = np.searchsorted(t, opens)
    ends = np.searchsorted(t, closes)
    starts = np.maximum(starts, np.searchsorted(panel.session_of, s))
    ends = np.minimum(ends, np.searchsorted(panel.session_of, s, side="right"))
    return {f: reduce_bins(panel.close, getattr(panel, f), starts, np.maximum(ends, starts), f)
            for f in FIELDS}


@dataclass(frozen=True)
class DailyCheck:
    """Where the daily resample of the minute bars and the daily store disagree."""

    compared: int  # (symbol, session) pairs with a bar on both sides
    mismatches: pd.DataFrame  # symbol, session, field, intraday, daily
    one_sided: pd.DataFrame  # symbol, session, side ("intraday only" / "daily only")

    @property
    def flagged(self) -> int:
        """Pairs flagged: a field differing, or a bar on one side only."""
        pairs = self.mismatches[["symbol", "session"]].drop_duplicates()
        return len(pairs) + len(self.one_sided)


def check_daily(panel: IntradayPanel, daily: Panel, rtol: float = 1e-12) -> DailyCheck:
    """Compare the daily resample of `panel` with `daily` over the sessions and symbols both
    hold; a symbol or session the daily panel lacks counts as "intraday only"."""
    ours = daily_bars(panel)
    rows = pd.Index(daily.symbols).get_indexer(panel.symbols)
    cols = pd.DatetimeIndex(daily.sessions).get_indexer(panel.sessions)
    n, s = len(panel.symbols), len(panel.sessions)
    theirs = {f: np.full((n, s), np.nan) for f in FIELDS}
    ok_r, ok_c = rows >= 0, cols >= 0
    for f in FIELDS:
        theirs[f][np.ix_(ok_r, ok_c)] = getattr(daily, f)[np.ix_(rows[ok_r], cols[ok_c])]
    have_ours, have_theirs = np.isfinite(ours["close"]), np.isfinite(theirs["close"])
    both = have_ours & have_theirs
    found = []
    for f in FIELDS:
        a, b = ours[f], theirs[f]
        bad = both & ~(np.abs(a - b) <= rtol * np.abs(b))
        for i, j in zip(*np.nonzero(bad), strict=True):
            found.append((panel.symbols[i], panel.sessions[j], f, a[i, j], b[i, j]))
    one = [(panel.symbols[i], panel.sessions[j], "intraday only")
           for i, j in zip(*np.nonzero(have_ours & ~have_theirs), strict=True)]
    one += [(panel.symbols[i], panel.sessions[j], "daily only")
            for i, j in zip(*np.nonzero(~have_ours & have_theirs), strict=True)]
    return DailyCheck(
        compared=int(both.sum()),
        mismatches=pd.DataFrame(found, columns=["symbol", "session", "field", "intraday",
                                                "daily"]),
        one_sided=pd.DataFrame(one, columns=["symbol", "session", "side"]))


def closed_through(panel: IntradayPanel, at: pd.Timestamp) -> int:
    """How many of the panel's bars have closed by `at` (UTC): the bars a screen evaluated
    at `at` sees (a bar closes at its start plus its length)."""
    at_ns = pd.Timestamp(at).tz_convert("UTC").value
    end = panel.times.asi8 + panel.minutes * _MINUTE
    return int(np.searchsorted(end, at_ns, side="right"))
