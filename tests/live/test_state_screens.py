"""Screens over the live state: a compiled `where` / `rank` and `select` on `LiveEnv` give
what they give on the full recompute's values (an ArrayEnv over the kernels' outputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.panel import panel_from_arrays
from technic_v4.indicators import compute_indicators
from technic_v4.indicators.registry import OUTPUTS as REGISTRY_OUTPUTS
from technic_v4.live import BarBatch, LiveEnv, LiveState
from technic_v4.live.aggregate import session_number
from technic_v4.live.env import SCHEMA
from technic_v4.live.steps import OUTPUTS
from technic_v4.scan.expressions import compile_expressions
from technic_v4.scan.select import select
from technic_v4.screens import ArrayEnv, compile_screen

N, T = 40, 300
FIELDS = ("open", "high", "low", "close", "volume")


def _history(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (N, T)), axis=1))
    high = close * (1 + rng.uniform(0, 0.02, (N, T)))
    low = close * (1 - rng.uniform(0, 0.02, (N, T)))
    bars = {"open": (high + low) / 2, "high": high, "low": low, "close": close,
            "volume": rng.uniform(1e4, 1e6, (N, T))}
    for i in range(0, N, 7):  # younger symbols: leading NaN
        for f in FIELDS:
            bars[f][i, : 40 + 5 * i] = np.nan
    return bars


def _reference_env(bars: dict[str, np.ndarray]) -> ArrayEnv:
    """The kernels on the same bars: the last two values of every output the screens read."""
    daily = {name.capitalize(): bars[name][:, -2:] for name in FIELDS}
    for name in ("RSI", "MACD", "MACD_signal", "SMA50", "mom_21", "ATR_pct", "Volume_ratio"):
        spec = REGISTRY_OUTPUTS[name]
        daily[name] = spec.run(bars, 2)[spec.outputs.index(name)]
    return ArrayEnv(daily)


@pytest.fixture(scope="module")
def seeded() -> tuple[LiveState, dict[str, np.ndarray]]:
    bars = _history(3)
    symbols = [f"S{i:02d}" for i in range(N)]
    state = LiveState(symbols)
    first = session_number("2026-03-02")
    state.seed("D", bars, np.arange(first - T, first))
    return state, bars


@pytest.mark.parametrize("where", ["RSI > 50 and Close > SMA50",
                                   "crosses_above(MACD, MACD_signal, 1) or mom_21 < -0.05",
                                   "Volume_ratio > 1 and ATR_pct < 0.03"])
def test_where_and_rank_equal_the_full_recompute(seeded, where):
    state, bars = seeded
    exprs = compile_expressions(where, "mom_21 / ATR_pct")
    ones = np.ones(N, dtype=bool)
    live = select(exprs, ones, ones, lambda mask, _: LiveEnv(state, universe=mask),
                  lambda mask: np.full(N, np.nan))
    ref_env = _reference_env(bars)
    full = select(exprs, ones, ones, lambda mask, _: ref_env, lambda mask: np.full(N, np.nan))
    assert live.passing.tolist() == full.passing.tolist()
    np.testing.assert_allclose(live.rank, full.rank, rtol=1e-9, equal_nan=True)
    assert 0 < live.passing.sum() < N or where.startswith("crosses")


def test_an_intraday_timeframe_is_read_by_name_and_by_unprefixed_screens(seeded):
    state, _ = seeded
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    state.open_session(open_, open_ + pd.Timedelta(minutes=390))
    rng = np.random.default_rng(5)
    symbols = state.symbols
    for m in range(10):
        c = 50 + rng.normal(0, 1, N)
        state.fold(BarBatch(open_ + pd.Timedelta(minutes=m), symbols, c, c + 0.5, c - 0.5, c,
                            np.full(N, 100.0)))
    m5 = state.number("VWAP", 2, "M5")
    assert np.isfinite(m5).all() and not np.array_equal(m5, state.number("VWAP", 2, "M1"))
    screen = compile_screen("crosses_above(Close, VWAP)", SCHEMA)
    env = LiveEnv(state, unprefixed="M5")
    hit = screen.evaluate(env, 1)[:, -1]
    close, vwap = state.number("Close", 2, "M5"), m5
    assert hit.tolist() == ((close[:, 1] > vwap[:, 1]) & (close[:, 0] <= vwap[:, 0])).tolist()


def test_windows_longer_than_two_bars_and_weekly_bars_are_refused(seeded):
    state, _ = seeded
    with pytest.raises(ValueError, match="2 bars"):
        compile_expressions("highest(Close, 5) > 10", None).where.evaluate(LiveEnv(state), 1)
    with pytest.raises(ValueError, match="weekly bars are not kept live"):
        compile_expressions("W.RSI > 50", None).where.evaluate(LiveEnv(state), 1)
    with pytest.raises(KeyError, match="not kept live"):
        LiveEnv(state, unprefixed="M2")


def test_seeding_from_a_daily_panel_equals_the_daily_engine(seeded):
    """`seed_panel` starts "D" from the store's daily bars: each symbol's values equal
    compute_indicators on the same Panel (symbols in another order, one missing)."""
    _, bars = seeded
    sessions = pd.DatetimeIndex(pd.bdate_range("2025-01-02", periods=T))
    symbols = [f"S{i:02d}" for i in range(N)]
    panel = panel_from_arrays(symbols[::-1][:-1], sessions,
                              **{f: bars[f][::-1][:-1] for f in FIELDS})
    state = LiveState(symbols)
    state.seed_panel(panel)
    table = compute_indicators(panel, [o for o in OUTPUTS if o in REGISTRY_OUTPUTS])
    rows = [symbols.index(s) for s in panel.symbols]
    for name in table.outputs:
        np.testing.assert_allclose(state.number(name, 1)[rows, 0], table.last[name],
                                   rtol=1e-9, equal_nan=True, err_msg=name)
    assert np.isnan(state.number("Close", 2)[0]).all()  # S00: not in the panel, cold
