"""Benchmark: how fast the cost bomb is refused (422), in-process and through the edge.

    python bench/bench_cost_latency.py [--data DIR] [--n 20] [--launch none|local|serve]

On a 5,000-symbol demo store (six months of bars, built in DIR when it holds none; the cost
check reads the universe, not the history), POSTs `--n` scans whose `where` is
`sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0`, one after another, and prints the status
codes, the median and the slowest answer in ms, then the median of as many GET /healthz.
  none    the app in this process (create_app over a warm InProcessBackend, TestClient)
  local   `python -m deployments.local` (uvicorn behind HAProxy) in a subprocess
  serve   `python -m deployments.launch` (Ray Serve behind HAProxy) in a subprocess
RELIABILITY.md quotes the figures.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx

from technic_v4.data.demo import DemoSpec, build_demo_store

BOMB = {"where": "sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0"}
ROOT = Path(__file__).resolve().parents[1]
Call = Callable[[str, str, dict | None], int]


def wide_store(path: Path) -> Path:
    if not (path / "manifest.json").exists():
        build_demo_store(path, DemoSpec(n_symbols=5_000, start="2026-04-01"))
    return path


def measure(call: Call, n: int) -> None:
    codes, times = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        codes.append(call("POST", "/v1/scan", BOMB))
        times.append((time.perf_counter() - t0) * 1000)
    health = []
    for _ in range(n):
        t0 = time.perf_counter()
        call("GET", "/healthz", None)
        health.append((time.perf_counter() - t0) * 1000)
    print(f"bomb: {n} requests, status {sorted(set(codes))}, median "
          f"{statistics.median(times):.1f} ms, slowest {max(times):.1f} ms; "
          f"/healthz median {statistics.median(health):.1f} ms")


def in_process(data: Path, n: int) -> None:
    from deployments.api.main import create_app
    from technic_v4.service.inprocess import InProcessBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    backend = InProcessBackend(data, warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=())) as client:
        measure(lambda m, p, b: client.request(m, p, json=b).status_code, n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launched(module: str, data: Path, n: int) -> None:
    port = free_port()
    env = {**os.environ, "TECHNIC_DATA_DIR": str(data), "TECHNIC_BACKEND_PORT":
           str(free_port()), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", module, "--port", str(port)]
    log = tempfile.NamedTemporaryFile(prefix="technic-cost-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"{module} exited: see {log.name}")
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{module} not ready in 300 s: see {log.name}")
                time.sleep(0.5)
            print(f"{module} on {base}")
            measure(lambda m, p, b: client.request(m, p, json=b).status_code, n)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "technic-wide")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--launch", choices=("none", "local", "serve"), default="none")
    args = ap.parse_args()
    data = wide_store(args.data)
    if args.launch == "none":
        in_process(data, args.n)
    else:
        launched({"local": "deployments.local", "serve": "deployments.launch"}[args.launch],
                 data, args.n)


if __name__ == "__main__":
    main()
