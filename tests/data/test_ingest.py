"""Ingest: every row kept or rejected with its one reason, kept values exact in the store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from technic_v4.data.calendar import sessions_between
from technic_v4.data.ingest import (
    REJECT_REASONS,
    IngestError,
    ingest_bars,
    read_bars_file,
)
from technic_v4.data.ingest_checks import _text_to_float
from technic_v4.data.store import load_panel, read_manifest, store_path, write_store

FIELDS = ("open", "high", "low", "close", "volume")
HEADER = "Symbol,DATE,open,High,Low,Close,Volume,Note"
# (CSV line, expected reason or None when kept). Row numbers are 1-based positions in this list.
ROWS = [
    ("AAPL,2024-01-02,10,11,9,10.5,1000,x", None),
    ("AAPL,2024-01-03,10.5,12,10,11.25,2000,x", None),
    (" msft,2024-01-02,20,21,19,20.5,0,x", None),  # stripped, upper-cased; zero volume is fine
    ("MSFT,2024-01-04,,21,19,20.5,100,x", "missing value: open"),
    ("BRK.B,2024-01-03,300,310,295,305,50,x", None),
    ("BAD$,2024-01-02,10,11,9,10.5,100,x", "invalid symbol: 'BAD$'"),
    ("MSFT,2024-13-45,20,21,19,20.5,100,x", "unparseable date: '2024-13-45'"),
    ("MSFT,2024-01-05,20,abc,19,20.5,100,x", "unparseable number: high='abc'"),
    ("MSFT,2024-01-05,20,inf,19,20.5,100,x", "unparseable number: high='inf'"),
    ("MSFT,2024-01-06,20,21,19,20.5,100,x", "not a session: 2024-01-06 is a Saturday"),
    ("MSFT,2024-01-15,20,21,19,20.5,100,x",
     "not a session: 2024-01-15 is an XNYS holiday or closure (0 of 1 symbols traded on it)"),
    ("MSFT,2024-01-08,20,21,0,20.5,100,x", "non-positive price: low=0.0"),
    ("MSFT,2024-01-09,20,21,19,20.5,-5,x", "negative volume: -5.0"),
    ("MSFT,2024-01-10,20,18,19,18.5,100,x", "high < low: 18.0 < 19.0"),
    ("MSFT,2024-01-11,20,20.25,19,20.5,100,x", "high < max(open, close): 20.25 < 20.5"),
    ("MSFT,2024-01-12,20,21,20.25,20.5,100,x", "low > min(open, close): 20.25 > 20.0"),
    ("AAPL,2024-01-02,99,99,99,99,1,x", "duplicate: same symbol and date as row 1"),
    ("MSFT,2024-01-06,20,21,19,20.5,-5,x", "not a session: 2024-01-06 is a Saturday"),  # first
    ("aapl,2024-01-03,10.5,12,10,11.25,2000,x", "duplicate: same symbol and date as row 2"),
    ("MSFT,2024-01-12,22,23,21,22.5,300,x", None),  # row 16 (same cell) was bad: this one stays
    ("MSFT,,20,21,19,20.5,100,x", "missing value: date"),
    (",2024-01-02,20,21,19,20.5,100,x", "missing value: symbol"),
    ("MSFT,2024-01-12,20,21,19,20.5,100,x", "duplicate: same symbol and date as row 20"),
    ("A..B,2024-01-02,10,11,9,10.5,100,x", "invalid symbol: 'A..B'"),
    ("BRK.B,2024-01-12,300,310,295,305,1e3,x", None),
]
# symbol -> {session: (open, high, low, close, volume)} of the rows above that are kept
KEPT = {
    "AAPL": {"2024-01-02": (10, 11, 9, 10.5, 1000), "2024-01-03": (10.5, 12, 10, 11.25, 2000)},
    "BRK.B": {"2024-01-03": (300, 310, 295, 305, 50), "2024-01-12": (300, 310, 295, 305, 1000)},
    "MSFT": {"2024-01-02": (20, 21, 19, 20.5, 0), "2024-01-12": (22, 23, 21, 22.5, 300)},
}


def _write_rows(path: Path) -> Path:
    path.write_text(HEADER + "\n" + "\n".join(line for line, _ in ROWS) + "\n")
    return path


def _panel_frame(data_dir: Path) -> dict[str, np.ndarray]:
    p = load_panel(data_dir)
    return {f: getattr(p, f) for f in FIELDS} | {"symbols": p.symbols, "sessions": p.sessions}


def test_each_bad_row_kind_is_rejected_with_its_reason_and_good_rows_are_exact(tmp_path):
    report = ingest_bars(_write_rows(tmp_path / "bars.csv"), tmp_path / "data")

    expected = [(i + 1, reason) for i, (_, reason) in enumerate(ROWS) if reason]
    assert list(zip(report.rejections["row"], report.rejections["reason"], strict=True)) \
        == expected
    assert list(report.rejections.columns) == ["row", "symbol", "date", "reason"]
    assert report.rejections.loc[0, ["symbol", "date"]].tolist() == ["MSFT", "2024-01-04"]
    assert (report.rows_read, report.rows_kept, report.rows_rejected) == (25, 6, 19)
    assert set(r.split(": ")[0] for r in report.rejections["reason"]) == set(REJECT_REASONS)

    panel = load_panel(tmp_path / "data")
    assert list(panel.symbols) == ["AAPL", "BRK.B", "MSFT"]
    # no symbol has a bar from the 4th to the 11th while all three are listed around it: a
    # market-wide closure, recorded and off the axis, not six gaps for every symbol
    closed = sessions_between("2024-01-04", "2024-01-11")
    assert report.manifest.closures == list(closed.strftime("%Y-%m-%d"))
    assert panel.sessions.equals(sessions_between("2024-01-02", "2024-01-12").difference(closed))
    assert (report.symbols, report.sessions) == (3, 3)
    assert (report.first_session, report.last_session) == ("2024-01-02", "2024-01-12")
    expected_arrays = {f: np.full((3, 3), np.nan) for f in FIELDS}
    for i, sym in enumerate(panel.symbols):
        for day, bar in KEPT[sym].items():
            j = panel.sessions.get_loc(pd.Timestamp(day))
            for f, v in zip(FIELDS, bar, strict=True):
                expected_arrays[f][i, j] = v
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(panel, f), expected_arrays[f], err_msg=f)
    assert (panel.universe["sector"] == "Unknown").all()
    assert panel.universe["name"].tolist() == ["AAPL", "BRK.B", "MSFT"]


def test_summary_manifest_and_rejection_file(tmp_path):
    report = ingest_bars(_write_rows(tmp_path / "bars.csv"), tmp_path / "data")
    summary = report.summary()
    assert summary["rows_read"] == summary["rows_kept"] + summary["rows_rejected"] == 25
    assert summary["rejected_by_reason"]["not a session"] == 3
    assert summary["rejected_by_reason"]["duplicate"] == 3
    assert sum(summary["rejected_by_reason"].values()) == 19
    assert list(summary["rejected_by_reason"]) == list(REJECT_REASONS)  # in check order
    manifest = read_manifest(tmp_path / "data")
    assert manifest.source == "ingest:bars.csv"
    rates = summary.pop("quality")  # each flag's count and share, beside the manifest's
    assert rates["any"]["count"] == report.quality.counts()["any"]
    assert manifest.meta == {"ingest": summary, "adjusted": "as given"}
    assert manifest.data_version == report.manifest.data_version
    saved = pd.read_csv(store_path(tmp_path / "data") / "ingest_rejections.csv", dtype=str)
    assert saved["reason"].tolist() == report.rejections["reason"].tolist()
    assert saved["row"].astype(int).tolist() == report.rejections["row"].tolist()


@pytest.mark.parametrize("kind", ["text", "gzip"])
def test_parquet_and_gzip_inputs_equal_csv_input(tmp_path, kind):
    csv = _write_rows(tmp_path / "bars.csv")
    if kind == "text":  # every column text, as a careless export would have it
        other = tmp_path / "bars.parquet"
        raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
        pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), other)
    else:
        other = tmp_path / "bars.csv.gz"
        pd.read_csv(csv, dtype=str, keep_default_na=False).to_csv(other, index=False)
    a = ingest_bars(csv, tmp_path / "a")
    b = ingest_bars(other, tmp_path / "b")
    pd.testing.assert_frame_equal(a.rejections, b.rejections)
    pa_, pb = _panel_frame(tmp_path / "a"), _panel_frame(tmp_path / "b")
    for k in pa_:
        np.testing.assert_array_equal(pa_[k], pb[k])


def test_typed_parquet_equals_csv(tmp_path):
    sessions = sessions_between("2023-01-03", "2023-03-31")
    rng = np.random.default_rng(3)
    n = 400
    close = rng.uniform(1, 500, n).round(3)
    df = pd.DataFrame({
        "Symbol": rng.choice(["AA", "BB", "CC.D", "EE-F"], n),
        "Date": sessions[rng.integers(0, len(sessions), n)].date,
        "Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close,
        "Volume": rng.integers(0, 10**7, n).astype("int64"),
        "Adj Close": close,
    })
    df.loc[5, "Date"] = pd.Timestamp("2023-01-07").date()  # Saturday
    df.loc[7, "Volume"] = -1
    df.loc[9, "Low"] = np.nan
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "b.pq")
    df.to_csv(tmp_path / "b.csv", index=False)
    a = ingest_bars(tmp_path / "b.pq", tmp_path / "a")
    b = ingest_bars(tmp_path / "b.csv", tmp_path / "b")
    assert a.rows_rejected >= 3
    pd.testing.assert_frame_equal(a.rejections, b.rejections)
    pa_, pb = _panel_frame(tmp_path / "a"), _panel_frame(tmp_path / "b")
    for k in pa_:
        np.testing.assert_array_equal(pa_[k], pb[k])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_universe_file_aliases_unknown_sectors_and_gaps(tmp_path, suffix):
    uni = pd.DataFrame({
        "SYMBOL": ["aapl", "MSFT", "MSFT", "ZZZZ", "bad$", "BRK.B"],
        "Name": ["Apple Inc.", "Microsoft", "Microsoft again", "Zed", "Bad", ""],
        "Sector": ["Technology", "Foo", "Energy", "Healthcare", "Energy", " consumer cyclical "],
        "Industry": ["Hardware", "Software", "x", "Pharma", "x", ""],
        "Extra": 1,
    }).drop(index=[])
    # BRK.B listed; a fourth stored symbol, GOOG, has no universe row.
    path = tmp_path / f"uni{suffix}"
    if suffix == ".csv":
        uni.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(uni, preserve_index=False), path)
    bars = _write_rows(tmp_path / "bars.csv")
    bars.write_text(bars.read_text() + "GOOG,2024-01-05,1,1,1,1,1,x\n")

    report = ingest_bars(bars, tmp_path / "data", universe_path=path)

    u = load_panel(tmp_path / "data").universe.set_index("symbol")
    assert list(u.index) == ["AAPL", "BRK.B", "GOOG", "MSFT"]
    assert u.loc["AAPL", ["name", "sector", "industry"]].tolist() == [
        "Apple Inc.", "Information Technology", "Hardware"]
    assert u.loc["MSFT", ["name", "sector", "industry"]].tolist() == [
        "Microsoft", "Unknown", "Software"]
    assert u.loc["BRK.B", ["name", "sector", "industry"]].tolist() == [
        "BRK.B", "Consumer Discretionary", "Unknown"]
    assert u.loc["GOOG", ["name", "sector", "industry"]].tolist() == ["GOOG", "Unknown", "Unknown"]
    issues = set(zip(report.universe_issues["symbol"], report.universe_issues["issue"],
                     strict=True))
    assert issues == {
        ("MSFT", "unknown sector 'Foo': sector Unknown"),
        ("MSFT", "duplicate universe entry (first kept)"),
        ("GOOG", "no universe entry: sector Unknown"),
        ("ZZZZ", "universe entry has no kept bars: not stored"),
        ("bad$", "invalid symbol in universe file: 'bad$'"),
    }
    assert report.summary()["universe_issues"] == 5


def test_missing_column_and_bad_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bars.csv"
    bad.write_text("symbol,date,open,high,low,volume\nAAPL,2024-01-02,1,1,1,1\n")
    with pytest.raises(IngestError, match="no column 'close'"):
        read_bars_file(bad)
    with pytest.raises(IngestError, match="no column 'close'"):
        ingest_bars(bad, tmp_path / "data")
    (tmp_path / "bars.xlsx").write_text("x")
    with pytest.raises(IngestError, match="expected .csv, .csv.gz, .parquet or .pq"):
        ingest_bars(tmp_path / "bars.xlsx", tmp_path / "data")
    dup = tmp_path / "dup.csv"
    dup.write_text("symbol,date,open,high,low,close,Close,volume\n")
    with pytest.raises(IngestError, match="more than one 'close'"):
        read_bars_file(dup)
    with pytest.raises(ValueError, match="mode 'append' is not supported"):
        ingest_bars(_write_rows(tmp_path / "ok.csv"), tmp_path / "data", mode="append")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("symbol,date,open,high,low,close,volume\nA,2024-01-02,1,1,1,1\n")
    with pytest.raises(IngestError, match="cannot read ragged.csv: .*Expected 7 columns"):
        ingest_bars(ragged, tmp_path / "data")
    uni = tmp_path / "u.csv"
    uni.write_text("symbol,name\nAAPL,Apple\n")
    with pytest.raises(IngestError, match="no column 'sector'"):
        ingest_bars(tmp_path / "ok.csv", tmp_path / "data", universe_path=uni)
    assert not (tmp_path / "data" / "store").exists()


def test_all_rejected_is_an_error_and_leaves_the_store_untouched(tmp_path):
    data = tmp_path / "data"
    ingest_bars(_write_rows(tmp_path / "good.csv"), data)
    before = {p.name: p.read_bytes() for p in store_path(data).iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nAAPL,2024-01-06,1,1,1,1,1,x\nBAD$,2024-01-02,1,1,1,1,1,x\n")
    with pytest.raises(IngestError, match=r"all 2 rows .*invalid symbol: 1, not a session: 1"):
        ingest_bars(bad, data)
    assert {p.name: p.read_bytes() for p in store_path(data).iterdir()} == before
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER + "\n")
    with pytest.raises(IngestError, match="no data rows"):
        ingest_bars(empty, data)


def test_dates_are_iso_with_time_and_zone_dropped_and_na_is_a_ticker(tmp_path):
    dates = ["2024-01-02T00:00:00-05:00", "2024-01-03T16:00:00+01:00", "2024-01-04 09:30",
             "2024-01-05x", "1969-12-31", "2030-01-02", "20240105"]
    path = tmp_path / "d.csv"
    path.write_text("symbol,date,open,high,low,close,volume\n" +
                    "".join(f"NA,{d},{i},{i},{i},{i},1\n" for i, d in enumerate(dates, 1)))
    report = ingest_bars(path, tmp_path / "data")
    reasons = report.rejections["reason"].str.replace(r" \(1970-01-02\.\..*\)$", "", regex=True)
    assert reasons.tolist() == [  # the calendar's end moves with today's date
        "unparseable date: '2024-01-05x'",
        "not a session: 1969-12-31 is outside the XNYS calendar",
        "not a session: 2030-01-02 is outside the XNYS calendar",
    ]
    panel = load_panel(tmp_path / "data")
    assert panel.close.tolist() == [[1.0, 2.0, 3.0, 7.0]]
    assert list(panel.symbols) == ["NA"]  # a ticker, not a missing value


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.one_of(st.floats(allow_nan=False).map(repr), st.integers().map(str),
                                st.sampled_from(["", " 1.5", "abc", "1,5", "nan", "inf", "1e3"]),
                                st.none()), max_size=30),
       chunk=st.integers(1, 8))
def test_chunked_arrow_parse_agrees_with_pandas(cells, chunk):
    col = pd.Series(cells, dtype="str")
    got = _text_to_float(col, chunk=chunk)
    want = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    np.testing.assert_array_equal(got, want)


# --- property: random valid rows + injected bad rows --------------------------------------

SYMS = ["AAA", "BB", "C.D", "E-F", "XYZW"]
SESSIONS = sessions_between("2024-01-02", "2024-02-29")
HOLIDAY = "2024-02-19"  # Presidents' Day
CORRUPTIONS = {  # corruption -> the reason kind it must produce (first applicable check)
    "weekend": "not a session",
    "holiday": "not a session",
    "neg_volume": "negative volume",
    "high_below_low": "high < low",
    "zero_close": "non-positive price",
    "bad_symbol": "invalid symbol",
    "bad_number": "unparseable number",
    "missing": "missing value",
    "bad_date": "unparseable date",
    "high_below_close": "high < max(open, close)",
}

price = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)
valid_row = st.builds(
    lambda s, d, p, fo, fc, up, dn, v: {
        "symbol": s, "date": str(SESSIONS[d].date()), "open": p * fo, "close": p * fc,
        "high": max(p * fo, p * fc) * up, "low": min(p * fo, p * fc) * dn, "volume": v,
    },
    st.sampled_from(SYMS), st.integers(0, len(SESSIONS) - 1), price,
    st.floats(0.5, 2), st.floats(0.5, 2), st.floats(1, 1.5), st.floats(0.5, 1),
    st.one_of(st.integers(0, 10**9).map(float), st.floats(0, 1e9)),
)


def _corrupt(row: dict, how: str) -> dict:
    r = dict(row)
    if how == "weekend":
        r["date"] = "2024-01-13"
    elif how == "holiday":
        r["date"] = HOLIDAY
    elif how == "neg_volume":
        r["volume"] = -1.0
    elif how == "high_below_low":
        r["high"] = r["low"] * 0.5
    elif how == "zero_close":
        r["close"] = 0.0
    elif how == "bad_symbol":
        r["symbol"] = "../x"
    elif how == "bad_number":
        r["open"] = "1.2.3"
    elif how == "missing":
        r["low"] = ""
    elif how == "bad_date":
        r["date"] = "2024-02-30"
    elif how == "high_below_close":
        r["high"], r["close"] = r["low"] * 1.5, r["low"] * 2
    return r


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid=st.lists(valid_row, min_size=1, max_size=40),
    bad=st.lists(st.tuples(st.sampled_from(sorted(CORRUPTIONS)), valid_row,
                           st.integers(0, 10**6)), max_size=15),
    parquet=st.booleans(),
)
@pytest.mark.slow
def test_property_every_row_accounted_for_and_valid_rows_round_trip(valid, bad, parquet):
    rows = [(r, None) for r in valid]
    for how, base, where in bad:
        rows.insert(where % (len(rows) + 1), (_corrupt(base, how), CORRUPTIONS[how]))
    frame = pd.DataFrame([r for r, _ in rows], columns=["symbol", "date", *FIELDS])

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("bars.parquet" if parquet else "bars.csv")
        if parquet:
            frame = frame.astype({f: str for f in FIELDS})  # text cells, as repr() wrote them
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        else:
            frame.to_csv(path, index=False)
        report = ingest_bars(path, Path(tmp) / "data")
        panel = load_panel(Path(tmp) / "data")

    # The holiday's rows are all kept when enough of the symbols traded on it (the data
    # outvote the calendar: an extra session), else all rejected as not a session.
    outvoted = HOLIDAY in report.summary()["extra_sessions"]
    rows = [(r, None if k == "not a session" and outvoted and r["date"] == HOLIDAY else k)
            for r, k in rows]
    expect_kind = [k for _, k in rows]
    first: dict[tuple[str, str], int] = {}
    for i, (r, k) in enumerate(rows):
        if k is None and first.setdefault((r["symbol"], r["date"]), i) != i:
            expect_kind[i] = "duplicate"

    assert report.rows_read == len(rows) == report.rows_kept + report.rows_rejected
    got = dict(zip(report.rejections["row"] - 1,
                   report.rejections["reason"].str.split(": ").str[0], strict=True))
    assert got == {i: k for i, k in enumerate(expect_kind) if k is not None}
    assert list(panel.symbols) == sorted({s for s, _ in first})
    assert panel.bar_counts().sum() == len(first) == report.rows_kept
    for (sym, day), i in first.items():
        a, j = list(panel.symbols).index(sym), panel.sessions.get_loc(pd.Timestamp(day))
        for f in FIELDS:
            assert getattr(panel, f)[a, j] == float(rows[i][0][f]), (sym, day, f)


# --- real bars ------------------------------------------------------------------------------

FIXTURE = Path(__file__).parents[1] / "fixtures" / "stocks.csv.gz"


def _real_bars_path() -> Path:
    if FIXTURE.exists():
        return FIXTURE
    bokeh = pytest.importorskip("bokeh_sampledata")
    return Path(bokeh.__file__).parent / "_data" / "stocks.csv.gz"


def test_real_bars_ingest_matches_known_values_and_the_pivoted_fixture(tmp_path, real_bars):
    raw = pd.read_csv(_real_bars_path())
    renamed = tmp_path / "stocks.csv.gz"
    raw.rename(columns={"Ticker": "symbol"}).to_csv(renamed, index=False)
    report = ingest_bars(renamed, tmp_path / "data")
    assert (report.rows_read, report.rows_rejected) == (12154, 0)
    panel = load_panel(tmp_path / "data")
    assert list(panel.symbols) == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert (report.first_session, report.last_session) == ("2000-03-01", "2013-03-01")
    assert report.sessions == 3270  # AAPL trades every XNYS session in the window

    def bar(sym, day):
        i, j = list(panel.symbols).index(sym), panel.sessions.get_loc(pd.Timestamp(day))
        return tuple(float(getattr(panel, f)[i, j]) for f in FIELDS)

    assert bar("AAPL", "2000-03-01") == (118.56, 132.06, 118.5, 130.31, 9616100)
    assert bar("MSFT", "2013-03-01") == (27.72, 27.98, 27.52, 27.95, 34849700)
    assert bar("FB", "2012-05-18")[3] == 38.2318
    assert np.isnan(bar("FB", "2012-05-17")[3]) and np.isnan(bar("GOOG", "2004-08-18")[3])
    # the same bars as the conftest Panel built by pivoting the file
    assert panel.sessions.equals(pd.DatetimeIndex(real_bars.sessions, name="session"))
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(panel, f), getattr(real_bars, f), err_msg=f)


def test_many_duplicates_keep_the_first_row_of_each_cell(tmp_path):
    rng = np.random.default_rng(7)
    n = 3000
    days = sessions_between("2024-03-01", "2024-03-08").strftime("%Y-%m-%d")  # 6 sessions
    value = np.arange(1.0, n + 1)
    frame = pd.DataFrame({"symbol": rng.choice(["A", "B"], n), "date": rng.choice(days, n),
                          "open": value, "high": value, "low": value, "close": value,
                          "volume": 1.0})
    frame.to_csv(tmp_path / "dups.csv", index=False)
    report = ingest_bars(tmp_path / "dups.csv", tmp_path / "data")
    first = frame.reset_index().groupby(["symbol", "date"])["index"].min()
    assert report.rows_kept == len(first) and report.rows_rejected == n - len(first)
    panel = load_panel(tmp_path / "data")
    for (sym, day), i in first.items():
        a, j = list(panel.symbols).index(sym), panel.sessions.get_loc(pd.Timestamp(day))
        assert panel.close[a, j] == i + 1
    named = report.rejections["reason"].str.extract(r"as row (\d+)$")[0].astype(int) - 1
    rej = frame.iloc[report.rejections["row"] - 1]
    assert (named.to_numpy() == first.loc[list(zip(rej["symbol"], rej["date"],
                                                   strict=True))].to_numpy()).all()


def test_replace_overwrites_a_previous_store(tmp_path):
    sessions = sessions_between("2023-01-03", "2023-01-31")
    ones = np.ones((1, len(sessions)))
    write_store(tmp_path, sessions=sessions, source="synthetic",
                universe=pd.DataFrame({"symbol": ["OLD"], "name": "o", "sector": "Energy",
                                       "industry": "x"}),
                open=ones, high=ones, low=ones, close=ones, volume=ones)
    ingest_bars(_write_rows(tmp_path / "bars.csv"), tmp_path)
    panel = load_panel(tmp_path)
    assert "OLD" not in set(panel.symbols) and panel.source == "ingest:bars.csv"
