"""Memory released after concurrent validations: the in-process app (uvicorn in this process,
no launcher or edge), 16 concurrent `/v1/validate` from 4 addresses on a store of your choice.

    flock /tmp/technic-heavy.lock python bench/bench_validate_memory.py --data-dir DIR \
        [--after-s 60]

Prints the statuses and this process's RSS: idle (after a warm scan), peak (sampled every
0.2 s), right after the last answer, and `--after-s` seconds later; then how many cached
windows the reader still holds and their sessions. The idle hook (deployments/api/work.py)
runs when the last heavy request ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from rss import PeakRss  # noqa: E402  (bench/, the script's folder)
from serve_support import free_port  # noqa: E402

from deployments.api.main import create_app  # noqa: E402
from technic_v4.service.inprocess import InProcessBackend  # noqa: E402
from technic_v4.settings import Settings  # noqa: E402

VALIDATE = {"where": "sma(Close, 50) > sma(Close, 200)", "horizons": [5, 21]}


@contextmanager
def serving(app: object) -> Iterator[str]:
    """`app` under uvicorn in a thread, believing X-Forwarded-For from 127.0.0.1."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,  # type: ignore
                                           log_level="warning", proxy_headers=True,
                                           forwarded_allow_ips="127.0.0.1"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--after-s", type=float, default=60.0)
    args = ap.parse_args()
    proc = psutil.Process()
    rss = lambda: proc.memory_info().rss / (1 << 20)  # noqa: E731
    backend = InProcessBackend(args.data_dir, None, chunk_size=1000)
    app = create_app(backend, api_keys=(), settings=Settings(
        api_keys="", api_key_hashes="", rate_limit=None, redis_url=""))
    with serving(app) as url, httpx.Client(base_url=url, timeout=900) as client:
        client.post("/v1/scan", json={"limit": 5})
        time.sleep(2)
        with PeakRss(rss) as sampled, ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda k: client.post(
                "/v1/validate", json={**VALIDATE, "top_n": k + 1},
                headers={"x-forwarded-for": f"10.0.0.{k % 4}"}), range(16)))
        right_after = rss()
        time.sleep(args.after_s)
        print(json.dumps({
            "statuses": sorted(r.status_code for r in replies),
            "retry_after": sorted({r.headers.get("retry-after", "") for r in replies
                                   if r.status_code != 200}),
            "rss_idle_mb": round(sampled.idle), "rss_peak_mb": round(sampled.peak),
            "rss_right_after_mb": round(right_after),
            f"rss_{args.after_s:g}s_after_mb": round(rss()),
            "reader_windows_sessions": backend.reader.cached_sessions()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
