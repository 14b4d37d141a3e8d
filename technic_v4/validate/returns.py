"""Forward returns on each symbol's own next bars, in excess of the day's universe.

For the bar in effect at session t (the symbol's last bar on or before t, close C0), the
h-bar forward return is C_h / C0 - 1 with C_h the close of its h-th NEXT bar: a missing
session is not a bar, as everywhere in technic. `log` is log(C_h / C0): the statistics use it,
because a simple return's expectation grows with variance (E[e^x] = e^(m + s^2/2)), so on a
market whose log returns are unpredictable any screen that leans to volatile names would
still show a "significant" simple excess (22 of 40 random screens on the demo market with its
planted effect off); in log returns nothing is found there, as it should be. A portfolio
earns simple returns: stats.portfolio uses `raw`. A symbol that stops trading inside the horizon
(delisted: its last bar is before the store's last session) returns to its last bar; those
cells are counted (`truncated`). A symbol still trading when the data ends has no h-bar
return yet (NaN). Excess = the return minus the equal-weighted mean over the day's universe
(the symbols passing the scan's data checks that have a forward return).
Simple returns, close to close, no costs: what a screen user would have earned by buying at
the close of the session the screen ran.

One compiled pass per horizon (per piece of 128 sessions) over the cells, row by row: each
cell's bar in effect and its h-th next bar, both returns, and the universe's sums per session
(added in row order, as numpy's nanmean over axis 0 adds them); a second pass subtracts the
day's mean. Logs of the closes are taken once, by numpy, for every horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from technic_v4 import cancel
from technic_v4.validate.history import Axis


@dataclass(frozen=True)
class Forward:
    """h-bar forward returns at the evaluated sessions, (N, D)."""

    horizon: int
    raw: np.ndarray         # simple return, NaN where unknown
    log_excess: np.ndarray  # log return minus the day's universe mean of log returns
    truncated: np.ndarray   # (N, D) bool: the symbol delisted inside the horizon
    universe: np.ndarray    # (N, D) bool: the day's universe
    raw_mean: np.ndarray    # (D,) the day's universe mean of `raw`

    def excess_at(self, rows: np.ndarray, k: int) -> np.ndarray:
        """The simple return of `rows` at the k-th session minus the day's universe mean
        (what a portfolio earns over it), NaN outside the universe."""
        with np.errstate(invalid="ignore"):
            return np.where(self.universe[rows, k], self.raw[rows, k] - self.raw_mean[k],
                            np.nan)


@njit(cache=True, error_model="numpy")
def _forward(close, log_close, first, pos, columns, h, delisted, universe
             ):  # pragma: no cover - compiled
    """Per cell (i, k): the simple and log h-bar returns of the bar in effect at session
    columns[k] (module docstring); the log ones in the universe less their session mean.
    Returns (raw, log_excess, truncated, raw universe mean per session)."""
    n, width = close.shape
    d = len(columns)
    raw = np.empty((n, d))
    logs = np.empty((n, d))
    truncated = np.zeros((n, d), dtype=np.bool_)
    log_sum, raw_sum = np.zeros(d), np.zeros(d)
    log_count, raw_count = np.zeros(d, dtype=np.int64), np.zeros(d, dtype=np.int64)
    for i in range(n):
        for k in range(d):
            p = pos[i, columns[k]]
            col = first[i] + p
            ahead = col + h
            beyond = ahead > width - 1
            if p < 0 or (beyond and not delisted[i]):
                raw[i, k] = np.nan
                logs[i, k] = np.nan
                continue
            j = width - 1 if beyond else ahead
            r = close[i, j] / close[i, col] - 1.0
            raw[i, k] = r
            truncated[i, k] = beyond and np.isfinite(r)
            if universe[i, k]:
                if not np.isnan(r):  # nanmean's rule: NaN left out, nothing else
                    raw_sum[k] += r
                    raw_count[k] += 1
                lg = log_close[i, j] - log_close[i, col]
                logs[i, k] = lg
                if not np.isnan(lg):
                    log_sum[k] += lg
                    log_count[k] += 1
            else:
                logs[i, k] = np.nan
    log_mean = log_sum / log_count
    for i in range(n):
        for k in range(d):
            logs[i, k] -= log_mean[k]
    return raw, logs, truncated, raw_sum / raw_count


class Forwards:
    """Forward returns of the sessions `columns` for any horizon (module docstring)."""

    def __init__(self, axis: Axis, columns: np.ndarray, universe: np.ndarray,
                 delisted: np.ndarray):
        self.close = axis.packed["Close"]
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_close = np.log(np.where(self.close > 0, self.close, np.nan))
        self.first = axis.width - axis.n_bars
        self.pos, self.columns = axis.pos, np.asarray(columns, dtype=np.int64)
        self.universe = np.ascontiguousarray(universe, dtype=bool)
        self.delisted = np.asarray(delisted, dtype=bool)

    def horizon(self, h: int, sessions: int = 128) -> Forward:
        """The h-bar returns, `sessions` evaluated sessions at a time (each session's mean is
        its own), the cancel token checked between them."""
        parts = []
        for lo in range(0, max(len(self.columns), 1), sessions):
            cancel.check()
            cut = slice(lo, lo + sessions)
            parts.append(_forward(self.close, self.log_close, self.first, self.pos,
                                  self.columns[cut], h, self.delisted,
                                  np.ascontiguousarray(self.universe[:, cut])))
        raw, log_excess, truncated = (np.concatenate([p[j] for p in parts], axis=1)
                                      for j in range(3))
        raw_mean = np.concatenate([p[3] for p in parts])
        return Forward(h, raw, log_excess, truncated, self.universe, raw_mean)


def forward_returns(axis: Axis, columns: np.ndarray, universe: np.ndarray, horizon: int,
                    delisted: np.ndarray) -> Forward:
    """The module docstring's h-bar returns for the sessions `columns` (index on the daily
    axis); `delisted` (N,) marks symbols whose last bar is before the data's end."""
    return Forwards(axis, columns, universe, delisted).horizon(horizon)
