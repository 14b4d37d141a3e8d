"""Array kernels behind the screen functions: rolling windows and cross-sectional ranks.

Rolling kernels take an (N, width + lookback) input, right-aligned like every series here,
and return (N, width): output column j is the function at the bar of input column
j + lookback, computed from that bar and the `lookback` bars before it, and nothing else. So
a value never depends on how much history the caller happened to pass (a scan at width 1 and
a validation run at width T agree bit for bit), nor on any later bar.

Every window is computed directly, left to right in the order a plain loop would (no running
sums): a rolling sum that adds and subtracts drifts with the width it ran over, and
cancellation against a huge value that has left the window leaves garbage behind. The cost is
O(width x window) per row, which is nothing for a scan (width 1) and the price of exactness for
validation runs. A window that holds a NaN (a bar before the symbol's first, or a hole) gives
NaN. `error_model="numpy"`, no fastmath: IEEE arithmetic in program order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from technic_v4 import cross_section

_JIT = {"cache": True, "error_model": "numpy", "nogil": True}  # other threads run meanwhile


@njit(**_JIT)
def rolling_max(x, n):  # pragma: no cover - compiled
    rows, cols = x.shape
    width = cols - n + 1
    out = np.empty((rows, width))
    for i in range(rows):
        for j in range(width):
            best = x[i, j]
            for m in range(j, j + n):
                v = x[i, m]
                if np.isnan(v):
                    best = np.nan
                    break
                if v > best:
                    best = v
            out[i, j] = best
    return out


@njit(**_JIT)
def rolling_min(x, n):  # pragma: no cover - compiled
    rows, cols = x.shape
    width = cols - n + 1
    out = np.empty((rows, width))
    for i in range(rows):
        for j in range(width):
            best = x[i, j]
            for m in range(j, j + n):
                v = x[i, m]
                if np.isnan(v):
                    best = np.nan
                    break
                if v < best:
                    best = v
            out[i, j] = best
    return out


@njit(**_JIT)
def rolling_mean(x, n):  # pragma: no cover - compiled
    rows, cols = x.shape
    width = cols - n + 1
    out = np.empty((rows, width))
    for i in range(rows):
        for j in range(width):
            s = 0.0
            for m in range(j, j + n):
                s += x[i, m]
            out[i, j] = s / n  # NaN in, NaN out
    return out


@njit(**_JIT)
def window_ema(x, n, span):  # pragma: no cover - compiled
    """TA-Lib's EMA run over exactly `span` bars ending at each output bar: seeded with the
    mean of the first n of them, then e += (v - e) * k, k = 2 / (n + 1), for the rest."""
    rows, cols = x.shape
    width = cols - span + 1
    k = 2.0 / (n + 1)
    out = np.empty((rows, width))
    for i in range(rows):
        for j in range(width):
            s = 0.0
            for m in range(j, j + n):
                s += x[i, m]
            e = s / n
            for m in range(j + n, j + span):
                e = (x[i, m] - e) * k + e
            out[i, j] = e
    return out


@njit(**_JIT)
def crosses(a, b, within, above):  # pragma: no cover - compiled
    """a crossed b (above: from <= to >; below: from >= to <) on one of the last `within`
    bars. A comparison with NaN is false, so a missing bar never makes a cross."""
    rows, cols = a.shape
    width = cols - within
    out = np.zeros((rows, width), dtype=np.bool_)
    for i in range(rows):
        for j in range(width):
            for m in range(within):
                c = j + within - m
                if above:
                    hit = a[i, c] > b[i, c] and a[i, c - 1] <= b[i, c - 1]
                else:
                    hit = a[i, c] < b[i, c] and a[i, c - 1] >= b[i, c - 1]
                if hit:
                    out[i, j] = True
                    break
    return out


def _runs(sorted_keys: list[np.ndarray]) -> np.ndarray:
    """Per column of sorted (N, W) keys: True where a run of equal keys starts."""
    new = np.zeros(sorted_keys[0].shape, dtype=bool)
    new[0] = True
    for k in sorted_keys:
        new[1:] |= k[1:] != k[:-1]
    return new


def _scatter(order: np.ndarray, sorted_values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.empty(sorted_values.shape)
    np.put_along_axis(out, order, sorted_values, axis=0)
    out[~valid] = np.nan
    return out


def _per_column(universe: np.ndarray) -> np.ndarray:
    """The universe as (N, 1) (one set of rows for every column) or (N, width) as given (a
    set per column: a validation evaluating many sessions at once)."""
    return universe[:, None] if universe.ndim == 1 else universe


def pct_rank(values: np.ndarray, universe: np.ndarray,
             order: np.ndarray | None = None) -> np.ndarray:
    """Per column: average rank / count among universe rows with a finite value, in (0, 1]
    (the largest value gets 1); NaN for every other row. `order`: the columns' sort order
    of `values` (cross_section.session_order), when the caller has it."""
    valid = np.isfinite(values) & _per_column(universe)
    if values.shape[0] == 0:
        return np.full(values.shape, np.nan)
    ranked, count = cross_section.ranks(np.where(valid, values, np.nan), order=order)
    return ranked / np.maximum(count, 1)[None, :]


def group_rank(values: np.ndarray, groups: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """Per column and group: 1 for the highest value, ties sharing the best rank (1, 1, 3),
    among universe rows with a finite value and a group code >= 0; NaN for every other row."""
    valid = np.isfinite(values) & _per_column(universe) & (groups >= 0)[:, None]
    if values.shape[0] == 0:
        return np.full(values.shape, np.nan)
    key = np.where(valid, -values, np.inf)
    code = np.where(valid, groups[:, None], np.iinfo(np.int64).max)
    by_value = np.argsort(key, axis=0, kind="stable")  # then a stable sort by group
    by_group = np.argsort(np.take_along_axis(code, by_value, axis=0), axis=0, kind="stable")
    order = np.take_along_axis(by_value, by_group, axis=0)
    s_code = np.take_along_axis(code, order, axis=0)
    idx = np.arange(key.shape[0])[:, None]
    new_group = _runs([s_code])
    new_run = _runs([s_code, np.take_along_axis(key, order, axis=0)])
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0), axis=0)
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0), axis=0)
    return _scatter(order, (run_start - group_start + 1).astype(np.float64), valid)
