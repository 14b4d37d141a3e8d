"""Benchmark: a whole `run_scan` against a per-symbol TA-Lib loop over the same bars.

    python bench/bench_scan.py [--repeats 7] [--big]

On a synthetic demo market of 5,000 symbols x 252 sessions (built into a temporary folder,
like a first run would), so every peer sees exactly 5,000 x 252 bars:
  warm scan   the default run_scan with the Panel cached in the loader (what a server
              replica does): indicators, score, checks, alpha, select
  cold scan   a fresh loader: reads the store window from Parquet, then scans
  seed loop   TA-Lib called once per symbol per indicator for the seed's columns (RSI, MACD,
              BBANDS, ATR, SMA 20/50/200, volume SMA, ROC 21/63/126): the target is a warm
              scan at least 2x faster than it
  talib loop  the same for the scan's 23 default outputs
  process     `technic scan --format csv` as a new process (imports, numba cache load, store)
  before      (--before REV, e.g. a471069: the commit before full-history agreement) the warm
              scan of that revision's library, extracted with `git archive`, in a subprocess, on
              the same demo market written by that revision (its store format; the bars are
              bit-identical): what the full-history change costs
--big adds 20,000 symbols x 1,260 sessions (window 1,260) to show how cost grows.
The scan reads what its outputs need to settle (registry.convergence_bars; 450 sessions by
default; here the store's 252), plus whole histories for thin rows, so "window" is what the
scan read; the TA-Lib loops run on that same window. (--before builds that revision's demo
market with its own default end date.)
Prints medians (ms) and ratios; these machines are noisy, so trust ratios and medians only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from peers import talib_loop, talib_seed_loop  # bench/ is on sys.path when run as a script
from timing import median_ms  # bench/ is on sys.path when run as a script

from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

BEFORE = """
import sys, statistics, time
sys.path.insert(0, sys.argv[1])
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan
n_symbols, start, data = int(sys.argv[5]), sys.argv[6], sys.argv[2]
build_demo_store(data, DemoSpec(n_symbols=n_symbols, start=start))  # its own store format
cfg, loader = ScanConfig(lookback_days=int(sys.argv[3])), StoreReader(data)
frame, status = run_scan(cfg, loader=loader)
times = []
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    run_scan(cfg, loader=loader)
    times.append((time.perf_counter() - t0) * 1000)
print(statistics.median(times), status.window_bars)
"""


def before_ms(rev: str, spec: DemoSpec, window: int, repeats: int) -> tuple[float, int]:
    """(median warm scan ms, window) of revision `rev`'s library on the demo market of `spec`,
    written by that revision (the store format has grown since; the bars are the same)."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as code, tempfile.TemporaryDirectory() as data:
        archive = subprocess.run(["git", "-C", str(root), "archive", rev, "technic_v4"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", code], input=archive, check=True)
        run = subprocess.run([sys.executable, "-c", BEFORE, code, data, str(window),
                              str(repeats), str(spec.n_symbols), spec.start],
                             capture_output=True, text=True,
                             env=dict(os.environ, NUMBA_CACHE_DIR=code))
        if run.returncode:
            raise SystemExit(f"--before {rev} failed:\n{run.stderr[-3000:]}")
        out = run.stdout.split()
    return float(out[0]), int(out[1])


def bench_size(n_symbols: int, start: str, window: int, repeats: int, process: bool,
               before: str | None = None, end: str = DemoSpec.end) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_demo_store(tmp, DemoSpec(n_symbols=n_symbols, start=start, end=end))
        build_s = time.perf_counter() - t0
        cfg = ScanConfig(lookback_days=window)
        loader = StoreReader(tmp)
        frame, status = run_scan(cfg, loader=loader)  # compile + fill the cache
        panel = loader.load(None, status.window_bars)
        n, t = panel.close.shape
        warm = median_ms(lambda: run_scan(cfg, loader=loader), repeats)
        cold = median_ms(lambda: run_scan(cfg, loader=StoreReader(tmp)), repeats)
        seed = median_ms(lambda: talib_seed_loop(panel), max(3, repeats // 2))
        peer = median_ms(lambda: talib_loop(panel), max(3, repeats // 2))
        stages = {k: round(v, 1) for k, v in status.timings_ms.items()}
        print(f"\n{n:,} symbols, window {t:,} sessions (demo store built in {build_s:.1f} s; "
              f"{len(frame):,} rows kept)")
        print(f"  warm run_scan        {warm:9.1f} ms   stages of one run: {stages}")
        print(f"  cold run_scan        {cold:9.1f} ms   (store read + scan)")
        print(f"  seed TA-Lib loop     {seed:9.1f} ms   (the seed's columns, per symbol)")
        print(f"  TA-Lib loop          {peer:9.1f} ms   (the 23 default outputs, per symbol)")
        print(f"  ratio seed loop / warm scan:   {seed / warm:6.1f}x   (target >= 2x)")
        print(f"  ratio TA-Lib loop / warm scan: {peer / warm:6.1f}x")
        print(f"  ratio TA-Lib loop / cold scan: {peer / cold:6.1f}x")
        if before:
            old, old_window = before_ms(before, DemoSpec(n_symbols=n_symbols, start=start), window,
                                         repeats)
            print(f"  warm run_scan at {before} {old:9.1f} ms   (window {old_window} sessions, "
                  "no full-history rows)")
            print(f"  ratio now / before: {warm / old:6.2f}x;  TA-Lib loop / before: "
                  f"{peer / old:5.1f}x")
        if process:
            env = dict(os.environ, TECHNIC_DATA_DIR=tmp)
            cmd = ["technic", "scan", "--format", "csv", "--out", os.devnull,
                   "--lookback-days", str(window)]
            proc = median_ms(lambda: subprocess.run(cmd, env=env, check=True,
                                                    capture_output=True), 3)
            print(f"  new process `technic scan` {proc:7.1f} ms (python start, imports, "
                  "numba cache, store, scan, CSV)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--big", action="store_true", help="also 20,000 x 1,260")
    ap.add_argument("--before", metavar="REV", help="also the warm scan of git revision REV")
    args = ap.parse_args()
    import numba

    print(f"numba threads: {numba.get_num_threads()}, cores: {os.cpu_count()}, "
          f"numpy {np.__version__}")
    bench_size(5000, "2025-10-30", 252, args.repeats, process=True, before=args.before,
               end="2026-10-30")  # 252 sessions
    if args.big:
        bench_size(20_000, "2021-11-01", 1260, max(3, args.repeats // 2), process=False)


if __name__ == "__main__":
    main()
