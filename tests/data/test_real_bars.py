"""Real daily bars as users bring them (tests/fixtures/PROVENANCE.md): Samsung on Seoul's
calendar, five US stocks and the S&P 500 index in one folder (ISO and M/D/YYYY dates), and a
market that traded on a day its calendar calls a holiday. Expected figures are read off the
files themselves (pandas and exchange_calendars directly), never off the code under test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.data import store
from technic_v4.data.calendar import sessions_between
from technic_v4.data.ingest import IngestError, ingest_bars, ingest_frame
from technic_v4.data.ingest_checks import OHLC_TOLERANCE
from technic_v4.data.ingest_yahoo import ingest_csv_folder
from technic_v4.data.quality import FLAGS, check_store
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

FIXTURES = Path(__file__).parents[1] / "fixtures"
US = ["AMZN", "MSFT", "NFLX", "NVDA", "SPX", "TSLA"]


def technic(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, on `data_dir` only (no TECHNIC_* from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECHNIC_")}
    env |= {"TECHNIC_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "technic_v4.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"technic {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def _body_misses(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Relative amount by which high falls short of max(open, close) and low exceeds
    min(open, close), per row (0 when consistent)."""
    top = np.maximum(frame["Open"], frame["Close"])
    bottom = np.minimum(frame["Open"], frame["Close"])
    return ((top - frame["High"]) / top).clip(lower=0), ((frame["Low"] - bottom) / bottom).clip(
        lower=0)


def test_samsung_on_seoul_keeps_float_noise_and_rejects_only_real_faults(tmp_path) -> None:
    raw = pd.read_csv(FIXTURES / "krx" / "005930.csv.gz")
    high_miss, low_miss = _body_misses(raw)
    day = pd.to_datetime(raw["Date"].str[:10])
    on_calendar = day.isin(sessions_between(day.min(), day.max(), "XKRX"))
    noise = ((high_miss > 0) & (high_miss < OHLC_TOLERANCE)) | (
        (low_miss > 0) & (low_miss < OHLC_TOLERANCE))
    real = on_calendar & ((high_miss >= OHLC_TOLERANCE) | (low_miss >= OHLC_TOLERANCE))
    assert noise.sum() >= 10 and real.sum() >= 1  # the file has both kinds

    report = ingest_csv_folder(FIXTURES / "krx", tmp_path / "krx", prices="raw",
                               calendar="XKRX")
    summary = report.summary()
    clamped = summary["clamped"]["high"] + summary["clamped"]["low"]
    assert clamped == int((noise & on_calendar).sum())
    ohlc = report.rejections[report.rejections["reason"].str.contains("min\\(|max\\(|high < low")]
    assert sorted(ohlc["row"] - 1) == sorted(np.flatnonzero(real))
    # holiday rows: a vendor's fills (the last close on no volume) but one; a lone symbol
    # never outvotes the calendar
    holiday = report.rejections[report.rejections["reason"].str.startswith("not a session")]
    assert len(holiday) == int((~on_calendar).sum())
    printed = raw["Volume"][~on_calendar].gt(0).to_numpy()
    assert printed.sum() == 1
    ending = np.where(printed, "(1 of 1 symbols traded on it)", "(0 of 1 symbols traded on it)")
    assert [r.endswith(e) for r, e in zip(holiday["reason"], ending, strict=True)] == [True] * len(
        ending)
    panel = store.load_panel(tmp_path / "krx")
    kept = raw[on_calendar & ~real]
    assert np.isfinite(panel.close).sum() == len(kept)
    assert (panel.high >= np.fmax(panel.open, panel.close))[np.isfinite(panel.close)].all()
    assert summary["quality"]["any"]["count"] == 0


@pytest.fixture(scope="module")
def us_store(tmp_path_factory) -> tuple[Path, object]:
    data = tmp_path_factory.mktemp("us")
    return data, ingest_csv_folder(FIXTURES / "us", data, prices="raw")


def test_a_folder_mixing_iso_and_m_d_yyyy_time_dates_reads_both(us_store) -> None:
    data, report = us_store
    msft = pd.read_csv(FIXTURES / "us" / "MSFT.csv.gz")
    assert msft["Date"].iloc[0] == "4/1/2015 16:00:00"
    formats = report.summary()["date_formats"]
    assert formats["M/D/YYYY"] == msft["Date"].nunique()
    panel = store.load_panel(data)
    row = list(panel.symbols).index("MSFT")
    days = pd.to_datetime(msft["Date"], format="%m/%d/%Y %H:%M:%S").dt.normalize()
    got = panel.close[row, panel.sessions.get_indexer(days)]
    np.testing.assert_array_equal(got, msft["Close"].to_numpy())
    assert list(panel.symbols) == US


def test_m_d_yyyy_with_date_format_equals_detection(tmp_path) -> None:
    folder = tmp_path / "msft"
    folder.mkdir()
    (folder / "MSFT.csv.gz").write_bytes((FIXTURES / "us" / "MSFT.csv.gz").read_bytes())
    auto = ingest_csv_folder(folder, tmp_path / "auto", prices="raw")
    given = ingest_csv_folder(folder, tmp_path / "given", prices="raw", date_format="mdy")
    pattern = ingest_csv_folder(folder, tmp_path / "pattern", prices="raw",
                                date_format="%m/%d/%Y %H:%M:%S")
    assert auto.rows_rejected == given.rows_rejected == pattern.rows_rejected == 0
    a, g, p = (store.load_panel(tmp_path / d) for d in ("auto", "given", "pattern"))
    assert a.sessions.equals(g.sessions) and a.sessions.equals(p.sessions)
    np.testing.assert_array_equal(a.close, g.close)
    np.testing.assert_array_equal(a.close, p.close)


def test_ambiguous_dates_are_refused_and_a_format_resolves_them(tmp_path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("symbol,date,open,high,low,close,volume\n"
                    "AAA,03/02/2020,1,1,1,1,10\nAAA,04/06/2020,1,1,1,1,10\n")
    with pytest.raises(IngestError, match="ambiguous.*--date-format mdy"):
        ingest_bars(path, tmp_path / "data")
    assert not store.store_exists(tmp_path / "data")
    report = ingest_bars(path, tmp_path / "data", date_format="dmy")
    assert (report.first_session, report.last_session) == ("2020-02-03", "2020-06-04")
    report = ingest_bars(path, tmp_path / "data", date_format="mdy")
    assert (report.first_session, report.last_session) == ("2020-03-02", "2020-04-06")


def test_cli_exits_2_when_every_row_is_rejected_or_dates_are_ambiguous(tmp_path) -> None:
    folder = tmp_path / "msft"
    folder.mkdir()
    (folder / "MSFT.csv.gz").write_bytes((FIXTURES / "us" / "MSFT.csv.gz").read_bytes())
    proc = technic("data", "ingest", str(folder), "--prices", "raw", "--date-format",
                   "yyyymmdd", "--no-watches", data_dir=tmp_path / "data", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "all 1511 rows" in proc.stderr and "unparseable date: 1511" in proc.stderr
    assert not store.store_exists(tmp_path / "data")
    ambiguous = tmp_path / "bars.csv"
    ambiguous.write_text("symbol,date,open,high,low,close,volume\nAAA,01/02/2020,1,1,1,1,10\n"
                         "AAA,03/04/2020,1,1,1,1,10\n")
    proc = technic("data", "ingest", str(ambiguous), "--no-watches",
                   data_dir=tmp_path / "data", check=False)
    assert proc.returncode == 2 and "--date-format" in proc.stderr
    proc = technic("data", "ingest", str(ambiguous), "--date-format", "mdy", "--no-watches",
                   data_dir=tmp_path / "data")
    assert "distinct dates by format: M/D/YYYY 2" in proc.stderr


def _market(days: pd.DatetimeIndex, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, len(days))), axis=1))
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    return pd.DataFrame({
        "symbol": np.repeat([f"PH{i:02d}" for i in range(n)], len(days)),
        "date": np.tile(days.strftime("%Y-%m-%d"), n), "open": open_.ravel(),
        "high": np.fmax(open_, close).ravel() * 1.01, "low": np.fmin(open_, close).ravel() * 0.99,
        "close": close.ravel(), "volume": rng.integers(1_000, 50_000, close.size).astype(float)})


def test_the_market_outvotes_the_calendar_and_a_day_nobody_traded_is_a_closure(tmp_path) -> None:
    """XPHS calls 2017-12-08 a holiday; 16 of 20 symbols traded on it. 2018-01-10 is an XPHS
    session on which no symbol traded (a typhoon, say). 2017-12-26, also a holiday, has 3
    symbols trading on it: too few to outvote the calendar."""
    calendar = sessions_between("2017-10-02", "2018-02-28", "XPHS")
    assert pd.Timestamp("2017-12-08") not in calendar and pd.Timestamp("2018-01-10") in calendar
    traded = calendar.difference([pd.Timestamp("2018-01-10")]).union(
        [pd.Timestamp("2017-12-08"), pd.Timestamp("2017-12-26")])
    bars = _market(traded, 20, seed=1)
    on_8th = bars["date"] == "2017-12-08"
    bars = bars[~(on_8th & bars["symbol"].isin(["PH16", "PH17", "PH18", "PH19"]))]
    on_26th = bars["date"] == "2017-12-26"
    bars = bars[~on_26th | bars["symbol"].isin(["PH00", "PH01", "PH02"])]
    path = tmp_path / "ph.csv"
    bars.to_csv(path, index=False)

    report = ingest_bars(path, tmp_path / "ph", calendar="XPHS")
    manifest = store.read_manifest(tmp_path / "ph")
    assert manifest.extra_sessions == ["2017-12-08"] and manifest.closures == ["2018-01-10"]
    assert manifest.missing_sessions == [] and manifest.calendar == "XPHS"
    assert set(report.rejections["reason"]) == {
        "not a session: 2017-12-26 is an XPHS holiday or closure (3 of 20 symbols traded on "
        "it)"}
    panel = store.load_panel(tmp_path / "ph")
    assert panel.sessions.equals(calendar.difference([pd.Timestamp("2018-01-10")]).union(
        [pd.Timestamp("2017-12-08")]))
    assert report.sessions == len(calendar)  # one added, one closed
    col = panel.sessions.get_loc(pd.Timestamp("2017-12-08"))
    assert np.isfinite(panel.close[:, col]).sum() == 16
    frame, status = run_scan(ScanConfig(as_of_date="2017-12-08", min_bars=40),
                             loader=StoreReader(tmp_path / "ph"))
    assert status.as_of == "2017-12-08"  # the scan sees the session, and its closes
    on_the_8th = bars[bars["date"] == "2017-12-08"].set_index("symbol")["close"]
    closes = frame.set_index("Symbol")["Close"]
    np.testing.assert_allclose(closes[on_the_8th.index], on_the_8th, rtol=1e-12)
    quality = check_store(tmp_path / "ph", write=False)
    assert quality.counts()["gaps"] == 0  # neither the closure nor the 8th is anyone's gap
    assert quality.table["gaps"].tolist() == [0] * 16 + [1] * 4  # the four absent on the 8th

    # an append on the same calendar: a later holiday the market traded, a session nobody did
    later = sessions_between("2018-03-01", "2018-04-30", "XPHS")
    assert pd.Timestamp("2018-03-29") not in later and pd.Timestamp("2018-04-04") in later
    more = _market(later.difference([pd.Timestamp("2018-04-04")]).union(
        [pd.Timestamp("2018-03-29")]), 20, seed=2)
    from technic_v4.data.append import append_bars

    result = append_bars(more, tmp_path / "ph")
    assert result.extra_sessions == ["2018-03-29"] and result.closures == ["2018-04-04"]
    manifest = store.read_manifest(tmp_path / "ph")
    assert manifest.extra_sessions == ["2017-12-08", "2018-03-29"]
    assert manifest.closures == ["2018-01-10", "2018-04-04"]
    assert store.read_sessions(tmp_path / "ph").equals(
        calendar.union(later).difference(pd.to_datetime(manifest.closures)).union(
            pd.to_datetime(manifest.extra_sessions)))
    info = technic("data", "info", data_dir=tmp_path / "ph").stdout
    assert "extra sessions (holidays the market traded): 2 (2017-12-08, 2018-03-29)" in info
    assert "market-wide closures (sessions nothing traded): 2 (2018-01-10, 2018-04-04)" in info


def test_a_holiday_below_the_share_is_rejected_and_the_share_is_an_option(tmp_path) -> None:
    days = sessions_between("2017-11-01", "2017-12-29", "XPHS").union(
        [pd.Timestamp("2017-12-08")])
    bars = _market(days, 10, seed=3)
    bars = bars[(bars["date"] != "2017-12-08") | bars["symbol"].isin(["PH00", "PH01", "PH02"])]
    low = ingest_frame(bars.copy(), tmp_path / "a", name="ph", calendar="XPHS")
    assert low.manifest.extra_sessions == [] and low.rows_rejected == 3
    kept = ingest_frame(bars.copy(), tmp_path / "b", name="ph", calendar="XPHS",
                        extra_session_share=0.3)
    assert kept.manifest.extra_sessions == ["2017-12-08"] and kept.rows_rejected == 0


@pytest.mark.parametrize("name", US)
def test_every_quality_flag_marks_a_minority_of_each_real_set(tmp_path, name) -> None:
    """Each US file on its own (a set of one: no flag may fire), the US folder, Samsung and the
    Quandl set of tests/fixtures/stocks.csv.gz (adjusted): gaps, thin and the rest each mark
    fewer than half the symbols."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.csv.gz").write_bytes((FIXTURES / "us" / f"{name}.csv.gz").read_bytes())
    report = ingest_csv_folder(folder, tmp_path / "data", prices="raw")
    rates = report.summary()["quality"]
    assert set(rates) == {*FLAGS, "any"}
    assert rates["any"]["count"] == 0, report.quality.table.to_dict("records")


def test_every_flag_marks_a_minority_of_the_multi_symbol_real_sets(us_store, tmp_path) -> None:
    _, report = us_store
    rates = report.summary()["quality"]
    for flag in FLAGS:
        assert rates[flag]["share"] < 0.5, (flag, rates)
    # five files end years before NVDA's last bar: ended histories, their age kept, not stale
    ages = report.quality.table.set_index("symbol")["stale_sessions"]
    assert (ages.drop("NVDA") > 63).all() and rates["stale"]["count"] == 0
    rows = pd.read_csv(FIXTURES / "stocks.csv.gz")
    bars = rows.rename(columns=str.lower).rename(columns={"ticker": "symbol",
                                                          "adj close": "adj_close"})
    quandl = ingest_frame(bars, tmp_path / "quandl", name="stocks", prices="adj_close")
    for flag, rate in quandl.summary()["quality"].items():
        assert rate["share"] < 0.5, (flag, rate)


@pytest.mark.slow
def test_ingest_scan_validate_explain_on_real_bars_through_the_cli(tmp_path) -> None:
    data = tmp_path / "data"
    proc = technic("data", "ingest", str(FIXTURES / "us"), "--prices", "raw", "--no-watches",
                   data_dir=data)
    assert "distinct dates by format: YYYY-MM-DD" in proc.stderr
    assert "M/D/YYYY 1511" in proc.stderr
    assert "quality: " in proc.stderr and "gaps 0 (0.0%)" in proc.stderr
    scan = json.loads(technic("scan", "--as-of", "2020-07-31", "--format", "json",
                              data_dir=data).stdout)
    live = {"AMZN", "MSFT", "NFLX", "NVDA", "SPX"}  # listed on 2020-07-31 (TSLA's file: 2021-)
    assert {r["Symbol"] for r in scan["rows"]} == live
    assert all(np.isfinite(r["TechRating"]) for r in scan["rows"])
    out = tmp_path / "v.json"
    technic("validate", "--start", "2019-01-02", "--end", "2020-06-30", "--top-n", "2",
            "--format", "json", "--out", str(out), data_dir=data)
    body = json.loads(out.read_text())
    assert body  # a report, whatever its figures: validate's own tests judge them
    explain = technic("explain", "AMZN", "--as-of", "2020-07-31", data_dir=data).stdout
    assert "AMZN" in explain
