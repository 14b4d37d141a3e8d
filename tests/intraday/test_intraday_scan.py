"""Screens with timeframe prefixes, evaluated at a minute: each timeframe's values equal
TA-Lib over that timeframe's closed bars (each symbol's own bars), daily values are the last
closed session's, the intraday columns are read at the bar's close, and what an intraday
scan cannot read is refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from technic_v4.data import intraday as I
from technic_v4.data import resample as R
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.demo_intraday import build_demo_intraday
from technic_v4.data.store import load_panel
from technic_v4.errors import ConfigError
from technic_v4.indicators import intraday as C
from technic_v4.scan.intraday import scan_intraday
from technic_v4.screens import ScreenError, compile_screen

AT = pd.Timestamp("2026-10-30 14:35", tz="America/New_York")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("intraday-scan")
    build_demo_store(root, DemoSpec(n_symbols=50, start="2026-04-01"))
    build_demo_intraday(root, sessions=3)
    return root


def own_closed(root, tf: str, at: pd.Timestamp):
    minutes = I.load_intraday(root, sessions=3)
    bars = R.resample(minutes, tf)
    return minutes, bars, R.closed_through(bars, at)


def test_each_timeframe_equals_talib_on_its_own_bars(store):
    cols = ["M5.RSI", "M15.SMA20", "H1.Close", "M30.EMA9", "M1.MACD", "D.SMA50", "D.RSI"]
    scan = scan_intraday(store, " and ".join(f"{c} > -1000000" for c in cols), "2026-10-30 14:35")
    assert scan.at == AT.tz_convert("UTC")
    assert scan.last_bars["M5"] == str(pd.Timestamp("2026-10-30 14:30", tz="America/New_York"
                                                    ).tz_convert("UTC"))
    assert scan.last_bars["H1"].startswith("2026-10-30 17:30")  # 13:30 ET closed at 14:30
    assert scan.last_bars["M1"] == str(pd.Timestamp("2026-10-30 14:34", tz="America/New_York"
                                                    ).tz_convert("UTC"))  # closed at 14:35
    assert scan.last_bars["D"] == "2026-10-29"  # the session is still open
    rows = scan.rows.set_index("Symbol")
    assert len(rows) > 40
    refs = {"M5.RSI": ("M5", lambda b: talib.RSI(b.close, 14)),
            "M15.SMA20": ("M15", lambda b: talib.SMA(b.close, 20)),
            "H1.Close": ("H1", lambda b: b.close),
            "M30.EMA9": ("M30", lambda b: talib.EMA(b.close, 9)),
            "M1.MACD": ("M1", lambda b: talib.MACD(b.close, 12, 26, 9)[0])}
    for col, (tf, fn) in refs.items():
        _, bars, closed = own_closed(store, tf, AT)
        for i, sym in enumerate(bars.symbols):
            if sym not in rows.index:
                continue
            close = bars.close[i, :closed]
            own = close[np.isfinite(close)]
            want = fn(pd.DataFrame({"close": own}))
            assert rows.loc[sym, col] == pytest.approx(np.asarray(want)[-1], rel=1e-9), col
    daily = load_panel(store, end="2026-10-29")
    for sym in rows.index[:10]:
        close = daily.close[list(daily.symbols).index(sym)]
        close = close[np.isfinite(close)]
        assert rows.loc[sym, "SMA50"] == pytest.approx(talib.SMA(close, 50)[-1], rel=1e-9)
        assert rows.loc[sym, "RSI"] == pytest.approx(talib.RSI(close, 14)[-1], rel=1e-9)


def test_a_crossing_of_vwap_on_five_minute_bars(store):
    at = pd.Timestamp("2026-10-30 11:00", tz="America/New_York")
    scan = scan_intraday(store, "crosses_above(M5.Close, M5.VWAP) and D.Close > 0",
                         "2026-10-30 11:00")
    minutes, bars, closed = own_closed(store, "M5", at)
    vwap = C.at_bar_close(C.vwap(minutes), minutes, bars)[:, :closed]
    close = bars.close[:, :closed]
    expect = set()
    for i, sym in enumerate(bars.symbols):
        have = np.isfinite(close[i])
        c, v = close[i, have], vwap[i, have]
        if len(c) >= 2 and c[-1] > v[-1] and c[-2] <= v[-2]:
            expect.add(sym)
    assert set(scan.rows.Symbol) == expect
    assert expect  # the demo's bars cross their VWAP somewhere at 11:00


def test_what_an_intraday_scan_cannot_read_is_refused(store):
    with pytest.raises(ConfigError, match="weekly columns are not available"):
        scan_intraday(store, "W.RSI > 50 and M5.Close > 0", "2026-10-30 14:35")
    with pytest.raises(ConfigError, match="TechRating"):
        scan_intraday(store, "M5.TechRating > 50", "2026-10-30 14:35")
    with pytest.raises(I.IntradayError, match="not a time"):
        scan_intraday(store, "M5.Close > 0", "half past two")
    with pytest.raises(I.IntradayError, match="no M5 bar has closed"):
        scan_intraday(store, "M5.Close > 0", "2026-10-28 09:31")


def test_a_daily_scan_refuses_intraday_timeframes():
    from technic_v4.scan.expressions import compile_expressions

    with pytest.raises(ConfigError, match="M5.Close is on intraday bars"):
        compile_expressions("M5.Close > 1 and RSI < 30", None)


def test_the_language_knows_the_timeframes():
    schema = {"Close": "number", "RSI": "number", "SMA200": "number", "Sector": "text"}
    screen = compile_screen("D.Close > D.SMA200 and crosses_above(M5.Close, M5.VWAP) and "
                            "H1.RSI[3] < 40", schema)
    assert screen.text == ("Close > SMA200 and crosses_above(M5.Close, M5.VWAP) and "
                           "H1.RSI[3] < 40")
    assert dict(screen.lookback) == {"D": 0, "M5": 1, "H1": 3}
    assert {k: set(v) for k, v in screen.intraday_columns.items()} == {
        "M5": {"Close", "VWAP"}, "H1": {"RSI"}}
    with pytest.raises(ScreenError, match="VWAP is an intraday column"):
        compile_screen("VWAP > 1", schema)
    with pytest.raises(ScreenError, match="M5 and daily values mixed"):
        compile_screen("sma(M5.Close - Close, 3) > 0", schema)
    with pytest.raises(ScreenError, match="unknown column 'VWAPP'.*M5.VWAP"):
        compile_screen("M5.VWAPP > 1", schema)
    cheap = compile_screen("M1.RSI > 1", schema).cost.work
    assert compile_screen("H1.RSI > 1", schema).cost.work > cheap


@pytest.mark.parametrize("column", ["M5.VWAP", "M1.OR_high", "M1.OR_low", "M5.Gap", "M5.RVOL",
                                    "M5.ATR", "M15.MFI", "M5.gap_pct", "M5.Open", "M5.Volume",
                                    "M5.CDLDOJI", "M5.STOCH_K", "M30.OBV"])
def test_a_scan_loading_only_the_fields_it_reads_gives_the_same_rows(store, monkeypatch,
                                                                      column):
    import technic_v4.scan.intraday as S

    where = f"{column} > -1000000000"
    lean = scan_intraday(store, where, "2026-10-30 14:35").rows
    monkeypatch.setattr(S, "fields_needed", lambda names: I.FIELDS)
    full = scan_intraday(store, where, "2026-10-30 14:35").rows
    assert len(full) > 0
    pd.testing.assert_frame_equal(lean, full)
