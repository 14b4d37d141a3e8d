"""`technic data intraday demo | sessions | check` as a user runs them: the demo market's
minute bars agree with its daily bars; a daily bar changed afterwards is flagged (exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.store import load_panel, write_store

pytestmark = pytest.mark.slow  # six CLI processes


def technic(*args: str, data_dir, check: bool = True) -> subprocess.CompletedProcess:
    """`technic ARGS --data-dir DATA_DIR` in a child process."""
    proc = subprocess.run([sys.executable, "-m", "technic_v4.cli", *args, "--data-dir",
                           str(data_dir)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, COLUMNS="200"))
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def test_demo_sessions_and_check(tmp_path):
    build_demo_store(tmp_path, DemoSpec(n_symbols=50, start="2026-04-01"))
    made = technic("data", "intraday", "demo", "--sessions", "2", data_dir=tmp_path)
    assert "2026-10-29..2026-10-30" in made.stderr and "source: synthetic" in made.stderr
    listed = technic("data", "intraday", "sessions", data_dir=tmp_path)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "2026-10-29", "2026-10-30"]
    ok = technic("data", "intraday", "check", data_dir=tmp_path)
    assert "flagged 0" in ok.stderr

    scan = technic("scan", "--where", "D.Close > 0 and M5.Close > M5.VWAP", "--at",
                   "2026-10-30 14:35", "--format", "json", data_dir=tmp_path)
    assert '"at":"2026-10-30 18:35:00+00:00"' in scan.stdout and "M5.VWAP" in scan.stdout
    mixed = technic("scan", "--where", "M5.RSI < 30", "--sector", "Energy", data_dir=tmp_path,
                    check=False)
    assert mixed.returncode == 2 and "takes --where and --symbol only" in mixed.stderr

    panel = load_panel(tmp_path)
    high = panel.high.copy()
    high[7, -1] += 0.5
    write_store(tmp_path, sessions=panel.sessions, universe=panel.universe, open=panel.open,
                high=high, low=panel.low, close=panel.close, volume=panel.volume,
                source="synthetic")
    bad = technic("data", "intraday", "check", data_dir=tmp_path, check=False)
    assert bad.returncode == 1 and "flagged 1" in bad.stderr
    assert panel.symbols[7] in bad.stdout and "high" in bad.stdout
