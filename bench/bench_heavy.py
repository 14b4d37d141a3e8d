"""Hostile heavy requests against `python -m deployments.local` (edge in front), on the 5,000
symbol demo market: the RELIABILITY.md figures of heavy requests.

    flock /tmp/technic-serve.lock python bench/bench_heavy.py [--data DIR] [--after-s 60]

  health     /healthz latency (p50, max) while 3 heavy expressions run (3 scans with --where,
             from 3 addresses) and a plain scan
  validates  16 concurrent /v1/validate from 4 addresses: statuses; server RSS idle, peak,
             and `--after-s` seconds after the last answer
  cancel     a validate whose client disconnects: server CPU-s per s before, CPU-s in the 3 s
             after
The demo market is built in --data (default: a temporary folder) when it holds no store.
Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from edge_support import HOST, address, launched, raw, request  # noqa: E402
from rss import PeakRss  # noqa: E402  (bench/, the script's folder)
from serve_support import free_port  # noqa: E402

COST_BOMB = "sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0"  # issue 19's, ~27 CPU-s
VALIDATE = {"where": "sma(Close, 50) > sma(Close, 200)", "horizons": [5, 21]}


def post(path: str, body: dict) -> bytes:
    return raw("POST", path, [], json.dumps(body).encode())


def rss(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / (1 << 20)


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--after-s", type=float, default=60.0)
    ap.add_argument("--parts", default="health,validates,cancel", help="which figures")
    ap.add_argument("--where", default=COST_BOMB, help="the heavy expression (default: the "
                    "nested 1,260-bar windows; where a cost budget refuses it, pass the "
                    "largest it accepts)")
    args = ap.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="technic-heavy-"))
    port = free_port()
    env = {"TECHNIC_DATA_DIR": str(data), "TECHNIC_BACKEND_PORT": str(free_port()),
           "TECHNIC_API_KEYS": "", "TECHNIC_API_KEY_HASHES": "", "TECHNIC_RATE_LIMIT": "",
           "OMP_WAIT_POLICY": "PASSIVE"}
    with launched(["deployments.local", "--port", str(port)], env, port,
                  data.parent / "bench-heavy.log", timeout_s=900) as proc:
        pid = proc.pid
        request(port, post("/v1/scan", {"limit": 5}), address(0, 71), 300)  # warm
        time.sleep(5)
        idle = rss(pid)

        parts = set(args.parts.split(","))
        if "health" in parts:
            health(port, args.where)
        if "validates" in parts:
            validates(port, pid, idle, args.after_s)
        if "cancel" in parts:
            cancelled(port, pid)
    return 0


def health(port: int, where: str) -> None:
    """/healthz latency while 3 heavy expressions run, and a plain scan meanwhile."""
    answers: list[int | None] = []
    runners = [threading.Thread(target=lambda k=k: answers.append(request(
        port, post("/v1/scan", {"where": where, "limit": 5 + k}),
        address(k, 72), 600).status)) for k in range(3)]
    for t in runners:
        t.start()
    time.sleep(2)
    lat = []
    while any(t.is_alive() for t in runners) and len(lat) < 300:
        r = request(port, raw("GET", "/healthz"), address(100 + len(lat), 72), 30)
        lat.append(r.seconds * 1000 if r.status == 200 else float("inf"))
        time.sleep(0.2)
    plain = request(port, post("/v1/scan", {"limit": 5, "sectors": ["Energy"]}),
                    address(300, 72), 120)
    for t in runners:
        t.join()
    print(json.dumps({"health_during_3_heavy_where": {
        "p50_ms": round(statistics.median(lat)), "max_ms": round(max(lat)),
        "probes": len(lat), "heavy_statuses": sorted(a or 0 for a in answers),
        "plain_scan_status": plain.status, "plain_scan_s": round(plain.seconds, 2)}}))



def validates(port: int, pid: int, idle: float, after_s: float) -> None:
    """16 validates from 4 addresses: statuses, RSS idle / peak / after_s later."""
    with PeakRss(lambda: rss(pid)) as sampled, ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda k: request(port, post(
            "/v1/validate", {**VALIDATE, "top_n": k + 1}), address(k % 4, 73), 600),
            range(16)))
    time.sleep(after_s)
    print(json.dumps({"16_validates": {
        "statuses": sorted(r.status or 0 for r in replies),
        "retry_after": sorted({r.headers.get("retry-after", "") for r in replies
                               if r.status != 200}),
        "rss_idle_mb": round(idle), "rss_peak_mb": round(max(idle, sampled.peak)),
        f"rss_{after_s:g}s_after_mb": round(rss(pid))}}))


def cancelled(port: int, pid: int) -> None:
    """A validate whose client disconnects: CPU-s per s before, CPU-s in the 3 s after."""
    import socket

    t0 = cpu(pid)
    s = socket.create_connection((HOST, port), source_address=(address(0, 74), 0))
    s.sendall(post("/v1/validate", {**VALIDATE, "top_n": 17}))  # new: not a cached answer
    waited = time.monotonic()
    while cpu(pid) - t0 < 3.0:
        if time.monotonic() - waited > 120:
            raise SystemExit("the validate never started computing (refused?)")
        time.sleep(0.1)
    before = cpu(pid)
    time.sleep(2.0)
    rate = (cpu(pid) - before) / 2.0
    s.close()
    start = cpu(pid)
    time.sleep(3.0)
    print(json.dumps({"validate_disconnected": {
        "cpu_s_per_s_before": round(rate, 2),
        "cpu_s_in_3s_after": round(cpu(pid) - start, 2)}}))


if __name__ == "__main__":
    raise SystemExit(main())
