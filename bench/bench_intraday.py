"""Intraday store and scan, stage by stage, on the demo market, with pandas peers.

    python bench/bench_intraday.py [--symbols 5000] [--repeats 3] [--dir /tmp/bench-intraday]

Stages: generate one session's demo minutes; write it (checks, sort, Parquet); read one
session's frame (ours vs pandas.read_parquet); load 3 sessions of every symbol into (N, T)
arrays (ours vs read_parquet + pivot); resample to M5 (ours vs a pandas groupby resample of
one session); one intraday scan. Prints medians in ms and the peer ratios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_ms  # noqa: E402

from technic_v4.data import intraday as I  # noqa: E402
from technic_v4.data.demo import DemoSpec, build_demo_store  # noqa: E402
from technic_v4.data.demo_intraday import build_demo_intraday, demo_minutes  # noqa: E402
from technic_v4.data.resample import resample  # noqa: E402
from technic_v4.data.store import load_panel  # noqa: E402
from technic_v4.scan.intraday import scan_intraday  # noqa: E402

SCREEN = "D.Close > D.SMA50 and crosses_above(M5.Close, M5.VWAP)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/bench-intraday")
    args = ap.parse_args()
    root = Path(args.dir) / str(args.symbols)
    if not (root / "store").exists():
        build_demo_store(root, DemoSpec(n_symbols=args.symbols, start="2025-06-01"))
    if len(I.stored_sessions(root)) < 3:
        build_demo_intraday(root, sessions=3)
    panel = load_panel(root, bars=3)
    r = args.repeats
    rows: list[tuple[str, float, str]] = []

    frame = demo_minutes(panel, 2)
    rows.append(("generate one session's demo minutes", median_ms(
        lambda: demo_minutes(panel, 2), r), f"{len(frame):,} bars"))
    scratch = Path(args.dir) / f"{args.symbols}-write"
    rows.append(("write one session", median_ms(
        lambda: I.write_session(scratch, panel.sessions[2], frame, "XNYS"), r), ""))
    day = panel.sessions[2]
    path = root / "intraday" / f"{day.date()}.parquet"
    ours = median_ms(lambda: I.read_session(root, day), r)
    peer = median_ms(lambda: pd.read_parquet(path), r)
    rows.append(("read one session frame", ours, f"pandas.read_parquet {peer:.0f} ms, "
                 f"ratio {ours / peer:.2f}"))
    ours = median_ms(lambda: I.load_intraday(root, sessions=3), r)

    def pivot() -> object:
        frames = [pd.read_parquet(root / "intraday" / f"{d.date()}.parquet")
                  for d in panel.sessions]
        both = pd.concat(frames)
        return {f: both.pivot(index="symbol", columns="ts", values=f).to_numpy()
                for f in ("open", "high", "low", "close", "volume")}

    peer = median_ms(pivot, r)
    rows.append(("load 3 sessions into arrays", ours, f"read_parquet + pivot {peer:.0f} ms, "
                 f"ratio {ours / peer:.2f}"))
    minutes = I.load_intraday(root, sessions=3)
    ours = median_ms(lambda: resample(minutes, "M5"), r)
    one = frame.assign(symbol=frame["symbol"].astype(str)).set_index("ts")

    def groupby_resample() -> object:
        return one.groupby("symbol").resample("5min").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})

    peer = median_ms(groupby_resample, r)
    rows.append(("resample 3 sessions to M5", ours, f"pandas groupby-resample of ONE session "
                 f"{peer:.0f} ms, ratio {ours / peer:.2f}"))
    at = pd.Timestamp(f"{day.date()} 14:35", tz="America/New_York")
    got = scan_intraday(root, SCREEN, at=at)
    rows.append(("intraday scan", median_ms(lambda: scan_intraday(root, SCREEN, at=at), r),
                 f"{len(got.rows)} rows kept; {SCREEN}"))
    print(f"{args.symbols} demo symbols, medians of {r}, load average "
          f"{open('/proc/loadavg').read().split()[0]}")
    for name, ms, note in rows:
        print(f"  {name:40s} {ms:10.0f} ms  {note}")


if __name__ == "__main__":
    main()
