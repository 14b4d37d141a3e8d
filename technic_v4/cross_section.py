"""Cross-sectional operations: per-session statistics across symbols of (N, T) arrays.

Every function here takes arrays in the Panel layout, (N symbols, T sessions), and works down
each session's column, ignoring NaN cells (a symbol without a value that day). One place for
them, so that training, evaluation and the scan's AlphaScore rank and normalise the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from technic_v4.data.panel import Array1D, Array2D

BoolArray2D = npt.NDArray[np.bool_]


def demean(values: Array2D) -> Array2D:
    """Each session's cross-sectional mean subtracted (NaN cells stay NaN)."""
    with np.errstate(invalid="ignore"), _quiet():
        mean = np.nanmean(values, axis=0)
    return values - mean[None, :]


def winsorize(values: Array2D, n_sd: float) -> Array2D:
    """Clip each session's column to its median +- n_sd robust standard deviations.

    Robust SD = 1.4826 x median absolute deviation, so that the outliers being clipped do not
    widen their own limits (a mean +- SD rule lets one 5.0 among 400 N(0, 0.02) values pass).
    """
    with np.errstate(invalid="ignore"), _quiet():
        mid = np.nanmedian(values, axis=0)
        sd = 1.4826 * np.nanmedian(np.abs(values - mid), axis=0)
    return np.clip(values, mid - n_sd * sd, mid + n_sd * sd)


def zscore_1d(values: Array1D) -> Array1D:
    """(x - mean) / std over the finite entries of one cross-section; NaN if fewer than 2."""
    ok = np.isfinite(values)
    if ok.sum() < 2:
        return np.full(values.shape, np.nan)
    sd = values[ok].std()
    if sd == 0:
        return np.where(ok, 0.0, np.nan)
    return (values - values[ok].mean()) / sd


def ranks(values: Array2D, ties: str = "average", order: npt.NDArray[np.intp] | None = None
          ) -> tuple[Array2D, npt.NDArray[np.int64]]:
    """Per-session ranks 1..k (NaN where the value is NaN) and the counts k per session.

    Tied values share their average rank (`ties="average"`, as Spearman's rho needs: a model
    with few distinct outputs must not get an order from row position) or are ordered by row
    (`ties="first"`, for picking exactly n names). numpy sorts each session (its SIMD argsort
    is several times faster than a compiled one, but only without NaN: every value that is not
    finite becomes +inf, sorting last), one compiled pass turns the order into ranks. `order`
    (`session_order` of an array equal to `values` wherever `values` is finite: the same
    series before a universe mask) is used instead of sorting again.
    """
    if ties not in ("average", "first"):
        raise ValueError(f"ties must be 'average' or 'first', got {ties!r}")
    values = np.asarray(values, dtype=np.float64)
    counts = np.isfinite(values).sum(0)
    if not values.size:
        return np.full(values.shape, np.nan), counts
    keys = _keys(values)
    if order is None:
        order = np.argsort(keys, axis=1)
    return _ranks_from_order(keys, order, counts, ties == "average").T, counts


def session_order(values: Array2D) -> npt.NDArray[np.intp]:
    """(T, N): each session's row order by value, finite values first (for `ranks`)."""
    return np.argsort(_keys(np.asarray(values, dtype=np.float64)), axis=1)


def _keys(values: Array2D) -> Array2D:
    """(T, N) C array, one row a session, every value that is not finite +inf."""
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(np.where(np.isfinite(values), values, np.inf).T)


@njit(cache=True)
def ranks_1d(x, average):  # pragma: no cover - compiled
    """Ranks 1..k of a finite vector: ties averaged (any sort order does), or in position
    order (a stable sort)."""
    k = len(x)
    order = np.argsort(x) if average else np.argsort(x, kind="mergesort")
    out = np.empty(k)
    if average:
        average_ranks(x, order, k, out)
    else:
        for m in range(k):
            out[order[m]] = m + 1.0
    return out


@njit(cache=True)
def average_ranks(values, idx, k, out):  # pragma: no cover - compiled
    """out[idx[m]] = the rank 1..k of values[idx[m]], for the k positions `idx[:k]` in
    ascending order of their values; ties get their average rank. The one tie loop of every
    rank here (cross-section ranks, validate's rank IC)."""
    start = 0
    while start < k:
        stop = start
        while stop + 1 < k and values[idx[stop + 1]] == values[idx[start]]:
            stop += 1
        rank = (start + stop) / 2.0 + 1.0
        for m in range(start, stop + 1):
            out[idx[m]] = rank
        start = stop + 1


@njit(parallel=True, cache=True)
def _ranks_from_order(keys, order, counts, average):  # pragma: no cover - compiled
    """Per row (a session's column, transposed): ranks 1..k of its k = counts[j] finite keys
    in their sorted `order` (the finite keys in ascending order, others anywhere), ties
    averaged or numbered in position order; NaN else. What pandas' DataFrame.rank(axis=0,
    na_option="keep") gives untransposed."""
    t, n = keys.shape
    out = np.full((t, n), np.nan)
    for j in prange(t):
        row, k = keys[j], counts[j]
        idx = np.empty(k, dtype=np.int64)  # the finite keys' rows, in sorted order
        m = 0
        for q in order[j]:
            if m == k:
                break
            if np.isfinite(row[q]):
                idx[m] = q
                m += 1
        if average:
            average_ranks(row, idx, k, out[j])
            continue
        start = 0
        while start < k:
            stop = start
            while stop + 1 < k and row[idx[stop + 1]] == row[idx[start]]:
                stop += 1
            # a tie is numbered in position order, whatever order the sort left it in
            run = np.sort(idx[start:stop + 1])
            for m in range(start, stop + 1):
                out[j, run[m - start]] = m + 1.0
            start = stop + 1
    return out


@njit(parallel=True, cache=True)
def _row_rank_ic(a, b, min_count):  # pragma: no cover - compiled
    """Per row (transposed session): Spearman correlation of a and b over the positions where
    both are finite (ranks within those, ties averaged); NaN with fewer than min_count."""
    t = a.shape[0]
    out = np.full(t, np.nan)
    for j in prange(t):
        idx = np.flatnonzero(np.isfinite(a[j]) & np.isfinite(b[j]))
        k = len(idx)
        if k < min_count or k < 2:
            continue
        ra, rb = ranks_1d(a[j][idx], True), ranks_1d(b[j][idx], True)
        ra -= ra.mean()
        rb -= rb.mean()
        den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
        if den > 0:
            out[j] = (ra * rb).sum() / den
    return out


def rank_ic(signal: Array2D, forward: Array2D, min_count: int = 20) -> Array1D:
    """Per-session Spearman correlation across symbols of two (N, T) arrays (NaN: too few).

    Spearman = Pearson correlation of the ranks, ties at their average rank, over the symbols
    with both values; one compiled pass per session, no full-size temporaries.
    """
    a = np.ascontiguousarray(np.asarray(signal, dtype=np.float64).T)
    b = np.ascontiguousarray(np.asarray(forward, dtype=np.float64).T)
    return _row_rank_ic(a, b, min_count) if a.size else np.full(a.shape[0], np.nan)


def pearson_ic(signal: Array2D, forward: Array2D, min_count: int = 20) -> Array1D:
    """Per-session Pearson correlation across symbols of two (N, T) arrays (NaN: too few)."""
    both = np.isfinite(signal) & np.isfinite(forward)
    k = both.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        a = np.where(both, signal, np.nan)
        b = np.where(both, forward, np.nan)
        a = np.where(both, a - np.nanmean(a, axis=0), 0.0)
        b = np.where(both, b - np.nanmean(b, axis=0), 0.0)
        ic = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return np.where(k >= min_count, ic, np.nan)


def top_fraction(signal: Array2D, fraction: float, min_count: int = 20) -> BoolArray2D:
    """Mask of each session's top `fraction` of symbols by signal (at least one when any).

    Sessions with fewer than `min_count` finite values select nothing.
    """
    r, k = ranks(signal, ties="first")
    n_top = np.maximum(1, np.floor(fraction * k)).astype(np.int64)
    cut = (k - n_top)[None, :]
    return np.isfinite(r) & (r > cut) & (k >= min_count)[None, :]


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's "Mean of empty slice" warnings for all-NaN sessions (NaN is the answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
