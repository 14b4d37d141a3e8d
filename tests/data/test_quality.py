"""The data-quality gate on real bars (splits, a special dividend) and on seeded faults, and its
place in the scan: `quality_flags` on every row, exclusion counted in the status."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.panel import Panel, panel_from_arrays
from technic_v4.data.quality import FLAGS, QualityConfig, check_panel, volume_ratio_to_median
from technic_v4.data.reader import PanelSource
from technic_v4.scanner_core import ScanConfig, run_scan

FIXTURES = Path(__file__).parents[1] / "fixtures"

SPLITS = {("AAPL", "2000-06-21"), ("AAPL", "2005-02-28"), ("MSFT", "2003-02-18")}


def _fixture_panel(adjusted: bool) -> Panel:
    df = pd.read_csv(FIXTURES / "stocks.csv.gz", parse_dates=["Date"])
    if adjusted:  # scale OHLC by Adj Close / Close: splits and dividends both removed
        factor = df["Adj Close"] / df["Close"]
        for col in ("Open", "High", "Low", "Close"):
            df[col] = df[col] * factor
    wide = {c.lower(): df.pivot(index="Ticker", columns="Date", values=c).sort_index()
            for c in ("Open", "High", "Low", "Close", "Volume")}
    return panel_from_arrays(wide["close"].index.to_list(), pd.DatetimeIndex(wide["close"].columns),
                             **{k: v.to_numpy(dtype=float) for k, v in wide.items()})


def test_raw_real_bars_flag_exactly_the_split_dates(real_bars: Panel) -> None:
    report = check_panel(real_bars)
    events = report.events
    assert set(zip(events["symbol"], events["date"], strict=True)) == SPLITS
    assert (events["check"] == "split").all()
    flags = dict(zip(report.table["symbol"], report.table["quality_flags"], strict=True))
    assert flags == {"AAPL": "split", "MSFT": "split", "IBM": "", "GOOG": "", "FB": ""}
    # MSFT's $3 special dividend (ex 2004-11-15) and AAPL's real -52% day (2000-09-29, on 22x
    # its usual volume) are real moves, not split errors.
    assert not ((events["symbol"] == "MSFT") & (events["date"] == "2004-11-15")).any()
    assert not ((events["symbol"] == "AAPL") & (events["date"] == "2000-09-29")).any()


def test_adjusted_real_bars_pass() -> None:
    report = check_panel(_fixture_panel(adjusted=True))
    assert report.counts()["any"] == 0, report.table
    assert len(report.events) == 0


def test_a_recorded_split_factor_explains_the_move(real_bars: Panel) -> None:
    splits = np.full(real_bars.close.shape, np.nan)
    row = {s: i for i, s in enumerate(real_bars.symbols)}
    for sym, day in SPLITS:
        splits[row[sym], real_bars.sessions.get_loc(pd.Timestamp(day))] = 2.0
    assert check_panel(real_bars, splits=splits).counts()["split"] == 0


def _seeded_faults() -> Panel:
    sessions = pd.bdate_range("2024-01-02", periods=60)  # includes MLK and Presidents' Day
    from technic_v4.data.calendar import sessions_between

    sessions = sessions_between(sessions[0], sessions[-1])
    n, t = 7, len(sessions)
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, t)), axis=1))
    high, low, volume = close * 1.01, close * 0.99, np.full((n, t), 1e6)
    high[1, 30] = low[1, 30] * 0.9          # 1: high < low
    close[2, 20:25] = np.nan                # 2: five missing sessions inside its history
    close[3, -10:] = np.nan                 # 3: stale: last bar 10 sessions ago
    volume[4, 10:17] = 0.0                  # 4: seven zero-volume sessions in a row
    close[5, 40:] /= 3.0                    # 5: unadjusted 3:1 split
    volume[6, -1] = 1.2e5                   # 6: a partial last session (12% of a day)
    high, low = np.fmax(high, close), np.fmin(low, close)
    high[1, 30] = low[1, 30] * 0.9
    return panel_from_arrays([f"S{i}" for i in range(n)], sessions, open=close, high=high,
                             low=low, close=close, volume=volume)


def test_each_check_finds_its_seeded_fault() -> None:
    panel = _seeded_faults()
    report = check_panel(panel)
    assert list(report.flags) == ["", "ohlc", "gaps", "stale", "zero_volume", "split",
                                  "thin_last"]
    row = report.table.set_index("symbol")
    assert row.loc["S6", "last_volume_ratio"] == pytest.approx(0.12)
    assert row.loc["S0", "last_volume_ratio"] == 1.0
    assert row.loc["S2", "gaps"] == 5 and row.loc["S3", "stale_sessions"] == 10
    assert row.loc["S4", "zero_volume_run"] == 7
    # A market day missing from the store is a gap for every symbol trading across it.
    dropped = panel.window(panel.n_sessions - 1, panel.n_sessions)
    keep = np.ones(panel.n_sessions, dtype=bool)
    keep[45] = False
    holed = panel_from_arrays(dropped.symbols, dropped.sessions[keep],
                              **{f: getattr(dropped, f)[:, keep] for f in
                                 ("open", "high", "low", "close", "volume")})
    assert (check_panel(holed).table["gaps"].to_numpy() >= 1).all()


def test_scan_rows_carry_flags_and_exclusion_is_counted(real_bars: Panel) -> None:
    source = PanelSource(real_bars)
    cfg = dict(as_of_date="2005-03-15", lookback_days=260, min_bars=50)
    frame, status = run_scan(ScanConfig(**cfg), loader=source)
    flags = dict(zip(frame["Symbol"], frame["quality_flags"], strict=True))
    assert flags["AAPL"] == "split" and flags["IBM"] == "" and flags["MSFT"] == ""
    assert status.quality_flagged == 1 and status.indicators_version
    assert frame.attrs["indicators_version"] == status.indicators_version

    frame, status = run_scan(ScanConfig(**cfg, exclude_flagged=True), loader=source)
    assert "AAPL" not in set(frame["Symbol"])
    assert status.rejected_by_reason["quality flagged"] == 1
    assert status.attempted == status.kept + status.rejected + status.errors
    rej = status.rejections.set_index("Symbol")
    assert rej.loc["AAPL", "reason"] == "quality flagged"

    frame, status = run_scan(ScanConfig(**cfg, exclude_flags=["stale"]), loader=source)
    assert "AAPL" in set(frame["Symbol"]) and "quality flagged" not in status.rejected_by_reason
    with pytest.raises(ValueError, match="unknown quality flags"):
        ScanConfig(exclude_flags=["splits"]).validate()
    assert set(FLAGS) >= {"split", "stale"}


# (symbol, day) of the only fixture bars thinner than 0.2 x their previous 20 bars' median
THIN = {("AAPL", "2002-12-24"),   # a 13:00 early close, 0.16
        ("MSFT", "2003-12-26"),   # a 13:00 early close, the Friday after Christmas, 0.16
        ("IBM", "2009-11-17")}    # 1.0 M shares between days of 4-8 M (vendor error), 0.16


def test_thin_last_fires_on_no_normal_day_of_the_real_bars(real_bars: Panel) -> None:
    """Every bar of the fixture judged as if it were the last: the rule fires only on the
    three abnormal days above (two half-day sessions, one vendor error), and on no ordinary
    session (12,054 judged)."""
    cfg = QualityConfig()
    present = np.isfinite(real_bars.volume)
    hits, judged = set(), 0
    for j in range(real_bars.n_sessions):
        at = np.where(present[:, j], j, -1)
        ratio = volume_ratio_to_median(real_bars.volume, at, cfg.thin_lookback)
        judged += int(np.isfinite(ratio).sum())
        for i in np.flatnonzero(ratio < cfg.thin_fraction):
            hits.add((real_bars.symbols[i], str(real_bars.sessions[j].date())))
    assert hits == THIN and judged > 12_000
    from technic_v4.data.calendar import get_calendar

    early = get_calendar("XNYS").early_closes
    assert {pd.Timestamp("2002-12-24"), pd.Timestamp("2003-12-26")} <= set(early)
    assert pd.Timestamp("2009-11-17") not in early
    # the gate as of a normal day, and as of the vendor-error day
    day = real_bars.sessions.get_loc(pd.Timestamp("2009-11-16"))
    assert check_panel(real_bars.window(day, 300)).counts()["thin_last"] == 0
    report = check_panel(real_bars.window(day + 1, 300))
    flagged = report.table[report.table["quality_flags"].str.contains("thin_last")]
    assert flagged["symbol"].tolist() == ["IBM"]


def test_a_partial_last_bar_is_flagged_in_the_scan(real_bars: Panel) -> None:
    day = real_bars.sessions.get_loc(pd.Timestamp("2012-06-14"))
    panel = real_bars.window(day, 300)
    volume = panel.volume.copy()
    row = list(panel.symbols).index("MSFT")
    volume[row, -1] *= 0.15  # the session fetched before the close: 15% of its volume
    volume[list(panel.symbols).index("FB"), -1] *= 0.15  # FB: 19 bars before, not judged
    partial = replace(panel, volume=volume)
    source = PanelSource(partial)
    frame, status = run_scan(ScanConfig(min_bars=10), loader=source)
    flags = dict(zip(frame["Symbol"], frame["quality_flags"], strict=True))
    assert flags["MSFT"] == "thin_last" and flags["AAPL"] == "" and flags["FB"] == ""
    assert status.quality_flagged == 1
    msft = frame.set_index("Symbol").loc["MSFT"]
    assert msft["Volume_ratio"] < 0.2  # the value the flag says not to trust
    frame, status = run_scan(ScanConfig(min_bars=10, exclude_flags=["thin_last"]),
                             loader=source)
    assert "MSFT" not in set(frame["Symbol"])
    assert status.rejected_by_reason == {"quality flagged": 1}
