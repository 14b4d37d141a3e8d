"""The cross-sectional helpers of technic_v4.indicators.market against plain pandas, and BETA
fed by them: the market index, the RS percentile rating and year-to-date performance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from technic_v4.data.panel import panel_from_arrays
from technic_v4.indicators import compute_indicators
from technic_v4.indicators.market import market_field, market_index, perf_ytd, rs_percentile


def gappy_panel(seed: int = 5, n: int = 9, t: int = 600, start: str = "2019-10-01"):
    """Random walks with gaps, a late listing, a delisting, a symbol without bars and one
    with a single bar, on business days spanning year ends."""
    rng = np.random.default_rng(seed)
    close = 40.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n, t)), axis=1))
    keep = rng.random((n, t)) > 0.05
    keep[2, :250] = False
    keep[3, 300:] = False
    keep[4] = False
    keep[5] = np.arange(t) == 420
    close = np.where(keep, close, np.nan)
    return panel_from_arrays([f"S{i}" for i in range(n)], pd.bdate_range(start, periods=t),
                             close=close)


def test_market_index_is_the_compounded_mean_return_of_symbols_with_both_bars():
    panel = gappy_panel()
    frame = pd.DataFrame(panel.close.T, index=panel.sessions)
    returns = frame / frame.shift(1) - 1.0  # NaN unless both sessions have a bar
    expected = (1.0 + returns.mean(axis=1).fillna(0.0)).cumprod()
    expected.iloc[0] = 1.0
    np.testing.assert_allclose(market_index(panel), expected.to_numpy(), rtol=1e-12)
    field = market_field(panel)
    has_bar = np.isfinite(panel.close)
    assert np.isnan(field[~has_bar]).all()
    np.testing.assert_array_equal(field[has_bar], np.broadcast_to(market_index(panel),
                                                                  field.shape)[has_bar])


def test_market_index_edge_cases():
    empty = panel_from_arrays([], pd.bdate_range("2024-01-01", periods=0), close=np.ones((0, 0)))
    assert market_index(empty).shape == (0,)
    lone = panel_from_arrays(["A"], pd.bdate_range("2024-01-01", periods=4),
                             close=np.array([[10.0, np.nan, 12.0, 6.0]]))
    np.testing.assert_array_equal(market_index(lone), [1.0, 1.0, 1.0, 0.5])  # no pair: flat
    with pytest.raises(ValueError, match="shape"):
        market_field(lone, np.ones(3))


def test_beta_is_the_stocks_slope_on_the_market():
    """A stock whose every return is twice the market's has beta 2 (TA-Lib's BETA with the
    market as its first input; the other order would answer 0.5)."""
    rng = np.random.default_rng(8)
    market = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, 200))
    stock = 30.0 * np.cumprod(np.concatenate([[1.0], 1.0 + 2.0 * (market[1:] / market[:-1] - 1)]))
    panel = panel_from_arrays(["STOCK"], pd.bdate_range("2024-01-01", periods=200),
                              close=stock[None, :])
    table = compute_indicators(panel, ["beta_60"], extra={"market": market[None, :]})
    assert table.last["beta_60"][0] == pytest.approx(2.0, rel=1e-12)
    assert talib.BETA(stock, market, 60)[-1] == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_rs_percentile_is_pandas_percentile_rank_on_1_to_99(seed):
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(0.0, 0.3, 500), 2)  # rounded: plenty of ties
    values[rng.random(500) < 0.1] = np.nan
    values[:3] = np.inf, -np.inf, np.nan
    rating = rs_percentile(values)
    finite = np.isfinite(values)
    pct = pd.Series(values[finite]).rank(method="average", pct=True).to_numpy()
    expected = np.clip(np.ceil(np.round(99.0 * pct, 9)), 1, 99)
    np.testing.assert_array_equal(rating[finite], expected)
    assert np.isnan(rating[~finite]).all()
    assert rating[finite].min() >= 1 and rating[finite].max() == 99
    order = np.argsort(values[finite], kind="stable")
    assert (np.diff(rating[finite][order]) >= 0).all()  # monotone in the raw strength
    tied = values == values[finite][0]
    assert len(set(rating[tied])) == 1


def test_rs_percentile_small_and_empty():
    np.testing.assert_array_equal(rs_percentile([]), [])
    np.testing.assert_array_equal(rs_percentile([np.nan]), [np.nan])
    np.testing.assert_array_equal(rs_percentile([0.3]), [99.0])
    np.testing.assert_array_equal(rs_percentile([0.1, 0.5, 0.5, -0.2]), [50.0, 87.0, 87.0, 25.0])


def ytd_reference(panel) -> np.ndarray:
    """Plain pandas: per bar, close / the symbol's last close dated before 1 January of the
    bar's year - 1, if the panel has a session before that 1 January."""
    out = np.full(panel.close.shape, np.nan)
    for i in range(panel.n_symbols):
        closes = pd.Series(panel.close[i], index=panel.sessions).dropna()
        for t, date in enumerate(panel.sessions):
            if not np.isfinite(panel.close[i, t]):
                continue
            jan1 = pd.Timestamp(date.year, 1, 1)
            before = closes[closes.index < jan1]
            if panel.sessions[0] < jan1 and len(before) and before.iloc[-1] != 0:
                out[i, t] = panel.close[i, t] / before.iloc[-1] - 1.0
    return out


@pytest.mark.parametrize("start", ["2019-10-01", "2020-01-01", "2021-06-15"])
def test_perf_ytd_matches_pandas(start):
    panel = gappy_panel(start=start, t=420)
    ref = ytd_reference(panel)
    np.testing.assert_allclose(perf_ytd(panel, history=True), ref, rtol=1e-12, equal_nan=True)
    last = panel.last_bar_index()
    ref_last = np.where(last >= 0, ref[np.arange(panel.n_symbols), np.maximum(last, 0)], np.nan)
    np.testing.assert_allclose(perf_ytd(panel), ref_last, rtol=1e-12, equal_nan=True)
    in_first_year = panel.sessions.year == panel.sessions[0].year
    assert np.isnan(perf_ytd(panel, history=True)[:, in_first_year]).all()  # no prior year


def test_perf_ytd_takes_the_last_close_on_or_before_the_year_end():
    sessions = pd.DatetimeIndex(["2022-12-29", "2022-12-30", "2023-01-03", "2023-06-30"])
    close = np.array([[10.0, 12.0, 13.0, 15.0],  # base: 30 Dec
                      [10.0, np.nan, 11.0, 20.0],  # no bar on 30 Dec: base 29 Dec
                      [np.nan, np.nan, 5.0, 6.0]])  # listed in 2023: no base
    panel = panel_from_arrays(["A", "B", "C"], sessions, close=close)
    np.testing.assert_allclose(perf_ytd(panel), [15 / 12 - 1, 20 / 10 - 1, np.nan])
    hist = perf_ytd(panel, history=True)
    assert np.isnan(hist[:, :2]).all()  # 2022 bars: the panel has no 2021 session
    np.testing.assert_allclose(hist[0, 2], 13 / 12 - 1)
