"""Memory released after concurrent validations, through the documented launcher: starts
`python -m deployments.local` (HAProxy edge + uvicorn) on a store of your choice, sends 16
concurrent `/v1/validate`, and prints the app process's RSS (HAProxy left out): idle (after a
warm scan), peak (sampled every 0.2 s), right after the last answer and `--after-s` later.

    flock /tmp/technic-heavy.lock python bench/bench_launcher_memory.py --data-dir DIR \
        [--after-s 60]

bench/bench_validate_memory.py measures the same in one process (no launcher, no edge).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from rss import PeakRss  # noqa: E402  (bench/, the script's folder)
from serve_support import free_port  # noqa: E402

VALIDATE = {"where": "sma(Close, 50) > sma(Close, 200)", "horizons": [5, 21]}


def app_rss(proc: psutil.Process) -> float:
    """MB held by the launcher and its children, HAProxy excluded."""
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if "haproxy" not in p.name()) / (1 << 20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--after-s", type=float, default=60.0)
    args = ap.parse_args()
    port = free_port()
    env = {**os.environ, "TECHNIC_DATA_DIR": args.data_dir,
           "TECHNIC_STATE_DIR": tempfile.mkdtemp(prefix="technic-bench-state-"),
           "TECHNIC_HEAVY_PER_CLIENT": "3"}  # one client address here: let all 3 slots fill
    launcher = subprocess.Popen([sys.executable, "-m", "deployments.local", "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as client:
            for _ in range(600):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            client.post("/v1/scan", json={"limit": 5})
            time.sleep(3)
            proc = psutil.Process(launcher.pid)
            with PeakRss(lambda: app_rss(proc)) as rss, ThreadPoolExecutor(16) as pool:
                replies = list(pool.map(lambda k: client.post(
                    "/v1/validate", json={**VALIDATE, "top_n": k + 1}), range(16)))
            right_after = app_rss(proc)
            time.sleep(args.after_s)
            print(json.dumps({
                "statuses": sorted(r.status_code for r in replies),
                "rss_idle_mb": round(rss.idle), "rss_peak_mb": round(rss.peak),
                "rss_right_after_mb": round(right_after),
                f"rss_{args.after_s:g}s_after_mb": round(app_rss(proc))}))
    finally:
        launcher.terminate()
        launcher.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
