"""Benchmark: 100 watches evaluated on a new session in one pass, against a scan per watch;
and webhook delivery throughput to a local receiver.

    python bench/bench_watch.py [--symbols 5000] [--watches 100] [--repeats 7]
                                [--no-weekly | --weekly-only]

Two mixes of 100 watches on one store (each its own watch state): "weekly" (the seven
presets, one of them reading W.RSI, + inline screens) and "no-weekly" (without that
preset). Per mix:

  one pass   `evaluate_session` (technic_v4/watch/evaluate.py): every watch's screen at the
             new session through `execute_many` (one evaluation of the universe, one
             forecast) + the diff against each watch's last evaluation; the window in memory,
             the indicators computed each run (what a new data version costs)
             (also shown: execute_many alone, and with the evaluation memoized, i.e. what
             the hundred screens and the forecast cost over a shared evaluation)
  + record   the same, then the evaluations, events and deliveries written to SQLite in one
             transaction (once: a session is recorded once)
  peer       a loop of `run_scan(as_of=session)` per watch (what a watcher without
             execute_many would do), same reader and models
  delivery   N signed webhooks to a local HTTP server (127.0.0.1) by the Deliverer: events/s
Prints medians (ms) and the ratio; the machine is shared, so trust medians and re-run when
numbers look inflated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timing import median_ms  # bench/ is on sys.path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "watch"))
from support import Receiver, split_market  # noqa: E402

from technic_v4.data.reader import StoreReader  # noqa: E402
from technic_v4.scan import ScanConfig, run_scan  # noqa: E402
from technic_v4.scan.many import execute_many  # noqa: E402
from technic_v4.scan.run import Evaluations  # noqa: E402
from technic_v4.screens.presets import PRESETS  # noqa: E402
from technic_v4.watch.deliver import Deliverer, Policy  # noqa: E402
from technic_v4.watch.evaluate import catch_up, evaluate_session  # noqa: E402
from technic_v4.watch.model import WatchSpec, event_id  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402
from technic_v4.watch.store import Evaluation, SqliteWatchStore  # noqa: E402

SECTORS = ["Technology", "Energy", "Healthcare", "Financials", "Utilities", "Industrials"]


def specs(n: int, weekly: bool = True) -> list[WatchSpec]:
    """Presets, then inline screens with varied conditions and sectors, each a top-N list
    (20-69 symbols, as a watch is usually read), a quarter with rank_moved."""
    out = [WatchSpec(f"p-{name}", screen=name) for name, p in PRESETS.items()
           if weekly or "W." not in str(p.definition.get("where"))][:n]
    k = 0
    while len(out) < n:
        where = [f"RSI > {30 + k % 40}", f"Close > SMA50 and mom_21 > {(k % 9) / 100:.2f}",
                 f"Volume_ratio > {1 + (k % 5) / 4:.2f} and RSI < 70",
                 f"crosses_above(MACD, MACD_signal, within={1 + k % 5})"][k % 4]
        definition: dict = {"where": where}
        if k % 3 == 0:
            definition["sectors"] = [SECTORS[k % len(SECTORS)]]
        if k % 4 == 1:
            definition["rank"] = "mom_63 / ATR_pct"
        definition["max_symbols"] = 20 + k % 50
        out.append(WatchSpec(f"w{k:03d}", definition=definition,
                             rank_moved=5 if k % 4 == 0 else None))
        k += 1
    return out


def delivery(n: int) -> tuple[float, float]:
    """(seconds, events/s) to deliver n webhooks to a local receiver."""
    with tempfile.TemporaryDirectory() as tmp, Receiver() as rx:
        store = SqliteWatchStore(Path(tmp) / "technic.sqlite")
        watch, _ = store.create(WatchSpec("bench", screen="squeeze", webhooks=[rx.url]))
        events = [{"id": event_id(watch.id, "2026-10-30", f"S{i}", "entered"),
                   "kind": "entered", "symbol": f"S{i}", "session": "2026-10-30",
                   "watch": "bench", "row": {"Close": float(i)}} for i in range(n)]
        store.record([(watch, Evaluation(watch.id, "2026-10-30", "v", {"name": "squeeze",
                                                                        "version": 1}, []),
                       events)])
        deliverer = Deliverer(store, Policy(allow_private=True, batch=200, concurrency=32))
        t0 = time.perf_counter()
        asyncio.run(deliverer.run_until_idle())
        seconds = time.perf_counter() - t0
        assert len(rx.accepted()) == n, (len(rx.accepted()), n)
        return seconds, n / seconds


MIXES = {"weekly": True, "no-weekly": False}  # the mixes: with / without the W.RSI preset
TARGET_MS = 200.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--watches", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--peer-repeats", type=int, default=3)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--no-weekly", action="store_true", help="Only the mix without the preset "
                    "with a weekly series (W.RSI; default: both mixes).")
    ap.add_argument("--weekly-only", action="store_true", help="Only the mix with it.")
    args = ap.parse_args()
    mixes = [m for m in MIXES if not (args.no_weekly and MIXES[m])
             and not (args.weekly_only and not MIXES[m])]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        split = split_market(Path(tmp) / "data", n_symbols=args.symbols, tail=1,
                             start="2021-01-04")
        print(f"demo store: {args.symbols} symbols, built in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        services = {}
        for mix in mixes:  # each mix its own watch state; baselines before the new session
            svc = local_service(split.data, policy=Policy(allow_private=True),
                                state_dir=Path(tmp) / mix)
            for spec in specs(args.watches, weekly=MIXES[mix]):
                svc.store.create(spec)
            reader = StoreReader(split.data)
            asyncio.run(catch_up(svc.store, reader.snapshot(), svc.engine))  # baselines
            services[mix] = svc
        (session,) = split.append()
        for mix in mixes:
            results[mix] = measure_mix(services[mix], StoreReader(split.data), session, args)
    seconds, rate = delivery(args.events)
    print(f"{args.watches} watches, {args.symbols} symbols, new session {session}; "
          f"medians in ms (machine: {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f})")
    for mix, r in results.items():
        print(f"[{mix}] {r['events']} events")
        print(f"  one pass (execute_many + diff), median of {args.repeats}: "
              f"{r['ours']:8.1f} ms   target {TARGET_MS:.0f} ms: "
              f"{'met' if r['ours'] < TARGET_MS else 'NOT met'}")
        print(f"    of which execute_many:                      {r['many']:8.1f} ms")
        print(f"    execute_many, the evaluation memoized:      {r['screens']:8.1f} ms "
              "(per-watch screening + one forecast)")
        print(f"  + record in SQLite (one transaction), once:   {r['record']:8.1f} ms")
        print(f"  peer: run_scan per watch, median of {args.peer_repeats}:     "
              f"{r['peer']:8.1f} ms")
        print(f"  ratio peer / ours: {r['peer'] / r['ours']:.1f}x")
    print(f"delivery: {args.events} signed webhooks to 127.0.0.1 in {seconds:.2f} s = "
          f"{rate:,.0f} events/s")


def interleaved(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each of `fns`, timed in `repeats` rounds of one call each."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(t) for t in times]


def measure_mix(svc: Any, reader: StoreReader, session: str, args: argparse.Namespace
                ) -> dict[str, float]:
    """One mix's medians: the pass, execute_many alone (and with the evaluation memoized),
    the recorded pass once, the peer."""
    store, snap = svc.store, reader.snapshot()
    watches = store.list()
    engine = svc.engine.__class__(svc.engine.evaluate, svc.engine.predict,
                                  svc.engine.screens)  # no memo: indicators every run
    cfgs = [ScanConfig(**{**w.config(svc.engine.screens)[0].__dict__, "as_of_date": session})
            for w in watches]
    memo = Evaluations(2)

    # each timed call awaits the work inside one coroutine and returns nothing: asyncio.run
    # formats its main task's repr (the result's, a DataFrame's too) when it restores the
    # SIGINT handler, which no watcher pays (it runs in a loop that is already running)
    async def _pass() -> None:
        await evaluate_session(store, watches, snap, session, engine)

    async def _many(evaluations: Evaluations | None) -> None:
        await execute_many(cfgs, snap, engine.evaluate, engine.predict,
                           evaluations=evaluations)

    asyncio.run(_pass())  # warm: the window is read once, kernels compiled
    asyncio.run(_many(memo))
    # interleaved rounds, so that a burst of the machine's other jobs hits all three alike
    ours, many, screens = interleaved([lambda: asyncio.run(_pass()),
                                       lambda: asyncio.run(_many(None)),
                                       lambda: asyncio.run(_many(memo))], args.repeats)
    t0 = time.perf_counter()
    runs = asyncio.run(catch_up(store, snap, engine))
    record = (time.perf_counter() - t0) * 1000
    plain = [w.config(svc.engine.screens)[0] for w in watches]

    def peer() -> None:
        for cfg in plain:
            run_scan(ScanConfig(**{**cfg.__dict__, "as_of_date": session}), loader=reader)

    peer()
    theirs = median_ms(peer, args.peer_repeats)
    return {"ours": ours, "many": many, "screens": screens, "record": record,
            "peer": theirs, "events": sum(r.events for r in runs)}


if __name__ == "__main__":
    main()
