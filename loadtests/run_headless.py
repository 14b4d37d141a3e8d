"""Run Locust headless against a local technic server for a bounded time; fail on regressions.

    python loadtests/run_headless.py [--users 16] [--run-time 30s] [--p99-ms 3000]
                                     [--user-class MixedUser] [--data-dir DIR]
                                     [--rss-every 15 --rss-bound-mb 300]

Walk-through: start `serve run serve_config.yaml` through `python -m deployments.launch`
(dashboard off, the edge on 127.0.0.1 and a free port, its per-address caps lifted since every
user shares 127.0.0.1: LOAD_TEST_EDGE) in its own process group; wait for /readyz (the time
is printed: start-to-ready); sum the server's memory (RSS and USS of its process tree); run
Locust headless against 127.0.0.1 only; read its CSV summary; stop the server (SIGTERM, then
SIGKILL to the process group it started). Exit 1 on any failed request (a bad request
answered with anything but its documented 4xx counts as a failure) or a p99 above --p99-ms.
With --rss-every S the memory of each server process is sampled every S seconds (a soak):
the tree's total is printed per sample, and the growth of the processes that lived from
--rss-warmup-s to the end (autoscaled replicas come and go; rss_growth) is the figure that
fails the run above --rss-bound-mb, with the five processes that grew most.
start_locust / stop_locust / read_stats are also how tests/test_faults.py runs Locust (as a
subprocess, stopped early once its faults are over) and reads the outcome.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every Locust user connects from 127.0.0.1, so the edge's per-address caps (deployments/edge.py:
# 16 requests in flight, 64 connections per client address), made for hostile clients, would
# throttle the load itself; lifted here (an explicit setting in the environment still wins).
LOAD_TEST_EDGE = {"TECHNIC_EDGE_INFLIGHT_PER_ADDR": "10000", "TECHNIC_EDGE_CONNS_PER_ADDR": "10000"}


def start_server(port: int, log_path: Path, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    """The launcher (HAProxy on 127.0.0.1:`port` in front of Serve, as deployed)."""
    cmd = [sys.executable, "-m", "deployments.launch", str(ROOT / "serve_config.yaml"),
           "--host", "127.0.0.1", "--port", str(port)]
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**LOAD_TEST_EDGE, **os.environ, **(env or {})},
                            start_new_session=True)


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


def server_processes(proc: subprocess.Popen) -> dict[int, tuple[str, float, float]]:
    """{pid: (name, RSS MB, USS MB)} for the server's process tree (Ray's processes included;
    a replica's name is its Ray actor title, e.g. ray::ServeReplica:technic:Indicators)."""
    import psutil

    root = psutil.Process(proc.pid)
    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            m = p.memory_full_info()
            title = (p.cmdline() or [p.name()])[0]
            out[p.pid] = (os.path.basename(title)[:60], m.rss / 2**20, m.uss / 2**20)
        except psutil.Error:
            continue
    return out


def server_memory(proc: subprocess.Popen) -> dict[str, float]:
    """RSS and USS (MB) summed over the server's process tree, and how many processes that is
    (autoscaling adds replicas, each holding its own Panel)."""
    procs = server_processes(proc).values()
    return {"rss_mb": round(sum(r for _, r, _ in procs)),
            "uss_mb": round(sum(u for _, _, u in procs)), "processes": len(procs)}


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


@dataclass
class LocustResult:
    """What a headless Locust run left: its exit code (1 when any request failed, unless
    --exit-code-on-error says otherwise), its stats CSV rows by name ("Aggregated" = the
    total) and its failures CSV rows (one per distinct name + error, with an occurrence count)."""

    exit_code: int
    rows: dict[str, dict[str, str]]
    failures: list[dict[str, str]]
    log: Path

    @property
    def requests(self) -> int:
        return int(self.rows["Aggregated"]["Request Count"])

    @property
    def failed(self) -> int:
        return int(self.rows["Aggregated"]["Failure Count"])


def start_locust(url: str, users: int, run_time: str, user_class: str, prefix: Path,
                 env: dict[str, str] | None = None, stop_timeout_s: int = 10
                 ) -> subprocess.Popen:
    """Locust headless in a subprocess (never imported here: its gevent monkey-patching breaks
    a process that has already imported ssl), stats to `{prefix}_*.csv`, output to
    `{prefix}.log`. Each user's task in flight at the end gets `stop_timeout_s` to finish."""
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError("load tests run against 127.0.0.1 only")
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
           "--headless", "-u", str(users), "-r", str(users), "-t", run_time, "--host", url,
           "--csv", str(prefix), "--only-summary", "--stop-timeout", str(stop_timeout_s),
           user_class]
    with open(f"{prefix}.log", "wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT)


def read_stats(prefix: Path, exit_code: int = 0) -> LocustResult:
    """The stats and failures CSVs Locust wrote under `prefix` (also readable mid-run: Locust
    rewrites them every second)."""
    with open(f"{prefix}_stats.csv", newline="") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    with open(f"{prefix}_failures.csv", newline="") as fh:
        failures = list(csv.DictReader(fh))
    return LocustResult(exit_code, rows, failures, Path(f"{prefix}.log"))


def stop_locust(proc: subprocess.Popen, timeout_s: float = 60) -> int:
    """End a run before its --run-time (SIGTERM; the locustfile lets tasks in flight finish
    and the CSVs catch up); its exit code. Killed if it has not exited after `timeout_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def run_locust(url: str, users: int, run_time: str, user_class: str, prefix: Path,
               env: dict[str, str] | None = None, stop_timeout_s: int = 10) -> LocustResult:
    """Locust headless until its --run-time is up; its exit code and CSVs."""
    proc = start_locust(url, users, run_time, user_class, prefix, env, stop_timeout_s)
    return read_stats(prefix, proc.wait())


Sample = tuple[float, dict[int, tuple[str, float, float]]]  # (seconds, server_processes)


def sample_rss(server: subprocess.Popen, locust: subprocess.Popen, every_s: float
               ) -> list[Sample]:
    """The server's processes and their memory every `every_s` seconds until Locust exits."""
    t0, out = time.monotonic(), []
    while locust.poll() is None:
        try:
            locust.wait(every_s)
        except subprocess.TimeoutExpired:
            out.append((round(time.monotonic() - t0, 1), server_processes(server)))
    return out


def rss_growth(series: list[Sample], warmup_s: float) -> tuple[float, list[tuple[str, float]]]:
    """RSS growth (MB) of the processes alive from the first sample after `warmup_s` to the
    last, and the five that grew most. Processes the autoscaler starts or stops in between
    (a replica holds ~0.9 GB of Panel and kernels) change the tree's total, not a process's
    own memory, so they are left out; tree totals are printed beside it."""
    steady = [procs for t, procs in series if t >= warmup_s] or [series[-1][1]]
    first, last = steady[0], steady[-1]
    kept = sorted(set(first) & set(last))
    grew = sorted(((last[pid][0], last[pid][1] - first[pid][1]) for pid in kept),
                  key=lambda g: -g[1])
    return sum(g for _, g in grew), grew[:5]


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
    ap.add_argument("--user-class", default="MixedUser",
                    choices=["MixedUser", "FullScanUser", "UncachedScanUser"])
    ap.add_argument("--data-dir", default=None, help="default: $TECHNIC_DATA_DIR")
    ap.add_argument("--rss-every", type=float, default=0.0,
                    help="sample the server's RSS every N seconds (0: once, at start)")
    ap.add_argument("--rss-bound-mb", type=float, default=300.0)
    ap.add_argument("--rss-warmup-s", type=float, default=90.0,
                    help="samples before this are warm-up (replicas being added)")
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
        locust = start_locust(url, args.users, args.run_time, args.user_class, work / "locust")
        rss = sample_rss(proc, locust, args.rss_every) if args.rss_every else []
        result = read_stats(work / "locust", locust.wait())
    finally:
        stop_server(proc)
    report(result.rows)
    fails, p99 = result.failed, float(result.rows["Aggregated"]["99%"])
    problems = ([f"{fails} failed requests (see {work}/locust_failures.csv)"] if fails else []) + \
               ([f"p99 {p99:.0f} ms > {args.p99_ms:.0f} ms"] if p99 > args.p99_ms else [])
    if rss:
        growth, top = rss_growth(rss, args.rss_warmup_s)
        print(f"server RSS MB (processes) every {args.rss_every:g} s: " + ", ".join(
            f"{sum(r for _, r, _ in procs.values()):.0f} ({len(procs)})" for _, procs in rss))
        print(f"growth of the processes alive from {args.rss_warmup_s:g} s to the end: "
              f"{growth:+.0f} MB over {result.requests:,} requests; most: " +
              ", ".join(f"{name} {g:+.0f}" for name, g in top))
        if growth > args.rss_bound_mb:
            problems.append(f"server RSS grew {growth:.0f} MB > {args.rss_bound_mb:.0f} MB")
    print("FAIL: " + "; ".join(problems) if problems else "OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
