"""The data-quality gate on real bars (splits, a special dividend) and on seeded faults, and its
place in the scan: `quality_flags` on every row, exclusion counted in the status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.panel import Panel, panel_from_arrays
from technic_v4.data.quality import FLAGS, check_panel
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
    n, t = 6, len(sessions)
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, t)), axis=1))
    high, low, volume = close * 1.01, close * 0.99, np.full((n, t), 1e6)
    high[1, 30] = low[1, 30] * 0.9          # 1: high < low
    close[2, 20:25] = np.nan                # 2: five missing sessions inside its history
    close[3, -10:] = np.nan                 # 3: stale: last bar 10 sessions ago
    volume[4, 10:17] = 0.0                  # 4: seven zero-volume sessions in a row
    close[5, 40:] /= 3.0                    # 5: unadjusted 3:1 split
    high, low = np.fmax(high, close), np.fmin(low, close)
    high[1, 30] = low[1, 30] * 0.9
    return panel_from_arrays([f"S{i}" for i in range(n)], sessions, open=close, high=high,
                             low=low, close=close, volume=volume)


def test_each_check_finds_its_seeded_fault() -> None:
    panel = _seeded_faults()
    report = check_panel(panel)
    assert list(report.flags) == ["", "ohlc", "gaps", "stale", "zero_volume", "split"]
    row = report.table.set_index("symbol")
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
