"""The `technic` command as a user runs it: a new process, a data directory, real output."""

import io
import json
import os
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow  # each case starts `technic` as a process


def technic(*args, data_dir, check=True):
    env = dict(os.environ, TECHNIC_DATA_DIR=str(data_dir), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "technic_v4.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"technic {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    proc = technic("data", "demo", "--symbols", "400", data_dir=root)
    assert "source: synthetic" in proc.stderr
    return root


def test_first_scan_builds_the_demo_market_and_says_so(tmp_path):
    # An empty data dir: the scan must announce and build the synthetic store, then rank.
    proc = technic("scan", "--max-symbols", "5", "--format", "json", data_dir=tmp_path)
    assert "building the deterministic synthetic demo market" in proc.stderr
    body = json.loads(proc.stdout)
    assert body["meta"]["source"] == "synthetic" and len(body["rows"]) == 5
    assert body["meta"]["attempted"] >= 5000
    m = body["meta"]
    assert m["kept"] + m["rejected"] + m["errors"] == m["attempted"]
    assert all(r["Source"] == "synthetic" for r in body["rows"])
    ratings = [r["TechRating"] for r in body["rows"]]
    assert ratings == sorted(ratings, reverse=True)


def test_table_csv_parquet_agree(demo_dir, tmp_path):
    table = technic("scan", "--sector", "Technology", "--top", "10", data_dir=demo_dir)
    assert "source: synthetic" in table.stdout and "Information Technology" in table.stdout
    csv = pd.read_csv(io.StringIO(technic("scan", "--sector", "Technology", "--format", "csv",
                                          data_dir=demo_dir).stdout))
    assert set(csv["Sector"]) == {"Information Technology"}
    assert csv["Symbol"].iloc[0] in table.stdout
    out = tmp_path / "scan.parquet"
    technic("scan", "--sector", "technology", "--format", "parquet", "--out", str(out),
            data_dir=demo_dir)
    pf = pq.read_table(out)
    assert json.loads(pf.schema.metadata[b"technic"])["source"] == "synthetic"
    pd.testing.assert_series_equal(pf.to_pandas()["Symbol"], csv["Symbol"])


def test_bad_input_is_a_clear_error(demo_dir):
    proc = technic("scan", "--sector", "Crypto", data_dir=demo_dir, check=False)
    assert proc.returncode == 2 and "unknown sector 'Crypto'" in proc.stderr
    assert "Information Technology" in proc.stderr
    proc = technic("scan", "--symbol", "../etc/passwd", data_dir=demo_dir, check=False)
    assert proc.returncode == 2 and "invalid symbol" in proc.stderr
    proc = technic("scan", "--as-of", "1990-01-01", data_dir=demo_dir, check=False)
    assert proc.returncode == 2 and "before the store's first session" in proc.stderr
    proc = technic("scan", "--format", "xml", data_dir=demo_dir, check=False)
    assert proc.returncode == 2 and "valid: table, csv, json, parquet" in proc.stderr


def test_columns_and_sector_text(demo_dir):
    """--columns (commas or repeated) chooses the columns, the where's are added; Sector text
    in --where is the -s filter; an unknown column is an error naming the valid ones."""
    proc = technic("scan", "--columns", "RSI,ADX", "--columns", "EMA50", "--where",
                   'CCI > 0 and Sector == "Tech"', "--format", "csv", data_dir=demo_dir)
    csv = pd.read_csv(io.StringIO(proc.stdout))
    assert list(csv.columns) == ["Symbol", "RSI", "ADX", "EMA50", "CCI", "Sector"]
    assert len(csv) and (csv["CCI"] > 0).all()
    by_filter = pd.read_csv(io.StringIO(technic("scan", "-s", "Tech", "--where", "CCI > 0",
                                                "--format", "csv", data_dir=demo_dir).stdout))
    assert list(csv["Symbol"]) == list(by_filter["Symbol"])
    table = technic("scan", "--columns", "RSI,ADX", "--top", "5", data_dir=demo_dir).stdout
    assert "ADX" in table and "TechRating" not in table
    proc = technic("scan", "--columns", "RSI,NOPE", data_dir=demo_dir, check=False)
    assert proc.returncode == 2 and "unknown columns ['NOPE']" in proc.stderr
    assert "beta_60" in proc.stderr
    proc = technic("scan", "--where", 'Sector == "Crypto"', data_dir=demo_dir, check=False)
    assert proc.returncode == 2 and "unknown sector 'Crypto'" in proc.stderr


def test_as_of_scan_accounts_for_unlisted_and_delisted(demo_dir):
    body = json.loads(technic("scan", "--as-of", "2022-06-01", "--format", "json",
                              data_dir=demo_dir).stdout)
    m = body["meta"]
    assert m["as_of"] == "2022-06-01"
    assert m["kept"] + m["rejected"] + m["errors"] == m["attempted"] == 400
    assert all(r["LastDate"] <= "2022-06-01" for r in body["rows"])
    assert m["rejected_by_reason"].get("not listed yet", 0) > 0


def test_data_info_and_ingest(demo_dir, tmp_path):
    info = technic("data", "info", data_dir=demo_dir)
    assert "source: synthetic" in info.stdout and "symbols: 400" in info.stdout
    bars = tmp_path / "bars.csv"
    bars.write_text("symbol,date,open,high,low,close,volume\n"
                    "ABC,2024-01-02,10,11,9,10.5,1000\n"
                    "ABC,2024-01-03,10.5,11,10,10.8,1200\n"
                    "ABC,2024-01-06,10.5,11,10,10.8,1200\n"   # a Saturday
                    "XYZ,2024-01-03,5,4,6,5,100\n")           # high < low
    target = tmp_path / "mine"
    proc = technic("data", "ingest", str(bars), "--report", str(tmp_path / "rej.csv"),
                   data_dir=target)
    assert "kept 2, rejected 2" in proc.stderr
    rej = pd.read_csv(tmp_path / "rej.csv")
    assert len(rej) == 2 and rej["reason"].str.contains("not a session").any()
    info = technic("data", "info", data_dir=target)
    assert "source: ingest:bars.csv" in info.stdout
