"""Run Locust headless against a local technic server for a bounded time; fail on regressions.

    python loadtests/run_headless.py [--users 16] [--run-time 30s] [--p99-ms 3000]
                                     [--user-class MixedUser] [--data-dir DIR]

Walk-through: start `serve run serve_config.yaml` through `python -m deployments.launch`
(dashboard off, 127.0.0.1, a free port) in its own process group; wait for /readyz (the time
is printed: start-to-ready); sum the server's memory (RSS and USS of its process tree); run
Locust headless against 127.0.0.1 only; read its CSV summary; stop the server (SIGTERM, then
SIGKILL to the process group it started). Exit 1 on any failed request (a bad request
answered with anything but its documented 4xx counts as a failure) or a p99 above --p99-ms.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "deployments.launch", str(ROOT / "serve_config.yaml"),
           "--host", "127.0.0.1", "--port", str(port)]
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> float:
    """Seconds until GET /readyz answers 200 (the server process must stay alive)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url}/readyz not ready after {timeout_s} s")


def server_memory(proc: subprocess.Popen) -> dict[str, float]:
    """RSS and USS (MB) summed over the server's process tree (Ray's processes included)."""
    try:
        import psutil
    except ImportError:
        return {}
    root = psutil.Process(proc.pid)
    rss = uss = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            m = p.memory_full_info()
            rss, uss = rss + m.rss, uss + m.uss
        except psutil.Error:
            continue
    return {"rss_mb": round(rss / 2**20), "uss_mb": round(uss / 2**20)}


def stop_server(proc: subprocess.Popen, grace_s: float = 40) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:  # whatever the launcher left in the group it started (never anything else)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_locust(url: str, users: int, run_time: str, user_class: str, prefix: Path,
               env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Locust headless; returns its stats CSV rows by name ("Aggregated" = the total)."""
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError("load tests run against 127.0.0.1 only")
    cmd = ["locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
           "-u", str(users), "-r", str(users), "-t", run_time, "--host", url,
           "--csv", str(prefix), "--only-summary", "--stop-timeout", "10", user_class]
    subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, check=False,
                   stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def report(rows: dict[str, dict[str, str]]) -> None:
    print(f"{'name':38} {'reqs':>7} {'fails':>6} {'req/s':>7} {'p50':>6} {'p99':>6} ms")
    for name, r in rows.items():
        print(f"{name[:38]:38} {r['Request Count']:>7} {r['Failure Count']:>6} "
              f"{float(r['Requests/s']):7.1f} {r['50%']:>6} {r['99%']:>6}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--run-time", default="30s")
    ap.add_argument("--p99-ms", type=float, default=3000.0)
    ap.add_argument("--user-class", default="MixedUser", choices=["MixedUser", "FullScanUser"])
    ap.add_argument("--data-dir", default=None, help="default: $TECHNIC_DATA_DIR")
    args = ap.parse_args()
    env = {"TECHNIC_DATA_DIR": args.data_dir} if args.data_dir else {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="technic-locust-"))
    proc = start_server(port, work / "server.log", env)
    try:
        ready_s = wait_ready(url, proc)
        print(f"server ready after {ready_s:.1f} s; memory {server_memory(proc)}; "
              f"log {work / 'server.log'}")
        rows = run_locust(url, args.users, args.run_time, args.user_class, work / "locust")
    finally:
        stop_server(proc)
    report(rows)
    total = rows["Aggregated"]
    fails, p99 = int(total["Failure Count"]), float(total["99%"])
    problems = ([f"{fails} failed requests (see {work}/locust_failures.csv)"] if fails else []) + \
               ([f"p99 {p99:.0f} ms > {args.p99_ms:.0f} ms"] if p99 > args.p99_ms else [])
    print("FAIL: " + "; ".join(problems) if problems else "OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
