"""Outbox size: N watches with `initial` on a keep-everything screen, capped and uncapped.

    python bench/bench_outbox.py [--symbols 2000] [--watches 20] [--sessions 3]

For each cap (the default TECHNIC_WATCH_MAX_EVENTS, and none): the watches created on a demo
market (their baselines announce every symbol), then `--sessions` sessions appended and
evaluated; prints the outbox's events and the file's bytes (database + WAL). Then, capped:
every delivery settled, the retention passed (an injected clock), one prune; and every watch
deleted. Prints events and bytes at each step."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "watch"))
from serve_support import tiny_models  # noqa: E402
from support import split_market  # noqa: E402

from technic_v4.watch.clock import ManualClock  # noqa: E402
from technic_v4.watch.deliver import Policy  # noqa: E402
from technic_v4.watch.model import WatchSpec  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--watches", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=3)
    args = ap.parse_args()
    for cap in (Policy().max_events, 10**9):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            split = split_market(root / "data", n_symbols=args.symbols, tail=args.sessions)
            clock = ManualClock(time.time())
            svc = local_service(split.data, tiny_models(root / "models"),
                                policy=Policy(max_events=cap), clock=clock)
            for i in range(args.watches):
                asyncio.run(svc.create(WatchSpec(f"all{i}", definition={"where": "Close > 0"},
                                                 initial=True)))
            split.append(args.sessions)
            asyncio.run(svc.tick())
            size = svc.store.outbox_size()
            label = "uncapped" if cap == 10**9 else f"cap {cap}"
            print(f"{label}: {size['events']:,} events, {size['bytes']:,} bytes")
            if cap == 10**9:
                continue
            with svc.store._db.write() as db:  # as if every delivery had been acknowledged
                db.execute("UPDATE watch_deliveries SET state = 'delivered'")
            clock.advance(svc.policy.retention_s + 86400)
            gone = asyncio.run(svc.prune_if_due())
            size = svc.store.outbox_size()
            print(f"  after the retention: pruned {gone}; {size['events']:,} events, "
                  f"{size['bytes']:,} bytes")
            for i in range(args.watches):
                asyncio.run(svc.remove(f"all{i}"))
            size = svc.store.outbox_size()
            print(f"  every watch deleted: {size['events']:,} events, {size['bytes']:,} bytes")


if __name__ == "__main__":
    main()
