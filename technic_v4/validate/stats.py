"""The statistics of a validation, each one function over (N symbols, D sessions) arrays.

Vocabulary as alphalens uses it: mean excess return of the passing set with a Newey-West t
(Bartlett kernel, 2 x horizon lags: neighbouring h-session returns overlap), hit rate, daily
rank IC with its mean, t and IC IR, mean excess by rank decile, and a top-N portfolio's
cumulative excess, annualised return and volatility, drawdown and turnover. A statistic whose
independent observations (sessions / horizon) number fewer than MIN_INDEPENDENT is marked
`meaningful: false`.

The per-session means run as compiled passes over the cells in row order (numpy's nanmean
over axis 0 and bincount add in that order too, so the numbers are the same), never through
(N, D) temporaries; the ranking is sorted once (`Ranked`) and reused for every horizon's IC.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange

from technic_v4 import cross_section
from technic_v4.alpha.evaluate import newey_west_t
from technic_v4.scan.result import rank_order
from technic_v4.validate.returns import Forward

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


def passing_excess(passing: np.ndarray, excess: np.ndarray,
                   offset: np.ndarray | None = None) -> np.ndarray:
    """(D,) each session's equal-weighted mean excess return of the passing symbols (of
    `excess - offset` per session, when given: a return less the day's mean)."""
    shift = np.zeros(excess.shape[1]) if offset is None else offset
    sums, counts = _masked_sums(np.asarray(passing, dtype=bool), excess, shift)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


@njit(cache=True, error_model="numpy")
def _masked_sums(mask, values, offset):  # pragma: no cover - compiled
    """Per session: the sum and count of values[i, k] - offset[k] over masked cells that are
    not NaN, added in row order."""
    n, d = values.shape
    sums, counts = np.zeros(d), np.zeros(d, dtype=np.int64)
    for i in range(n):
        for k in range(d):
            if mask[i, k]:
                v = values[i, k] - offset[k]
                if not np.isnan(v):
                    sums[k] += v
                    counts[k] += 1
    return sums, counts


def hit_rate(passing: np.ndarray, excess: np.ndarray) -> float | None:
    hits, cells = _hits(np.asarray(passing, dtype=bool), excess)
    return _num(hits / cells) if cells else None


@njit(cache=True)
def _hits(mask, values):  # pragma: no cover - compiled
    """(cells > 0, cells) among the masked finite cells."""
    hits = cells = 0
    n, d = values.shape
    for i in range(n):
        for k in range(d):
            v = values[i, k]
            if mask[i, k] and np.isfinite(v):
                cells += 1
                hits += v > 0
    return hits, cells


@dataclass(frozen=True)
class Ranked:
    """The ranking, once for every horizon: `signal` (higher = ranked better), `bucket`
    (1 = best decile .. 10, ties in row order; 0 = not ranked), and per session the ranked
    cells (`start[k]:start[k + 1]` of the (M,) arrays, in row order) with their average-tie
    ranks, centred, and the ranks' sum of squares: the half of each day's Spearman correlation
    that does not depend on the horizon."""

    signal: np.ndarray
    bucket: np.ndarray   # (N, D), 0 where not ranked
    start: np.ndarray    # (D + 1,)
    values: np.ndarray   # (M,) the ranked cells' signal, session by session
    centred: np.ndarray  # (M,) its average-tie rank within the session, less their mean
    squares: np.ndarray  # (D,) sum of the centred ranks' squares

    @classmethod
    def of(cls, rank: np.ndarray, ascending: bool, buckets: int = 10) -> Ranked:
        signal = -rank if ascending else rank
        first, k = cross_section.ranks(signal, ties="first")
        start = np.r_[0, np.cumsum(k)].astype(np.int64)
        bucket, values, centred, squares = _ranked_cells(signal, first, start, buckets)
        return cls(signal, bucket, start, values, centred, squares)


@njit(cache=True, error_model="numpy")
def _ranked_cells(signal, first, start, buckets):  # pragma: no cover - compiled
    """Each cell's bucket, and the ranked cells session by session (row order) with their
    centred average-tie ranks: the stable `first` ranks give each session's sorted order,
    ties are adjacent in it."""
    n, d = signal.shape
    m = start[-1]
    bucket = np.zeros((n, d), dtype=np.int64)
    values = np.empty(m)
    filled = start[:-1].copy()
    order = np.empty(m, dtype=np.int64)  # per session: cell (offset) by sorted position
    for i in range(n):
        for k in range(d):
            f = first[i, k]
            if np.isfinite(f):
                count = start[k + 1] - start[k]
                bucket[i, k] = int(buckets - np.floor((f - 1) * buckets / count))
                c = filled[k]
                values[c] = signal[i, k]
                order[start[k] + int(f) - 1] = c - start[k]
                filled[k] += 1
    centred, squares = np.empty(m), np.zeros(d)
    for k in range(d):
        lo, size = start[k], start[k + 1] - start[k]
        ranks = np.empty(size)
        cross_section.average_ranks(values[lo:lo + size], order[lo:lo + size], size, ranks)
        if size:
            ranks -= ranks.mean()
            squares[k] = (ranks * ranks).sum()
        centred[lo:lo + size] = ranks
    return bucket, values, centred, squares


def rank_ics(ranked: Ranked, excess: np.ndarray, min_count: int = 10) -> np.ndarray:
    """(D,) Spearman correlation of the ranking and the excess return among ranked symbols
    with a forward return (cross_section.rank_ic's numbers, the ranking's half reused). The
    ranked cells' excess returns, one row per session padded with +inf (as is every value
    that is not finite), are sorted by numpy in one call."""
    keys = _ranked_keys(ranked.start, ranked.bucket, excess,
                        int(np.diff(ranked.start).max(initial=0)))
    return _rank_ics(ranked.start, ranked.values, ranked.centred, ranked.squares, keys,
                     np.argsort(keys, axis=1), min_count)


@njit(cache=True)
def _ranked_keys(start, bucket, excess, width):  # pragma: no cover - compiled
    """(D, width): row k holds the excess of session k's ranked cells, in row order, +inf
    where not finite and after the last (read row by row, as the cells lie in memory)."""
    d = len(start) - 1
    keys = np.full((d, width), np.inf)
    filled = np.zeros(d, dtype=np.int64)
    for i in range(excess.shape[0]):
        for k in range(d):
            if bucket[i, k] > 0:
                v = excess[i, k]
                if np.isfinite(v):
                    keys[k, filled[k]] = v
                filled[k] += 1
    return keys


@njit(parallel=True, cache=True)
def _rank_ics(start, values, centred, squares, keys, order, min_count
              ):  # pragma: no cover - compiled
    """Per session: Spearman correlation over the ranked rows with a finite excess (average
    ranks from the sorted `order`); when every ranked row has one, the session's
    precomputed signal ranks serve."""
    d = len(start) - 1
    out = np.full(d, np.nan)
    for k in prange(d):
        lo, size = start[k], start[k + 1] - start[k]
        row, idx = keys[k, :size], order[k]
        finite = 0
        while finite < size and np.isfinite(row[idx[finite]]):
            finite += 1
        if finite < min_count or finite < 2:
            continue
        rb = np.empty(size)
        cross_section.average_ranks(row, idx, finite, rb)
        if finite == size:
            ra, ssa = centred[lo:lo + size], squares[k]
        else:
            ok = np.flatnonzero(np.isfinite(row))
            rb = rb[ok]
            ra = cross_section.ranks_1d(values[lo:lo + size][ok], True)
            ra -= ra.mean()
            ssa = (ra * ra).sum()
        rb -= rb.mean()
        den = np.sqrt(ssa * (rb * rb).sum())
        if den > 0:
            out[k] = (ra * rb).sum() / den
    return out


def group_means(codes: np.ndarray, excess: np.ndarray, groups: int,
                mask: np.ndarray | None = None, offset: int = 0) -> np.ndarray:
    """(groups, D) mean excess of each code's cells per session (code = codes - offset, in
    masked cells; < 0: none), NaN for a group without cells: one pass, not one per group."""
    shape = excess.shape
    sums, counts = _group_sums(np.broadcast_to(codes, shape), offset,
                               np.broadcast_to(True if mask is None else mask, shape),
                               excess, groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


@njit(cache=True)
def _group_sums(codes, offset, mask, values, groups):  # pragma: no cover - compiled
    """(groups, D) sums and counts of finite values by code, added in row order (bincount's)."""
    n, d = values.shape
    sums, counts = np.zeros((groups, d)), np.zeros((groups, d), dtype=np.int64)
    for i in range(n):
        for k in range(d):
            c = codes[i, k] - offset
            v = values[i, k]
            if mask[i, k] and 0 <= c < groups and np.isfinite(v):
                sums[c, k] += v
                counts[c, k] += 1
    return sums, counts


def deciles(ranked: Ranked, excess: np.ndarray, buckets: int = 10
            ) -> list[dict[str, float | int | None]]:
    """Mean excess return by rank bucket (1 = ranked best), averaged over sessions."""
    means = group_means(ranked.bucket, excess, buckets, offset=1)
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
    means = group_means(codes.astype(np.int64)[:, None], excess, len(names), passing)
    return {str(name): summary(means[k], horizon, every)
            for k, name in sorted(enumerate(names), key=lambda kv: kv[1])}


def by_year(sessions: pd.DatetimeIndex, daily: np.ndarray, horizon: int, every: int
            ) -> dict[str, dict[str, object]]:
    return {str(year): summary(np.where(sessions.year == year, daily, np.nan), horizon, every)
            for year in sorted(set(sessions.year))}


def portfolio(rank: np.ndarray, ascending: bool, step: Forward, top: int,
              rebalance: int, every: int, cost_bps: float) -> tuple[dict[str, object],
                                                                       pd.DataFrame]:
    """Top-`top` equal-weighted portfolio rebalanced every `rebalance` evaluated sessions,
    held through each step (`step`: the returns over the next `every` bars; the held rows'
    excess only is computed); (summary, per-session series of step return, cost, net return,
    cumulative net)."""
    n, d = rank.shape
    held = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(held)
    gross = np.full(d, np.nan)
    costs = np.zeros(d)
    turnovers = []
    for k in range(d):
        if k % rebalance == 0:
            ranked = np.flatnonzero(np.isfinite(rank[:, k]))  # a stable sort of these alone
            order = ranked[rank_order(rank[ranked, k], ascending)][:top]
            new = np.zeros(n, dtype=bool)
            new[order] = True
            if held.any() or new.any():
                size = max(held.sum(), new.sum(), 1)
                traded = (held & ~new).sum() + (new & ~held).sum()  # sells + buys, names
                turnovers.append(float(np.sum(new & ~held)) / max(new.sum(), 1))
                costs[k] = traded / size * cost_bps / 1e4
            held, rows = new, np.flatnonzero(new)
        if len(rows):
            cells = np.full(n, np.nan)
            cells[rows] = step.excess_at(rows, k)
            gross[k] = _nanmean(cells[:, None], axis=0)[0]
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
