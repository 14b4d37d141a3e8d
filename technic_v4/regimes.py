"""Market regimes: the one, versioned place where the store's bars become a regime per session.

Every input is a per-session, market-wide number computed from the store alone, on the
session axis, with bars up to that session only (each is a trailing window), so the regime
of session t never changes when later bars arrive:

    level          the benchmark: the equal-weighted universe (`market_index`: the mean of
                   the symbols' daily returns, compounded) by default, or one store symbol's
                   close (carried forward over sessions it did not trade)
    sma_200        SMA(level, 200)                                    (talib.SMA)
    slope_50       SMA(level, 50)[t] / SMA(level, 50)[t - 20] - 1     (the 50-day average's
                   change over 20 sessions, a fraction)
    vol_20         stdev(log(level[t] / level[t-1]) over 20 sessions, ddof 1) * sqrt(252)
    vol_pct        share of the last 252 vol_20 values (today's included) that are <= today's;
                   needs 126 of them (pandas rolling(252, 126).rank(pct=True, method="max"))
    breadth_50     share of the symbols with a bar at t whose close is above their own
                   SMA(close, 50) on their own bars (symbols with fewer than 50 bars out)

The rule (first match; any input missing: "unknown"):

    trend       trend_up    level > sma_200 and slope_50 > 0 and breadth_50 >= 0.5
                trend_down  level < sma_200 and slope_50 < 0 and breadth_50 < 0.5
                range       otherwise (the three disagree: a choppy market)
    volatility  high_vol    vol_pct >= 0.8 (in the top fifth of its own past year)
                calm        otherwise
    regime      "<trend>/<volatility>", one of REGIMES, e.g. "trend_down/high_vol"

`regime_series(panel)` computes all of it for every session of a panel in one vectorised
pass (the SMAs are the indicator kernels' `talib.SMA`); `tags_at(t)` is the record a scan's
status carries (with the previous session's regime: a watch's `regime_changed` compares
them). `part_names(value)` is what a screen's `regime == "trend_up"` matches (every regime
whose trend or volatility part it names). Change any rule or threshold here and
bump REGIME_VERSION.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from cachetools import LRUCache
from numba import njit

from technic_v4.data.panel import Array1D, Panel
from technic_v4.indicators import kernels
from technic_v4.indicators.engine import compute_indicators
from technic_v4.indicators.market import market_index

REGIME_VERSION = "1.0"
TRENDS = ("trend_up", "trend_down", "range")
VOLATILITIES = ("calm", "high_vol")
REGIMES = tuple(f"{t}/{v}" for t in TRENDS for v in VOLATILITIES)
UNKNOWN = "unknown"
EQUAL_WEIGHTED = "equal-weighted universe"
UNVERSIONED = "unversioned"  # Panel.data_version of a panel built in memory
CHUNK_ROWS = 2000  # symbols per chunk of a store's regime pass (store_regime_series)
# the numbers behind a regime, as screen columns (per session, the same for every symbol)
NUMBERS = ("market_level", "market_sma_200", "market_slope_50", "market_vol_20",
           "market_vol_pct", "breadth_50")


@dataclass(frozen=True)
class RegimeConfig:
    """Windows and thresholds; the defaults are the documented rule."""

    sma_long: int = 200
    sma_slope: int = 50
    slope_bars: int = 20
    vol_window: int = 20
    vol_year: int = 252
    vol_min_history: int = 126
    high_vol_pct: float = 0.8
    breadth_sma: int = 50
    breadth_up: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return {"version": REGIME_VERSION, **asdict(self)}


@dataclass(frozen=True)
class RegimeSeries:
    """The regime and its inputs at every session of a panel: (T,) arrays."""

    sessions: pd.DatetimeIndex
    benchmark: str
    numbers: dict[str, Array1D]     # NUMBERS -> (T,) float64, NaN before enough history
    trend: np.ndarray               # (T,) object: TRENDS or UNKNOWN
    volatility: np.ndarray          # (T,) object: VOLATILITIES or UNKNOWN
    regime: np.ndarray              # (T,) object: REGIMES or UNKNOWN
    data_version: str = "unversioned"
    config: RegimeConfig = field(default_factory=RegimeConfig)

    def frame(self) -> pd.DataFrame:
        """One row per session: session, regime, trend, volatility and the numbers."""
        return pd.DataFrame({"session": self.sessions.strftime("%Y-%m-%d"),
                             "regime": self.regime, "trend": self.trend,
                             "volatility": self.volatility, **self.numbers})

    def shares(self) -> dict[str, dict[str, float | int | None]]:
        """Sessions and share of the known sessions in each regime (unknown counted apart)."""
        known = self.regime != UNKNOWN
        total = max(int(known.sum()), 1)
        out: dict[str, dict[str, float | int | None]] = {}
        for name in (*REGIMES, UNKNOWN):
            n = int((self.regime == name).sum())
            out[name] = {"sessions": n,
                         "share": round(n / total, 4) if name != UNKNOWN else None}
        return out

    def spans(self) -> list[dict[str, object]]:
        """Consecutive runs of one regime: {regime, start, end, sessions}."""
        out: list[dict[str, object]] = []
        if not len(self.regime):
            return out
        change = np.flatnonzero(self.regime[1:] != self.regime[:-1]) + 1
        starts = np.r_[0, change]
        ends = np.r_[change, len(self.regime)] - 1
        for s, e in zip(starts, ends, strict=True):
            out.append({"regime": str(self.regime[s]), "start": str(self.sessions[s].date()),
                        "end": str(self.sessions[e].date()), "sessions": int(e - s + 1)})
        return out

    def index_of(self, session: object) -> int:
        """Index of the last session on or before `session` (-1 before the first)."""
        return int(self.sessions.searchsorted(pd.Timestamp(session), side="right")) - 1

    def tags_at(self, t: int) -> dict[str, Any]:
        """The regime record of session index t: what a scan's status carries."""
        if not 0 <= t < len(self.sessions):
            return {"regime": UNKNOWN, "trend": UNKNOWN, "volatility": UNKNOWN,
                    "session": None, "benchmark": self.benchmark, "version": REGIME_VERSION,
                    "numbers": {}, "previous": None}
        return {"regime": str(self.regime[t]), "trend": str(self.trend[t]),
                "volatility": str(self.volatility[t]),
                "session": str(self.sessions[t].date()), "benchmark": self.benchmark,
                "version": REGIME_VERSION,
                "numbers": {k: _num(v[t]) for k, v in self.numbers.items()},
                "previous": None if t == 0 else {
                    "session": str(self.sessions[t - 1].date()),
                    "regime": str(self.regime[t - 1])}}


def _num(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None


def market_columns(tags: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """The screen columns of one session's regime `tags` (`tags_at`) for n rows: `regime`
    (text) and NUMBERS, the same value in every row (NaN / None when unknown)."""
    numbers = tags.get("numbers") or {}
    out: dict[str, np.ndarray] = {
        name: np.full(n, np.nan if numbers.get(name) is None else float(numbers[name]))
        for name in NUMBERS}
    out["regime"] = np.full(n, tags.get("regime") or UNKNOWN, dtype=object)
    return out


def part_names(value: str) -> list[str]:
    """The regimes a screen's `regime == value` matches: the regime of that name, or every
    regime whose trend or volatility part is `value`; ValueError naming the valid values."""
    if value in REGIMES or value == UNKNOWN:
        return [value]
    found = [r for r in REGIMES if value in r.split("/")]
    if not found:
        raise ValueError(f"unknown regime {value!r}: regimes are {', '.join(REGIMES)}, "
                         f"{UNKNOWN}, or a part of one ({', '.join((*TRENDS, *VOLATILITIES))})")
    return found


def benchmark_level(panel: Panel, benchmark: str | None = None) -> Array1D:
    """(T,) the benchmark: `market_index(panel)`, or the close of the store symbol
    `benchmark` carried forward over the sessions it has no bar (NaN before its first);
    ValueError when the panel has no such symbol."""
    if benchmark is None:
        return market_index(panel)
    rows = np.flatnonzero(panel.symbols == benchmark)
    if not len(rows):
        raise ValueError(f"regime benchmark {benchmark!r} is not a symbol in the store")
    close = pd.Series(panel.close[rows[0]])
    return close.ffill().to_numpy(dtype=np.float64)


def _sma(x: Array1D, n: int) -> Array1D:
    """talib.SMA of a (T,) series through the indicator kernel (leading NaNs allowed)."""
    out = np.empty((1, 1, len(x)))
    kernels.sma(np.ascontiguousarray(x[None, :], dtype=np.float64), n, out)
    return out[0, 0]


def rolling_std(x: Array1D, n: int) -> Array1D:
    """Sample standard deviation (ddof 1) of each trailing window of n values; NaN where the
    window is incomplete or holds a NaN (pandas rolling(n).std())."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(x, n)
        out[n - 1:] = windows.std(axis=1, ddof=1)
    return out


def rolling_pct_rank(x: Array1D, n: int, min_periods: int) -> Array1D:
    """Share of the last n values (today's included, NaN skipped) that are <= today's,
    given at least `min_periods` of them (pandas rolling(n, min_periods).rank(pct=True,
    method="max")); NaN where today's value is NaN."""
    t = len(x)
    padded = np.r_[np.full(n - 1, np.nan), x]
    windows = np.lib.stride_tricks.sliding_window_view(padded, n)  # (T, n), last = today
    ok = np.isfinite(windows)
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore"):
        below = (ok & (windows <= x[:, None])).sum(axis=1)
        out = np.where((count >= min_periods) & np.isfinite(x), below / np.maximum(count, 1),
                       np.nan)
    return out[:t]


def breadth(panel: Panel, n: int) -> Array1D:
    """(T,) share of the symbols with a bar and an SMA(close, n) at each session whose close
    is above it (SMA on each symbol's own bars, the indicator engine's SMA{n})."""
    above, count, _, _ = _session_pass([panel], n, panel.n_sessions)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, above / np.maximum(count, 1), np.nan)


def _session_pass(panels: Iterable[Panel], n: int, t_len: int
                  ) -> tuple[Array1D, Array1D, Array1D, Array1D]:
    """Per session, in one compiled pass over the (N, T) closes of `panels` (chunks of rows of
    one panel, in row order; no (N, T) temporaries): the symbols above their SMA{n}, those
    with one, and the sum and count of the daily returns `market_index` averages (both bars
    present, previous close not 0; added in row order, so chunks give one pass's sums)."""
    name = f"SMA{n}"
    above, count, ret_sum, ret_count = (np.zeros(t_len) for _ in range(4))
    for panel in panels:
        sma = compute_indicators(panel, [name], history=True).history[name]  # type: ignore
        _counts(np.ascontiguousarray(panel.close, dtype=np.float64), sma, above, count,
                ret_sum, ret_count)
    return above, count, ret_sum, ret_count


@njit(cache=True, error_model="numpy")
def _counts(close, sma, above, count, ret_sum, ret_count):  # pragma: no cover - compiled
    n, t_len = close.shape
    for i in range(n):
        for t in range(t_len):
            c, m = close[i, t], sma[i, t]
            if np.isfinite(c) and np.isfinite(m):
                count[t] += 1.0
                above[t] += c > m
            if t > 0:
                prev = close[i, t - 1]
                if np.isfinite(prev) and np.isfinite(c) and prev != 0.0:
                    ret_sum[t] += c / prev - 1.0
                    ret_count[t] += 1.0


def _equal_weighted(ret_sum: Array1D, ret_count: Array1D) -> Array1D:
    """`market_index` from the pass's return sums: 1.0 at the first session, compounded."""
    if not len(ret_sum):
        return np.empty(0)
    mean = np.where(ret_count > 0, ret_sum / np.maximum(ret_count, 1), 0.0)[1:]
    return np.concatenate(([1.0], np.cumprod(1.0 + mean)))


def regime_series(panel: Panel, benchmark: str | None = None,
                  config: RegimeConfig | None = None) -> RegimeSeries:
    """The regime and its inputs at every session of `panel` (module docstring)."""
    cfg = config or RegimeConfig()
    sums = _session_pass([panel], cfg.breadth_sma, panel.n_sessions)
    level = None if benchmark is None else benchmark_level(panel, benchmark)
    return _regimes(sums, level, panel.sessions, benchmark, panel.data_version, cfg)


def store_regime_series(reader: Any, benchmark: str | None = None,
                        config: RegimeConfig | None = None,
                        chunk_rows: int = CHUNK_ROWS) -> RegimeSeries:
    """`regime_series` of the whole store `reader` holds, read `chunk_rows` symbols at a time
    (`reader.load_block`): the same numbers, in the memory of one chunk of rows."""
    cfg = config or RegimeConfig()
    snap = reader.snapshot()
    n, last = len(snap.universe), len(snap.sessions) - 1
    chunks = (reader.load_block(0, last, np.arange(lo, min(lo + chunk_rows, n)))
              for lo in range(0, n, chunk_rows))
    sums = _session_pass(chunks, cfg.breadth_sma, last + 1)
    level = None
    if benchmark is not None:
        row = snap.rows([benchmark])
        if row[0] < 0:
            raise ValueError(f"regime benchmark {benchmark!r} is not a symbol in the store")
        level = benchmark_level(reader.load_block(0, last, row), benchmark)
    return _regimes(sums, level, snap.sessions, benchmark, snap.data_version, cfg)


def _regimes(sums: tuple[Array1D, ...], level: Array1D | None, sessions: pd.DatetimeIndex,
             benchmark: str | None, data_version: str, cfg: RegimeConfig) -> RegimeSeries:
    """The regime series from the session pass's sums and the benchmark's level (None: the
    equal-weighted index of the sums)."""
    above, count, ret_sum, ret_count = sums
    if level is None:
        level = _equal_weighted(ret_sum, ret_count)
    sma_long = _sma(level, cfg.sma_long)
    sma_slope = _sma(level, cfg.sma_slope)
    prev = np.r_[np.full(cfg.slope_bars, np.nan), sma_slope[:-cfg.slope_bars]] \
        if len(level) > cfg.slope_bars else np.full(len(level), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sma_slope / prev - 1.0
        logret = np.r_[np.nan, np.diff(np.log(level))]
    vol = rolling_std(logret, cfg.vol_window) * math.sqrt(252)
    pct = rolling_pct_rank(vol, cfg.vol_year, cfg.vol_min_history)
    with np.errstate(invalid="ignore", divide="ignore"):
        wide = np.where(count > 0, above / np.maximum(count, 1), np.nan)
    numbers = {"market_level": level, "market_sma_200": sma_long, "market_slope_50": slope,
               "market_vol_20": vol, "market_vol_pct": pct, "breadth_50": wide}
    trend_known = np.isfinite(level) & np.isfinite(sma_long) & np.isfinite(slope) \
        & np.isfinite(wide)
    with np.errstate(invalid="ignore"):
        up = (level > sma_long) & (slope > 0) & (wide >= cfg.breadth_up)
        down = (level < sma_long) & (slope < 0) & (wide < cfg.breadth_up)
        high = pct >= cfg.high_vol_pct
    trend = np.where(up, TRENDS[0], np.where(down, TRENDS[1], TRENDS[2])).astype(object)
    trend[~trend_known] = UNKNOWN
    volatility = np.where(high, VOLATILITIES[1], VOLATILITIES[0]).astype(object)
    volatility[~np.isfinite(pct)] = UNKNOWN
    known = (trend != UNKNOWN) & (volatility != UNKNOWN)
    regime = np.full(len(level), UNKNOWN, dtype=object)
    regime[known] = trend[known] + "/" + volatility[known]
    return RegimeSeries(sessions, benchmark or EQUAL_WEIGHTED, numbers, trend,
                        volatility, regime, data_version, cfg)


class RegimeCache:
    """Regime series by (data version, benchmark), least recently used out: computed once per
    data version, then every scan at any as-of session reads its session's row. A reader of
    an in-memory panel without a data version ("unversioned") keeps its own, with the reader
    (two such panels share no version to tell them apart)."""

    def __init__(self, size: int = 4):
        self.size = size
        self._lock = threading.Lock()
        self._series: LRUCache[tuple[str, str | None], RegimeSeries] = LRUCache(size)
        self._unversioned: weakref.WeakKeyDictionary[Any, dict[str | None, RegimeSeries]] = \
            weakref.WeakKeyDictionary()

    def get(self, reader: Any, benchmark: str | None = None) -> RegimeSeries:
        """The regime series over the whole store `reader` holds (a StoreReader or
        PanelSource), computed on the first call for its data version."""
        snap = reader.snapshot()
        key = (snap.data_version, benchmark)
        with self._lock:
            if snap.data_version == UNVERSIONED:
                found = self._unversioned.get(reader, {}).get(benchmark)
            else:
                found = self._series.get(key)  # a hit counts as a use (LRU)
            if found is not None:
                return found
        if hasattr(reader, "load_block"):  # chunks of rows, never the whole store at once
            series = store_regime_series(reader, benchmark)
        else:
            series = regime_series(reader.load(None, len(snap.sessions)), benchmark)
        with self._lock:
            if snap.data_version == UNVERSIONED:
                self._unversioned.setdefault(reader, {})[benchmark] = series
                return series
            self._series[key] = series  # the least recently used goes past `size`
        return series


REGIME_CACHE = RegimeCache()


def regime_timeline(reader: Any, benchmark: str | None = None, start: str | None = None,
                    end: str | None = None) -> dict[str, Any]:
    """The regime timeline of the store `reader` holds, between `start` and `end` (dates,
    inclusive): what `technic regimes` and GET /v1/regimes answer. Columns (one value per
    session: session, regime, trend, volatility, NUMBERS), each regime's sessions and share,
    the runs of one regime (`spans`), and the rule's version and thresholds."""
    series = REGIME_CACHE.get(reader, benchmark)
    keep = np.ones(len(series.sessions), dtype=bool)
    if start is not None:
        keep &= series.sessions >= pd.Timestamp(start)
    if end is not None:
        keep &= series.sessions <= pd.Timestamp(end)
    part = RegimeSeries(series.sessions[keep], series.benchmark,
                        {k: v[keep] for k, v in series.numbers.items()}, series.trend[keep],
                        series.volatility[keep], series.regime[keep], series.data_version,
                        series.config)
    frame = part.frame()
    columns = {c: [_num(v) if isinstance(v, float) else v for v in frame[c].tolist()]
               for c in frame.columns}
    return {"benchmark": part.benchmark, "version": REGIME_VERSION,
            "config": series.config.as_dict(), "regimes": list(REGIMES),
            "data_version": series.data_version,
            "first_session": columns["session"][0] if len(frame) else None,
            "last_session": columns["session"][-1] if len(frame) else None,
            "shares": part.shares(), "spans": part.spans(), "columns": columns}
