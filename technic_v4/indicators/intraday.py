"""The intraday columns traders filter on, over a one-minute IntradayPanel.

Each function returns (N symbols, T minutes) float64 on the panel's minute axis: the value as
of the close of each minute (closed bars only). On a coarser timeframe a column reads the
minute at its bar's close (`at_bar_close`). Definitions (docs/guides/intraday.md):

  VWAP           sum(typical price x volume) / sum(volume) over the session's regular-hours
                 minutes so far, typical price = (high + low + close) / 3; NaN before the
                 session's first trade (or while its summed volume is 0); premarket minutes NaN.
  OR_high/OR_low the highest high / lowest low of the first `minutes` (30) minutes after the
                 open, known once that range has closed (NaN before; an early close shorter
                 than the range: the minutes there were, from the close on).
  Gap            the session's first regular-hours open / the previous session's close - 1
                 (from the first regular bar to the session's end).
  Premarket_gap  the latest premarket close / the previous session's close - 1, held through
                 the session (NaN without premarket bars: read extended hours).
  RVOL           the volume so far this session (regular hours, through this minute) over the
                 average volume through the same minute of the session over the previous
                 `lookback` (20) sessions in the panel in which the symbol traded (NaN when
                 there are none).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from technic_v4.data.calendar import get_calendar
from technic_v4.data.intraday import IntradayError, IntradayPanel
from technic_v4.data.panel import Array2D
from technic_v4.screens.nodes import INTRADAY_NUMBERS as INTRADAY_COLUMNS  # noqa: F401

OPENING_RANGE_MINUTES = 30
RVOL_SESSIONS = 20
_MINUTE = 60_000_000_000


@contextmanager
def _quiet() -> Iterator[None]:
    """nanmax / nanmean of an all-NaN slice warn; NaN is the answer wanted there."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _m1(panel: IntradayPanel) -> None:
    if panel.timeframe != "M1":
        raise IntradayError(f"intraday columns are computed on one-minute bars, got "
                            f"{panel.timeframe}")


def minute_of_session(panel: IntradayPanel) -> np.ndarray:
    """Minutes since each bar's session's regular open (negative premarket)."""
    cal = get_calendar(panel.calendar)
    opens = np.array([cal.session_open(s).value for s in panel.sessions], dtype=np.int64)
    return (panel.times.asi8 - opens[panel.session_of]) // _MINUTE


def _regular(panel: IntradayPanel) -> np.ndarray:
    cal = get_calendar(panel.calendar)
    closes = np.array([cal.session_close(s).value for s in panel.sessions], dtype=np.int64)
    minute = minute_of_session(panel)
    return (minute >= 0) & (panel.times.asi8 < closes[panel.session_of])


def _session_cumsum(values: Array2D, panel: IntradayPanel, mask: np.ndarray) -> Array2D:
    """Cumulative sum of `values` (NaN as 0) within each session over the columns in `mask`
    (other columns NaN)."""
    out = np.full(values.shape, np.nan)
    x = np.where(np.isfinite(values), values, 0.0)
    for s in range(len(panel.sessions)):
        cols = panel.bars_of(s)
        keep = np.flatnonzero(mask[cols]) + cols.start
        if len(keep):
            out[:, keep] = np.cumsum(x[:, keep], axis=1)
    return out


def vwap(panel: IntradayPanel) -> Array2D:
    """VWAP since the session's open (module docstring)."""
    _m1(panel)
    typical = (panel.high + panel.low + panel.close) / 3
    regular = _regular(panel)
    pv = _session_cumsum(typical * panel.volume, panel, regular)
    vol = _session_cumsum(panel.volume, panel, regular)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(vol > 0, pv / vol, np.nan)


def opening_range(panel: IntradayPanel, minutes: int = OPENING_RANGE_MINUTES
                  ) -> tuple[Array2D, Array2D]:
    """(OR_high, OR_low): the first `minutes` minutes' extremes, from the range's close on."""
    _m1(panel)
    if minutes < 1:
        raise IntradayError(f"the opening range needs at least 1 minute, got {minutes}")
    minute, regular = minute_of_session(panel), _regular(panel)
    hi, lo = np.full(panel.high.shape, np.nan), np.full(panel.low.shape, np.nan)
    for s in range(len(panel.sessions)):
        cols = np.arange(panel.bars_of(s).start, panel.bars_of(s).stop)
        rng = cols[regular[cols] & (minute[cols] < minutes)]
        if not len(rng):
            continue
        with _quiet():
            top, bottom = np.nanmax(panel.high[:, rng], axis=1), np.nanmin(panel.low[:, rng],
                                                                             axis=1)
        after = cols[regular[cols] & (cols >= rng[-1])]
        hi[:, after], lo[:, after] = top[:, None], bottom[:, None]
    return hi, lo


def gaps(panel: IntradayPanel, previous_close: np.ndarray) -> tuple[Array2D, Array2D]:
    """(Gap, Premarket_gap) against `previous_close`, (N, sessions): each symbol's close of
    the session before each of the panel's sessions (the daily store's)."""
    _m1(panel)
    prev = np.asarray(previous_close, dtype=np.float64)
    if prev.shape != (panel.n_symbols, len(panel.sessions)):
        raise IntradayError(f"previous_close has shape {prev.shape}, expected "
                            f"{(panel.n_symbols, len(panel.sessions))}")
    minute, regular = minute_of_session(panel), _regular(panel)
    gap, pre = np.full(panel.close.shape, np.nan), np.full(panel.close.shape, np.nan)
    for s in range(len(panel.sessions)):
        cols = np.arange(panel.bars_of(s).start, panel.bars_of(s).stop)
        reg = cols[regular[cols]]
        opened = np.isfinite(panel.open[:, reg])
        first = np.where(opened.any(1), opened.argmax(1), -1)
        if len(reg):  # from the first regular bar to the session's end (after hours too)
            open_ = np.where(first >= 0, panel.open[:, reg][np.arange(len(first)), first],
                             np.nan)
            at = np.where(first >= 0, reg[np.maximum(first, 0)], cols[-1] + 1)
            since = at[:, None] <= cols
            gap[:, cols] = np.where(since, (open_ / prev[:, s] - 1)[:, None], np.nan)
        early = cols[minute[cols] < 0]
        if len(early):
            last = _carry(panel.close[:, early])
            through = np.concatenate([last, np.repeat(last[:, -1:], len(cols) - len(early),
                                                      axis=1)], axis=1)
            pre[:, cols] = through / prev[:, s][:, None] - 1
    return gap, pre


def _carry(values: Array2D) -> Array2D:
    """Each row's latest finite value so far (NaN before the first)."""
    idx = np.where(np.isfinite(values), np.arange(values.shape[1]), -1)
    idx = np.maximum.accumulate(idx, axis=1)
    out = np.take_along_axis(values, np.maximum(idx, 0), axis=1)
    return np.where(idx >= 0, out, np.nan)


def rvol(panel: IntradayPanel, lookback: int = RVOL_SESSIONS) -> Array2D:
    """Relative volume by time of day (module docstring)."""
    _m1(panel)
    if lookback < 1:
        raise IntradayError(f"RVOL needs a lookback of at least 1 session, got {lookback}")
    minute, regular = minute_of_session(panel), _regular(panel)
    cum = _session_cumsum(panel.volume, panel, regular)
    width = int(minute[regular].max()) + 1 if regular.any() else 0
    n, s_len = panel.n_symbols, len(panel.sessions)
    by_minute = np.full((s_len, n, width), np.nan)  # cumulative volume at minute m of session s
    for s in range(s_len):
        cols = np.arange(panel.bars_of(s).start, panel.bars_of(s).stop)
        reg = cols[regular[cols]]
        traded = np.asarray(np.isfinite(panel.close[:, reg]).any(axis=1))
        by_minute[s][:, minute[reg]] = np.where(traded[:, None], cum[:, reg], np.nan)
    out = np.full(panel.volume.shape, np.nan)
    for s in range(1, s_len):
        cols = np.arange(panel.bars_of(s).start, panel.bars_of(s).stop)
        reg = cols[regular[cols]]
        with _quiet():
            base = np.nanmean(by_minute[max(0, s - lookback):s], axis=0)
            base = base[:, minute[reg]]
            out[:, reg] = np.where(base > 0, cum[:, reg] / base, np.nan)
    return out


def at_bar_close(values: Array2D, minutes: IntradayPanel, bars: IntradayPanel) -> Array2D:
    """A minute column read at each of `bars`' closes (its last minute): the column on the
    coarser timeframe `bars` (a resample of `minutes`)."""
    last = bars.times.asi8 + (bars.minutes - 1) * _MINUTE
    cols = np.searchsorted(minutes.times.asi8, last)
    return np.ascontiguousarray(values[:, cols])
