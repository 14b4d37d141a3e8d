"""run_scan end to end on panels injected in memory: filters, reasons, counts, exactness."""

import numpy as np
import pandas as pd
import pytest
import talib
from panels import N_PER_SECTOR, small_panel

from technic_v4.data.panel import panel_from_arrays
from technic_v4.data.reader import PanelSource
from technic_v4.data.universe import GICS_SECTORS, UnknownSectorError
from technic_v4.scanner_core import RESULT_COLUMNS, ScanConfig, run_scan


@pytest.fixture(scope="module")
def panel():
    return small_panel()


def scan(panel, **kw):
    return run_scan(ScanConfig(**kw), loader=PanelSource(panel))


def _accounted(status, n):
    assert status.attempted == n
    assert status.kept + status.rejected + status.errors == status.attempted
    assert sum(status.rejected_by_reason.values()) == status.rejected
    assert len(status.rejections) == status.rejected


def test_full_scan_contract(panel, monkeypatch, tmp_path):
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(tmp_path))  # no models: alpha unavailable
    df, status = scan(panel)
    assert list(df.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert df["TechRating"].notna().all() and df["Close"].notna().all()
    assert df["TechRating"].is_monotonic_decreasing
    _accounted(status, panel.n_symbols)
    reasons = dict(zip(status.rejections["Symbol"], status.rejections["reason"], strict=True))
    assert reasons == {"SAA": "too few bars", "SAB": "stale", "SAE": "no data"}
    assert {"SAC", "SAD", "SAF"} <= set(df["Symbol"])
    sad = df.set_index("Symbol").loc["SAD"]
    assert np.isnan(sad["mom_126"]) and "mom_126" in sad["Incomplete"]
    assert "SMA200" in sad["Incomplete"] and np.isfinite(sad["RSI"])
    assert (df["Source"] == "synthetic").all() and status.source == "synthetic"
    assert df["Alpha5d"].isna().all() and df["Alpha10d"].isna().all()
    assert status.alpha["available"] is False and "unavailable" in status.alpha["reason"]
    assert status.as_of == str(panel.sessions[-1].date())
    assert set(df["Signal"]) <= {"Strong Long", "Long", "Avoid", "Short", "Strong Short"}


def test_scan_values_equal_talib_on_the_same_bars(panel):
    df, status = scan(panel)
    window = panel.window(panel.n_sessions - 1, status.window_bars)
    rows = df.set_index("Symbol")
    for i in (2, 7, 30, 60):  # SAC has gaps: TA-Lib sees its own bars only
        sym = panel.symbols[i]
        ok = np.isfinite(window.close[i])
        c, h, lo = window.close[i][ok], window.high[i][ok], window.low[i][ok]
        np.testing.assert_allclose(rows.loc[sym, "RSI"], talib.RSI(c, 14)[-1], rtol=1e-9)
        macd, sig, hist = talib.MACD(c, 12, 26, 9)
        np.testing.assert_allclose(
            rows.loc[sym, ["MACD", "MACD_signal", "MACD_hist"]].to_numpy(float),
            [macd[-1], sig[-1], hist[-1]],
            rtol=1e-9,
        )
        np.testing.assert_allclose(
            rows.loc[sym, "ATR_pct"], talib.ATR(h, lo, c, 14)[-1] / c[-1], rtol=1e-9
        )
        assert rows.loc[sym, "Close"] == c[-1]


@pytest.mark.parametrize(
    "alias,canonical",
    [
        ("Technology", "Information Technology"),
        ("healthcare", "Health Care"),
        ("Financial Services", "Financials"),
        ("CONSUMER CYCLICAL", "Consumer Discretionary"),
        ("consumer defensive", "Consumer Staples"),
        ("Basic Materials", "Materials"),
        ("utilities", "Utilities"),
    ],
)
def test_sector_aliases(panel, alias, canonical):
    df, status = scan(panel, sectors=[alias])
    ref, _ = scan(panel, sectors=[canonical])
    assert len(df) > 0 and set(df["Sector"]) == {canonical}
    pd.testing.assert_frame_equal(df, ref)
    assert status.rejected_by_reason["filtered: sector"] == panel.n_symbols - N_PER_SECTOR
    _accounted(status, panel.n_symbols)


def test_unknown_sector_is_an_error_listing_valid_ones(panel):
    with pytest.raises(UnknownSectorError) as exc:
        scan(panel, sectors=["Crypto"])
    for name in GICS_SECTORS:
        assert name in str(exc.value)


def test_industry_filter_case_insensitive(panel):
    df, status = scan(panel, industries=["energy ind1"])
    assert set(df["Industry"]) == {"Energy Ind1"}
    _accounted(status, panel.n_symbols)


def test_symbols_filter_counts_unknown_as_errors(panel):
    df, status = scan(panel, symbols=["sag", "SAH", "ZZZZ", "SAE"])
    assert set(df["Symbol"]) == {"SAG", "SAH"}
    assert status.errors == 1 and status.error_details[0]["symbol"] == "ZZZZ"
    assert status.rejected_by_reason == {"no data": 1}
    _accounted(status, 4)


@pytest.mark.parametrize("bad", ["../etc", "A/B", "AAPL\x00", "", "A" * 20, "%2F"])
def test_invalid_symbols_are_refused(panel, bad):
    with pytest.raises(ValueError, match="invalid symbol"):
        scan(panel, symbols=[bad])


def test_liquidity_and_rating_filters(panel):
    df, status = scan(panel, min_price=1.0, min_dollar_volume=5e6, min_tech_rating=0)
    assert (df["Close"] >= 1.0).all() and (df["DollarVolume"] >= 5e6).all()
    assert (df["TechRating"] >= 0).all()
    r = status.rejected_by_reason
    assert r["below min price"] >= 1 and "SAF" in set(status.rejections["Symbol"])
    assert r["below min TechRating"] >= 1
    _accounted(status, panel.n_symbols)


def test_signals_sort_and_max_symbols(panel):
    full, _ = scan(panel)
    df, status = scan(panel, max_symbols=5)
    pd.testing.assert_frame_equal(df, full.head(5))
    assert status.rejected_by_reason["beyond max_symbols"] == len(full) - 5
    asc, _ = scan(panel, sort_by="RSI", ascending=True)
    assert asc["RSI"].is_monotonic_increasing
    longs, _ = scan(panel, signals=["Long", "Strong Long"])
    assert set(longs["Signal"]) <= {"Long", "Strong Long"}
    with pytest.raises(ValueError, match="valid"):
        scan(panel, signals=["Moon"])
    with pytest.raises(ValueError, match="sortable"):
        scan(panel, sort_by="Nope")


def test_as_of_sees_no_later_bars(panel):
    as_of = panel.sessions[-60]
    df, status = scan(panel, as_of_date=str(as_of.date()))
    assert status.as_of == str(as_of.date())
    changed = panel_from_arrays(
        panel.symbols,
        panel.sessions,
        close=panel.close.copy(),
        open=panel.open,
        high=panel.high,
        low=panel.low,
        volume=panel.volume,
        universe=panel.universe,
        source="synthetic",
    )
    changed.close[:, -59:] *= 3.0  # rewrite the future
    df2, _ = scan(changed, as_of_date=str(as_of.date()))
    pd.testing.assert_frame_equal(df, df2)
    assert (df["LastDate"] <= as_of).all()


def test_progress_callback_reports_every_stage(panel):
    seen = []
    run_scan(ScanConfig(), lambda s, d, t: seen.append((s, d, t)), loader=PanelSource(panel))
    assert [s for s, d, t in seen if d == t][:5] == ["load", "indicators", "score", "alpha", "rank"]
