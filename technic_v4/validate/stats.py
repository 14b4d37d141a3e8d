"""The statistics of a validation, each one function over (N symbols, D sessions) arrays.

Vocabulary as alphalens uses it: mean excess return of the passing set with a Newey-West t,
hit rate, daily rank IC with its mean, t and IC IR, mean excess by rank decile, and a top-N
portfolio (`portfolio`: CONVENTIONS below). A statistic whose independent observations
(sessions x every / horizon) number fewer than MIN_INDEPENDENT is marked `meaningful: false`.

Newey-West t (Bartlett kernel): with h-session returns evaluated every k sessions, neighbouring
observations overlap when h > k, so the lag count is ceil(2h / k) (h = 5, k = 1: 10 lags);
when h <= k they do not overlap and the lag count is 0 (h = 1: the plain t). A series that is
exactly 0 wherever it is known (a screen that passes its whole universe has no excess) has
t = 0, not the noise of a 0 / 0.

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

from technic_v4 import cancel, cross_section
from technic_v4.alpha.evaluate import newey_west_t
from technic_v4.scan.select import rank_order
from technic_v4.validate.returns import Forward

MIN_INDEPENDENT = 30
DAYS_PER_YEAR = 365.25


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _num(x: float, digits: int = 6) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def newey_west_lags(horizon: int, every: int = 1) -> int:
    """Lags of the Newey-West t of h-session returns evaluated every k sessions: ceil(2h / k)
    when they overlap (h > k), else 0 (module docstring)."""
    return math.ceil(2 * horizon / every) if horizon > every else 0


def t_stat(series: np.ndarray, lags: int) -> float:
    """Newey-West t of the series' mean over its finite values: 0 when every one is exactly 0
    (no excess, not the noise of 0 / 0), NaN with fewer than 3."""
    known = series[np.isfinite(series)]
    if known.size < 3:
        return math.nan
    if not known.any():
        return 0.0
    return newey_west_t(known, lags)


def summary(series: np.ndarray, horizon: int, every: int = 1) -> dict[str, object]:
    """Mean, Newey-West t (`newey_west_lags`), sessions and independent observations of a
    daily series."""
    ok = np.isfinite(series)
    n = int(ok.sum())
    lags = newey_west_lags(horizon, every)
    independent = n if lags == 0 else int(n * every / horizon)
    mean = float(series[ok].mean()) if n else math.nan
    return {"mean": _num(mean), "t_stat": _num(t_stat(series, lags), 3),
            "n_sessions": n, "independent": independent,
            "meaningful": independent >= MIN_INDEPENDENT}


def passing_excess(passing: np.ndarray, excess: np.ndarray, universe: np.ndarray,
                   offset: np.ndarray | None = None) -> np.ndarray:
    """(D,) each session's equal-weighted mean excess return of the passing symbols (of
    `excess - offset` per session, when given: a return less the day's mean). On a session
    where they are every cell of the `universe` with a return, it is 0 by definition (the
    universe less its own mean), not the rounding left by subtracting the mean cell by cell."""
    shift = np.zeros(excess.shape[1]) if offset is None else offset
    sums, counts, whole = _masked_sums(np.asarray(passing, dtype=bool), excess, shift,
                                       np.asarray(universe, dtype=bool))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((counts == whole) & (counts > 0), 0.0, sums / counts)


@njit(cache=True, error_model="numpy")
def _masked_sums(mask, values, offset, universe):  # pragma: no cover - compiled
    """Per session: the sum and count of values[i, k] - offset[k] over masked cells that are
    not NaN, added in row order, and the count of the universe's cells that are not NaN (-1
    when a counted masked cell lies outside the universe: then the two differ)."""
    n, d = values.shape
    sums, counts = np.zeros(d), np.zeros(d, dtype=np.int64)
    whole = np.zeros(d, dtype=np.int64)
    outside = np.zeros(d, dtype=np.bool_)
    for i in range(n):
        for k in range(d):
            v = values[i, k] - offset[k]
            if np.isnan(v):
                continue
            whole[k] += universe[i, k]
            if mask[i, k]:
                sums[k] += v
                counts[k] += 1
                outside[k] |= not universe[i, k]
    return sums, counts, np.where(outside, -1, whole)


def hits(passing: np.ndarray, excess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D,) per session: the passing cells with a finite excess above 0, and all of them
    (summed over any sessions, they give `hit_rate`)."""
    return _hits(np.asarray(passing, dtype=bool), excess)


def hit_rate(hit: np.ndarray, cells: np.ndarray) -> float | None:
    """Share of the cells counted by `hits` that were above 0, over all their sessions."""
    total = int(cells.sum())
    return _num(int(hit.sum()) / total) if total else None


@njit(cache=True)
def _hits(mask, values):  # pragma: no cover - compiled
    """Per session: (cells > 0, cells) among the masked finite cells."""
    n, d = values.shape
    hit, cells = np.zeros(d, dtype=np.int64), np.zeros(d, dtype=np.int64)
    for i in range(n):
        for k in range(d):
            v = values[i, k]
            if mask[i, k] and np.isfinite(v):
                cells[k] += 1
                hit[k] += v > 0
    return hit, cells


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
    def of(cls, rank: np.ndarray, ascending: bool, buckets: int = 10,
           sessions: int = 128) -> Ranked:
        """The ranking of `rank` (N, D), computed `sessions` sessions at a time (each
        session's ranks are its own), the cancel token checked between them."""
        signal = -rank if ascending else rank
        parts = []
        for lo in range(0, max(signal.shape[1], 1), sessions):
            cancel.check()
            cut = signal[:, lo:lo + sessions]
            first, k = cross_section.ranks(cut, ties="first")
            start = np.r_[0, np.cumsum(k)].astype(np.int64)
            parts.append((start, *_ranked_cells(cut, first, start, buckets)))
        offsets = np.cumsum([0] + [p[0][-1] for p in parts])
        start = np.r_[np.concatenate([p[0][:-1] + o for p, o in zip(parts, offsets,
                                                                     strict=False)]),
                      offsets[-1]].astype(np.int64)
        bucket, values, centred, squares = (np.concatenate([p[j] for p in parts],
                                                           axis=1 if j == 1 else 0)
                                            for j in (1, 2, 3, 4))
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


def rank_ics(ranked: Ranked, excess: np.ndarray, min_count: int = 10,
             sessions: int = 128) -> np.ndarray:
    """(D,) Spearman correlation of the ranking and the excess return among ranked symbols
    with a forward return (cross_section.rank_ic's numbers, the ranking's half reused). The
    ranked cells' excess returns, one row per session padded with +inf (as is every value
    that is not finite), are sorted by numpy, `sessions` sessions at a time (the cancel token
    checked between them)."""
    out = []
    for lo in range(0, max(len(ranked.squares), 1), sessions):
        cancel.check()
        hi = min(lo + sessions, len(ranked.squares))
        start = ranked.start[lo:hi + 1]
        keys = _ranked_keys(start, ranked.bucket[:, lo:hi], excess[:, lo:hi],
                            int(np.diff(start).max(initial=0)))
        out.append(_rank_ics(start, ranked.values, ranked.centred, ranked.squares[lo:hi],
                             keys, np.argsort(keys, axis=1), min_count))
    return np.concatenate(out)


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


def deciles(means: np.ndarray) -> list[dict[str, float | int | None]]:
    """Mean excess return by rank bucket (1 = ranked best), averaged over sessions, from each
    session's bucket means (`group_means(ranked.bucket, excess, buckets, offset=1)`)."""
    out: list[dict[str, float | int | None]] = []
    for b in range(means.shape[0]):
        ok = np.isfinite(means[b])
        out.append({"decile": b + 1, "mean_excess": _num(float(means[b][ok].mean()))
                    if ok.any() else None, "sessions": int(ok.sum())})
    return out


def by_group(names: pd.Index, means: np.ndarray, horizon: int, every: int
             ) -> dict[str, dict[str, object]]:
    """`summary` of the daily passing-set excess within each group (`means`: (groups, D),
    `group_means` of the rows' codes in `names`, e.g. their sector), by name."""
    return {str(name): summary(means[k], horizon, every)
            for k, name in sorted(enumerate(names), key=lambda kv: kv[1])}


def by_regime(labels: np.ndarray, mean: np.ndarray, ic: np.ndarray, hit: np.ndarray,
              cells: np.ndarray, horizon: int, every: int, order: tuple[str, ...] = ()
              ) -> dict[str, dict[str, object]]:
    """Each statistic within the sessions of each regime (`labels`, one per session, the
    regime as of that session): sessions, the passing set's mean excess with its Newey-West t,
    hit rate (from the per-session `hits`), rank IC. Regimes in `order` first, then any other
    label. The per-regime means weighted by their `n_sessions` give the overall mean (the
    sessions partition)."""
    labels = np.asarray(labels, dtype=object)
    names = [r for r in order if (labels == r).any()]
    names += sorted({str(x) for x in labels} - set(names))
    out: dict[str, dict[str, object]] = {}
    for name in names:
        days = labels == name
        out[name] = {
            "sessions": int(days.sum()),
            "passing_excess": summary(np.where(days, mean, np.nan), horizon, every),
            "hit_rate": hit_rate(hit[days], cells[days]),
            "rank_ic": summary(np.where(days, ic, np.nan), horizon, every),
        }
    return out


def by_year(sessions: pd.DatetimeIndex, daily: np.ndarray, horizon: int, every: int
            ) -> dict[str, dict[str, object]]:
    return {str(year): summary(np.where(sessions.year == year, daily, np.nan), horizon, every)
            for year in sorted(set(sessions.year))}


def annualised(cumulative: float, days: float) -> float:
    """The yearly rate that compounds to `cumulative` over `days` calendar days:
    (1 + cumulative) ** (365.25 / days) - 1 (-1 when everything was lost)."""
    if not days > 0 or not math.isfinite(cumulative):
        return math.nan
    return -1.0 if cumulative <= -1 else float((1.0 + cumulative) ** (DAYS_PER_YEAR / days) - 1)


def portfolio_steps(rank: np.ndarray, ascending: bool, step: Forward, top: int,
                    rebalance: int, taken: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The top-`top` picks at every `rebalance`-th session of `rank` (N, D), rows in row
    order, and each session's gross step excess: its picks' mean simple excess over the next
    `every` bars (`step`; NaN when nothing is held or the step is not `taken`). The first
    session is a rebalance: blocks of a replay start at one, so each gives its own steps."""
    n, d = rank.shape
    picks: list[np.ndarray] = []
    rows = np.empty(0, dtype=np.int64)
    gross = np.full(d, np.nan)
    for k in range(d):
        if k % 64 == 0:
            cancel.check()
        if k % rebalance == 0:
            ranked = np.flatnonzero(np.isfinite(rank[:, k]))  # a stable sort of these alone
            new = np.zeros(n, dtype=bool)
            new[ranked[rank_order(rank[ranked, k], ascending)][:top]] = True
            rows = np.flatnonzero(new)
            picks.append(rows)
        if len(rows) and taken[k]:
            cells = np.full(n, np.nan)
            cells[rows] = step.excess_at(rows, k)
            gross[k] = _nanmean(cells[:, None], axis=0)[0]
    return picks, gross


def portfolio(picks: list[np.ndarray], gross: np.ndarray, top: int, rebalance: int,
              cost_bps: float, taken: np.ndarray, days: float
              ) -> tuple[dict[str, object], pd.DataFrame]:
    """Top-`top` equal-weighted portfolio rebalanced every `rebalance` evaluated sessions,
    held from each evaluated session's close to the next one's, from `portfolio_steps`' picks
    and gross step excess over every session in order (steps not `taken` end after the data's
    last session and earn nothing); the cost of each rebalance from the names sold and bought.
    Figures over the span of `days` calendar days (CONVENTIONS); the per-session series:
    step gross and net excess, cost, and `portfolio_cumulative`, the net wealth at each
    evaluated session's close less 1 (0 at the first)."""
    d = len(gross)
    costs = np.zeros(d)
    turnovers = []
    held = np.empty(0, dtype=np.int64)
    for j, new in enumerate(picks):
        if len(held) or len(new):
            size = max(len(held), len(new), 1)
            bought = len(np.setdiff1d(new, held, assume_unique=True))
            traded = len(np.setdiff1d(held, new, assume_unique=True)) + bought
            turnovers.append(float(bought) / max(len(new), 1))
            costs[j * rebalance] = traded / size * cost_bps / 1e4
        held = new
    net = np.where(np.isfinite(gross), gross - costs, np.nan)
    wealth = np.cumprod(1.0 + np.nan_to_num(net))  # after each step
    wealth_gross = np.cumprod(1.0 + np.nan_to_num(gross))
    at_close = np.r_[1.0, wealth[:-1]] if d else wealth  # before each step: 1 at the first
    drawdown = float((wealth / np.maximum.accumulate(np.maximum(wealth, 1.0)) - 1.0).min()
                     ) if d else math.nan
    cumulative = float(wealth[-1] - 1.0) if d else math.nan
    cumulative_gross = float(wealth_gross[-1] - 1.0) if d else math.nan
    steps = np.nan_to_num(net)[np.asarray(taken, dtype=bool)]
    per_year = steps.size * DAYS_PER_YEAR / days if days > 0 else math.nan
    ok = np.isfinite(net)
    series = pd.DataFrame({"portfolio_gross": gross, "portfolio_cost": costs,
                           "portfolio_net": net, "portfolio_cumulative": at_close - 1.0})
    return {
        "top": top, "rebalance_every": rebalance, "cost_bps_per_side": cost_bps,
        "steps": int(np.sum(taken)), "held_steps": int(ok.sum()),
        "calendar_days": days,
        "cumulative_excess": _num(cumulative),
        "annualised_excess": _num(annualised(cumulative, days)),
        "cumulative_excess_gross": _num(cumulative_gross),
        "annualised_excess_gross": _num(annualised(cumulative_gross, days)),
        "annualised_volatility": _num(float(steps.std() * math.sqrt(per_year)))
        if steps.size > 1 else None,
        "max_drawdown": _num(drawdown),
        "turnover": _num(float(np.mean(turnovers))) if turnovers else None,
        "per_held_step": {"mean_excess": _num(float(net[ok].mean())) if ok.any() else None,
                          "mean_excess_gross": _num(float(gross[ok].mean()))
                          if ok.any() else None,
                          "t_stat": _num(t_stat(net, 0), 3)},
    }, series
