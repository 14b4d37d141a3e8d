"""Benchmark: a screen's estimated cost (technic_v4/screens/cost.py) against what it takes.

    python bench/bench_screen_cost.py [--rows 1000] [--bars 5100] [--scan]
    python bench/bench_screen_cost.py --rss DATA_DIR

For each expression (the presets, README examples, long and nested windows), compiled over
the scan's schema: the estimated bar reads and MB for `--rows` symbols at one session, then
its evaluation on random packed arrays (an ArrayEnv of rows x bars, the scan's layout):
CPU seconds (process time, median of 3; once for the heavy ones) and the peak of memory
allocated (tracemalloc, which numpy reports to). ns/read = CPU / estimated reads: the cost
model is good where that ratio holds across expressions. With `--scan`, the same expressions
in `run_scan` on the first `--rows` symbols of a 5,000-symbol demo store (the window and the
indicators over it included): CPU seconds and the process's peak RSS growth. With `--rss`,
a few over the whole 5,000-symbol universe, each in a fresh process: CPU seconds, peak RSS
and its growth over a scan without `where`, beside the estimated MB.
The budget (Settings.screen_max_reads / screen_max_memory_mb) is chosen from these figures:
README "Screens", cost.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from technic_v4.scan.expressions import SCHEMA
from technic_v4.screens import ArrayEnv, compile_screen
from technic_v4.screens.presets import PRESETS

NESTED = {
    "sma 1260": "Close > sma(Close, 1260)",
    "ema 1260": "Close > ema(Close, 1260)",
    "sma(sma) 1260": "sma(sma(Close, 1260), 1260) > 0",
    "sma(sma) x2 cols": "sma(sma(Close, 1260), 1260) > sma(sma(High, 1260), 1260)",
    "sma^3 1260": "sma(sma(sma(Close, 1260), 1260), 1260) > 0",
    "bomb sma^4 1260": "sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0",
}
HEAVY = 1e8  # estimated reads above which a timing is taken once


def expressions() -> dict[str, str]:
    out = {}
    for p in PRESETS.values():
        out[p.name] = str(p.definition["where"])
    out["readme crosses"] = "crosses_above(SMA50, SMA200, within=5) and rel_volume_50 > 1.5"
    out["readme weekly"] = 'Sector in ("Energy", "Utilities") and W.RSI > 50 and RSI < 40'
    out["readme change"] = "change(Close, 21) > 0.1 and sector_rank(mom_63) <= 3"
    return {**out, **NESTED}


def make_env(rows: int, bars: int, columns: set[str], seed: int = 0) -> ArrayEnv:
    rng = np.random.default_rng(seed)
    walk = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((rows, bars)), axis=1))
    daily = {name: walk * (1 + 0.01 * i) for i, name in enumerate(sorted(columns))}
    weeks = bars // 5
    codes = rng.integers(0, 11, rows)
    return ArrayEnv(daily, text={"Sector": np.array(["Energy", "Utilities"] * 6)[codes]},
                    groups={"Sector": codes, "Industry": codes},
                    weekly={name: walk[:, ::5][:, :weeks] for name in columns},
                    week_of=np.minimum(np.arange(bars) // 5, weeks - 1))


def evaluate(rows: int, bars: int) -> None:
    exprs = expressions()
    screens = {k: compile_screen(v, SCHEMA, "bool") for k, v in exprs.items()}
    columns = {c for s in screens.values() for c in (*s.columns, *s.weekly_columns)
               if SCHEMA[c] == "number"}
    env = make_env(rows, bars, columns)
    print(f"evaluation at one session, {rows:,} symbols x {bars:,} bars (ArrayEnv)")
    print(f"{'expression':22} {'reads':>10} {'CPU s':>8} {'ns/read':>8} {'est MB':>8} "
          f"{'peak MB':>8}")
    ratios = []
    for name, screen in screens.items():
        reads, size = screen.cost.total(rows)
        cpu = []
        for _ in range(1 if reads > HEAVY else 3):
            tracemalloc.start()
            t0 = time.process_time()
            screen.evaluate(env, 1)
            cpu.append(time.process_time() - t0)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        sec = statistics.median(cpu)
        ns = 1e9 * sec / reads
        if reads > 1e6:
            ratios.append(ns)
        print(f"{name:22} {reads:10.3g} {sec:8.3f} {ns:8.2f} {size / 2**20:8.1f} "
              f"{peak / 2**20:8.1f}")
    print(f"ns per read where reads > 1e6: median {statistics.median(ratios):.2f}, "
          f"max {max(ratios):.2f}")


def scan(rows: int) -> None:
    from technic_v4.data.demo import build_demo_store
    from technic_v4.data.reader import StoreReader
    from technic_v4.scan import ScanConfig, run_scan

    with tempfile.TemporaryDirectory() as tmp:
        build_demo_store(tmp)
        reader = StoreReader(tmp)
        symbols = reader.snapshot().universe["symbol"].iloc[:rows].tolist()
        run_scan(ScanConfig(symbols=symbols), loader=reader)  # warm: kernels compiled
        print(f"run_scan over {rows:,} demo symbols")
        print(f"{'expression':22} {'reads':>10} {'CPU s':>8} {'RSS+ MB':>8}")
        for name, text in expressions().items():
            screen = compile_screen(text, SCHEMA, "bool")
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.process_time()
            run_scan(ScanConfig(symbols=symbols, where=text), loader=reader)
            sec = time.process_time() - t0
            grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
            print(f"{name:22} {screen.cost.total(rows)[0]:10.3g} {sec:8.2f} {grew:8.0f}")


RSS_CASES = {"no where": None, "breakout-52w": PRESETS["breakout-52w"].definition["where"],
             "sma 1260": NESTED["sma 1260"], "ema 1260": NESTED["ema 1260"],
             "sma(sma) 1260": NESTED["sma(sma) 1260"]}


def one_scan(data_dir: str, where: str | None) -> None:
    """One full-universe scan in this (fresh) process: prints CPU s and peak RSS MB."""
    from technic_v4.data.reader import StoreReader
    from technic_v4.scan import ScanConfig, run_scan
    from technic_v4.screens.cost import Budget

    t0 = time.process_time()
    run_scan(ScanConfig(where=where), loader=StoreReader(data_dir),
             budget=Budget(float("inf"), float("inf")))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{time.process_time() - t0:.2f} {peak:.0f}")


def rss(data_dir: str) -> None:
    """Each case's full-universe scan in a fresh process: CPU and peak RSS over 'no where'."""
    import subprocess
    import sys

    from technic_v4.data.demo import build_demo_store
    from technic_v4.data.reader import StoreReader

    if not (Path(data_dir) / "manifest.json").exists():
        build_demo_store(data_dir)
    n = len(StoreReader(data_dir).snapshot().universe)
    print(f"run_scan over the whole demo universe ({n:,} symbols), a fresh process each")
    print(f"{'expression':16} {'reads':>10} {'est MB':>8} {'CPU s':>8} {'peak MB':>8} "
          f"{'+MB':>6}")
    base = None
    for name, where in RSS_CASES.items():
        out = subprocess.run([sys.executable, __file__, "--one", data_dir, "--where",
                              where or ""], capture_output=True, text=True, check=True)
        cpu, peak = (float(v) for v in out.stdout.split()[-2:])
        base = peak if base is None else base
        reads, size = (compile_screen(where, SCHEMA, "bool").cost.total(n) if where
                       else (0.0, 0.0))
        print(f"{name:16} {reads:10.3g} {size / 2**20:8.0f} {cpu:8.2f} {peak:8.0f} "
              f"{peak - base:6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=5100)
    ap.add_argument("--scan", action="store_true")
    ap.add_argument("--rss", metavar="DATA_DIR", help="a demo store (built there if absent)")
    ap.add_argument("--one", metavar="DATA_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--where", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one_scan(args.one, args.where or None)
        return
    if args.rss:
        rss(args.rss)
        return
    evaluate(args.rows, args.bars)
    if args.scan:
        scan(args.rows)


if __name__ == "__main__":
    main()
