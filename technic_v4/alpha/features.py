"""Alpha features and labels at every session of a Panel, all at once.

Walk-through of `build_dataset(panel, horizons)`:
 1. Features: one `compute_indicators(panel, ALL_FEATURES, history=True)` call gives every
    feature as an (N, T) array on the panel's session axis: the value the scan would show for
    that symbol if it were run as of that session (each symbol on its own bars; NaN where it has
    no bar or too few). No per-date loop: the indicator recursions run once over the history.
 2. Labels (`forward_returns`): for the bar of symbol i at session t, the close-to-close LOG
    return to that symbol's h-th NEXT bar, log(close[i, t+h'] / close[i, t]) (t+h' = t+h when
    it has no missing days). Log, not simple: a simple return's expectation grows with variance
    (E[e^x] = e^(mu + s^2/2)), so on a market whose log returns are unpredictable a volatility
    tilt would still "forecast" simple returns (top-decile excess t ~ 8 on the demo market with
    the planted effect off); in log returns no such premium exists, so every metric, not just
    rank IC, is ~0 when nothing is predictable. For a few percent, log ~ simple.
    `label_end[i, t]` is the session index t+h' of the bar the label reads, so a time split
    can drop every training row whose label reaches into a later segment. NaN (and end -1)
    where there is no bar at t or fewer than h bars follow.
 3. Training target (`excess_target`): the label minus its session's cross-sectional mean,
    winsorized at its session's median +- 5 robust standard deviations (1.4826 x MAD). The
    models forecast a symbol's return relative to the universe over the next h sessions, not
    the market's direction.

Everything at session t reads bars at sessions <= t only, except the label, which reads the
bar at label_end[i, t] > t and nothing else (tests/test_alpha_features.py changes future bars
and checks both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from technic_v4 import cross_section
from technic_v4.data.panel import Array2D, Panel
from technic_v4.indicators import compute_indicators

FEATURES_5D: tuple[str, ...] = (
    "RSI", "MACD", "MACD_signal", "BB_width", "ATR_pct", "Volume_ratio", "mom_21", "mom_63",
)
FEATURES_10D: tuple[str, ...] = (*FEATURES_5D, "mom_126")
FEATURES_BY_HORIZON: dict[int, tuple[str, ...]] = {5: FEATURES_5D, 10: FEATURES_10D}
ALL_FEATURES: tuple[str, ...] = FEATURES_10D
TARGET_CLIP_SD = 5.0  # robust SDs

IntArray2D = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Dataset:
    """Features and labels on the panel's (N, T) grid, plus what a split needs to know."""

    features: dict[str, Array2D]  # name -> (N, T), value as of each session
    labels: dict[int, Array2D]  # horizon -> (N, T) forward log return
    label_end: dict[int, IntArray2D]  # horizon -> (N, T) session index the label reads, -1 none
    has_bar: npt.NDArray[np.bool_]  # (N, T) the symbol has a bar at the session

    def matrix(self, names: tuple[str, ...], cells: npt.NDArray[np.bool_]) -> np.ndarray:
        """(cells.sum(), len(names)) float32 feature matrix, rows in (symbol, session) order."""
        out = np.empty((int(cells.sum()), len(names)), dtype=np.float32)
        for k, name in enumerate(names):
            out[:, k] = self.features[name][cells]
        return out


def feature_names(horizon: int) -> tuple[str, ...]:
    """The model's features in order for a horizon (DESIGN.md: 5-day; 10-day adds mom_126)."""
    try:
        return FEATURES_BY_HORIZON[horizon]
    except KeyError:
        raise ValueError(f"no feature set for horizon {horizon}; valid: "
                         f"{sorted(FEATURES_BY_HORIZON)}") from None


def feature_history(panel: Panel, names: tuple[str, ...] = ALL_FEATURES) -> dict[str, Array2D]:
    """Each feature as an (N, T) array: its value as of every session (step 1)."""
    table = compute_indicators(panel, names, history=True)
    assert table.history is not None
    return {name: table.history[name] for name in names}


def forward_returns(close: Array2D, horizon: int) -> tuple[Array2D, IntArray2D]:
    """(N, T) forward log returns to each symbol's h-th next bar, and its session (step 2)."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return _forward_kernel(np.ascontiguousarray(close, dtype=np.float64), horizon)


@njit(parallel=True, cache=True)
def _forward_kernel(close, h):
    n, t_len = close.shape
    fwd = np.full((n, t_len), np.nan)
    end = np.full((n, t_len), -1, np.int64)
    for i in prange(n):
        bars = np.empty(t_len, np.int64)  # session indices of the symbol's bars, in order
        k = 0
        for t in range(t_len):
            if np.isfinite(close[i, t]):
                bars[k] = t
                k += 1
        for j in range(k - h):
            t0, t1 = bars[j], bars[j + h]
            fwd[i, t0] = np.log(close[i, t1] / close[i, t0])
            end[i, t0] = t1
    return fwd, end


def excess_target(label: Array2D) -> Array2D:
    """Training target: label minus its session's mean, winsorized (step 3)."""
    return cross_section.winsorize(cross_section.demean(label), TARGET_CLIP_SD)


def build_dataset(panel: Panel, horizons: tuple[int, ...] = (5, 10)) -> Dataset:
    """Features for every session and labels for each horizon (module docstring)."""
    features = feature_history(panel, ALL_FEATURES)
    labels, ends = {}, {}
    for h in horizons:
        labels[h], ends[h] = forward_returns(panel.close, h)
    return Dataset(features, labels, ends, np.isfinite(panel.close))
