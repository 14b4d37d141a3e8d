"""The O(1) steps: stepping a timeframe's state bar by bar gives the full-history kernels'
values bit for bit (the same operations in the same order), and an undo is exact."""

from __future__ import annotations

import numpy as np
import pytest

from technic_v4.indicators.registry import OUTPUTS as REGISTRY_OUTPUTS
from technic_v4.live import TimeframeState
from technic_v4.live.steps import OUTPUTS

FIELDS = ("open", "high", "low", "close", "volume")


def _bars(seed: int, n: int = 24, t: int = 420) -> dict[str, np.ndarray]:
    """Packed rows (leading NaN) of random walks with flat runs (zero changes, zero ranges,
    zero volume: the kernels' guarded divisions) and price levels far apart."""
    rng = np.random.default_rng(seed)
    close = np.exp(np.cumsum(rng.normal(0, 0.02, (n, t)), axis=1)) * rng.choice([0.01, 1, 1e4],
                                                                                 (n, 1))
    flat = rng.random((n, t)) < 0.15
    for j in range(1, t):
        close[:, j] = np.where(flat[:, j], close[:, j - 1], close[:, j])
    spread = np.where(flat, 0.0, rng.uniform(0, 0.02, (n, t)))
    bars = {"open": close * (1 + spread / 2), "high": close * (1 + spread),
            "low": close * (1 - spread), "close": close,
            "volume": np.where(flat, 0.0, rng.integers(1, 1000, (n, t)) * 100.0)}
    for i in range(n):
        start = int(rng.integers(0, t))
        for f in FIELDS:
            bars[f][i, :start] = np.nan
    return bars


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_state_is_bit_equal_to_the_kernels(seed):
    bars = _bars(seed)
    state = TimeframeState(bars["close"].shape[0])
    state.seed(bars, np.zeros(bars["close"].shape[1]))
    checked = 0
    for name in OUTPUTS:
        spec = REGISTRY_OUTPUTS.get(name)
        if spec is None:
            continue
        want = spec.run(bars, 2)[spec.outputs.index(name)]
        np.testing.assert_array_equal(state.number(name, 2), want, err_msg=name)
        checked += 1
    assert checked == len(OUTPUTS) - 6  # all but the bar fields and VWAP


def test_bar_by_bar_equals_seeding_and_an_undo_is_exact():
    bars = _bars(3, n=8, t=300)
    whole = TimeframeState(8)
    whole.seed(bars, np.zeros(300))
    live = TimeframeState(8)
    for t in range(300):
        rows = np.flatnonzero(np.isfinite(bars["close"][:, t]))
        bar = {f: bars[f][rows, t] for f in FIELDS}
        live.step(rows, bar, 0)
        if t % 7 == 0 and len(rows):  # a wrong bar, taken back, then the right one
            live.undo(rows)
            live.step(rows, {f: v * 1.5 for f, v in bar.items()}, 0)
            live.undo(rows)
            live.step(rows, bar, 0)
    for name in OUTPUTS:
        np.testing.assert_array_equal(live.number(name, 2), whole.number(name, 2), name)
    np.testing.assert_array_equal(live.scalars, whole.scalars)


def test_only_one_step_can_be_undone():
    state = TimeframeState(2)
    bar = {f: np.array([10.0, 11.0]) for f in FIELDS}
    state.step(np.array([0, 1]), bar, 0)
    state.undo(np.array([0]))
    with pytest.raises(ValueError, match="only the last step"):
        state.undo(np.array([0]))
    with pytest.raises(ValueError, match="finite"):
        state.step(np.array([0]), {f: np.array([np.nan]) for f in FIELDS}, 0)
    with pytest.raises(ValueError, match="keeps 2 bars"):
        state.number("RSI", 3)
