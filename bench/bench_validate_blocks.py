"""Validation over blocks of sessions: wall time, peak memory and cancel latency by block size.

    flock /tmp/technic-heavy.lock python bench/bench_validate_blocks.py --data-dir DIR \
        [--blocks 0,252,500] [--repeats 3] [--cancels 5]

For each block size (0: chosen from the universe's size, technic_v4/validate/replay.py), in a
fresh process on the store in DIR (`technic data demo --data-dir DIR` builds the 5,000-symbol
demo market; `--symbols 20000` the large one), for two screens, 4 horizons:
  default   the default screen (TechRating, `technic validate` without options)
  bench     bench_validate.py's where + rank
  warm_s    median wall of `validate` after a first run (store read, kernels compiled)
  peak_mb   the process's peak RSS (ru_maxrss) over those runs
  cancel    `--cancels` validates cancelled at evenly spread points of a warm run: the
            median and max time from `token.cancel()` to `Cancelled` being raised
Prints one JSON object per block size and screen.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from technic_v4.cancel import Cancelled, CancelToken
from technic_v4.data.reader import StoreReader
from technic_v4.scan import ScanConfig
from technic_v4.validate import ValidateOptions, validate

SCREENS = {"default": {},
           "bench": {"where": "pct_rank(mom_21) > 0.5 and Close > SMA50",
                     "rank": "pct_rank(mom_21) - 1.25 * pct_rank(mom_5)"}}
OPTIONS = ValidateOptions(horizons=(1, 5, 10, 21))


def one(data_dir: str, screen: str, blocks: int, repeats: int, cancels: int) -> dict:
    """The figures of one block size and screen, in this process."""
    reader = StoreReader(data_dir)
    cfg = ScanConfig(**SCREENS[screen])
    t0 = time.perf_counter()
    report = validate(cfg, reader, OPTIONS, block_sessions=blocks).report
    first = time.perf_counter() - t0
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        validate(cfg, reader, OPTIONS, block_sessions=blocks)
        walls.append(time.perf_counter() - t0)
    warm = statistics.median(walls)
    latencies = []
    for k in range(cancels):
        token, raised = CancelToken(), []

        def run(token: CancelToken = token, raised: list = raised) -> None:
            try:
                validate(cfg, reader, OPTIONS, block_sessions=blocks, cancel_token=token)
            except Cancelled:
                raised.append(time.perf_counter())

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(warm * (k + 0.5) / cancels)
        at = time.perf_counter()
        token.cancel("bench")
        worker.join()
        if raised:
            latencies.append(raised[0] - at)
    return {"screen": screen, "block_sessions": blocks, "blocks": report["data"]["blocks"],
            "symbols": report["data"]["symbols"],
            "sessions": report["data"]["sessions_evaluated"], "first_s": round(first, 2),
            "warm_s": round(warm, 2),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cancel_ms": {"n": len(latencies),
                          "median": round(1000 * statistics.median(latencies)) if latencies
                          else None,
                          "max": round(1000 * max(latencies)) if latencies else None}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--blocks", default="0,252,500")
    ap.add_argument("--screens", default="default,bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cancels", type=int, default=5)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # screen:blocks, in-process
    args = ap.parse_args()
    if args.one:
        screen, blocks = args.one.split(":")
        print(json.dumps(one(args.data_dir, screen, int(blocks), args.repeats, args.cancels)))
        return 0
    for screen in args.screens.split(","):
        for blocks in args.blocks.split(","):
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--data-dir",
                                  args.data_dir, "--repeats", str(args.repeats), "--cancels",
                                  str(args.cancels), "--one", f"{screen}:{blocks}"],
                                 capture_output=True, text=True, check=True)
            print(out.stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
