"""Timeframe aggregation: one-minute `BarBatch`es folded into M1/M5/M15/M30/H1 bars aligned to
the session open, and the daily bar, for N symbol slots at once.

Walk-through of `Aggregator.fold(batch)`:
  1. Place. The batch's minute is its offset from the session open; a minute outside the
     session (before the open, at or after the close, another session) or not on a minute
     boundary is counted (`counts["outside"]`) and dropped, as are symbols not in the
     universe (`counts["unknown"]`) and bars with a non-finite field (`counts["invalid"]`).
     A bar of the previous session arriving after the next one opened flags its symbols
     for resync on every timeframe (step 4).
  2. Close what time has ended. A batch for minute m means minute m has begun, so every bar
     ending at or before m closes first (`close_through(m)`); after folding, minute m has
     ended too (`close_through(m + 1 min)`): the bar whose last minute this batch brought
     closes now, without waiting for the next minute. A symbol with no bar in some minutes
     (a gap, a halt) still has its bar closed from the minutes it has; a bar with no minute
     of a symbol is no bar of that symbol (its own bar axis skips it, as the kernels' does).
     `close_through(t)` is also the caller's: at the session close (early closes included)
     the last bars close although their last minutes never came, and the daily bar closes.
     A bar the close cuts short (15:30-16:00 on H1; 13:00 on an early close) is `partial`.
  3. Store. The session's minutes are kept per symbol slot ((N, minutes) arrays). A bar
     identical to the stored one is a duplicate: ignored (`counts["duplicate"]`). A bar for
     a minute already held with other values (`correction=True` or not) replaces it
     (`counts["correction"]`); one for an empty minute before the newest is late
     (`counts["late"]`).
  4. Revise. A changed minute inside a bar that has already closed: when that bar is the
     symbol's last bar on the timeframe, it is rebuilt from the stored minutes and emitted
     `revised` (the state undoes that step and takes the new bar); when the symbol had no
     bar there yet and none after, it is a new last bar; when later bars of the symbol have
     closed, the state cannot be mended in O(1): the slot is flagged in `resync[timeframe]`
     and counted (`counts["resync"]`), for a reseed from the stored bars, never left
     silently wrong.
Forming bars (first open, highest high, lowest low, last close, summed volume) take each
in-order minute in O(1) per symbol and timeframe (steps.fold_minute); a minute out of order
(late, corrected) rebuilds the bars it touches from the stored minutes (steps.build_bars).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from technic_v4.data.calendar import DEFAULT_CALENDAR, get_calendar
from technic_v4.live.bars import FIELDS, BarBatch
from technic_v4.live.steps import build_bars, fold_minute

Array1D = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

INTRADAY: dict[str, int] = {"M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 60}
TIMEFRAMES: tuple[str, ...] = (*INTRADAY, "D")
MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class ClosedBars:
    """Bars of one timeframe that closed together: `rows` (symbol slots) and their OHLCV."""

    timeframe: str
    start: pd.Timestamp  # the bar's start (UTC); for "D", the session's open
    end: pd.Timestamp    # when it closed: start + its length, or the session's close
    session: int         # the session's number (VWAP restarts with it)
    rows: IntArray
    bars: dict[str, Array1D]  # open, high, low, close, volume, pv (steps.py) aligned with rows
    partial: bool        # cut short by the session's close
    revised: bool        # replaces these rows' last bar on the timeframe

    def __len__(self) -> int:
        return len(self.rows)


def session_number(day: pd.Timestamp | str) -> int:
    """A session's number: days since 1970-01-01 of its (UTC) date. Seeds and live bars
    number sessions alike, so VWAP restarts at each session and never twice."""
    ts = pd.Timestamp(day)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int((ts.normalize() - pd.Timestamp("1970-01-01")).days)


def session_bounds(session: str | pd.Timestamp,
                   calendar: str = DEFAULT_CALENDAR) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The regular-hours open and close (UTC) of `session` on the exchange calendar (early
    closes included)."""
    cal = get_calendar(calendar)
    day = pd.Timestamp(session).normalize().tz_localize(None)
    if not cal.is_session(day):
        raise ValueError(f"{day.date()} is not a {calendar} session")
    return cal.session_open(day).tz_convert("UTC"), cal.session_close(day).tz_convert("UTC")


class Aggregator:
    """Minute batches -> closed bars of each timeframe, for the symbols of a universe."""

    def __init__(self, symbols: Sequence[str], timeframes: Sequence[str] = TIMEFRAMES) -> None:
        unknown = [tf for tf in timeframes if tf not in TIMEFRAMES]
        if unknown:
            raise ValueError(f"unknown timeframe(s) {unknown}; valid: {list(TIMEFRAMES)}")
        self.symbols = np.asarray(list(symbols), dtype=object)
        self.slot = {s: i for i, s in enumerate(self.symbols.tolist())}
        if len(self.slot) != len(self.symbols):
            raise ValueError("the universe lists a symbol twice")
        self.timeframes = tuple(timeframes)
        n = len(self.symbols)
        self.counts: Counter[str] = Counter()
        self.resync = {tf: np.zeros(n, dtype=bool) for tf in self.timeframes}
        self.session = -1
        self.open: pd.Timestamp | None = None
        self.close: pd.Timestamp | None = None
        self.previous_open: pd.Timestamp | None = None
        self.minutes = np.zeros((0, len(FIELDS), n))  # time-major: (minute, field, slot)
        self.have = np.zeros((0, n), dtype=bool)
        self.closed = dict.fromkeys(self.timeframes, 0)  # bars of this session closed
        self.latest = -1  # the newest minute folded
        self.last_bar = {tf: np.full(n, -1, dtype=np.int64) for tf in self.timeframes}
        self.form = np.zeros((len(self.timeframes), len(FIELDS), n))  # the forming bars
        self.form_has = np.zeros((len(self.timeframes), n), dtype=bool)
        self.row_last = np.full(n, -1, dtype=np.int64)  # each slot's newest minute
        self._batch_symbols: np.ndarray | None = None
        self._batch_copy: np.ndarray | None = None  # its values, should a source reuse it
        self._batch_slots = np.empty(0, dtype=np.int64)

    # ---------------------------------------------------------------- sessions
    def open_session(self, open_: pd.Timestamp, close: pd.Timestamp) -> list[ClosedBars]:
        """Start a session (UTC open and close, e.g. from `session_bounds`); the previous
        session's open bars close first (returned)."""
        events = self.close_through(self.close) if self.close is not None else []
        open_, close = pd.Timestamp(open_).tz_convert("UTC"), pd.Timestamp(close).tz_convert("UTC")
        length = (close - open_) / MINUTE
        if length <= 0 or length != int(length):
            raise ValueError(f"session {open_}..{close} is not a positive whole number of minutes")
        if self.open is not None and open_ <= self.open:
            raise ValueError(f"session {open_} does not come after the open one ({self.open})")
        self.previous_open = self.open
        n = len(self.symbols)
        self.session = session_number(open_)
        self.open, self.close = open_, close
        self.minutes = np.full((int(length), len(FIELDS), n), np.nan)
        self.have = np.zeros((int(length), n), dtype=bool)
        self.closed = dict.fromkeys(self.timeframes, 0)
        self.latest = -1
        self.form_has[:] = False
        self.row_last[:] = -1
        for tf in self.timeframes:
            if tf != "D":
                self.last_bar[tf][:] = -1
        return events

    def _width(self, tf: str) -> int:
        return self.have.shape[0] if tf == "D" else INTRADAY[tf]

    def _n_bars(self, tf: str) -> int:
        width = self._width(tf)
        return -(-self.have.shape[0] // width)

    def _bar_index(self, tf: str, minute: int) -> int:
        """The bar of `tf` holding `minute`: its index in the session; "D" counts sessions."""
        return self.session if tf == "D" else minute // INTRADAY[tf]

    # ---------------------------------------------------------------- closing
    def close_through(self, t: pd.Timestamp | None) -> list[ClosedBars]:
        """Close every bar of the session that ends at or before `t` (the session's close
        ends them all, cut short ones marked partial)."""
        if self.open is None or self.close is None or t is None:
            return []
        t = pd.Timestamp(t).tz_convert("UTC")
        length = self.have.shape[0]
        events = []
        for tf in self.timeframes:
            width = self._width(tf)
            while self.closed[tf] < self._n_bars(tf):
                k = self.closed[tf]
                end_minute = min((k + 1) * width, length)
                if self.open + end_minute * MINUTE > t:
                    break
                self.closed[tf] = k + 1
                q = self.timeframes.index(tf)
                rows = np.flatnonzero(self.form_has[q])
                self.form_has[q] = False
                if len(rows) == 0:
                    continue
                self.last_bar[tf][rows] = self._bar_index(tf, k * width)
                events.append(self._event(tf, k, rows, self.form[q][:, rows], revised=False))
        return events

    def _build(self, tf: str, k: int, rows: IntArray) -> npt.NDArray[np.float64]:
        """Bar k of `tf` for `rows` (each holding a minute there), from the stored minutes."""
        width, length = self._width(tf), self.have.shape[0]
        out = np.empty((len(FIELDS), len(rows)))
        build_bars(self.minutes, self.have, rows, k * width, min((k + 1) * width, length), out,
                   np.empty(len(rows), dtype=np.bool_))
        return out

    def _event(self, tf: str, k: int, rows: IntArray, bars: npt.NDArray[np.float64],
               revised: bool) -> ClosedBars:
        width, length = self._width(tf), self.have.shape[0]
        assert self.open is not None
        lo, hi = k * width, min((k + 1) * width, length)
        minutes = self.minutes[lo:hi][:, :, rows]  # (minutes, field, row)
        _, high, low, close, volume = (minutes[:, j] for j in range(len(FIELDS)))
        pv = np.where(self.have[lo:hi][:, rows], (high + low + close) / 3.0 * volume,
                      0.0).sum(axis=0)
        return ClosedBars(
            timeframe=tf,
            start=self.open + k * width * MINUTE,
            end=self.open + min((k + 1) * width, length) * MINUTE,
            session=self.session,
            rows=rows,
            bars={**{f: bars[j].copy() for j, f in enumerate(FIELDS)}, "pv": pv},
            partial=(k + 1) * width > length,
            revised=revised,
        )

    # ---------------------------------------------------------------- folding
    def fold(self, batch: BarBatch) -> list[ClosedBars]:
        """One minute batch in; the bars it closed or revised out (module docstring)."""
        if self.open is None or self.close is None:
            raise ValueError("no session is open: call open_session(open, close) first")
        offset = (batch.start - self.open) / MINUTE
        if offset < 0 or offset >= self.have.shape[0] or offset != int(offset):
            if self.previous_open is not None and self.previous_open <= batch.start < self.open:
                # a bar of the session before: its minutes are gone, its bars may be stepped
                stale = self._slots(batch.symbols)
                for tf in self.timeframes:
                    self.flag_resync(tf, stale[stale >= 0])
            else:
                self.counts["outside"] += len(batch)
            return []
        m = int(offset)
        events = self.close_through(batch.start)
        slots = self._slots(batch.symbols)
        known = slots >= 0
        self.counts["unknown"] += int((~known).sum())
        rows = slots[known]
        values = np.stack([getattr(batch, f)[known] for f in FIELDS])  # (5, n)
        ok = np.isfinite(values).all(axis=0)
        self.counts["invalid"] += int((~ok).sum())
        rows, values = rows[ok], values[:, ok]
        held = self.have[m, rows]
        same = held & (self.minutes[m][:, rows] == values).all(axis=0)
        self.counts["duplicate"] += int(same.sum())
        changed = held & ~same
        self.counts["correction"] += int(changed.sum())
        if m < self.latest:
            self.counts["late"] += int((~held).sum())
        self.latest = max(self.latest, m)
        write = ~same
        rows, values = rows[write], values[:, write]
        self.minutes[m][:, rows] = values
        self.have[m, rows] = True
        in_order = self.row_last[rows] < m  # no later minute of the slot folded yet
        forming = np.array([m // self._width(tf) >= self.closed[tf] for tf in self.timeframes])
        fold_minute(self.form, self.form_has, forming, rows[in_order], values[:, in_order])
        self.row_last[rows[in_order]] = m
        events += self._revise(rows, in_order, m)
        events += self.close_through(batch.start + MINUTE)
        return events

    def flag_resync(self, tf: str, rows: IntArray) -> None:
        """Mark `rows` stale on `tf` (a bar older than one step changed): counted."""
        self.counts["resync"] += len(rows)
        self.resync[tf][rows] = True

    def _slots(self, symbols: np.ndarray) -> IntArray:
        """Each symbol's slot (-1: not in the universe); a source that sends the same symbol
        array every minute is mapped once."""
        same = (symbols is self._batch_symbols and self._batch_copy is not None
                and bool((symbols == self._batch_copy).all()))
        if not same:
            self._batch_symbols, self._batch_copy = symbols, symbols.copy()
            self._batch_slots = np.array([self.slot.get(s, -1) for s in symbols.tolist()],
                                         dtype=np.int64)
        return self._batch_slots

    def _revise(self, rows: IntArray, in_order: npt.NDArray[np.bool_], minute: int
                ) -> list[ClosedBars]:
        """Bars that `minute` of `rows` changed out of order: a forming one is rebuilt; a
        closed one revised, appended, or flagged for resync (module docstring, step 4)."""
        events: list[ClosedBars] = []
        if len(rows) == 0:
            return events
        for tf in self.timeframes:
            width = self._width(tf)
            k = minute // width
            if k >= self.closed[tf]:  # still forming: rebuilt from the stored minutes
                q, late = self.timeframes.index(tf), rows[~in_order]
                if len(late):
                    self.form[q][:, late] = self._build(tf, k, late)
                    self.form_has[q, late] = True
                continue
            index = self._bar_index(tf, minute)
            last = self.last_bar[tf][rows]
            again, new, stale = rows[last == index], rows[last < index], rows[last > index]
            if len(again):
                self.counts["revised"] += len(again)
                events.append(self._event(tf, k, again, self._build(tf, k, again), True))
            if len(new):
                self.last_bar[tf][new] = index
                events.append(self._event(tf, k, new, self._build(tf, k, new), False))
            if len(stale):
                self.flag_resync(tf, stale)
        return events
