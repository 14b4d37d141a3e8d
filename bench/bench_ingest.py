"""Benchmark: ingest throughput (rows/s) and the cost of appending one session.

    python bench/bench_ingest.py [--symbols 5000] [--years 5] [--repeats 1]

Generates random-walk daily bars for N symbols x Y years of XNYS sessions (valid OHLC, so every
row is kept), writes them once as a long Parquet file and once as a folder of per-symbol
Yahoo-style CSV files (Date, Open, High, Low, Close, Adj Close, Volume), then times:
  long parquet   technic_v4.data.ingest.ingest_bars           (checks, store write, quality gate)
  csv folder     technic_v4.data.ingest_yahoo.ingest_csv_folder (same, plus reading N files)
  append 1 day   technic_v4.data.append.append_bars of one new session for every symbol
                 (writes one tail segment: see store.py; includes the quality gate, which
                 reloads the whole store), the segment write alone, and the quality gate alone
  load 252       store.load_panel(bars=252) on the one-segment store and after 20 appends
                 (1 base + 20 tail segments)
Everything runs in a temporary folder. These machines are noisy: trust medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from technic_v4.data.append import append_bars
from technic_v4.data.calendar import sessions_between
from technic_v4.data.ingest import ingest_bars
from technic_v4.data.ingest_yahoo import ingest_csv_folder
from technic_v4.data.quality import check_store
from technic_v4.data.store import append_segment, compact_store, load_panel

TAILS = 20


def make_bars(n: int, years: int, seed: int = 7) -> tuple[list[str], pd.DatetimeIndex, dict]:
    sessions = sessions_between("2019-01-02", "2030-12-31")[: 252 * years + 1]
    rng = np.random.default_rng(seed)
    t = len(sessions)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, t)), axis=1))
    opn = close * np.exp(rng.normal(0, 0.005, (n, t)))
    high = np.maximum(opn, close) * (1 + rng.uniform(0, 0.01, (n, t)))
    low = np.minimum(opn, close) * (1 - rng.uniform(0, 0.01, (n, t)))
    vol = rng.integers(1e4, 1e7, (n, t)).astype(float)
    symbols = [f"S{i:04d}" for i in range(n)]
    arrays = {"open": opn.round(4), "high": high.round(4), "low": low.round(4),
              "close": close.round(4), "volume": vol}
    return symbols, sessions, arrays


def long_table(symbols, sessions, arrays, cols: slice) -> pa.Table:
    n = len(symbols)
    k = len(sessions[cols])
    return pa.table({
        "symbol": np.repeat(np.asarray(symbols, dtype=object), k),
        "date": np.tile(sessions[cols].strftime("%Y-%m-%d").to_numpy(dtype=object), n),
        **{f: a[:, cols].ravel() for f, a in arrays.items()},
    })


def write_folder(folder: Path, symbols, sessions, arrays, cols: slice) -> None:
    folder.mkdir()
    dates = pa.array(sessions[cols].strftime("%Y-%m-%d"))
    for i, sym in enumerate(symbols):
        a = {f: v[i, cols] for f, v in arrays.items()}
        table = pa.table({"Date": dates, "Open": a["open"], "High": a["high"], "Low": a["low"],
                          "Close": a["close"], "Adj Close": a["close"], "Volume": a["volume"]})
        pacsv.write_csv(table, folder / f"{sym}.csv")


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    symbols, sessions, arrays = make_bars(args.symbols, args.years)
    history = slice(0, len(sessions) - TAILS)  # the last sessions are kept back for appends
    rows = len(symbols) * (len(sessions) - TAILS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        pq.write_table(long_table(symbols, sessions, arrays, history), root / "bars.parquet")
        write_folder(root / "csv", symbols, sessions, arrays, history)
        print(f"{len(symbols)} symbols x {len(sessions) - TAILS} sessions = {rows:,} rows "
              f"(inputs written in {time.perf_counter() - t0:.1f} s)")
        ingest_bars(root / "bars.parquet", root / "warm")  # numba compile / cache load

        s = timed(lambda: ingest_bars(root / "bars.parquet", root / "pq"), args.repeats)
        print(f"long parquet  {s:7.2f} s  {rows / s:12,.0f} rows/s")
        s = timed(lambda: ingest_csv_folder(root / "csv", root / "csv_store"), args.repeats)
        print(f"csv folder    {s:7.2f} s  {rows / s:12,.0f} rows/s")

        store_dir = root / "pq"
        load = timed(lambda: load_panel(store_dir, bars=252), max(5, args.repeats))
        times = []
        for i in range(len(sessions) - TAILS, len(sessions)):
            day = long_table(symbols, sessions, arrays, slice(i, i + 1)).to_pandas()
            times.append(timed(lambda d=day: append_bars(d, store_dir), 1))
        print(f"append 1 day  {times[0]:7.2f} s  ({len(day):,} rows; median of {TAILS}: "
              f"{statistics.median(times):.2f} s; new tail segment + quality gate)")
        s = timed(lambda: check_store(store_dir, write=False), args.repeats)
        print(f"quality gate  {s:7.2f} s  over the whole store (load + checks)")
        tails = timed(lambda: load_panel(store_dir, bars=252), max(5, args.repeats))
        print(f"load 252      {load * 1e3:7.1f} ms one segment, {tails * 1e3:.1f} ms with "
              f"{TAILS} tail segments")
        p = load_panel(store_dir, bars=1)  # written again as the (fake) next day
        nxt = pd.DatetimeIndex([sessions[-1] + pd.Timedelta(days=1)])
        s = timed(lambda: append_segment(store_dir, sessions=nxt, universe=p.universe,
                                         **{f: getattr(p, f) for f in arrays}), 1)
        print(f"segment write {s * 1e3:7.1f} ms  (store.append_segment of one session alone)")
        s = timed(lambda: compact_store(store_dir), 1)
        print(f"compact       {s:7.2f} s  ({TAILS + 1} tails -> one segment)")

if __name__ == "__main__":
    main()
