"""Live indicator state: every timeframe's indicators, stepped bar by bar as bars close.

`LiveState` couples the `Aggregator` (aggregate.py: minute batches -> closed bars of each
timeframe) with one `TimeframeState` per timeframe (the arrays of state over symbol slots;
the O(1) steps are in steps.py). `fold(batch)` folds a minute batch and steps every
timeframe whose bar it closed; a revised bar undoes the symbol's last step and takes the
new one. `seed(timeframe, bars, sessions)` (or `seed_panel`, from the daily store's Panel)
starts a timeframe warm from past bars; `resync(timeframe, bars, sessions)` reseeds the
slots the aggregator flagged (a bar older than one step changed) from their history.
Values are read as the screen evaluator reads them (`number(name, width, timeframe)`, width
<= 2: the current and previous closed bar of each symbol), through `LiveEnv` (env.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from technic_v4.data.panel import Panel
from technic_v4.live.aggregate import TIMEFRAMES, Aggregator, ClosedBars, session_number
from technic_v4.live.bars import BarBatch
from technic_v4.live.steps import (
    CLOSE_RING,
    COUNT,
    HI_IDX,
    LO_IDX,
    N_SCALARS,
    OUT,
    OUTPUTS,
    SESSION,
    SHORT_RING,
    _seed,
    _step,
    _undo,
    read,
)

Array1D = npt.NDArray[np.float64]
Array2D = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class TimeframeState:
    """The indicator state of N symbol slots on one timeframe: its arrays and their layout
    are described in steps.py's docstring."""

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self.scalars = np.zeros((n_rows, N_SCALARS))
        self.scalars[:, SESSION] = -1.0
        self.scalars[:, HI_IDX] = -1.0
        self.scalars[:, LO_IDX] = -1.0
        self.undo_scalars = np.zeros((n_rows, N_SCALARS))
        self.undo_ring = np.zeros((n_rows, 4))
        self.can_undo = np.zeros(n_rows, dtype=bool)
        self.close_ring = np.zeros((n_rows, CLOSE_RING))
        self.high_ring = np.zeros((n_rows, SHORT_RING))
        self.low_ring = np.zeros((n_rows, SHORT_RING))
        self.volume_ring = np.zeros((n_rows, SHORT_RING))
        self.out = np.full((n_rows, 3, len(OUTPUTS)), np.nan)
        self.head = np.zeros(n_rows, dtype=np.int64)  # each row's newest slot of `out`

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.scalars, self.undo_scalars, self.undo_ring,
                                      self.can_undo, self.close_ring, self.high_ring,
                                      self.low_ring, self.volume_ring, self.out, self.head))

    def bars(self) -> IntArray:
        """(N,) bars each row has taken (seeded and live)."""
        return self.scalars[:, COUNT].astype(np.int64)

    def step(self, rows: IntArray, bar: Mapping[str, Array1D], session: int) -> None:
        """One closed bar for each of `rows` (distinct, as the aggregator gives them): `bar`
        open/high/low/close/volume aligned with rows, all finite. `session` numbers the
        session (VWAP restarts)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        fields = [np.ascontiguousarray(bar[f], dtype=np.float64)
                  for f in ("open", "high", "low", "close", "volume")]
        if not all(np.isfinite(f).all() for f in fields):
            raise ValueError("a closed bar has finite open, high, low, close and volume")
        fields.append(_pv(bar, fields))
        _step(self.scalars, self.undo_scalars, self.undo_ring, self.can_undo, self.close_ring,
              self.high_ring, self.low_ring, self.volume_ring, self.out, self.head, rows, *fields,
              float(session))

    def undo(self, rows: IntArray) -> None:
        """Take back each row's last step (one step only: `can_undo`)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if not self.can_undo[rows].all():
            raise ValueError("only the last step of a row can be undone, and only once")
        _undo(self.scalars, self.undo_scalars, self.undo_ring, self.can_undo, self.close_ring,
              self.high_ring, self.low_ring, self.volume_ring, self.head, rows)

    def seed(self, bars: Mapping[str, Array2D], sessions: npt.ArrayLike,
             rows: IntArray | None = None) -> None:
        """Step rows over past bars: (N, T) open/high/low/close/volume, NaN where a row has
        no bar; `sessions` (T,) numbers each column's session (VWAP restarts). With `rows`,
        only those rows start afresh from their bars (a resync); the others are untouched."""
        fields = [np.ascontiguousarray(bar, dtype=np.float64) for bar in
                  (bars["open"], bars["high"], bars["low"], bars["close"], bars["volume"])]
        fields.append(_pv(bars, fields))
        sid = np.ascontiguousarray(sessions, dtype=np.float64)
        if fields[3].shape[0] != self.n_rows or sid.shape != (fields[3].shape[1],):
            raise ValueError(f"seed bars must be ({self.n_rows}, T) with (T,) sessions")
        if rows is None:
            rows = np.arange(self.n_rows)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        self._reset(rows)
        _seed(self.scalars, self.close_ring, self.high_ring, self.low_ring, self.volume_ring,
              self.out, self.head, rows, *(np.ascontiguousarray(f[rows]) for f in fields), sid)

    def _reset(self, rows: IntArray) -> None:
        """Rows back to no bars at all."""
        self.scalars[rows] = 0.0
        self.scalars[rows, SESSION] = -1.0
        self.scalars[rows, HI_IDX] = -1.0
        self.scalars[rows, LO_IDX] = -1.0
        for ring in (self.close_ring, self.high_ring, self.low_ring, self.volume_ring):
            ring[rows] = 0.0
        self.out[rows] = np.nan
        self.head[rows] = 0
        self.can_undo[rows] = False

    def number(self, name: str, width: int) -> Array2D:
        """(N, width) values at each row's last `width` bars (width <= 2; oldest first)."""
        if name not in OUT:
            raise KeyError(f"unknown live output {name!r}; valid: {list(OUTPUTS)}")
        if not 1 <= width <= 2:
            raise ValueError(f"the live state keeps 2 bars of each output; asked for {width}")
        k = OUT[name]
        return read(self.out, self.head, k, width)


def _pv(bars: Mapping[str, np.ndarray], fields: list[np.ndarray]) -> np.ndarray:
    """The bars' `pv` (steps.py: typical price x volume summed over each bar's minutes), or
    each bar's own typical price x volume when the bars come without it."""
    if "pv" in bars:
        return np.ascontiguousarray(bars["pv"], dtype=np.float64)
    _, high, low, close, volume = fields
    return np.ascontiguousarray((high + low + close) / 3.0 * volume)


class LiveState:
    """Indicator state of a universe on several timeframes, fed minute batches."""

    def __init__(self, symbols: Sequence[str], timeframes: Sequence[str] = TIMEFRAMES) -> None:
        self.aggregator = Aggregator(symbols, timeframes)
        self.symbols = self.aggregator.symbols
        self.timeframes = self.aggregator.timeframes
        self.frames = {tf: TimeframeState(len(self.symbols)) for tf in self.timeframes}
        self.bar_end: dict[str, pd.Timestamp | None] = dict.fromkeys(self.timeframes)
        self.version = 0  # counts the applied closes: what an Env may cache reads by

    @property
    def n_rows(self) -> int:
        return len(self.symbols)

    @property
    def nbytes(self) -> int:
        """Bytes held: every timeframe's state and the session's minute bars."""
        agg = self.aggregator
        return sum(f.nbytes for f in self.frames.values()) + sum(
            a.nbytes for a in (agg.minutes, agg.have, agg.form, agg.form_has, agg.row_last))

    def open_session(self, open_: pd.Timestamp, close: pd.Timestamp) -> list[ClosedBars]:
        """Start a session (UTC open and close); the previous one's open bars close."""
        return self.apply(self.aggregator.open_session(open_, close))

    def fold(self, batch: BarBatch) -> list[ClosedBars]:
        """A minute batch in; the bars it closed (or revised), already applied, out."""
        return self.apply(self.aggregator.fold(batch))

    def close_through(self, t: pd.Timestamp) -> list[ClosedBars]:
        """Close the bars ending at or before `t` (the session's close: all, and the day)."""
        return self.apply(self.aggregator.close_through(t))

    def apply(self, events: Iterable[ClosedBars]) -> list[ClosedBars]:
        """Step each timeframe over its closed bars; a revised bar replaces the last step."""
        events = list(events)
        self.version += bool(events)
        for ev in events:
            frame = self.frames[ev.timeframe]
            rows, bars = ev.rows, ev.bars
            if ev.revised:  # a slot reseeded since its last step cannot undo it: resync
                ok = frame.can_undo[rows]
                if not ok.all():
                    self.aggregator.flag_resync(ev.timeframe, rows[~ok])
                    rows, bars = rows[ok], {f: v[ok] for f, v in bars.items()}
                frame.undo(rows)
            frame.step(rows, bars, ev.session)
            end = self.bar_end[ev.timeframe]
            self.bar_end[ev.timeframe] = ev.end if end is None else max(end, ev.end)
        return events

    def seed(self, timeframe: str, bars: Mapping[str, Array2D], sessions: npt.ArrayLike) -> None:
        """Start `timeframe` from past bars ((N, T) per field, rows in universe order, NaN
        where a symbol has no bar; `sessions` (T,) session numbers: aggregate.session_number)."""
        self.frames[timeframe].seed(bars, sessions)
        self.version += 1

    def resync(self, timeframe: str, bars: Mapping[str, Array2D],
               sessions: npt.ArrayLike) -> IntArray:
        """Reseed the slots flagged for resync on `timeframe` from their whole history
        ((N, T) bars through the last closed bar, as for `seed`); returns those slots."""
        flagged = self.aggregator.resync[timeframe]
        rows = np.flatnonzero(flagged)
        self.frames[timeframe].seed(bars, sessions, rows)
        flagged[rows] = False
        self.version += 1
        return rows

    def seed_panel(self, panel: Panel, timeframe: str = "D") -> None:
        """Start `timeframe` from a Panel's bars (the daily store's, for "D"): each universe
        symbol from its row of the panel (a symbol the panel lacks starts cold)."""
        where = {s: i for i, s in enumerate(panel.symbols.tolist())}
        rows = np.array([where.get(s, -1) for s in self.symbols.tolist()], dtype=np.int64)
        have = rows >= 0
        bars = {}
        for f in ("open", "high", "low", "close", "volume"):
            values = np.full((self.n_rows, len(panel.sessions)), np.nan)
            values[have] = getattr(panel, f)[rows[have]]
            bars[f] = values
        self.seed(timeframe, bars, [session_number(d) for d in panel.sessions])

    def number(self, name: str, width: int, timeframe: str = "D") -> Array2D:
        """(N, width) values at each symbol's last `width` closed bars of `timeframe`."""
        if timeframe not in self.frames:
            raise KeyError(f"timeframe {timeframe!r} is not kept live; kept: {list(self.frames)}")
        return self.frames[timeframe].number(name, width)
