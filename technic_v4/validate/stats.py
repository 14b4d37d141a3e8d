"""The statistics of a validation, each one function over (N symbols, D sessions) arrays.

Vocabulary as alphalens uses it: mean excess return of the passing set with a Newey-West t
(Bartlett kernel, 2 x horizon lags: neighbouring h-session returns overlap), hit rate, daily
rank IC with its mean, t and IC IR, mean excess by rank decile, and a top-N portfolio's
cumulative excess, annualised return and volatility, drawdown and turnover. A statistic whose
independent observations (sessions / horizon) number fewer than MIN_INDEPENDENT is marked
`meaningful: false`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from technic_v4 import cross_section
from technic_v4.alpha.evaluate import newey_west_t
from technic_v4.scan.result import rank_order

MIN_INDEPENDENT = 30
SESSIONS_PER_YEAR = 252


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _num(x: float, digits: int = 6) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def summary(series: np.ndarray, horizon: int, every: int = 1) -> dict[str, object]:
    """Mean, Newey-West t, sessions and independent observations of a daily series."""
    ok = np.isfinite(series)
    n = int(ok.sum())
    lags = math.ceil(2 * horizon / every) if horizon > every else 0  # as alpha/evaluate.py
    independent = n if lags == 0 else int(n * every / horizon)
    mean = float(series[ok].mean()) if n else math.nan
    return {"mean": _num(mean), "t_stat": _num(newey_west_t(series, lags) if n > 2 else math.nan,
                                                3),
            "n_sessions": n, "independent": independent,
            "meaningful": independent >= MIN_INDEPENDENT}


def passing_excess(passing: np.ndarray, excess: np.ndarray) -> np.ndarray:
    """(D,) each session's equal-weighted mean excess return of the passing symbols."""
    return _nanmean(np.where(passing, excess, np.nan), axis=0)


def hit_rate(passing: np.ndarray, excess: np.ndarray) -> float | None:
    cells = excess[passing & np.isfinite(excess)]
    return _num(float((cells > 0).mean())) if cells.size else None


@dataclass(frozen=True)
class Ranked:
    """The ranking, once for every horizon: `signal` (higher = ranked better) and `bucket`
    (1 = best decile .. 10, ties in row order; 0 = not ranked)."""

    signal: np.ndarray
    bucket: np.ndarray

    @classmethod
    def of(cls, rank: np.ndarray, ascending: bool, buckets: int = 10) -> Ranked:
        signal = -rank if ascending else rank
        first, k = cross_section.ranks(signal, ties="first")
        with np.errstate(invalid="ignore", divide="ignore"):
            bucket = np.where(np.isfinite(first),
                              buckets - np.floor((first - 1) * buckets / k[None, :]), 0)
        return cls(signal, bucket.astype(np.int64))


def rank_ics(ranked: Ranked, excess: np.ndarray, min_count: int = 10) -> np.ndarray:
    """(D,) Spearman correlation of the ranking and the excess return among ranked symbols
    with a forward return."""
    return cross_section.rank_ic(ranked.signal, excess, min_count)


def group_means(codes: np.ndarray, excess: np.ndarray, groups: int) -> np.ndarray:
    """(groups, D) mean excess of each code's cells per session (codes < 0: none), NaN for a
    group without cells: one bincount, not a pass per group."""
    n, d = excess.shape
    ok = (codes >= 0) & (codes < groups) & np.isfinite(excess)
    flat = (codes * d + np.arange(d)[None, :])[ok]
    sums = np.bincount(flat, weights=excess[ok], minlength=groups * d)
    counts = np.bincount(flat, minlength=groups * d)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(groups, d)


def deciles(ranked: Ranked, excess: np.ndarray, buckets: int = 10
            ) -> list[dict[str, float | int | None]]:
    """Mean excess return by rank bucket (1 = ranked best), averaged over sessions."""
    means = group_means(ranked.bucket - 1, excess, buckets)
    out: list[dict[str, float | int | None]] = []
    for b in range(buckets):
        ok = np.isfinite(means[b])
        out.append({"decile": b + 1, "mean_excess": _num(float(means[b][ok].mean()))
                    if ok.any() else None, "sessions": int(ok.sum())})
    return out


def by_group(labels: np.ndarray, passing: np.ndarray, excess: np.ndarray, horizon: int,
             every: int) -> dict[str, dict[str, object]]:
    """`summary` of the daily passing-set excess within each label (per row: a sector)."""
    codes, names = pd.factorize(pd.Series(labels).astype(str))
    cells = np.where(passing, codes[:, None], -1)
    means = group_means(cells, excess, len(names))
    return {str(name): summary(means[k], horizon, every)
            for k, name in sorted(enumerate(names), key=lambda kv: kv[1])}


def by_year(sessions: pd.DatetimeIndex, daily: np.ndarray, horizon: int, every: int
            ) -> dict[str, dict[str, object]]:
    return {str(year): summary(np.where(sessions.year == year, daily, np.nan), horizon, every)
            for year in sorted(set(sessions.year))}


def portfolio(rank: np.ndarray, ascending: bool, step_excess: np.ndarray, top: int,
              rebalance: int, every: int, cost_bps: float) -> tuple[dict[str, object],
                                                                       pd.DataFrame]:
    """Top-`top` equal-weighted portfolio rebalanced every `rebalance` evaluated sessions,
    held through each step (`step_excess`: the excess return over the next `every` bars);
    (summary, per-session series of step return, cost, net return, cumulative net)."""
    n, d = rank.shape
    held = np.zeros(n, dtype=bool)
    gross = np.full(d, np.nan)
    costs = np.zeros(d)
    turnovers = []
    for k in range(d):
        if k % rebalance == 0:
            order = rank_order(rank[:, k], ascending)
            order = order[np.isfinite(rank[order, k])][:top]
            new = np.zeros(n, dtype=bool)
            new[order] = True
            if held.any() or new.any():
                size = max(held.sum(), new.sum(), 1)
                traded = (held & ~new).sum() + (new & ~held).sum()  # sells + buys, names
                turnovers.append(float(np.sum(new & ~held)) / max(new.sum(), 1))
                costs[k] = traded / size * cost_bps / 1e4
            held = new
        if held.any():
            gross[k] = _nanmean(np.where(held, step_excess[:, k], np.nan)[:, None], axis=0)[0]
    net = np.where(np.isfinite(gross), gross - costs, np.nan)
    wealth = np.cumprod(1.0 + np.nan_to_num(net))
    drawdown = float((wealth / np.maximum.accumulate(wealth) - 1.0).min()) if d else math.nan
    per_year = SESSIONS_PER_YEAR / every
    ok = np.isfinite(net)
    series = pd.DataFrame({"portfolio_gross": gross, "portfolio_cost": costs,
                           "portfolio_net": net, "portfolio_cumulative": wealth - 1.0})
    gross_ok = gross[np.isfinite(gross)]
    return {
        "top": top, "rebalance_every": rebalance, "cost_bps_per_side": cost_bps,
        "steps": int(ok.sum()),
        "cumulative_excess": _num(float(wealth[-1] - 1.0)) if d else None,
        "annualised_excess": _num(float(gross_ok.mean() * per_year)) if gross_ok.size else None,
        "annualised_excess_net": _num(float(net[ok].mean() * per_year)) if ok.any() else None,
        "annualised_volatility": _num(float(net[ok].std() * math.sqrt(per_year)))
        if ok.sum() > 1 else None,
        "max_drawdown": _num(drawdown),
        "turnover": _num(float(np.mean(turnovers))) if turnovers else None,
        "t_stat": _num(newey_west_t(net, 0), 3) if ok.sum() > 2 else None,
    }, series
