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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from technic_v4 import cross_section
from technic_v4.validate.history import Axis


@dataclass(frozen=True)
class Forward:
    """h-bar forward returns at the evaluated sessions, (N, D)."""

    horizon: int
    raw: np.ndarray         # simple return, NaN where unknown
    log_excess: np.ndarray  # log return minus the day's universe mean of log returns
    truncated: np.ndarray   # (N, D) bool: the symbol delisted inside the horizon

    def excess(self, universe: np.ndarray) -> np.ndarray:
        """The simple return minus the day's universe mean (what a portfolio earns over it)."""
        return np.where(universe, cross_section.demean(np.where(universe, self.raw, np.nan)),
                        np.nan)


class Forwards:
    """Forward returns of the sessions `columns` for any horizon: the bar in effect at each
    session found once, each horizon one gather (module docstring)."""

    def __init__(self, axis: Axis, columns: np.ndarray, universe: np.ndarray,
                 delisted: np.ndarray):
        close = axis.packed["Close"]
        self.n, self.width = close.shape
        self.universe, self.delisted = universe, delisted[:, None]
        pos = axis.pos[:, columns]
        self.has = pos >= 0
        self.col = (self.width - axis.n_bars)[:, None] + pos  # packed column of bar in effect
        self.base = (np.arange(self.n) * self.width)[:, None]
        self.flat = close.ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_flat = np.log(np.where(self.flat > 0, self.flat, np.nan))
        index = np.clip(self.col, 0, self.width - 1) + self.base
        self.c0, self.log0 = self.flat.take(index), self.log_flat.take(index)

    def horizon(self, h: int) -> Forward:
        ahead = self.col + h
        beyond = ahead > self.width - 1
        ok = self.has & (~beyond | self.delisted)
        index = np.where(beyond, self.width - 1, np.maximum(ahead, 0)) + self.base
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(ok, self.flat.take(index) / self.c0 - 1.0, np.nan)
            logs = np.where(ok & self.universe, self.log_flat.take(index) - self.log0, np.nan)
        log_excess = cross_section.demean(logs)
        return Forward(h, raw, log_excess, ok & beyond & np.isfinite(raw))


def forward_returns(axis: Axis, columns: np.ndarray, universe: np.ndarray, horizon: int,
                    delisted: np.ndarray) -> Forward:
    """The module docstring's h-bar returns for the sessions `columns` (index on the daily
    axis); `delisted` (N,) marks symbols whose last bar is before the data's end."""
    return Forwards(axis, columns, universe, delisted).horizon(horizon)
