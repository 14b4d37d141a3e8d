"""Cross-sectional helpers: values that need the whole universe or the calendar, not one
symbol's bar list, so they are not packed-row kernels.

- `market_index(panel)`: the universe's equal-weighted index level, one per session;
  `market_field(panel)` lays it on every symbol's bars as the "market" input BETA reads:
  `compute_indicators(panel, ["beta_60"], extra={"market": market_field(panel)})`.
- `rs_percentile(rs_raw)`: IBD-style 1..99 rating of the `rs_raw` indicator across symbols.
- `perf_ytd(panel)`: year-to-date performance, which needs calendar dates.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from technic_v4.data.panel import Array1D, Array2D, Panel


def market_index(panel: Panel) -> Array1D:
    """(T,) equal-weighted index level: 1.0 at the first session, then each session's level is
    the previous one times (1 + the mean over symbols of close / previous close - 1), the mean
    taken over the symbols with a bar (and a non-zero close) at both this session and the one
    before. A session where no symbol qualifies keeps the previous level."""
    close = np.asarray(panel.close, dtype=np.float64)
    n_sessions = close.shape[1]
    if n_sessions == 0:
        return np.empty(0)
    prev, cur = close[:, :-1], close[:, 1:]
    ok = np.isfinite(prev) & np.isfinite(cur) & (prev != 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(ok, cur / np.where(ok, prev, 1.0) - 1.0, 0.0)
    count = ok.sum(axis=0)
    mean = np.where(count > 0, ret.sum(axis=0) / np.maximum(count, 1), 0.0)
    return np.concatenate(([1.0], np.cumprod(1.0 + mean)))


def market_field(panel: Panel, index: Array1D | None = None) -> Array2D:
    """(N, T) the market index level (default `market_index(panel)`) broadcast to every symbol,
    NaN where the symbol has no bar: BETA's "market" input, seen on the symbol's own bars."""
    level = market_index(panel) if index is None else np.asarray(index, dtype=np.float64)
    if level.shape != (panel.n_sessions,):
        raise ValueError(f"market index has shape {level.shape}, expected ({panel.n_sessions},)")
    return np.where(np.isfinite(panel.close), level[None, :], np.nan)


def rs_percentile(rs_raw: npt.ArrayLike) -> Array1D:
    """IBD-style relative-strength rating 1..99 of each finite value among the finite values:
    ceil(99 * rank / n), rank the 1-based ascending rank (the strongest gets 99) and n the
    number of finite values, clipped to [1, 99]. Ties share the average of their ranks (as
    pandas' rank(method="average", pct=True)), so equal values get equal ratings. NaN stays
    NaN. Computed in integers (rank * 2 is whole), so no rating is off by one from rounding."""
    values = np.asarray(rs_raw, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    n = int(finite.sum())
    if n == 0:
        return out
    _, inverse, counts = np.unique(values[finite], return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # 1-based rank of each distinct value's last copy
    twice_rank = 2 * last - (counts - 1)  # 2 x the average rank of each tie group
    rating = (99 * twice_rank + 2 * n - 1) // (2 * n)  # ceil(99 * rank / n)
    out[finite] = np.clip(rating, 1, 99)[inverse]
    return out


def perf_ytd(panel: Panel, history: bool = False) -> Array1D | Array2D:
    """Year-to-date performance: close / base - 1, base = the symbol's last close on or before
    the panel's last session of the previous calendar year (the last session before 1 January
    of the bar's year). NaN when the panel has no session before that 1 January, when the
    symbol had no bar by then, or when the base close is 0.
    history=False: (N,) at each symbol's own last bar (NaN without bars); True: (N, T) at every
    bar, NaN where the symbol has no bar."""
    close = np.asarray(panel.close, dtype=np.float64)
    sessions = pd.DatetimeIndex(panel.sessions)
    year_start = pd.DatetimeIndex([pd.Timestamp(year, 1, 1) for year in sessions.year],
                                  tz=sessions.tz)
    base_session = sessions.searchsorted(year_start, side="left") - 1
    filled = pd.DataFrame(close).ffill(axis=1).to_numpy()
    base = np.full(close.shape, np.nan)
    has_base = base_session >= 0
    base[:, has_base] = filled[:, base_session[has_base]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ytd = np.where(base != 0.0, close / base - 1.0, np.nan)
    if history:
        return ytd
    last = panel.last_bar_index()
    rows = np.arange(close.shape[0])
    return np.where(last >= 0, ytd[rows, np.maximum(last, 0)], np.nan)
