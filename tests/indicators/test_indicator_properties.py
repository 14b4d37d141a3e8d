"""Properties of the indicator stage for any panel (Hypothesis): bounds, scale invariance,
per-symbol independence, consistency of the packed / unpacked views (over every output, the
market input packed like a field), and the issue-13 indicators against TA-Lib.

Panels are drawn as structure (size, volatility, flat stretches, gaps, listing and delisting)
from Hypothesis plus seeded noise, so a failure shrinks to a small, reproducible panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_indicators_talib import check_entry

from technic_v4.data.panel import FIELDS, Panel, panel_from_arrays
from technic_v4.indicators import ALL_OUTPUTS, DEFAULT_OUTPUTS, REGISTRY, compute_indicators
from technic_v4.indicators.market import market_field
from technic_v4.indicators.registry import OUTPUTS as REGISTRY_OUTPUTS

EXAMPLES = settings(max_examples=30, deadline=None)
PRICE_FIELDS = ("open", "high", "low", "close")


@st.composite
def panels(draw, max_symbols: int = 5, max_sessions: int = 240) -> Panel:
    n = draw(st.integers(1, max_symbols))
    t = draw(st.integers(0, max_sessions))
    vol = draw(st.sampled_from([0.0, 0.004, 0.02, 0.08]))
    start = draw(st.floats(0.05, 5000.0))
    p_flat = draw(st.sampled_from([0.0, 0.3, 0.9]))  # share of days without a price change
    p_gap = draw(st.sampled_from([0.0, 0.05, 0.4]))  # share of missing days
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ret = rng.normal(0.0, vol, (n, t)) * (rng.random((n, t)) >= p_flat)
    close = start * np.exp(np.cumsum(ret, axis=1))
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1) * (1 + ret / 3)
    spread = 1.0 + np.abs(rng.normal(0.0, vol / 2, (n, t)))
    volume = rng.integers(0, 5_000_000, (n, t)) * (rng.random((n, t)) >= p_flat / 3)
    cols = np.arange(t)
    listed = rng.integers(0, max(t, 1), n) * (rng.random(n) < 0.5)
    delisted = t - rng.integers(0, max(t, 1), n) * (rng.random(n) < 0.3)
    keep = (rng.random((n, t)) >= p_gap) & (cols >= listed[:, None]) & (cols < delisted[:, None])
    arrays = {
        "open": open_,
        "high": np.maximum(open_, close) * spread,
        "low": np.minimum(open_, close) / spread,
        "close": close,
        "volume": volume.astype(np.float64),
    }
    arrays = {f: np.where(keep, v, np.nan) for f, v in arrays.items()}
    sessions = pd.bdate_range("2015-01-01", periods=t)
    return panel_from_arrays([f"S{i}" for i in range(n)], sessions, **arrays)


def rescaled(panel: Panel, price: float = 1.0, volume: float = 1.0) -> Panel:
    arrays = {f: getattr(panel, f) * (price if f in PRICE_FIELDS else volume) for f in FIELDS}
    return panel_from_arrays(panel.symbols, panel.sessions, **arrays)


def everything(panel: Panel, market: np.ndarray | None = None, history: bool = True):
    """Every output, BETA fed `market` (default: the panel's own market field)."""
    market = market_field(panel) if market is None else market
    return compute_indicators(panel, ALL_OUTPUTS, history=history, extra={"market": market})


def assert_same_rows(a, b, rows_a, rows_b) -> None:
    """Exactly equal results for the same symbols, found at rows_a in `a`, rows_b in `b`."""
    np.testing.assert_array_equal(a.bars[rows_a], b.bars[rows_b])
    for name in a.outputs:
        np.testing.assert_array_equal(a.last[name][rows_a], b.last[name][rows_b], err_msg=name)
        np.testing.assert_array_equal(a.insufficient[name][rows_a], b.insufficient[name][rows_b])
        np.testing.assert_array_equal(a.history[name][rows_a], b.history[name][rows_b])


@EXAMPLES
@given(panels())
def test_rsi_is_between_0_and_100(panel):
    rsi = compute_indicators(panel, ["RSI"], history=True).history["RSI"]
    values = rsi[np.isfinite(rsi)]
    assert ((values >= 0.0) & (values <= 100.0)).all()


# output -> absolute tolerance next to rtol 1e-9 (for values that are ~0, e.g. a flat month)
SCALE_FREE = {"RSI": 1e-9, "BB_width": 1e-12, "ATR_pct": 1e-15, "Volume_ratio": 1e-12}
SCALE_FREE |= {f"mom_{n}": 1e-12 for n in (5, 21, 63, 126)}
SCALE_FREE |= {"dist_high_20": 1e-12, "dist_low_20": 1e-12}


@EXAMPLES
@given(panels(), st.sampled_from([1e-3, 0.37, 3.0, 1234.5]), st.sampled_from([0.25, 7.0]))
def test_ratios_do_not_depend_on_price_or_volume_units(panel, price, volume):
    """Volume factors keep share counts exact: a zero-volume month must stay exactly zero (an
    inexact factor leaves a running-sum residue, in TA-Lib's SMA too, and a ratio of 0)."""
    names = list(SCALE_FREE)
    base = compute_indicators(panel, names, history=True)
    scaled = compute_indicators(rescaled(panel, price, volume), names, history=True)
    for name, atol in SCALE_FREE.items():
        np.testing.assert_allclose(
            scaled.history[name], base.history[name], rtol=1e-9, atol=atol, err_msg=name
        )


@EXAMPLES
@given(panels(), st.randoms(use_true_random=False))
def test_a_symbols_values_do_not_depend_on_the_other_symbols(panel, rnd):
    """Given the same market input (BETA's), which is the only cross-sectional one."""
    market = market_field(panel)
    full = everything(panel, market)
    order = list(range(panel.n_symbols))
    rnd.shuffle(order)
    perm = np.array(order, dtype=np.int64)
    assert_same_rows(full, everything(panel.take(perm), market[perm]), perm, slice(None))
    subset = np.sort(perm[: rnd.randint(1, panel.n_symbols)])
    alone = everything(panel.take(subset), market[subset])
    assert_same_rows(full, alone, subset, slice(None))


@EXAMPLES
@given(panels())
def test_the_default_set_is_the_same_numbers_as_in_everything(panel):
    default = compute_indicators(panel, history=True)
    assert default.outputs == DEFAULT_OUTPUTS
    assert_same_rows(default, everything(panel), slice(None), slice(None))


@EXAMPLES
@given(panels())
def test_history_at_each_last_bar_is_the_last_value(panel):
    hist = everything(panel)
    last_only = everything(panel, history=False)
    rows = np.flatnonzero(hist.last_bar >= 0)
    no_bar = ~np.isfinite(panel.close)
    for name in hist.outputs:
        np.testing.assert_array_equal(hist.last[name], last_only.last[name])
        at_last = hist.history[name][rows, hist.last_bar[rows]]
        np.testing.assert_array_equal(at_last, hist.last[name][rows], err_msg=name)
        assert np.isnan(hist.last[name][hist.last_bar < 0]).all()
        assert np.isnan(hist.history[name][no_bar]).all(), name


@EXAMPLES
@given(panels(max_sessions=120), st.lists(st.integers(0, 120), min_size=1, max_size=5))
def test_a_session_without_bars_changes_nothing(panel, where):
    """A missing day is not a bar: inserting all-NaN sessions moves no value."""
    t = panel.n_sessions
    at = np.array(sorted(min(w, t) for w in where))
    arrays = {f: np.insert(getattr(panel, f), at, np.nan, axis=1) for f in FIELDS}
    sessions = pd.bdate_range("2015-01-01", periods=t + len(at))
    wider = panel_from_arrays(panel.symbols, sessions, **arrays)
    market = market_field(panel)  # the same market values on the same bars
    base = everything(panel, market)
    more = everything(wider, np.insert(market, at, np.nan, axis=1))
    old_cols = np.delete(np.arange(t + len(at)), at + np.arange(len(at)))
    for name in base.outputs:
        np.testing.assert_array_equal(more.last[name], base.last[name], err_msg=name)
        np.testing.assert_array_equal(more.history[name][:, old_cols], base.history[name])


ISSUE_13 = [e for e, spec in REGISTRY.items() if not set(spec.outputs) <= set(DEFAULT_OUTPUTS)]


@settings(max_examples=25, deadline=None)
@given(panels(max_symbols=4, max_sessions=300))
def test_issue_13_indicators_match_talib_on_random_panels(panel):
    """Every new entry (ADX ... candlestick patterns) against TA-Lib on each symbol's own bars:
    gaps, listings, delistings, flat stretches, zero volume, any price level."""
    assume(panel.n_sessions > 0)  # Panel.last_bar_index needs a session (empty: test_empty_*)
    for entry in ISSUE_13:
        check_entry(panel, entry)


RECURSIVE = [o for o in ALL_OUTPUTS if REGISTRY_OUTPUTS[o].decay is not None]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(RECURSIVE), st.integers(0, 2**32 - 1),
       st.sampled_from([0.1, 1.0, 30.0]), st.sampled_from([0.1, 1.0, 5.0]))
def test_a_recursion_forgets_its_start_after_its_convergence_bars(output, seed, level, vol):
    """The registry's settle_bars: a recursion started `settle_bars` bars before the last one
    equals the one started at a history far away (another price level `level` x, another
    volatility `vol` x: up to 10% a day for 300 days) to 1e-9 relative (MACD: of the close).
    No finite window covers every history: 60% a day for 300 days moves a price by e^10 and
    the seed with it; the registry's margin (SETTLE_WEIGHT) is for histories that trade."""
    spec = REGISTRY_OUTPUTS[output]
    settle = spec.settle_bars(output)
    rng = np.random.default_rng(seed)
    t = settle + 300
    ret = rng.normal(0.0, 0.02, t)
    ret[:300] *= vol
    close = 50.0 * np.exp(np.cumsum(ret))
    close[:300] *= level
    spread = 1.0 + np.abs(rng.normal(0.0, 0.01 * np.where(np.arange(t) < 300, vol, 1.0)))
    bars = {"open": close, "high": close * spread, "low": close / spread, "close": close,
            "volume": rng.integers(1_000, 90_000, t).astype(np.float64)}

    def last(start: int) -> float:
        arrays = {f: np.where(np.arange(t) >= start, v, np.nan)[None, :]
                  for f, v in bars.items()}
        panel = panel_from_arrays(["S"], pd.bdate_range("2015-01-01", periods=t), **arrays)
        return float(compute_indicators(panel, [output]).last[output][0])

    full = last(0)
    scale = max(abs(full), close[-1] if output.startswith("MACD") else 0.0)
    assert abs(last(t - settle) - full) <= 1e-9 * scale, (output, settle)
