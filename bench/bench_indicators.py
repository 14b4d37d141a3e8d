"""Benchmark: the indicator stage against the usual ways of computing the same outputs.

    python bench/bench_indicators.py [--repeats 5] [--small-only]

On a seeded random-walk panel (every symbol a full history), 5,000 x 252 and 20,000 x 1,260:
  technic         compute_indicators(panel): all 23 outputs at each symbol's last bar, warm
                  (after a first call compiles / loads the numba cache), all numba threads and
                  numba.set_num_threads(1); also with history=True (every output at every bar)
  talib loop      TA-Lib called per symbol on its own bars, the same 23 outputs (last bar)
  pandas          a long (symbol, session) DataFrame, groupby + rolling mean/std/max/min;
                  RSI, ATR and MACD by ewm (approximations: no SMA seeds, so not TA-Lib values)
Prints median ms and the ratios talib/technic and pandas/technic. The pandas peer runs once
at the big size (about a minute). These machines are shared: the 1-minute load average is
printed (this benchmark alone adds 1-2); well above that, other work held the cores.
"""

from __future__ import annotations

import argparse
import os

import numba
import numpy as np
import pandas as pd
from peers import talib_loop
from timing import median_ms  # bench/ is on sys.path when run as a script

from technic_v4.data.panel import Panel, panel_from_arrays
from technic_v4.indicators import compute_indicators


def random_walk_panel(n: int, t: int, seed: int = 42) -> Panel:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n, t)), axis=1))
    open_ = close * (1.0 + rng.normal(0.0, 0.005, (n, t)))
    spread = 1.0 + np.abs(rng.normal(0.0, 0.01, (n, t)))
    return panel_from_arrays(
        [f"S{i:05d}" for i in range(n)],
        pd.bdate_range("2015-01-02", periods=t),
        open=open_,
        high=np.maximum(open_, close) * spread,
        low=np.minimum(open_, close) / spread,
        close=close,
        volume=rng.integers(10_000, 5_000_000, (n, t)).astype(np.float64),
    )


def pandas_groupby(panel: Panel) -> pd.DataFrame:
    """Long-frame groupby/rolling; RSI, ATR, MACD via ewm (approximations, labelled)."""
    n, t = panel.close.shape
    df = pd.DataFrame(
        {
            "symbol": np.repeat(panel.symbols.astype(str), t),
            **{f: getattr(panel, f).ravel() for f in ("high", "low", "close", "volume")},
        }
    )
    g = df.groupby("symbol", sort=False)
    close = g["close"]

    def roll(col: str, w: int):
        return g[col].rolling(w, min_periods=w)

    def per_group(series: pd.Series) -> pd.Series:
        return series.reset_index(level=0, drop=True)

    res = pd.DataFrame(index=df.index)
    delta = close.diff()
    gain, loss = delta.clip(lower=0.0), (-delta).clip(lower=0.0)
    key = df["symbol"]
    avg_gain = per_group(gain.groupby(key).ewm(alpha=1 / 14, adjust=False).mean())
    avg_loss = per_group(loss.groupby(key).ewm(alpha=1 / 14, adjust=False).mean())
    res["RSI"] = 100.0 * avg_gain / (avg_gain + avg_loss)
    fast = per_group(close.ewm(span=12, adjust=False).mean())
    slow = per_group(close.ewm(span=26, adjust=False).mean())
    res["MACD"] = fast - slow
    res["MACD_signal"] = per_group(res["MACD"].groupby(key).ewm(span=9, adjust=False).mean())
    res["MACD_hist"] = res["MACD"] - res["MACD_signal"]
    mid, std = per_group(roll("close", 20).mean()), per_group(roll("close", 20).std(ddof=0))
    res["BB_upper"], res["BB_middle"], res["BB_lower"] = mid + 2 * std, mid, mid - 2 * std
    res["BB_width"] = 4 * std / mid
    prev = close.shift(1)
    tr = pd.concat(
        [df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1
    ).max(axis=1)
    res["ATR"] = per_group(tr.groupby(key).ewm(alpha=1 / 14, adjust=False).mean())
    res["ATR_pct"] = res["ATR"] / df["close"]
    res["Volume_SMA20"] = per_group(roll("volume", 20).mean())
    res["Volume_ratio"] = df["volume"] / res["Volume_SMA20"]
    for w in (5, 21, 63, 126):
        res[f"mom_{w}"] = close.pct_change(w)
    for w in (20, 50, 200):
        res[f"SMA{w}"] = per_group(roll("close", w).mean())
    res["high_20"], res["low_20"] = (
        per_group(roll("high", 20).max()),
        per_group(roll("low", 20).min()),
    )
    res["dist_high_20"] = df["close"] / res["high_20"] - 1
    res["dist_low_20"] = df["close"] / res["low_20"] - 1
    return res.groupby(key, sort=False).tail(1)


def bench(n: int, t: int, repeats: int, pandas_repeats: int) -> None:
    panel = random_walk_panel(n, t)
    threads = numba.config.NUMBA_NUM_THREADS
    ours = compute_indicators(panel)  # compile or load the numba cache: not timed
    ref = talib_loop(panel.take(np.arange(min(n, 200))))
    worst = max(
        float(np.nanmax(np.abs(ours.last[k][: len(v)] - v) / np.abs(v))) for k, v in ref.items()
    )
    rows = []
    load_before = os.getloadavg()[0]
    numba.set_num_threads(threads)
    par = median_ms(lambda: compute_indicators(panel), repeats)
    rows.append((f"technic, numba {threads} threads", par, repeats))
    numba.set_num_threads(1)
    rows.append(
        ("technic, numba 1 thread", median_ms(lambda: compute_indicators(panel), repeats), repeats)
    )
    numba.set_num_threads(threads)
    hist = median_ms(lambda: compute_indicators(panel, history=True), repeats)
    rows.append((f"technic history=True, {threads} threads", hist, repeats))
    tl = median_ms(lambda: talib_loop(panel), repeats)
    rows.append(("TA-Lib per-symbol loop", tl, repeats))
    pdm = median_ms(lambda: pandas_groupby(panel), pandas_repeats)
    rows.append(("pandas groupby/rolling (ewm approx.)", pdm, pandas_repeats))

    print(
        f"\n{n:,} symbols x {t:,} sessions ({n * t / 1e6:.2f}M bars); "
        f"technic vs TA-Lib, max rel. diff on 200 symbols: {worst:.1e}"
    )
    print(f"  {'method':<40} {'median ms':>10} {'runs':>5} {'x technic':>10}")
    for name, ms, runs in rows:
        print(f"  {name:<40} {ms:>10.1f} {runs:>5} {ms / par:>9.1f}x")
    print(f"  ratios: talib/technic = {tl / par:.1f}x, pandas/technic = {pdm / par:.1f}x")
    print(
        f"  load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        " (incl. this run; OpenMP threads slow down many-fold when other work holds a core)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    ap.add_argument("--small-only", action="store_true", help="skip 20,000 x 1,260")
    args = ap.parse_args()
    bench(5_000, 252, args.repeats, args.repeats)
    if not args.small_only:
        bench(20_000, 1_260, args.repeats, 1)


if __name__ == "__main__":
    main()
