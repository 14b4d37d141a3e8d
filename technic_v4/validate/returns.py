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
    excess: np.ndarray      # raw minus the day's universe mean (NaN outside the universe)
    log_excess: np.ndarray  # log return minus the day's universe mean of log returns
    truncated: np.ndarray   # (N, D) bool: the symbol delisted inside the horizon


def forward_returns(axis: Axis, columns: np.ndarray, universe: np.ndarray, horizon: int,
                    delisted: np.ndarray) -> Forward:
    """The module docstring's returns for the sessions `columns` (index on the daily axis);
    `delisted` (N,) marks symbols whose last bar is before the data's end."""
    close = axis.packed["Close"]
    n, width = close.shape
    col = (width - axis.n_bars)[:, None] + axis.pos[:, columns]  # packed column of bar in effect
    last_col = np.full((n, 1), width - 1)
    ahead = col + horizon
    beyond = ahead > last_col
    target = np.where(beyond & delisted[:, None], last_col, ahead)
    ok = (axis.pos[:, columns] >= 0) & (~beyond | delisted[:, None])
    base = (np.arange(n) * width)[:, None]
    c0 = close.ravel().take(np.clip(col, 0, width - 1) + base)
    c1 = close.ravel().take(np.clip(target, 0, width - 1) + base)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(ok & (c0 > 0), c1 / c0 - 1.0, np.nan)
    in_universe = np.where(universe & np.isfinite(raw), raw, np.nan)
    excess = np.where(universe, cross_section.demean(in_universe), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(universe & (raw > -1.0), np.log1p(raw), np.nan)
    log_excess = np.where(universe, cross_section.demean(logs), np.nan)
    return Forward(horizon, raw, excess, log_excess, ok & beyond & np.isfinite(raw))
