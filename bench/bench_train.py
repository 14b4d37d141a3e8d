"""Benchmark: `technic models train` on a store of real-sized bars, end to end.

    python bench/bench_train.py [--symbols 60] [--years 3] [--repeats 3] [--cold]

The repository has no 50+ symbols of real daily bars, so the store is the demo generator's
market at that size written with a non-synthetic source label (`bench:demo-as-real`): what
training sees is shaped like real bars (listings, delistings, gaps) and the command treats the
store as real. Each repeat runs `python -m technic_v4.cli models train` in a fresh process
(imports, store read, features, both horizons, metrics, model files: what a user waits for)
into a fresh models folder, and prints the wall time, median and the trees kept; the README's
figure is this script's median. `--cold` gives the runs an empty numba cache
(NUMBA_CACHE_DIR), as on a fresh install before any scan: the indicator kernels compile first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.store import write_store

SOURCE = "bench:demo-as-real"


def real_labelled_store(root: Path, symbols: int, years: int) -> Path:
    """A demo market of `symbols` x `years` written as a store with a non-synthetic source."""
    start = f"{2026 - years}-01-02"
    m = generate_demo_market(DemoSpec(n_symbols=symbols, start=start, end="2025-12-31"))
    write_store(root, sessions=m.sessions, universe=m.universe, open=m.open, high=m.high,
                low=m.low, close=m.close, volume=m.volume, source=SOURCE,
                calendar=m.calendar)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=60)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true",
                        help="an empty numba cache for every run (a fresh install)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = real_labelled_store(work / "data", args.symbols, args.years)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECHNIC_")}
    env.update(TECHNIC_DATA_DIR=str(data), XDG_DATA_HOME=str(work / "home"))
    print(f"store: {args.symbols} symbols x {args.years} years, source {SOURCE}; "
          f"{os.cpu_count()} cores; numba cache {'empty' if args.cold else 'as it is'}")
    times = []
    for k in range(args.repeats):
        models = work / f"models{k}"
        if args.cold:
            env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-numba-")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "technic_v4.cli", "models", "train",
                               "--models-dir", str(models)], env=env, capture_output=True,
                              text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit(f"models train failed ({proc.returncode}): {proc.stderr}")
        trees = {p.name.split(".")[0]: json.loads(p.read_text())["xgboost"]["trees"]
                 for p in sorted(models.glob("*.meta.json"))}
        print(f"run {k + 1}: {times[-1]:.1f} s wall, trees {trees}")
    print(f"median {statistics.median(times):.1f} s over {args.repeats} runs")


if __name__ == "__main__":
    main()
