"""Scan values equal TA-Lib on each symbol's FULL history (what a chart shows), at 1e-9,
for every indicator output of the registry.

Whatever the gaps, listing date, delisting or trading frequency: the scan loads what the
outputs it shows need to settle (registry.convergence_bars: EMA50 more than RSI) and, for a
symbol with fewer own bars there that traded before, its whole history (OBV and the days
since a cross always). The scan is asked for every output as result columns (`columns`),
and for each recursion alone (then the window is that recursion's own), and each value is
compared with TA-Lib on the symbol's bars up to the as-of session; beta_60 with the
universe's market index over the whole history. Checked on the real-bars fixture with
sessions removed, and on random panels (Hypothesis).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_indicators_talib import REFERENCES

from technic_v4.data.calendar import sessions_between
from technic_v4.data.panel import FIELDS, Panel, panel_from_arrays
from technic_v4.data.reader import PanelSource
from technic_v4.indicators import ALL_OUTPUTS, REGISTRY
from technic_v4.indicators.market import market_index
from technic_v4.indicators.registry import OUTPUTS
from technic_v4.scan import ScanConfig, run_scan

RTOL = 1e-9
# outputs in price units that cross or approach 0: compared relative to the close
PRICE_UNITS = {"MACD", "MACD_signal", "MACD_hist"}
VOLUME_UNITS = {"OBV"}  # a running total that crosses 0: relative to the bar's volume
EVERY = list(ALL_OUTPUTS)
RECURSIONS = [list(spec.outputs) for spec in REGISTRY.values() if spec.converges]
SETTLING = [o for o in EVERY if OUTPUTS[o].settle_bars(o) is not None]  # all but anchored


def talib_last(bars: dict[str, np.ndarray]) -> dict[str, float]:
    """TA-Lib (tests/indicators/test_indicators_talib.py's references) on one symbol's whole
    bar list: every output at the last bar."""
    out: dict[str, float] = {}
    for entry in REGISTRY:
        for name, values in REFERENCES[entry](bars).items():
            out[name] = float(values[-1])
    return out


def check_against_talib(panel: Panel, as_of: pd.Timestamp | None = None,
                        columns: list[str] | None = None) -> int:
    """Compare every kept row's `columns` (default every output) with TA-Lib on the symbol's
    bars up to the as-of session; the number of symbols compared."""
    columns = EVERY if columns is None else columns
    cfg = ScanConfig(as_of_date=None if as_of is None else str(as_of.date()), min_bars=1,
                     max_stale_sessions=1260, columns=columns)
    frame, status = run_scan(cfg, loader=PanelSource(panel))
    assert list(frame.columns) == ["Symbol", *columns]
    stop = len(panel.sessions) if as_of is None else panel.sessions.searchsorted(as_of, "right")
    market = market_index(panel.window(stop - 1, stop))  # the universe's, whole history
    compared = 0
    for row in frame.itertuples(index=False):
        i = int(np.flatnonzero(panel.symbols == row.Symbol)[0])
        has = np.isfinite(panel.close[i, :stop])
        bars = {f: getattr(panel, f)[i, :stop][has] for f in FIELDS}
        bars["market"] = market[has]
        want = talib_last(bars)
        for name in columns:
            got, value = getattr(row, name), want[name]
            if np.isnan(value):
                assert np.isnan(got), (row.Symbol, name, got, status.window_bars)
                continue
            scale = max(abs(value), bars["close"][-1] if name in PRICE_UNITS else 0.0,
                        bars["volume"][-1] if name in VOLUME_UNITS else 0.0)
            assert abs(got - value) <= RTOL * scale, (row.Symbol, name, got, value,
                                                       status.window_bars, int(has.sum()))
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


def test_real_bars_each_recursion_in_its_own_window_equals_full_history(real_bars):
    """Without gaps, every row is measured in the window: what each recursion's settling
    needs must be enough (EMA50 needs more than RSI)."""
    for as_of in (real_bars.sessions[-1], real_bars.sessions[-700], real_bars.sessions[2200]):
        for outputs in RECURSIONS:
            assert check_against_talib(real_bars, as_of, outputs) >= 3


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
        if draw(st.booleans()):  # delisted: no bars after a day at least 60 sessions in
            close[i, draw(st.integers(min(start + 60, t - 1), t - 1)):] = np.nan
    open_ = close * (1 + rng.normal(0, 0.01, close.shape))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, close.shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, close.shape))
    volume = np.where(np.isfinite(close), rng.integers(1_000, 90_000, close.shape), np.nan)
    return panel_from_arrays([f"S{i}" for i in range(n)], sessions, open=open_, close=close,
                             high=high, low=low, volume=volume.astype(float))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panel=panels(), back=st.integers(0, 400))
def test_random_gaps_listings_and_thin_trading_equal_full_history(panel, back):
    as_of = panel.sessions[-1 - back]  # later sessions unseen
    check_against_talib(panel, as_of)  # OBV read: every row that traded before, whole history
    check_against_talib(panel, as_of, SETTLING)  # rows with enough bars: the window


def test_every_output_is_checked():
    assert set(EVERY) == set(OUTPUTS)
    assert {o for group in RECURSIONS for o in group} == {
        o for o, spec in OUTPUTS.items() if spec.decay is not None}
