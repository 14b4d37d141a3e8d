"""Soak: thousands of scans in a row in one process, RSS sampled; fails if memory grows.

    python bench/soak_rss.py [--scans 10000] [--every 500] [--bound-mb 50] [--http]

1. Builds (or reuses) the 5,000-symbol demo market in $TECHNIC_DATA_DIR (default data dir).
2. Warm-up: each config below runs twice, so numba kernels, Panel windows and model caches are
   loaded before the baseline is taken.
3. Runs `--scans` scans, cycling through CONFIGS (full scans, sector scans, a top-N cut, an
   older as-of date and a longer lookback: several Panel windows, so the loader's LRU is
   exercised but bounded), sampling RSS (psutil) every `--every` scans.
4. Prints the RSS series (MB), the growth after warm-up and the least-squares slope in MB per
   1,000 scans; exits 1 if RSS (median of the last 3 samples) grew more than `--bound-mb`
   over the baseline (median of the first 3).
`--http` does the same through the in-process ASGI app (TestClient, InProcessBackend, the
result cache off via Cache-Control: no-cache so every request scans) instead of `run_scan`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import numpy as np
import psutil

from technic_v4.data.reader import StoreReader, ensure_store
from technic_v4.scanner_core import ScanConfig, run_scan
from technic_v4.settings import Settings

CONFIGS: list[dict] = [
    {},                                                   # full scan, all rows
    {"sectors": ["Information Technology"]},
    {"max_symbols": 50},
    {"sectors": ["Energy", "Utilities"], "max_symbols": 20},
    {"lookback_days": 252},
    {"as_of_date": "2026-06-30", "max_symbols": 100},
    {"sectors": ["Health Care"], "min_price": 10.0},
]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def soak(step, n: int, every: int) -> tuple[list[tuple[int, float]], float]:
    """[(scans done, RSS MB)] sampled every `every` scans, and seconds taken."""
    for _ in range(2):  # warm-up
        for i in range(len(CONFIGS)):
            step(i)
    gc.collect()
    series = [(0, rss_mb())]
    t0 = time.perf_counter()
    for k in range(1, n + 1):
        step(k % len(CONFIGS))
        if k % every == 0:
            series.append((k, rss_mb()))
            print(f"  {k:6d} scans  RSS {series[-1][1]:8.1f} MB  "
                  f"{(time.perf_counter() - t0) / k * 1000:6.1f} ms/scan", flush=True)
    return series, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--bound-mb", type=float, default=50.0)
    ap.add_argument("--http", action="store_true", help="through the in-process ASGI app")
    args = ap.parse_args()

    root = Settings().data_root()
    ensure_store(root)
    if args.http:
        from fastapi.testclient import TestClient

        from deployments.api.main import create_app
        from technic_v4.service.inprocess import InProcessBackend

        client = TestClient(create_app(InProcessBackend(root, warm=False), api_keys=()))
        client.__enter__()
        client.app.state.backend.warm()

        def step(i: int) -> None:
            body = {k: v for k, v in CONFIGS[i].items()}
            r = client.post("/v1/scan", json=body, headers={"Cache-Control": "no-cache"})
            if r.status_code != 200:
                raise SystemExit(f"scan {body} -> {r.status_code}: {r.text[:300]}")
    else:
        loader = StoreReader(root)
        cfgs = [ScanConfig(**c) for c in CONFIGS]

        def step(i: int) -> None:
            run_scan(cfgs[i], loader=loader)

    mode = "HTTP (in-process ASGI app)" if args.http else "run_scan"
    print(f"soak: {args.scans:,} scans via {mode}, {len(CONFIGS)} configs, data {root}")
    series, secs = soak(step, args.scans, args.every)
    x = np.array([s for s, _ in series], dtype=float)
    y = np.array([m for _, m in series])
    slope = float(np.polyfit(x, y, 1)[0] * 1000) if len(x) > 1 else 0.0
    # RSS moves by tens of MB between samples as the allocator frees arenas, so compare the
    # median of the last three samples with the median of the first three (baseline).
    base, end = float(np.median(y[:3])), float(np.median(y[-3:]))
    growth = end - base
    print(f"RSS MB series: {[round(float(v), 1) for v in y]}")
    print(f"baseline {base:.1f} MB (median of first 3), end {end:.1f} MB (median of last 3), "
          f"growth {growth:+.1f} MB, max {y.max():.1f} MB, slope {slope:+.3f} MB/1,000 scans, "
          f"{secs:.0f} s ({secs / args.scans * 1000:.1f} ms/scan)")
    if growth > args.bound_mb:
        print(f"FAIL: RSS grew more than {args.bound_mb} MB after warm-up")
        return 1
    print(f"OK: RSS within {args.bound_mb} MB of the warm baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
