"""The data-quality gate: per-symbol flags that say which bars not to trust, and why.

Why: split errors, stale bars and silent gaps are what users hold against screeners. A split left
unadjusted halves a price overnight and every momentum, RSI and ATR number computed across it is
wrong; a scan must say so on the row (`quality_flags`) instead of ranking it silently.

Checks, all over the Panel's (N symbols, T sessions) arrays in one numba pass per symbol row
(rows run in parallel; no Python loop over symbols or bars):
  ohlc    a present bar with a non-positive price, high < low, high < max(open, close) or
          low > min(open, close) (relative tolerance 1e-9, for rounding in vendor data).
  gaps    a hole in a symbol's own history: a run of at least `gap_run` (5, a trading week)
          consecutive sessions with no bar between its first and last bar, or a session of the
          Panel's exchange calendar (`panel.meta["calendar"]`, default XNYS) absent from the
          store altogether between those bars (a market day never received). Market-wide
          closures (sessions no symbol traded, recorded by ingest as `closures`) are off the
          axis and no one's gap; a thinly traded symbol is `thin`, not `gaps`. A Panel loaded
          from a store carries the store's record of absent sessions
          (`meta["missing_sessions"]`), so the scan never builds the calendar; other Panels
          ask exchange_calendars. The `gaps` column counts every missing session.
  thin    the symbol has no bar on more than `thin_share` (20%) of the sessions of its own
          listing span (judged once the span has `thin_lookback` sessions): a stock that
          does not trade every day, whose bar-count indicators span more time than they say.
  stale   the last bar is more than `max_stale_sessions` (5) and at most `max_ended_sessions`
          (63, a quarter) sessions before the Panel's last: data that stopped arriving. A
          history that ended longer ago is a delisting or a dataset that ends there, not
          stale data (the `stale_sessions` column still says how long ago): in a store with
          delisted symbols, or of files with different ends, a flag on every ended history
          would mark most of it.
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
  thin_last  the symbol's last bar traded less than `thin_fraction` (0.2) x the median volume
          of its previous `thin_lookback` (20) bars; symbols with fewer previous bars, or a
          zero median, are not judged. A partial last session (bars fetched before the close)
          or an abnormally thin one: Volume_ratio, and anything else volume-based, on that bar
          is suspect. On the real 2000-2013 bars (tests/fixtures) it fires on 3 of 12,054
          bars: AAPL 2002-12-24 and MSFT 2003-12-26 (13:00 early closes) and IBM 2009-11-17
          (1.0 M shares between days of 4-8 M: a vendor error); on no ordinary session.
A symbol is flagged by each check that finds anything; `events` lists the dated findings
(ohlc and split bars) for the report; `rates()` gives each flag's count and share of the
symbols. On the real sets in tests/fixtures every flag marks a minority (a flag on everything
tells the user nothing). Bump QUALITY_VERSION when a rule changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit, prange

from technic_v4.data.calendar import DEFAULT_CALENDAR, sessions_between
from technic_v4.data.panel import Array2D, Panel
from technic_v4.data.store import load_panel, write_beside

QUALITY_FILENAME = "quality.csv"

QUALITY_VERSION = "1.2"  # 1.2: gaps are runs or absent days, thin, ended != stale
FLAGS = ("ohlc", "gaps", "thin", "stale", "zero_volume", "split", "thin_last")
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
    max_ended_sessions: int = 63       # older last bars: an ended history, not stale
    zero_volume_run: int = 5
    thin_fraction: float = 0.2         # last bar's volume below this x the median of ...
    thin_lookback: int = 20            # ... its previous this-many bars: thin_last
    gap_run: int = 5                   # consecutive sessions without a bar: gaps
    thin_share: float = 0.2            # share of its span's sessions without a bar: thin


@dataclass(frozen=True, eq=False)
class QualityReport:
    """Per-symbol findings (`table`) and dated events; `flags` aligns with the Panel rows."""

    table: pd.DataFrame  # symbol, quality_flags, ohlc, gaps, longest_gap, missing_share,
    #                      stale_sessions, zero_volume_run, splits, last_volume_ratio, first_event
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

    def rates(self) -> dict[str, dict[str, float]]:
        """Per flag (and "any"): {"count": symbols flagged, "share": of all symbols}."""
        n = max(len(self.table), 1)
        return {k: {"count": v, "share": round(v / n, 4)} for k, v in self.counts().items()}


def check_panel(panel: Panel, config: QualityConfig | None = None,
                splits: Array2D | None = None) -> QualityReport:
    """Run every check over `panel`. `splits[i, t]` (optional, NaN = none) is the split ratio
    effective at bar t (2.0 for a 2:1 split); a move it explains is not flagged."""
    cfg = config or QualityConfig()
    n, t = panel.n_symbols, panel.n_sessions
    sp = np.full((n, t), np.nan) if splits is None else np.ascontiguousarray(splits, np.float64)
    stats = np.zeros((n, 7), dtype=np.int64)
    events = np.zeros((n, t), dtype=np.int8)
    _check_rows(panel.open, panel.high, panel.low, panel.close, panel.volume, sp,
                np.log1p(cfg.move_threshold), -np.log(SPLIT_RATIOS), np.log(REVERSE_RATIOS),
                cfg.split_tolerance, cfg.open_tolerance, cfg.max_volume_spike, stats, events)
    ohlc, internal_gaps, first, last, zero_run, n_split, gap_run = stats.T
    absent = _calendar_gaps(panel, first, last)
    gaps = internal_gaps + absent
    span = np.where(last >= 0, last - first + 1, 0) + absent
    thin = (span >= cfg.thin_lookback) & (gaps > cfg.thin_share * np.maximum(span, 1))
    stale = np.where(last >= 0, t - 1 - last, 0)
    last_ratio = volume_ratio_to_median(panel.volume, last, cfg.thin_lookback)
    found = {
        "ohlc": ohlc > 0, "gaps": ((gap_run >= cfg.gap_run) | (absent > 0)) & ~thin,
        "thin": thin,
        "stale": (stale > cfg.max_stale_sessions) & (stale <= cfg.max_ended_sessions),
        "zero_volume": zero_run >= cfg.zero_volume_run, "split": n_split > 0,
        "thin_last": last_ratio < cfg.thin_fraction,
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
        "longest_gap": gap_run, "missing_share": np.round(gaps / np.maximum(span, 1), 4),
        "stale_sessions": stale, "zero_volume_run": zero_run, "splits": n_split,
        "last_volume_ratio": np.round(last_ratio, 4),
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


def volume_ratio_to_median(volume: Array2D, at: np.ndarray, lookback: int = 20) -> np.ndarray:
    """Per row i: volume[i, at[i]] / the median volume of row i's `lookback` present bars
    before column at[i]; NaN when at[i] < 0, the bar has no volume, fewer than `lookback`
    bars come before it, or that median is 0 (the thin_last rule)."""
    out = np.full(volume.shape[0], np.nan)
    _median_ratio(np.ascontiguousarray(volume, dtype=np.float64),
                  np.ascontiguousarray(at, dtype=np.int64), int(lookback), out)
    return out


def _calendar_gaps(panel: Panel, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per symbol: sessions of the Panel's calendar absent from its axis strictly between its
    first and last bar (a whole market day the store never received)."""
    sessions = panel.sessions
    if len(sessions) < 2:
        return np.zeros(len(first), dtype=np.int64)
    recorded = panel.meta.get("missing_sessions")
    if recorded is not None:  # the store's record (store.py): no calendar needed
        absent = pd.DatetimeIndex(pd.to_datetime(list(recorded)))
        absent = absent[(absent > sessions[0]) & (absent < sessions[-1])]
    else:
        expected = sessions_between(sessions[0], sessions[-1],
                                    panel.meta.get("calendar") or DEFAULT_CALENDAR)
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


@njit(cache=True, error_model="numpy", parallel=True)
def _check_rows(op, hi, lo, cl, vol, splits, log_move, down, up, tol, open_tol, spike, stats,
                events):
    """stats[i] = (ohlc bad bars, internal gaps, first bar, last bar, longest zero-volume run,
    split-like moves, longest run of missing bars inside the history); events[i, t] = 1
    (ohlc) / 2 (split) at the offending bar. Rows are independent: one per thread."""
    n, t = cl.shape
    up_limit, down_limit = np.exp(log_move), np.exp(-log_move)
    for i in prange(n):
        buf = np.empty(20)
        first, last, present, bad, run, best, nsplit = -1, -1, 0, 0, 0, 0, 0
        hole = 0
        prev = np.nan
        for j in range(t):
            c = cl[i, j]
            if not np.isfinite(c):
                continue
            if first < 0:
                first = j
            elif j - last - 1 > hole:
                hole = j - last - 1
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
                        med, _ = _median_before(vol, i, j, 20, buf)
                        if not (np.isfinite(med) and med > 0.0 and v > spike * med):
                            nsplit += 1
                            events[i, j] = 2
            prev = c
        gaps = (last - first + 1 - present) if first >= 0 else 0
        stats[i, 0], stats[i, 1], stats[i, 2] = bad, gaps, first
        stats[i, 3], stats[i, 4], stats[i, 5] = last, best, nsplit
        stats[i, 6] = hole


@njit(cache=True, error_model="numpy", parallel=True)
def _median_ratio(vol, at, lookback, out):
    """out[i] = vol[i, at[i]] / median of the `lookback` finite volumes before it (see
    volume_ratio_to_median); left NaN where not judged. Rows in parallel, each its buffer."""
    for i in prange(vol.shape[0]):
        buf = np.empty(lookback)
        j = at[i]
        if j < 0 or not np.isfinite(vol[i, j]):
            continue
        med, k = _median_before(vol, i, j, lookback, buf)
        if k == lookback and med > 0.0:
            out[i] = vol[i, j] / med


@njit(cache=True, error_model="numpy")
def _median_before(vol, i, j, limit, buf):
    """(median, count) of the last `limit` finite values of row i before column j (fewer if
    the row has fewer; NaN if none), by insertion sort in `buf`: a handful of values, and a
    kernel that compiles in a fraction of np.median's time."""
    k = 0
    jj = j - 1
    while jj >= 0 and k < limit:
        x = vol[i, jj]
        if np.isfinite(x):
            m = k
            while m > 0 and buf[m - 1] > x:
                buf[m] = buf[m - 1]
                m -= 1
            buf[m] = x
            k += 1
        jj -= 1
    if k == 0:
        return np.nan, 0
    if k % 2 == 1:
        return buf[k // 2], k
    return 0.5 * (buf[k // 2 - 1] + buf[k // 2]), k
