"""Benchmark: ingest throughput (rows/s) and the cost of appending one session.

    python bench/bench_ingest.py [--symbols 5000] [--years 5] [--repeats 1]

Generates random-walk daily bars for N symbols x Y years of XNYS sessions (valid OHLC, so every
row is kept), writes them once as a long Parquet file and once as a folder of per-symbol
Yahoo-style CSV files (Date, Open, High, Low, Close, Adj Close, Volume), then times:
  long parquet   technic_v4.data.ingest.ingest_bars           (checks, store write, quality gate)
  csv folder     technic_v4.data.ingest_yahoo.ingest_csv_folder (same, plus reading N files)
  append 1 day   technic_v4.data.append.append_bars of one new session for every symbol
                 (rewrites the store atomically: see append.py for why), and of the
                 quality gate alone over the whole store
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
    history = slice(0, len(sessions) - 1)  # the last session is kept back for the append
    rows = len(symbols) * (len(sessions) - 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        pq.write_table(long_table(symbols, sessions, arrays, history), root / "bars.parquet")
        write_folder(root / "csv", symbols, sessions, arrays, history)
        print(f"{len(symbols)} symbols x {len(sessions) - 1} sessions = {rows:,} rows "
              f"(inputs written in {time.perf_counter() - t0:.1f} s)")
        ingest_bars(root / "bars.parquet", root / "warm")  # numba compile / cache load

        s = timed(lambda: ingest_bars(root / "bars.parquet", root / "pq"), args.repeats)
        print(f"long parquet  {s:7.2f} s  {rows / s:12,.0f} rows/s")
        s = timed(lambda: ingest_csv_folder(root / "csv", root / "csv_store"), args.repeats)
        print(f"csv folder    {s:7.2f} s  {rows / s:12,.0f} rows/s")

        day = long_table(symbols, sessions, arrays, slice(len(sessions) - 1, None)).to_pandas()
        store_dir = root / "pq"
        s = timed(lambda: append_bars(day, store_dir), 1)
        print(f"append 1 day  {s:7.2f} s  ({len(day):,} rows; full atomic rewrite of "
              f"{rows + len(day):,} cells x 5 fields)")
        s = timed(lambda: check_store(store_dir, write=False), args.repeats)
        print(f"quality gate  {s:7.2f} s  over the whole store (load + checks)")


if __name__ == "__main__":
    main()
