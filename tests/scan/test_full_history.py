"""Scan values equal TA-Lib on each symbol's FULL history (what a chart shows), at 1e-9.

Whatever the gaps, listing date or trading frequency: the scan loads CONVERGENCE_BARS
sessions and, for a symbol with fewer own bars there that traded before, its whole history.
Checked on the real-bars fixture with sessions removed, and on random panels (Hypothesis).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from technic_v4.data.calendar import sessions_between
from technic_v4.data.panel import Panel, panel_from_arrays
from technic_v4.data.reader import PanelSource
from technic_v4.scan import ScanConfig, run_scan

RTOL = 1e-9
PRICE_UNITS = {"MACD", "MACD_signal", "MACD_hist", "SMA20", "SMA50", "SMA200"}


def talib_last(close, high, low, volume) -> dict[str, float]:
    """TA-Lib on one symbol's whole bar list: the scan's indicator columns at the last bar."""
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    atr = talib.ATR(high, low, close, 14)
    vol_sma = talib.SMA(volume, 20)
    out = {"RSI": talib.RSI(close, 14)[-1], "MACD": macd[-1], "MACD_signal": signal[-1],
           "MACD_hist": hist[-1], "BB_width": ((upper - lower) / middle)[-1],
           "ATR_pct": (atr / close)[-1], "Volume_ratio": (volume / vol_sma)[-1],
           "SMA20": talib.SMA(close, 20)[-1], "SMA50": talib.SMA(close, 50)[-1],
           "SMA200": talib.SMA(close, 200)[-1]}
    for n in (5, 21, 63, 126):
        out[f"mom_{n}"] = close[-1] / close[-1 - n] - 1 if len(close) > n else np.nan
    return out


def check_against_talib(panel: Panel, as_of: pd.Timestamp | None = None) -> int:
    """Compare every kept row with TA-Lib on the symbol's bars up to the as-of session;
    the number of symbols compared."""
    cfg = ScanConfig(as_of_date=None if as_of is None else str(as_of.date()), min_bars=1,
                     max_stale_sessions=1260)
    frame, _ = run_scan(cfg, loader=PanelSource(panel))
    stop = len(panel.sessions) if as_of is None else panel.sessions.searchsorted(as_of, "right")
    compared = 0
    for row in frame.itertuples(index=False):
        i = int(np.flatnonzero(panel.symbols == row.Symbol)[0])
        has = np.isfinite(panel.close[i, :stop])
        bars = {f: getattr(panel, f)[i, :stop][has] for f in ("close", "high", "low", "volume")}
        want = talib_last(bars["close"], bars["high"], bars["low"], bars["volume"])
        for name, value in want.items():
            got = getattr(row, name)
            if np.isnan(value):
                assert np.isnan(got), (row.Symbol, name, got)
            else:  # relative to the value, or to the price for MACD-type values near 0
                scale = max(abs(value), bars["close"][-1] if name in PRICE_UNITS else 0.0)
                assert abs(got - value) <= RTOL * scale, (row.Symbol, name, got, value)
        compared += 1
    return compared


def test_real_bars_with_sessions_removed_equal_full_history(real_bars):
    rng = np.random.default_rng(7)
    close = real_bars.close.copy()
    arrays = {f: getattr(real_bars, f).copy() for f in ("open", "high", "low", "volume")}
    for i in range(real_bars.n_symbols):  # ~3% of each symbol's sessions missing
        gone = rng.random(close.shape[1]) < 0.03
        close[i, gone] = np.nan
        for a in arrays.values():
            a[i, gone] = np.nan
    holed = panel_from_arrays(real_bars.symbols, real_bars.sessions, close=close, **arrays)
    for as_of in (real_bars.sessions[-1], real_bars.sessions[-700], real_bars.sessions[2200]):
        assert check_against_talib(holed, as_of) >= 3


@st.composite
def panels(draw) -> Panel:
    sessions = sessions_between("2021-01-04", "2024-12-31")
    n = draw(st.integers(3, 6))
    t = len(sessions)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    close = np.exp(np.log(50) + np.cumsum(rng.normal(0, 0.02, (n, t)), axis=1))
    for i in range(n):
        start = draw(st.integers(0, t - 60))  # listing date
        close[i, :start] = np.nan
        every = draw(st.sampled_from([1, 1, 2, 3, 7]))  # thin trading: a bar every k sessions
        if every > 1:
            keep = np.zeros(t, bool)
            keep[start::every] = True
            close[i, ~keep] = np.nan
        gaps = rng.random(t) < draw(st.sampled_from([0.0, 0.02, 0.2]))
        close[i, gaps] = np.nan
        close[i, -1] = close[i, -1] if np.isfinite(close[i, -1]) else close[i, -2] * 1.001
    high = close * (1 + rng.uniform(0, 0.02, close.shape))
    low = close * (1 - rng.uniform(0, 0.02, close.shape))
    volume = np.where(np.isfinite(close), rng.integers(1_000, 90_000, close.shape), np.nan)
    return panel_from_arrays([f"S{i}" for i in range(n)], sessions, close=close, high=high,
                             low=low, volume=volume.astype(float))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panel=panels())
def test_random_gaps_listings_and_thin_trading_equal_full_history(panel):
    check_against_talib(panel)
