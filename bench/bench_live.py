"""Benchmark: the live state, one new one-minute bar per symbol, against recomputing from history.

    python bench/bench_live.py [--symbols 5000] [--minutes 390] [--watches 100]

A universe of --symbols symbols, each timeframe (M1, M5, M15, H1, D) seeded warm from 300
past bars of random prices; then a session of --minutes one-minute batches (every symbol a
bar each minute). Per minute, timed together:
  fold     `LiveState.fold(batch)`: the minute stored, the bars it closes built, every
           closed timeframe's indicators stepped (M1 every minute, M5 every 5th, ..., and the
           daily bar with the close at the last minute)
  watches  --watches compiled screens (`where`), each on one timeframe, evaluated over the
           live state when their timeframe closed a bar, and compared with their previous
           result (entered / left)
Reports the median and p99 per minute, and the state's memory (5 timeframes).
The peer recomputes the same values from history with the daily engine: `compute_indicators`
on a Panel of the timeframe's bars (300 + the session's), the live state's outputs, for each
timeframe that closed a bar; its median per minute is timed on the M1 recompute alone (a lower
bound: minutes where M5, M15 or H1 also close cost it more). The incremental peer is talipp
(a Python object per symbol and indicator, fed one bar at a time): SMA 20/50/200, EMA
9/21/50, RSI, MACD, Bollinger, ATR, ADX, OBV and VWAP for --talipp-symbols symbols seeded
from the same 300 bars, one new bar each, timed and scaled to --symbols, one timeframe.
Prints medians and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from timing import median_ms  # bench/ is on sys.path when run as a script

from technic_v4.data.panel import panel_from_arrays
from technic_v4.indicators import compute_indicators
from technic_v4.indicators.registry import OUTPUTS as REGISTRY_OUTPUTS
from technic_v4.live import BarBatch, LiveEnv, LiveState
from technic_v4.live.aggregate import session_number
from technic_v4.live.env import SCHEMA
from technic_v4.live.steps import OUTPUTS
from technic_v4.screens import compile_screen

TIMEFRAMES = ("M1", "M5", "M15", "H1", "D")
HISTORY = 300
OPEN = pd.Timestamp("2026-03-02 14:30", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)
TEMPLATES = (
    "RSI > {a} and Close > SMA20",
    "crosses_above(MACD, MACD_signal)",
    "Close > VWAP and Volume_ratio > {b}",
    "ADX > {a} / 2 and PLUS_DI > MINUS_DI",
    "crosses_below(Close, BB_lower) or dist_high_20 > -0.0{c}",
)


def history(rng: np.random.Generator, n: int, t: int) -> dict[str, np.ndarray]:
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, (n, t)), axis=1))
    high = close * (1 + rng.uniform(0, 0.002, (n, t)))
    low = close * (1 - rng.uniform(0, 0.002, (n, t)))
    return {"open": (high + low) / 2, "high": high, "low": low, "close": close,
            "volume": rng.uniform(1e3, 1e5, (n, t))}


def watches(count: int) -> list[tuple[str, object]]:
    """(timeframe, compiled where) for `count` watches spread over the timeframes."""
    out = []
    for k in range(count):
        text = TEMPLATES[k % len(TEMPLATES)].format(a=40 + k % 30, b=1 + (k % 5) / 10, c=k % 9 + 1)
        out.append((TIMEFRAMES[k % len(TIMEFRAMES)], compile_screen(text, SCHEMA)))
    return out


def run(n: int, minutes: int, n_watches: int, talipp_symbols: int) -> None:
    rng = np.random.default_rng(0)
    symbols = np.array([f"S{i:04d}" for i in range(n)], dtype=object)
    state = LiveState(symbols, TIMEFRAMES)
    first = session_number(OPEN)
    seeds = {}
    t0 = time.perf_counter()
    for tf in TIMEFRAMES:
        seeds[tf] = history(rng, n, HISTORY)
        sessions = (np.arange(first - HISTORY, first) if tf == "D"
                    else np.full(HISTORY, first - 1))
        state.seed(tf, seeds[tf], sessions)
    print(f"seed: {HISTORY} bars x {n:,} symbols x {len(TIMEFRAMES)} timeframes in "
          f"{time.perf_counter() - t0:.2f} s (first run includes numba compilation)")
    screens = watches(n_watches)
    envs = {tf: LiveEnv(state, unprefixed=tf) for tf in TIMEFRAMES}
    before = {k: np.zeros(n, dtype=bool) for k in range(len(screens))}
    state.open_session(OPEN, OPEN + minutes * MINUTE)
    level = seeds["M1"]["close"][:, -1].copy()
    times, cpu, folds, events = [], [], [], 0
    for m in range(minutes):
        close = level * np.exp(rng.normal(0, 0.001, n))
        high = np.maximum(close, level) * 1.0005
        low = np.minimum(close, level) * 0.9995
        batch = BarBatch(OPEN + m * MINUTE, symbols, level, high, low, close,
                         rng.uniform(1e3, 1e5, n))
        level = close
        t0, c0 = time.perf_counter(), time.process_time()
        closed = {ev.timeframe for ev in state.fold(batch)}
        if m == minutes - 1:  # the session's close: the last bars and the daily bar
            closed |= {ev.timeframe for ev in state.close_through(OPEN + minutes * MINUTE)}
        folds.append((time.perf_counter() - t0) * 1000)
        for k, (tf, screen) in enumerate(screens):
            if tf in closed:
                now = screen.evaluate(envs[tf], 1)[:, -1]
                events += int((now != before[k]).sum())
                before[k] = now
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    warm, warm_cpu, warm_fold = times[5:], cpu[5:], folds[5:]  # the first compile screens
    print(f"live, {n:,} symbols, {len(TIMEFRAMES)} timeframes, {n_watches} watches, "
          f"{len(warm)} minutes, per minute: median {statistics.median(warm):.2f} ms, "
          f"p99 {np.percentile(warm, 99):.2f} ms, max {max(warm):.2f} ms; of which fold "
          f"median {statistics.median(warm_fold):.2f} ms ({events:,} entered/left events)")
    print(f"  process CPU time per minute (both threads): median "
          f"{statistics.median(warm_cpu):.2f} ms, p99 {np.percentile(warm_cpu, 99):.2f} ms")
    print(f"live state memory: {state.nbytes / 2**20:.0f} MiB "
          f"({state.nbytes / n / len(TIMEFRAMES):.0f} B per symbol and timeframe, with the "
          f"session's minute bars)")

    names = [o for o in OUTPUTS if o in REGISTRY_OUTPUTS]
    bars = {f: np.concatenate([seeds["M1"][f], np.repeat(seeds["M1"][f][:, -1:], minutes, 1)],
                              axis=1) for f in ("open", "high", "low", "close", "volume")}
    sessions = pd.date_range("2000-01-03", periods=bars["close"].shape[1], freq="B")
    panel = panel_from_arrays(symbols, sessions, **bars)
    compute_indicators(panel, names)  # compile
    peer = median_ms(lambda: compute_indicators(panel, names), 7)
    print(f"peer: compute_indicators over {bars['close'].shape[1]} bars x {n:,} symbols, "
          f"{len(names)} outputs, one timeframe: median {peer:.1f} ms per minute")
    print(f"ratio peer / live (median): {peer / statistics.median(warm):.1f}x")
    incremental = talipp_ms(seeds["M1"], talipp_symbols) * n / talipp_symbols
    print(f"talipp: one bar, 13 indicators, {talipp_symbols:,} symbols scaled to {n:,}, one "
          f"timeframe: median {incremental:.0f} ms per minute; ratio talipp / live (median): "
          f"{incremental / statistics.median(warm):.1f}x")


def talipp_ms(seed: dict[str, np.ndarray], n: int) -> float:
    """talipp's update of one new bar for `n` symbols (median of 5 bars), in ms."""
    from talipp.indicators import ADX, ATR, BB, EMA, MACD, OBV, RSI, SMA, VWAP
    from talipp.ohlcv import OHLCV

    symbols = []
    for i in range(n):
        closes = seed["close"][i].tolist()
        bars = [OHLCV(*(float(seed[f][i, t]) for f in ("open", "high", "low", "close", "volume")))
                for t in range(len(closes))]
        symbols.append(([SMA(20, closes), SMA(50, closes), SMA(200, closes), EMA(9, closes),
                         EMA(21, closes), EMA(50, closes), RSI(14, closes),
                         MACD(12, 26, 9, closes), BB(20, 2.0, closes)],
                        [ATR(14, bars), ADX(14, 14, bars), OBV(bars), VWAP(bars)]))
    times = []
    for t in range(5):
        c = float(50 + t)
        bar = OHLCV(c, c + 0.1, c - 0.1, c, 1000.0)
        t0 = time.perf_counter()
        for on_close, on_bar in symbols:
            for ind in on_close:
                ind.add(c)
            for ind in on_bar:
                ind.add(bar)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--minutes", type=int, default=390)
    parser.add_argument("--watches", type=int, default=100)
    parser.add_argument("--talipp-symbols", type=int, default=250)
    args = parser.parse_args()
    run(args.symbols, args.minutes, args.watches, args.talipp_symbols)


if __name__ == "__main__":
    main()
