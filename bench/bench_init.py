"""Benchmark: `technic data init --universe sp500 --provider yahoo --years 5` end to end,
against the local Yahoo chart-API server (tests/yahoo_stub.py; nothing leaves 127.0.0.1).

    python bench/bench_init.py [--years 5] [--kill-after 250] [--workers 4]

1. The S&P 500 list (technic_v4.data.indexes, offline) is served by the stub with generated
   bars for every constituent over `--years` years of XNYS sessions.
2. `technic data init` runs as a subprocess (TECHNIC_YAHOO_URL points yfinance at the stub;
   no rate cap); it is killed once the stub has answered `--kill-after` symbols.
3. The same command is run again: it must ask only for the symbols that were not cached
   (counted from the stub's request log), and finish.
4. `run_scan(ScanConfig(sectors=["Technology", "Healthcare"]))` on the store: every kept
   symbol is in those two sectors, and every symbol of them is attempted.
Prints the times, the request counts and the scan's counts. With Yahoo's own service, the
polite default (60 requests a minute) makes the fetch ~8.5 minutes for 500 symbols.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from yahoo_stub import YahooStub, generated_bars  # noqa: E402

from technic_v4.data.indexes import index_universe  # noqa: E402
from technic_v4.data.reader import StoreReader  # noqa: E402
from technic_v4.scanner_core import ScanConfig, run_scan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--kill-after", type=int, default=250)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    import pandas as pd

    uni = index_universe(["sp500"])
    end = pd.Timestamp("2026-11-30")
    start = end - pd.DateOffset(years=args.years)
    t0 = time.perf_counter()
    bars = generated_bars(list(uni["YahooSymbol"]), str(start.date()), str(end.date()))
    print(f"generated {len(bars)} symbols x {len(next(iter(bars.values())))} sessions in "
          f"{time.perf_counter() - t0:.1f} s")
    with tempfile.TemporaryDirectory() as tmp, YahooStub(bars) as stub:
        data = Path(tmp) / "data"
        env = dict(os.environ, TECHNIC_YAHOO_URL=stub.url, TECHNIC_DATA_DIR=str(data))
        cmd = [sys.executable, "-m", "technic_v4.cli", "data", "init", "--universe", "sp500",
               "--provider", "yahoo", "--start", str(start.date()), "--end", str(end.date()),
               "--workers", str(args.workers), "--per-minute", "1000000"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while len(stub.requests) < args.kill_after and proc.poll() is None:
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        first = len(stub.requests)
        print(f"killed after {first} requests ({time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        took = time.perf_counter() - t0
        asked = [s for s, _, _ in stub.requests[first:]]
        before = {s for s, _, _ in stub.requests[:first]}
        print(f"rerun: exit {done.returncode} in {took:.1f} s, {len(asked)} requests "
              f"({len(set(asked))} symbols; {len(set(asked) & before)} asked in both runs: "
              "in flight at the kill)")
        print("\n".join(done.stderr.splitlines()[-4:]))
        print(done.stdout.strip())
        t0 = time.perf_counter()
        frame, status = run_scan(ScanConfig(sectors=["Technology", "Healthcare"]),
                                 loader=StoreReader(data))
        want = uni[uni["Sector"].isin(["Information Technology", "Health Care"])]
        print(f"scan {time.perf_counter() - t0:.1f} s: attempted {status.attempted} "
              f"(sector members {len(want)}), kept {status.kept}; sectors kept "
              f"{sorted(set(frame['Sector']))}")


if __name__ == "__main__":
    main()
