"""Benchmark: compile + evaluate a screen `where` against pandas `DataFrame.query`.

    python bench/bench_screen_expr.py [--repeats 51] [--rows 5000] [--bars 300]

On random packed arrays (rows x bars, float64, each row NaN before a random first bar):
  screen      compile_screen(text) + .evaluate(env, width=1): the scan path, from text
  evaluate    .evaluate(env, width=1) of an already compiled screen
  query       pandas DataFrame.query(text) on a rows-row frame of the last-bar values
              (the work a scan that only had the current values would do)
for the 4-condition screen both can express, then for screens only the compiler can
(lags, windows, crosses, ranks), and one validation-style run (width = all bars).
Then in a warm scan (`run_scan` on the 5,000-symbol demo market, its evaluation kept as a
server keeps it): the same scan without and with each `where`, and the difference — what a
screen adds to a warm scan (target: under 5 ms for the 4-condition screen).
Prints medians (ms) and the screen / query ratio; the machines are shared, so trust medians.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd
from timing import median_ms  # bench/ is on sys.path when run as a script

from technic_v4.data.demo import build_demo_store
from technic_v4.scan import ScanConfig
from technic_v4.screens import ArrayEnv, compile_screen

COLUMNS = ("RSI", "Close", "SMA200", "Volume_ratio", "ATR_pct", "MACD", "MACD_signal", "High")
WHERE = "RSI < 30 and Close > SMA200 and Volume_ratio > 2 and ATR_pct >= 1"
RICHER = {
    "lag + window": "Close > highest(High, 50)[1] and RSI < 70 and Volume_ratio > 1.5 "
    "and Close > sma(Close, 20)",
    "crosses + ema": "crosses_above(MACD, MACD_signal, within=3) and Close > ema(Close, 20) "
    "and RSI between 40 and 60 and Volume_ratio > 1",
    "ranks": "pct_rank(RSI) > 0.9 and sector_rank(Volume_ratio) <= 5 and Sector in "
    '("Energy", "Utilities") and Close > SMA200',
}


def make_env(rows: int, bars: int, seed: int = 0) -> ArrayEnv:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, bars // 2, rows)
    daily = {}
    for name in COLUMNS:
        scale = {"RSI": 20, "Volume_ratio": 1, "ATR_pct": 2}.get(name, 10)
        level = {"RSI": 50, "Volume_ratio": 1.2, "ATR_pct": 3}.get(name, 100)
        a = level + scale * rng.standard_normal((rows, bars))
        a[np.arange(bars)[None, :] < first[:, None]] = np.nan
        daily[name] = a
    sectors = np.array(["Energy", "Utilities", "Tech", "Health", None], dtype=object)
    codes = rng.integers(0, 5, rows)
    return ArrayEnv(
        daily,
        text={"Sector": sectors[codes]},
        groups={"Sector": np.where(codes == 4, -1, codes)},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=51)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--bars", type=int, default=300)
    parser.add_argument("--data-dir", default=None, help="a store (default: build the demo)")
    args = parser.parse_args()
    env = make_env(args.rows, args.bars)
    schema = {name: "number" for name in COLUMNS} | {"Sector": "text"}
    frame = pd.DataFrame({name: env.daily[name][:, -1] for name in COLUMNS})

    def scan(text: str) -> np.ndarray:
        return compile_screen(text, schema).evaluate(env, 1)

    for text in (WHERE, *RICHER.values()):  # warm: numba kernels load or compile once
        scan(text)
    compiled = compile_screen(WHERE, schema)
    assert np.array_equal(compiled.evaluate(env)[:, 0], frame.eval(WHERE).to_numpy())

    r = args.repeats
    print(f"{args.rows:,} rows x {args.bars} bars, median of {r} (ms)")
    t_scan = median_ms(lambda: scan(WHERE), r)
    t_eval = median_ms(lambda: compiled.evaluate(env, 1), r)
    t_compile = median_ms(lambda: compile_screen(WHERE, schema), r)
    t_query = median_ms(lambda: frame.query(WHERE), r)
    print(f"  where: {WHERE}")
    print(f"    screen (compile + evaluate) {t_scan:8.3f}")
    print(f"      compile only              {t_compile:8.3f}")
    print(f"      evaluate only             {t_eval:8.3f}")
    print(f"    pandas DataFrame.query      {t_query:8.3f}")
    print(f"    ratio screen / query        {t_scan / t_query:8.2f}")
    for label, text in RICHER.items():
        t_text = median_ms(lambda t=text: scan(t), r)
        print(f"  {label:14} screen (compile + evaluate) {t_text:8.3f}")
    wide = compile_screen(RICHER["lag + window"], schema)
    t_wide = median_ms(lambda: wide.evaluate(env, args.bars), max(3, r // 10))
    print(f"  lag + window, every bar (width {args.bars})    {t_wide:8.3f}")
    in_scan(args.data_dir, max(9, r // 3))


def in_scan(data_dir: str | None, repeats: int) -> None:
    """A warm scan (the in-process service's: the data version's evaluation kept, with the
    series each screen reads) without and with each where on the demo market: what a screen
    adds to a warm scan."""
    from technic_v4.scan.run import run_sync
    from technic_v4.service.inprocess import InProcessBackend

    with tempfile.TemporaryDirectory() as tmp:
        if data_dir is None:
            build_demo_store(tmp)
        backend = InProcessBackend(data_dir or tmp, warm=False)
        backend.warm()
        # the scan's own columns (ATR_pct is a fraction in a scan); the first keeps every row
        # the plain scan keeps (same forecasts and ranking work): the where's own cost
        screens = {"4 conds, keeps all": "RSI >= 0 and Close > 0 and Volume_ratio >= 0 and "
                                         "ATR_pct >= 0",
                   "4 conditions": "RSI < 30 and Close > SMA200 and Volume_ratio > 2 and "
                                   "ATR_pct >= 0.01", **RICHER}

        def scan(cfg: ScanConfig) -> int:
            return len(run_sync(backend.scan(cfg))[0])

        plain = ScanConfig()
        for cfg in (plain, *(ScanConfig(where=w) for w in screens.values())):
            scan(cfg)  # evaluate once per series set, compile
        t_plain = median_ms(lambda: scan(plain), repeats)
        print(f"\nwarm scan (in-process service), {len(backend.snapshot().universe):,} "
              f"symbols, median of {repeats} (ms)")
        print(f"  no where                       {t_plain:8.2f}")
        for label, text in screens.items():
            cfg = ScanConfig(where=text)
            t = median_ms(lambda c=cfg: scan(c), repeats)
            print(f"  where {label:24} {t:8.2f}   adds {t - t_plain:6.2f}   ({scan(cfg)} kept)")


if __name__ == "__main__":
    main()
