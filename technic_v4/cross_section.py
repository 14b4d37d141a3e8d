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


def ranks(values: Array2D, ties: str = "average") -> tuple[Array2D, npt.NDArray[np.int64]]:
    """Per-session ranks 1..k (NaN where the value is NaN) and the counts k per session.

    Tied values share their average rank (`ties="average"`, as Spearman's rho needs: a model
    with few distinct outputs must not get an order from row position) or are ordered by row
    (`ties="first"`, for picking exactly n names).
    """
    if ties not in ("average", "first"):
        raise ValueError(f"ties must be 'average' or 'first', got {ties!r}")
    columns = np.ascontiguousarray(np.asarray(values, dtype=np.float64).T)  # one row a column
    r = _row_ranks(columns, ties == "average").T if values.size else np.full(
        np.shape(values), np.nan)
    return r, np.isfinite(values).sum(0)


@njit(parallel=True, cache=True)
def _row_ranks(values, average):  # pragma: no cover - compiled
    """Per row (a session's column, transposed for contiguous access): ranks 1..k of the
    finite values (ties averaged, or in order), NaN else; what pandas' DataFrame.rank(axis=0,
    na_option="keep") gives on the untransposed array, at numba speed."""
    t, n = values.shape
    out = np.full((t, n), np.nan)
    for j in prange(t):
        col = values[j]
        idx = np.flatnonzero(np.isfinite(col))
        k = len(idx)
        if k == 0:
            continue
        order = idx[np.argsort(col[idx], kind="mergesort")]  # stable: ties keep row order
        start = 0
        while start < k:
            stop = start
            if average:
                while stop + 1 < k and col[order[stop + 1]] == col[order[start]]:
                    stop += 1
            rank = (start + stop) / 2.0 + 1.0
            for m in range(start, stop + 1):
                out[j, order[m]] = rank if average else m + 1.0
            start = stop + 1
    return out


def rank_ic(signal: Array2D, forward: Array2D, min_count: int = 20) -> Array1D:
    """Per-session Spearman correlation across symbols of two (N, T) arrays (NaN: too few).

    Spearman = Pearson correlation of the ranks, ties at their average rank.
    """
    both = np.isfinite(signal) & np.isfinite(forward)
    rs, _ = ranks(np.where(both, signal, np.nan))
    rf, _ = ranks(np.where(both, forward, np.nan))
    return pearson_ic(rs, rf, min_count)


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
