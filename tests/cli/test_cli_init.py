"""`technic data init` / `data update` as a user runs them, against the local Yahoo chart-API
server (tests/yahoo_stub.py; nothing reaches the internet): a run killed midway resumes
without asking again for what it had, and prints the scan to try."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from yahoo_stub import YahooStub, generated_bars

from technic_v4.data.store import read_manifest

N = 30
SECTORS = ["Information Technology", "Health Care", "Financials", "Energy", "Utilities"]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "technic_v4.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # four CLI processes, ~50 s on 2 busy cores
def test_init_killed_midway_resumes_fetching_only_the_missing_symbols(tmp_path: Path) -> None:
    syms = [f"T{i:02d}" for i in range(N)]
    uni = tmp_path / "universe.csv"
    pd.DataFrame({"symbol": syms, "name": syms, "sector": [SECTORS[i % 5] for i in range(N)],
                  "industry": "Stuff"}).to_csv(uni, index=False)
    data = tmp_path / "data"
    args = ["data", "init", "--universe-file", str(uni), "--provider", "yahoo", "--start",
            "2023-01-03", "--end", "2024-03-27", "--workers", "1", "--per-minute", "100000"]
    with YahooStub(generated_bars(syms, "2023-01-03", "2024-03-27")) as stub:
        env = dict(os.environ, TECHNIC_YAHOO_URL=stub.url, TECHNIC_DATA_DIR=str(data))
        stub.hold_after = 10
        proc = _cli(args, env)
        deadline = time.monotonic() + 120  # a hang guard, not a timing bound
        while len(stub.requests) <= 10 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        stub.release.set()
        cache = data / "providers" / "yahoo" / "daily" / "2023-01-03_2024-03-27"
        done = {p.stem for p in cache.glob("*.parquet")}
        assert 9 <= len(done) <= 10 and not (data / "manifest.json").exists()

        asked_before = len(stub.requests)
        stub.hold_after = None
        proc = _cli(args, env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        again = [s for s, _, _ in stub.requests[asked_before:]]
        assert sorted(again) == sorted(set(syms) - done)  # each missing symbol once, no more
        assert f"{len(done)} already cached" in err
        assert "try: technic scan --sector Technology --sector Healthcare" in out
        assert read_manifest(data).n_symbols == N

        stub.add_session("2024-03-28")  # `data update` knows the provider from `data init`
        proc = _cli(["data", "update", "--end", "2024-03-28", "--per-minute", "100000"], env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "appended 1 of 1 sessions" in err
    assert read_manifest(data).last_session == "2024-03-28"
    info = subprocess.run([sys.executable, "-m", "technic_v4.cli", "data", "info"], env=env,
                          capture_output=True, text=True, check=True).stdout
    assert "provider: yahoo" in info and "ok; appended ['2024-03-28']" in info
