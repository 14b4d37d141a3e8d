"""`technic data ingest FOLDER`, `data check` and `scan --exclude-flagged` as a user runs them,
on real bars with unadjusted splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import technic  # tests/ is on sys.path (rootdir conftest)

pytestmark = pytest.mark.slow  # demo stores built and scanned through the CLI

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


def test_a_partial_last_session_is_called_out(tmp_path) -> None:
    """Bars fetched before the close: every symbol's last bar has a tenth of its usual
    volume. `data check` flags thin_last; a scan keeps the rows and says Volume_ratio on them
    is suspect, and that the session looks partial."""
    from technic_v4.data.calendar import sessions_between

    days = sessions_between("2024-01-02", "2024-12-31")
    rng = np.random.default_rng(4)
    n = 25
    close = 30 * np.exp(np.cumsum(rng.normal(0, 0.015, (n, len(days))), axis=1))
    volume = rng.integers(500_000, 900_000, close.shape).astype(float)
    volume[:, -1] *= 0.1
    bars = pd.DataFrame({"symbol": np.repeat([f"P{i}" for i in range(n)], len(days)),
                         "date": np.tile(days.strftime("%Y-%m-%d"), n), "open": close.ravel(),
                         "high": close.ravel() * 1.01, "low": close.ravel() * 0.99,
                         "close": close.ravel(), "volume": volume.ravel()})
    bars.to_csv(tmp_path / "bars.csv", index=False)
    data = tmp_path / "data"
    technic("data", "ingest", str(tmp_path / "bars.csv"), data_dir=data)
    check = technic("data", "check", data_dir=data, check=False)
    assert check.returncode == 1 and "thin_last 25" in check.stderr, check.stderr
    scan = technic("scan", "--format", "json", data_dir=data)
    rows = json.loads(scan.stdout)["rows"]
    assert len(rows) == 25 and all(r["quality_flags"] == "thin_last" for r in rows)
    assert all(r["Volume_ratio"] < 0.2 for r in rows)
    assert ("thin_last on 25: their Volume_ratio is suspect (most rows: the last session "
            "looks partial") in scan.stderr
