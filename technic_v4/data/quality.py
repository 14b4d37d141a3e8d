"""The data-quality gate: per-symbol flags that say which bars not to trust, and why.

Why: split errors, stale bars and silent gaps are what users hold against screeners. A split left
unadjusted halves a price overnight and every momentum, RSI and ATR number computed across it is
wrong; a scan must say so on the row (`quality_flags`) instead of ranking it silently.

Checks, all over the Panel's (N symbols, T sessions) arrays in one numba pass per symbol row
(rows run in parallel; no Python loop over symbols or bars):
  ohlc    a present bar with a non-positive price, high < low, high < max(open, close) or
          low > min(open, close) (relative tolerance 1e-9, for rounding in vendor data).
  gaps    sessions missing inside a symbol's own history: NaN between its first and last bar,
          plus XNYS sessions absent from the Panel's axis altogether between those bars.
  stale   the last bar is more than `max_stale_sessions` sessions before the Panel's last.
  zero_volume  a run of at least `zero_volume_run` consecutive present bars with volume 0.
  split   a one-day close-to-close move beyond `move_threshold` whose ratio is within
          `split_tolerance` (in log terms) of a common split ratio (down: 3:2, 2:1, 3:1, 4:1,
          5:1, 10:1; up, reverse splits: 1:2, 1:3, 1:4, 1:5, 1:10), with the open gapped by
          that same ratio within `open_tolerance` (a split rescales the price before the first
          trade), on volume below `max_volume_spike` x the median of the previous 20 bars, and
          not explained by a split factor supplied for that bar.
          The volume condition is what separates an unadjusted split (an ordinary trading day
          with the price rescaled) from a real crash or squeeze, which trades many times its
          normal volume: AAPL's -52% on 2000-09-29 traded 22x its median volume, its 2000 and
          2005 2:1 splits 1.3x and 0.6x.
A symbol is flagged by each check that finds anything; `events` lists the dated findings
(ohlc and split bars) for the report. Bump QUALITY_VERSION when a rule changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit, prange

from technic_v4.data.calendar import sessions_between
from technic_v4.data.panel import Array2D, Panel
from technic_v4.data.store import load_panel, write_beside

QUALITY_FILENAME = "quality.csv"

QUALITY_VERSION = "1.0"
FLAGS = ("ohlc", "gaps", "stale", "zero_volume", "split")
SPLIT_RATIOS = np.array([1.5, 2.0, 3.0, 4.0, 5.0, 10.0])     # forward splits: price falls
REVERSE_RATIOS = np.array([2.0, 3.0, 4.0, 5.0, 10.0])        # reverse splits: price rises
_EV_OHLC, _EV_SPLIT = 1, 2


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the gate (defaults suit daily US equity bars)."""

    move_threshold: float = 0.30       # |close/prev - 1| beyond this (or its reverse) is checked
    split_tolerance: float = 0.12      # |log(move) + log(ratio)| within this matches a split
    open_tolerance: float = 0.05       # |log(open / prev close) + log(ratio)| within this
    max_volume_spike: float = 4.0      # a split-like move on more volume than this is news
    max_stale_sessions: int = 5
    zero_volume_run: int = 5


@dataclass(frozen=True, eq=False)
class QualityReport:
    """Per-symbol findings (`table`) and dated events; `flags` aligns with the Panel rows."""

    table: pd.DataFrame  # symbol, quality_flags, ohlc, gaps, stale_sessions, zero_volume_run,
    #                      splits, first_event
    events: pd.DataFrame = field(repr=False)  # symbol, date, check, detail
    found: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # flag -> bool[N]
    config: QualityConfig = field(default_factory=QualityConfig)
    version: str = QUALITY_VERSION

    @property
    def flags(self) -> np.ndarray:
        """Comma-joined flag names per symbol ("" when clean), in FLAGS order."""
        return self.table["quality_flags"].to_numpy(dtype=object)

    def flagged(self, only: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Boolean per symbol: flagged by any check (or by any of `only`)."""
        names = FLAGS if not only else tuple(only)
        unknown = sorted(set(names) - set(FLAGS))
        if unknown:
            raise ValueError(f"unknown quality flags {unknown}; valid: {', '.join(FLAGS)}")
        out = np.zeros(len(self.table), dtype=bool)
        for name in names:
            out |= self.found[name]
        return out

    def counts(self) -> dict[str, int]:
        """Symbols flagged by each check, and in total."""
        out = {f: int(self.flagged((f,)).sum()) for f in FLAGS}
        out["any"] = int((self.flags != "").sum())
        return out


def check_panel(panel: Panel, config: QualityConfig | None = None,
                splits: Array2D | None = None) -> QualityReport:
    """Run every check over `panel`. `splits[i, t]` (optional, NaN = none) is the split ratio
    effective at bar t (2.0 for a 2:1 split); a move it explains is not flagged."""
    cfg = config or QualityConfig()
    n, t = panel.n_symbols, panel.n_sessions
    sp = np.full((n, t), np.nan) if splits is None else np.ascontiguousarray(splits, np.float64)
    stats = np.zeros((n, 6), dtype=np.int64)
    events = np.zeros((n, t), dtype=np.int8)
    _check_rows(panel.open, panel.high, panel.low, panel.close, panel.volume, sp,
                np.log1p(cfg.move_threshold), -np.log(SPLIT_RATIOS), np.log(REVERSE_RATIOS),
                cfg.split_tolerance, cfg.open_tolerance, cfg.max_volume_spike, stats, events)
    ohlc, internal_gaps, first, last, zero_run, n_split = stats.T
    gaps = internal_gaps + _calendar_gaps(panel.sessions, first, last)
    stale = np.where(last >= 0, t - 1 - last, 0)
    found = {
        "ohlc": ohlc > 0, "gaps": gaps > 0, "stale": stale > cfg.max_stale_sessions,
        "zero_volume": zero_run >= cfg.zero_volume_run, "split": n_split > 0,
    }
    flags = np.full(n, "", dtype=object)
    for name in FLAGS:
        hit = found[name]
        flags[hit] = np.where(flags[hit] == "", name, flags[hit] + "," + name)
    ev = _events_frame(panel, events, np.flatnonzero((ohlc > 0) | (n_split > 0)))
    first_event = (ev.drop_duplicates("symbol").set_index("symbol")["date"].to_dict()
                   if len(ev) else {})  # events come in row, then date order
    table = pd.DataFrame({
        "symbol": panel.symbols, "quality_flags": flags, "ohlc": ohlc, "gaps": gaps,
        "stale_sessions": stale, "zero_volume_run": zero_run, "splits": n_split,
        "first_event": np.array([first_event.get(s, "") for s in panel.symbols], dtype=object),
    })
    return QualityReport(table=table, events=ev, found=found, config=cfg)


def check_store(data_dir, config: QualityConfig | None = None, *, write: bool = True
                ) -> QualityReport:
    """The gate over the whole store; with `write`, the per-symbol table goes to
    `<store>/quality.csv` beside the store it describes (ingest, append and `technic data
    check`), through `write_beside`, so an object store gets it too."""
    report = check_panel(load_panel(data_dir), config)
    if write:
        write_beside(data_dir, QUALITY_FILENAME, report.table.to_csv(index=False))
    return report


def _calendar_gaps(sessions: pd.DatetimeIndex, first: np.ndarray, last: np.ndarray
                   ) -> np.ndarray:
    """Per symbol: XNYS sessions absent from the Panel's axis strictly between its first and
    last bar (a whole market day the store never received)."""
    if len(sessions) < 2:
        return np.zeros(len(first), dtype=np.int64)
    expected = sessions_between(sessions[0], sessions[-1])
    absent = expected[~expected.isin(sessions)]
    if len(absent) == 0:
        return np.zeros(len(first), dtype=np.int64)
    # absent session k lies between axis positions pos-1 and pos: inside (first, last] needs
    # first < pos <= last.
    pos = sessions.searchsorted(absent)
    below = np.zeros(len(sessions) + 1, dtype=np.int64)
    np.add.at(below, pos, 1)
    cum = np.cumsum(below)  # cum[j] = absent sessions with pos <= j
    ok = first >= 0
    return np.where(ok, cum[np.maximum(last, 0)] - cum[np.maximum(first, 0)], 0)


def _events_frame(panel: Panel, events: np.ndarray, with_events: np.ndarray) -> pd.DataFrame:
    sub_rows, cols = np.nonzero(events[with_events])
    rows = with_events[sub_rows]
    kind = events[rows, cols]
    close = panel.close
    prev = np.array([_prev_close(close[r], int(c)) for r, c in zip(rows, cols, strict=True)])
    move = close[rows, cols] / prev - 1
    detail = np.where(
        kind == _EV_SPLIT,
        [f"close {p:.4g} -> {c:.4g} ({m:+.1%}), no split factor: likely unadjusted split"
         for p, c, m in zip(prev, close[rows, cols], move, strict=True)],
        [f"O {panel.open[r, c]:.4g} H {panel.high[r, c]:.4g} L {panel.low[r, c]:.4g} "
         f"C {close[r, c]:.4g} inconsistent" for r, c in zip(rows, cols, strict=True)],
    )
    return pd.DataFrame({
        "symbol": panel.symbols[rows],
        "date": [str(d.date()) for d in panel.sessions[cols]],
        "check": np.where(kind == _EV_SPLIT, "split", "ohlc"),
        "detail": detail,
    })


def _prev_close(row: np.ndarray, col: int) -> float:
    before = row[:col][np.isfinite(row[:col])]
    return float(before[-1]) if len(before) else np.nan


@njit(parallel=True, cache=True, error_model="numpy")
def _check_rows(op, hi, lo, cl, vol, splits, log_move, down, up, tol, open_tol, spike, stats,
                events):
    """stats[i] = (ohlc bad bars, internal gaps, first bar, last bar, longest zero-volume run,
    split-like moves); events[i, t] = 1 (ohlc) / 2 (split) at the offending bar."""
    n, t = cl.shape
    up_limit, down_limit = np.exp(log_move), np.exp(-log_move)
    for i in prange(n):
        first, last, present, bad, run, best, nsplit = -1, -1, 0, 0, 0, 0, 0
        prev = np.nan
        for j in range(t):
            c = cl[i, j]
            if not np.isfinite(c):
                continue
            if first < 0:
                first = j
            last = j
            present += 1
            o, h, low = op[i, j], hi[i, j], lo[i, j]
            eps = 1e-9 * abs(c)
            if (min(o, h, low, c) <= 0.0 or h < low - eps or h < max(o, c) - eps
                    or low > min(o, c) + eps):
                bad += 1
                events[i, j] = 1
            v = vol[i, j]
            run = run + 1 if v == 0.0 else 0
            best = max(best, run)
            ratio = c / prev  # NaN before the first bar: the comparisons below are False
            if ratio > up_limit or ratio < down_limit:  # a log only for the rare big move
                m = np.log(ratio)
                if prev > 0.0 and c > 0.0:
                    explained = np.isfinite(splits[i, j]) and abs(m + np.log(splits[i, j])) < tol
                    g = np.log(o / prev) if o > 0.0 else np.nan
                    near = False
                    for r in down if m < 0 else up:  # signed log ratios
                        if abs(m - r) < tol and abs(g - r) < open_tol:
                            near = True
                    if near and not explained:
                        k = 0
                        buf = np.empty(20)
                        jj = j - 1
                        while jj >= 0 and k < 20:
                            if np.isfinite(vol[i, jj]):
                                buf[k] = vol[i, jj]
                                k += 1
                            jj -= 1
                        med = np.median(buf[:k]) if k > 0 else np.nan
                        if not (np.isfinite(med) and med > 0.0 and v > spike * med):
                            nsplit += 1
                            events[i, j] = 2
            prev = c
        gaps = (last - first + 1 - present) if first >= 0 else 0
        stats[i, 0], stats[i, 1], stats[i, 2] = bad, gaps, first
        stats[i, 3], stats[i, 4], stats[i, 5] = last, best, nsplit
