"""Every value a screen reads, at every session, from one pass over each symbol's history.

A scan as of session d reads each symbol's values at its own last bar on or before d. Here
every series is computed once over the whole history on the symbol's OWN bar axis (packed,
right-aligned: `packed[i, T - n_i + k]` is symbol i's k-th bar), and `pos[i, t]` is the own-bar
number of its last bar on or before session t (-1 before its first). A value "as of t" is then
a gather, `packed[i, T - n_i + pos[i, t]]`, and a lag or window of w bars the w columns before
it: exactly what the scan's Env gives at t, for every t, with no per-session recomputation.

`History.at(name, t, width)` is that gather; `SessionEnv(history, t, ...)` is the screens Env
at session t (for `where` and `rank`), over the same series the scan would read. A replay reads
a series at every evaluated session (`Axis.at_all`: one compiled gather per row) once, into
`Gathered`, shared by the where, the rank and the checks, and sorts each session of a series
that a cross-sectional rank reads once, however many universes rank it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit, prange

from technic_v4 import cancel, cross_section, scoring
from technic_v4.data.panel import Panel
from technic_v4.data.weekly import week_starts, weekly_panel
from technic_v4.indicators.engine import packed_series
from technic_v4.indicators.market import market_field, market_index, rs_percentile
from technic_v4.scan.evaluate import last_week_closed
from technic_v4.scan.expressions import BARS, WeeklyOnDaily

CHUNK_CELLS = 1_000_000  # bars per chunk of rows of History.build (~0.1-0.3 s of kernels)


@dataclass
class Axis:
    """One timeframe's own-bar axis: packed series and, per session, each row's bar number."""

    packed: dict[str, np.ndarray]   # name -> (N, B) right-aligned on own bars
    n_bars: np.ndarray              # (N,) bars each symbol has
    pos: np.ndarray                 # (N, T) own-bar number of the last bar <= session t, -1
    width: int                      # B

    def at(self, name: str, t: int, width: int) -> np.ndarray:
        """(N, width): the series' last `width` bars as of session t (NaN before a first)."""
        if width == 1:
            return self.at_all(name, np.array([t]))
        col = self.width - self.n_bars + self.pos[:, t]  # column of the bar in effect
        idx = col[:, None] + np.arange(1 - width, 1)[None, :]
        ok = (idx >= self.width - self.n_bars[:, None]) & (self.pos[:, t] >= 0)[:, None]
        out = np.take_along_axis(self.packed[name], np.clip(idx, 0, self.width - 1), axis=1)
        return np.where(ok, out, np.nan)

    def at_all(self, name: str, columns: np.ndarray) -> np.ndarray:
        """(N, len(columns)): the bar in effect at each of the sessions `columns`."""
        packed = self.packed[name]
        if packed.dtype == np.float64:
            return _gather(packed, self.width - self.n_bars, self.pos,
                           np.asarray(columns, dtype=np.int64))
        pos = self.pos[:, columns]
        col = np.clip((self.width - self.n_bars)[:, None] + pos, 0, self.width - 1)
        flat = col + (np.arange(len(self.n_bars)) * self.width)[:, None]
        values = self.packed[name].ravel().take(flat)
        if values.dtype.kind == "f":
            return np.where(pos >= 0, values, np.nan)
        return np.where(pos >= 0, values, np.array(None, dtype=object))


@njit(parallel=True, cache=True)
def _gather(packed, first, pos, columns):  # pragma: no cover - compiled
    """out[i, k] = packed[i, first[i] + pos[i, columns[k]]], NaN where pos < 0 (before the
    symbol's first bar): the series' value in effect at each session, row by row."""
    n, d = pos.shape[0], len(columns)
    out = np.empty((n, d))
    for i in prange(n):
        for k in range(d):
            p = pos[i, columns[k]]
            out[i, k] = packed[i, first[i] + p] if p >= 0 else np.nan
    return out


@dataclass
class History:
    """A panel's whole history as own-bar axes: daily ("D") and, when asked, weekly ("W")."""

    panel: Panel
    axes: dict[str, Axis] = field(default_factory=dict)

    @classmethod
    def build(cls, panel: Panel, series: dict[str, set[str]],
              scoring_cfg: scoring.ScoringConfig, *, chunk_cells: int = 0
              ) -> History:
        """Packed histories of `series` {timeframe: names} (expression names: "Close",
        "TechRating" (with Signal), indicator outputs) over `panel`, computed over chunks of
        rows of about `chunk_cells` bars each (every series is row by row, so the chunks give
        the same values), the cancel token checked between them: a cancel never waits for a
        whole universe's history."""
        out = cls(panel)
        needs_market = any("beta_60" in names for names in series.values())
        index = market_index(panel) if needs_market else np.empty(0)
        for tf, names in series.items():
            if not names:
                continue
            source, sessions_pos = panel, None
            if tf == "W":
                source = weekly_panel(panel, last_week_closed(panel.sessions[-1], panel.meta))
                sessions_pos = _weeks_in_effect(panel.sessions, source.sessions)
            market = None
            if any(BARS.get(n, n) == "beta_60" for n in names):
                level = index if tf == "D" else index[panel.sessions.get_indexer(
                    source.sessions)]
                market = market_field(source, level)
            n, width = source.n_symbols, source.n_sessions
            step = max(1, (chunk_cells or CHUNK_CELLS) // max(width, 1))
            packed: dict[str, np.ndarray] = {}
            for lo in range(0, max(n, 1), step):  # one (empty) chunk for no rows
                cancel.check()  # between chunks of rows (technic_v4/cancel.py)
                rows = slice(lo, min(lo + step, n))
                part = source.select(np.arange(lo, rows.stop))  # views of the rows
                extra = None if market is None else {"market": market[rows]}
                for name, values in _series(part, names, scoring_cfg, extra).items():
                    if step >= n:
                        packed[name] = values
                        continue
                    if name not in packed:
                        packed[name] = np.empty((n, width), dtype=values.dtype)
                    packed[name][rows] = values
            cancel.check()
            has = np.isfinite(source.close)
            pos = np.cumsum(has, axis=1) - 1
            if sessions_pos is not None:  # weekly bars in effect at each daily session
                pos = np.where(sessions_pos[None, :] >= 0,
                               pos[:, np.maximum(sessions_pos, 0)], -1)
            out.axes[tf] = Axis(packed, has.sum(axis=1), pos, source.n_sessions)
        return out

    def at(self, name: str, t: int, width: int = 1, timeframe: str = "D") -> np.ndarray:
        return self.axes[timeframe].at(name, t, width)

    def splice(self, rows: np.ndarray, other: History) -> None:
        """Rows `rows` replaced by `other`'s: the same symbols over a window that starts
        earlier and ends at the same session (a replay block's symbols with gaps,
        replay._blocks). Their last `width` own bars are kept (the block's warm-up needs
        fewer), their bar numbers shifted to match. Daily axes only."""
        for tf, axis in self.axes.items():
            if tf != "D":
                raise ValueError("History.splice joins daily axes only")
            theirs = other.axes[tf]
            skip = theirs.pos.shape[1] - axis.pos.shape[1]  # sessions they start earlier
            dropped = np.maximum(theirs.n_bars - axis.width, 0)
            for name, packed in axis.packed.items():
                packed[rows] = theirs.packed[name][:, theirs.width - axis.width:]
            axis.n_bars[rows] = theirs.n_bars - dropped
            axis.pos[rows] = theirs.pos[:, skip:] - dropped[:, None]


def _series(source: Panel, names: set[str], scoring_cfg: scoring.ScoringConfig,
            extra: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """`names` packed on own bars over all of `source`'s sessions (History.build's rows)."""
    wanted = {BARS.get(n, n) for n in names if n not in ("TechRating", "perf_ytd")}
    if "TechRating" in names:
        wanted |= {BARS.get(n, n) for n in scoring.SCORING_INPUTS}
    wanted.add("close")
    got = packed_series(source, sorted(wanted), source.n_sessions, extra)
    packed = {n: got[BARS.get(n, n)] for n in names if n not in ("TechRating",)}
    if "TechRating" in names:
        cancel.check()
        inputs = {k: got[BARS.get(k, k)] for k in scoring.SCORING_INPUTS}
        rating, subs = scoring.tech_rating(inputs, scoring_cfg)
        has = np.isfinite(got["close"])
        packed["TechRating"] = np.where(has, rating, np.nan)
        cancel.check()
        signal = scoring.signal(rating, subs, scoring_cfg)
        packed["Signal"] = np.where(has, signal, np.array(None, dtype=object))
    return packed


def _weeks_in_effect(sessions: pd.DatetimeIndex, week_ends: pd.DatetimeIndex) -> np.ndarray:
    """(T,) index of the weekly bar in effect at each daily session: the last week that closed
    on or before it (a week closes on its last session); -1 before the first."""
    starts = week_starts(sessions)
    ends = np.r_[starts[1:], len(sessions)] - 1  # each week's last session (index)
    closed_at = np.full(len(sessions), -1, dtype=np.int64)
    closed_at[ends[: len(week_ends)]] = np.arange(len(week_ends))
    return np.maximum.accumulate(closed_at)


class SessionEnv(WeeklyOnDaily):
    """The screens Env as of session `t` over a History: the scan's Env at that session.
    Text and last-bar values come from `values` (Symbol, Sector, ..., Signal at t)."""

    def __init__(self, history: History, t: int, values: dict[str, np.ndarray],
                 universe: np.ndarray):
        self.history, self.t, self.values = history, t, values
        self.n_rows = history.panel.n_symbols
        self.universe = universe

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        if name == "RS_rating":
            raw = self.history.at("rs_raw", self.t, 1, timeframe)[:, -1]
            rating = np.full(self.n_rows, np.nan)
            rating[self.universe] = rs_percentile(raw[self.universe])
            return np.repeat(rating[:, None], width, axis=1) if width > 1 else rating[:, None]
        if name in self.values and not (timeframe in self.history.axes
                                        and name in self.history.axes[timeframe].packed):
            col = np.asarray(self.values[name], dtype=float)[:, None]
            return col if width == 1 else np.concatenate(
                [np.full((self.n_rows, width - 1), np.nan), col], axis=1)
        return self.history.at(name, self.t, width, timeframe)

    def text(self, name: str) -> np.ndarray:
        return np.asarray(self.values[name], dtype=object)

    def groups(self, name: str) -> np.ndarray:
        codes, _ = pd.factorize(pd.Series(self.values[name]))
        return codes.astype(np.int64)


@dataclass
class Gathered:
    """A replay's daily series at its evaluated sessions (read only), and the per-session sort
    orders of those a cross-sectional rank read: each computed once, whoever asks."""

    axis: Axis
    columns: np.ndarray
    series: dict[str, np.ndarray] = field(default_factory=dict)
    orders: dict[str, np.ndarray] = field(default_factory=dict)

    def __call__(self, name: str) -> np.ndarray:
        out = self.series.get(name)
        if out is None:
            out = self.series[name] = self.axis.at_all(name, self.columns)
            out.flags.writeable = False  # the same array is the same values (session_order)
        return out

    def session_order(self, values: np.ndarray) -> np.ndarray | None:
        """cross_section.session_order of a gathered series, sorted once; None for any other
        array (a computed expression is sorted where it is ranked)."""
        for name, series in self.series.items():
            if series is values:
                if name not in self.orders:
                    self.orders[name] = cross_section.session_order(series)
                return self.orders[name]
        return None


class SessionsEnv(WeeklyOnDaily):
    """The screens Env over many sessions at once, for expressions that read one bar of daily
    values (no lags or windows): column k of every array is the session `columns[k]`, so the
    compiled tree's per-column cross-sectional functions rank within each session, and the
    universe is (N, D). `values` holds (N, D) last-bar values and text per session; `gathered`
    the daily series at these sessions (shared by the envs of one replay)."""

    def __init__(self, history: History, columns: np.ndarray, values: dict[str, np.ndarray],
                 universe: np.ndarray, gathered: Gathered | None = None):
        self.history, self.columns, self.values = history, columns, values
        self.n_rows = history.panel.n_symbols
        self.universe = universe
        self.gathered = gathered or Gathered(history.axes["D"], columns)
        self.daily = self.gathered
        self.session_order = self.gathered.session_order

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        if width != len(self.columns) or timeframe != "D":
            raise ValueError("SessionsEnv evaluates every session at once, at width D")
        if name == "RS_rating":
            raw = self.daily("rs_raw")
            rating = np.full(raw.shape, np.nan)
            for k in range(raw.shape[1]):
                rows = self.universe[:, k]
                rating[rows, k] = rs_percentile(raw[rows, k])
            return rating
        if name in self.history.axes["D"].packed:
            return self.daily(name)
        return np.asarray(self.values[name], dtype=float)

    def text(self, name: str) -> np.ndarray:
        return np.asarray(self.values[name][:, -1], dtype=object)

    def groups(self, name: str) -> np.ndarray:
        codes, _ = pd.factorize(pd.Series(self.values[name][:, -1]))
        return codes.astype(np.int64)
