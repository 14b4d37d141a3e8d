"""Per-symbol CSV folders (Yahoo layout) with raw vs adjusted prices, and appending sessions:
real bars from the fixture, written out as one file per ticker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.append import AppendError, append_bars
from technic_v4.data.ingest_yahoo import ingest_csv_folder
from technic_v4.data.store import load_panel, read_manifest

FIXTURES = Path(__file__).parents[1] / "fixtures"
LAST = "2013-03-01"


@pytest.fixture(scope="module")
def fixture_rows() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "stocks.csv.gz")


def _write_folder(rows: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ticker, g in rows.groupby("Ticker"):
        name = f"{ticker.lower()}.csv" if ticker == "IBM" else f"{ticker}.csv"
        g.drop(columns="Ticker").to_csv(folder / name, index=False)
    return folder


def test_adjusted_folder_passes_the_gate_raw_is_flagged(fixture_rows, tmp_path) -> None:
    folder = _write_folder(fixture_rows, tmp_path / "csv")
    adj = ingest_csv_folder(folder, tmp_path / "adj")
    assert adj.rows_read == len(fixture_rows) == adj.rows_kept + adj.rows_rejected
    assert read_manifest(tmp_path / "adj").meta["adjusted"] == "adj_close"
    assert adj.quality.counts()["split"] == 0
    panel = load_panel(tmp_path / "adj")
    aapl = fixture_rows[fixture_rows["Ticker"] == "AAPL"].set_index("Date")
    row = list(panel.symbols).index("AAPL")
    got = pd.Series(panel.close[row], index=panel.sessions.strftime("%Y-%m-%d")).dropna()
    np.testing.assert_allclose(got.to_numpy(), aapl.loc[got.index, "Adj Close"], rtol=1e-12)

    raw = ingest_csv_folder(folder, tmp_path / "raw", prices="raw")
    assert read_manifest(tmp_path / "raw").meta["adjusted"] == "raw"
    flagged = raw.quality.table.set_index("symbol")["quality_flags"]
    assert flagged["AAPL"] == "split" and flagged["MSFT"] == "split" and flagged["IBM"] == ""
    assert set(raw.quality.events["date"]) == {"2000-06-21", "2005-02-28", "2003-02-18"}


def test_bad_cells_in_a_file_are_rejected_with_the_file_named(fixture_rows, tmp_path) -> None:
    rows = fixture_rows[fixture_rows["Ticker"].isin(["IBM", "FB"])].copy()
    rows = rows.astype({"Close": object})
    rows.loc[rows.index[3], "Close"] = "null"
    rows.loc[rows.index[-2], "Adj Close"] = None
    report = ingest_csv_folder(_write_folder(rows, tmp_path / "csv"), tmp_path / "store")
    assert report.rows_rejected == 2
    assert set(report.rejections["reason"]) == {"missing value: close",
                                                "missing value: adj close"}
    assert set(report.rejections["file"]) == {"FB.csv", "ibm.csv"}


def test_append_one_session_changes_version_and_only_that_day(fixture_rows, tmp_path) -> None:
    history = fixture_rows[fixture_rows["Date"] < LAST]
    ingest_csv_folder(_write_folder(history, tmp_path / "csv"), tmp_path / "d")
    before = load_panel(tmp_path / "d")
    v0 = read_manifest(tmp_path / "d").data_version

    day = fixture_rows[fixture_rows["Date"] == LAST]
    new = pd.DataFrame({"symbol": day["Ticker"], "date": day["Date"], "open": day["Open"],
                        "high": day["High"], "low": day["Low"], "close": day["Close"],
                        "volume": day["Volume"], "adj_close": day["Adj Close"]})
    again = new.iloc[[0]].assign(date="2013-02-28")  # a session the store already has
    report = append_bars(pd.concat([new, again], ignore_index=True), tmp_path / "d")
    assert report.new_sessions == [LAST] and report.rows_kept == len(day)
    assert report.rows_rejected == 1
    assert report.rejections["reason"].iloc[0].startswith("duplicate: session 2013-02-28")
    after = load_panel(tmp_path / "d")
    assert read_manifest(tmp_path / "d").data_version not in ("", v0)
    assert list(after.sessions[:-1]) == list(before.sessions)
    assert str(after.sessions[-1].date()) == LAST
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(after, f)[:, :-1], getattr(before, f))
    want = day.set_index("Ticker").loc[list(after.symbols)]
    np.testing.assert_allclose(after.close[:, -1], want["Adj Close"], rtol=1e-12)
    np.testing.assert_array_equal(after.volume[:, -1], want["Volume"])

    with pytest.raises(AppendError, match="rejected"):  # appending it twice adds nothing
        append_bars(new, tmp_path / "d")
    assert load_panel(tmp_path / "d").n_sessions == after.n_sessions


def test_a_past_scan_is_reproducible_after_appends(fixture_rows, tmp_path) -> None:
    from technic_v4.data.reader import StoreReader
    from technic_v4.scanner_core import ScanConfig, run_scan

    ingest_csv_folder(_write_folder(fixture_rows[fixture_rows["Date"] < "2013-02-25"],
                                    tmp_path / "csv"), tmp_path / "d")
    cfg = ScanConfig(as_of_date="2013-01-15")
    before, s0 = run_scan(cfg, loader=StoreReader(tmp_path / "d", auto_demo=False))
    late = fixture_rows[fixture_rows["Date"] >= "2013-02-25"]
    append_bars(pd.DataFrame({"symbol": late["Ticker"], "date": late["Date"],
                              "open": late["Open"], "high": late["High"], "low": late["Low"],
                              "close": late["Close"], "volume": late["Volume"],
                              "adj_close": late["Adj Close"]}), tmp_path / "d")
    after, s1 = run_scan(cfg, loader=StoreReader(tmp_path / "d", auto_demo=False))
    assert s0.data_version != s1.data_version and s0.as_of == s1.as_of == "2013-01-15"
    assert s0.indicators_version == s1.indicators_version and s0.scoring_version
    pd.testing.assert_frame_equal(before, after)  # same rows, values, alpha and flags
    assert s0.alpha == s1.alpha  # model versions recorded with the result
    assert len(before) == 5
