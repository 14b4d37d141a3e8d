"""`technic data ingest FOLDER`, `data check` and `scan --exclude-flagged` as a user runs them,
on real bars with unadjusted splits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from test_cli import technic  # tests/ is on sys.path (rootdir conftest)

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_raw_folder_is_flagged_by_check_and_excluded_from_scans(tmp_path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = pd.read_csv(FIXTURES / "stocks.csv.gz")
    for ticker, g in rows[rows["Date"] <= "2005-03-15"].groupby("Ticker"):
        g.drop(columns="Ticker").to_csv(folder / f"{ticker}.csv", index=False)
    data = tmp_path / "data"
    proc = technic("data", "ingest", str(folder), "--prices", "raw", data_dir=data)
    assert "quality: " in proc.stderr and "split 2" in proc.stderr

    check = technic("data", "check", "--events", data_dir=data, check=False)
    assert check.returncode == 1, check.stderr
    assert "adjusted: raw" in check.stderr
    for day in ("2000-06-21", "2005-02-28", "2003-02-18"):
        assert day in check.stdout

    scan = technic("scan", "--exclude-flagged", "--format", "json", data_dir=data)
    body = json.loads(scan.stdout)
    assert "AAPL" not in {r["Symbol"] for r in body["rows"]}
    assert body["meta"]["rejected_by_reason"]["quality flagged"] == 1
    assert body["meta"]["indicators_version"] and body["meta"]["data_version"]
    assert all(r["quality_flags"] == "" for r in body["rows"])
