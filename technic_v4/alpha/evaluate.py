"""Out-of-sample evaluation of a forecast against realised forward returns.

`evaluate(pred, fwd, horizon, sectors)` takes (N, T) arrays on the panel grid: the model's
forecast where it was scored (NaN elsewhere, e.g. outside the test segment) and the forward
return it tried to forecast. Only cells where both are finite count. Per session it computes

  ic                 Pearson correlation across symbols of forecast and forward return
  rank_ic            Spearman correlation (rank IC): does a higher forecast mean a higher return?
  top_decile_excess  mean forward return of the forecast's top 10% minus the mean of all scored
                     symbols that session (log return per `horizon` sessions, not annualised)
  hit_rate           share of scored (symbol, session) pairs where forecast and return fall on the
                     same side of their session's cross-sectional median (0.5 = a coin flip)
and reports each series' mean with a Newey-West t-statistic (Bartlett kernel, 2 x horizon lags):
forward returns of consecutive sessions overlap by horizon-1 days, so a plain t would overstate
the evidence (by ~sqrt(horizon)); Bartlett weights at only `horizon` lags would still overstate
it by ~17-20%, at 2 x horizon lags by <= 8%.
`ic_positive_share` is the share of sessions with a positive rank IC.
`top_decile_turnover` is the share of the top decile replaced between sessions `horizon` apart
(a portfolio rebalanced every horizon sessions); 0.9 = random picks.
`by_sector` repeats rank IC and top-decile excess within each sector.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from technic_v4 import cross_section
from technic_v4.data.panel import Array1D, Array2D

TOP_FRACTION = 0.10
MIN_SECTOR_SYMBOLS = 10


def newey_west_t(series: Array1D, lags: int) -> float:
    """t-statistic of the mean of a time series, HAC (Newey-West, Bartlett) standard error."""
    x = np.asarray(series, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return math.nan
    e = x - x.mean()
    var = e @ e / n
    for lag in range(1, min(lags, n - 1) + 1):
        var += 2.0 * (1.0 - lag / (lags + 1.0)) * (e[lag:] @ e[:-lag]) / n
    if var <= 0:
        return math.nan
    return float(x.mean() / math.sqrt(var / n))


def _summary(series: Array1D, horizon: int) -> dict[str, float | int | None]:
    ok = np.isfinite(series)
    mean = float(series[ok].mean()) if ok.any() else math.nan
    return {"mean": _r(mean), "t_stat": _r(newey_west_t(series, 2 * horizon)),
            "n_dates": int(ok.sum())}


def _r(x: float, digits: int = 6) -> float | None:
    """JSON-friendly float: rounded, None for NaN."""
    return None if not math.isfinite(x) else round(float(x), digits)


def _top_excess(pred: Array2D, fwd: Array2D, min_count: int) -> Array1D:
    top = cross_section.top_fraction(pred, TOP_FRACTION, min_count)
    ok = np.isfinite(pred)
    with np.errstate(invalid="ignore"):
        top_mean = np.where(top, fwd, 0.0).sum(0) / top.sum(0)
        all_mean = np.where(ok, fwd, 0.0).sum(0) / ok.sum(0)
    return np.where(top.any(0), top_mean - all_mean, np.nan)


def _hit_rate(pred: Array2D, fwd: Array2D) -> float:
    p_rank, k = cross_section.ranks(pred)
    f_rank, _ = cross_section.ranks(fwd)
    ok = np.isfinite(p_rank)
    mid = (k + 1) / 2.0
    with np.errstate(invalid="ignore"):
        same = np.sign(p_rank - mid) * np.sign(f_rank - mid)
    decided = ok & (same != 0)
    return float((same[decided] > 0).mean()) if decided.any() else math.nan


def _turnover(pred: Array2D, horizon: int) -> float:
    top = cross_section.top_fraction(pred, TOP_FRACTION)
    dates = np.flatnonzero(top.any(0))
    if len(dates) < 2:
        return math.nan
    picks = top[:, dates[::horizon]]
    kept = (picks[:, 1:] & picks[:, :-1]).sum(0)
    return float(np.mean(1.0 - kept / picks[:, 1:].sum(0)))


def evaluate(pred: Array2D, fwd: Array2D, horizon: int, sectors: np.ndarray | None = None,
             sessions: pd.DatetimeIndex | None = None) -> dict:
    """The evaluation report (module docstring) as a JSON-serialisable dict."""
    both = np.isfinite(pred) & np.isfinite(fwd)
    pred = np.where(both, pred, np.nan)
    fwd = np.where(both, fwd, np.nan)
    scored = np.flatnonzero(both.any(0))
    rank = cross_section.rank_ic(pred, fwd)
    days = sessions if sessions is not None and len(scored) > 0 else None
    report: dict = {
        "horizon": horizon,
        "rows": int(both.sum()),
        "first_date": str(days[scored[0]].date()) if days is not None else None,
        "last_date": str(days[scored[-1]].date()) if days is not None else None,
        "ic": _summary(cross_section.pearson_ic(pred, fwd), horizon),
        "rank_ic": _summary(rank, horizon),
        "ic_positive_share": _r(float((rank[np.isfinite(rank)] > 0).mean())
                                if np.isfinite(rank).any() else math.nan),
        "top_decile_excess": _summary(_top_excess(pred, fwd, 20), horizon),
        "hit_rate": _r(_hit_rate(pred, fwd)),
        "top_decile_turnover": _r(_turnover(pred, horizon)),
        "by_sector": {},
    }
    if sectors is not None:
        sectors = np.asarray(sectors)
        for name in sorted(pd.unique(sectors)):
            rows = sectors == name
            if rows.sum() < MIN_SECTOR_SYMBOLS:
                continue
            p, f = pred[rows], fwd[rows]
            report["by_sector"][str(name)] = {
                "symbols": int(rows.sum()),
                "rank_ic": _summary(cross_section.rank_ic(p, f, MIN_SECTOR_SYMBOLS), horizon),
                "top_decile_excess": _summary(_top_excess(p, f, MIN_SECTOR_SYMBOLS), horizon),
            }
    return report
