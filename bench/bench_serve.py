"""Benchmark: full-universe scans over HTTP through the Serve app vs `run_scan` in-process.

    python bench/bench_serve.py [--repeats 40] [--users 16] [--run-time 30s] [--data-dir DIR]

On the default 5,000-symbol demo market (built in a temporary folder unless --data-dir):
  in-process   warm `run_scan` (Panel cached in the loader), the floor
  start        `python -m deployments.launch serve_config.yaml` to /readyz 200, and the
               server's memory (RSS and USS summed over its process tree) before/after load
  uncached     POST /v1/scan {} with `Cache-Control: no-cache`: no result cache; the data
               version's full evaluation is kept by the ingress (evaluated once on the
               Indicators replicas), so each request screens, predicts (AlphaModel, batched),
               ranks and renders the ~4 MB JSON body from pre-rendered rows
  cached       the same request answered from the ingress's result cache
  formats      the uncached scan as Parquet and as Arrow IPC
  locust       FullScanUser at --users users for --run-time, cached and uncached: scans/s
Targets on a 2-core box: uncached p50 <= 100 ms; >= 20 uncached full scans/s, 0 failures.
Latencies include reading the body. Ratios are against the in-process median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "loadtests"))
from run_headless import (  # noqa: E402
    free_port,
    report,
    run_locust,
    server_memory,
    start_server,
    stop_server,
    wait_ready,
)

from technic_v4.data.demo import build_demo_store  # noqa: E402
from technic_v4.data.reader import StoreReader  # noqa: E402
from technic_v4.scanner_core import ScanConfig, run_scan  # noqa: E402


def percentiles(ms: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return statistics.median(ms), q[98]


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--run-time", default="30s")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data = Path(args.data_dir) if args.data_dir else Path(tmp.name) / "data"
    if not args.data_dir:
        build_demo_store(data)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    loader = StoreReader(data)
    frame, status = run_scan(ScanConfig(), loader=loader)
    local = timed(lambda: run_scan(ScanConfig(), loader=loader), args.repeats)
    print(f"{status.attempted:,} symbols, {len(frame):,} rows, alpha available: "
          f"{status.alpha.get('available')}, source {status.source}")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, Path(tmp.name) / "server.log", {"TECHNIC_DATA_DIR": str(data)})
    try:
        ready_s = wait_ready(url, proc)
        mem_idle = server_memory(proc)
        with httpx.Client(base_url=url, timeout=120) as c:
            c.post("/v1/scan", json={}, headers={"Cache-Control": "no-cache"})  # first touch
            fresh = timed(lambda: c.post("/v1/scan", json={}, headers={
                "Cache-Control": "no-cache"}).raise_for_status(), args.repeats)
            cached = timed(lambda: c.post("/v1/scan", json={}).raise_for_status(), args.repeats)
            pq = timed(lambda: c.post("/v1/scan", json={"format": "parquet"}, headers={
                "Cache-Control": "no-cache"}).raise_for_status(), max(10, args.repeats // 2))
            arrow = timed(lambda: c.post("/v1/scan", json={"format": "arrow"}, headers={
                "Cache-Control": "no-cache"}).raise_for_status(), max(10, args.repeats // 2))
            meta = c.post("/v1/scan", json={}).json()["meta"]
        loads = {}
        for label, env in (("cached", {}), ("uncached", {"TECHNIC_LOCUST_NO_CACHE": "1"})):
            loads[label] = run_locust(url, args.users, args.run_time, "FullScanUser",
                                      Path(tmp.name) / f"locust-{label}", env)
        mem_loaded = server_memory(proc)
    finally:
        stop_server(proc)

    base = statistics.median(local)
    print(f"\nserve start-to-ready {ready_s:.1f} s; memory idle {mem_idle}, "
          f"after load {mem_loaded}")
    print(f"server-side stage timings of one uncached scan (ms): {meta['timings_ms']}")
    print(f"\n{'full 5,000-symbol scan':34} {'p50 ms':>8} {'p99 ms':>8} {'p50 / in-process':>17}")
    for name, ms in (("in-process run_scan (warm)", local), ("HTTP JSON, uncached", fresh),
                     ("HTTP JSON, cached", cached), ("HTTP Parquet, uncached", pq),
                     ("HTTP Arrow IPC, uncached", arrow)):
        p50, p99 = percentiles(ms)
        print(f"{name:34} {p50:8.1f} {p99:8.1f} {p50 / base:16.1f}x")
    for label, result in loads.items():
        rows = result.rows
        total = rows["Aggregated"]
        print(f"\nLocust FullScanUser x{args.users}, {args.run_time}, {label}: "
              f"{float(total['Requests/s']):.1f} scans/s, {total['Failure Count']} failures, "
              f"p50 {total['50%']} ms, p99 {total['99%']} ms")
        report(rows)


if __name__ == "__main__":
    main()
