"""The deliverer SIGKILLed at random moments while it delivers 1,000 events of 20 watches,
and started again each time: every event is delivered, no delivery is acknowledged twice,
and nothing is sent again once its acknowledgement is recorded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from support import Receiver  # noqa: E402

from technic_v4.watch.model import WatchSpec, event_id  # noqa: E402
from technic_v4.watch.store import Evaluation, SqliteWatchStore  # noqa: E402

pytestmark = pytest.mark.slow  # a watcher killed and restarted many times

ROOT = Path(__file__).resolve().parents[2]
WATCHES, PER_WATCH = 20, 50
KILLS, MAX_SENT_PER_LIFE = 8, 60  # 8 x 60 < the 1,000 events: every kill lands mid-delivery
HANG_GUARD_S = 600  # how long it takes is a figure (printed), not a property


def _fill(store: SqliteWatchStore, url: str) -> int:
    batch = []
    for w in range(WATCHES):
        watch, _ = store.create(WatchSpec(f"w{w:02d}", screen="squeeze", webhooks=[url]))
        events = [{"id": event_id(watch.id, "2026-10-30", f"S{k}", "entered"),
                   "kind": "entered", "symbol": f"S{k}", "session": "2026-10-30",
                   "watch": watch.name, "row": {"Close": float(k)}} for k in range(PER_WATCH)]
        batch.append((watch, Evaluation(watch.id, "2026-10-30", "v", {"name": "squeeze",
                                                                       "version": 1}, []),
                      events))
    return store.record(batch)


def test_sigkill_anywhere_loses_nothing_and_acknowledges_once(tmp_path):
    rng = random.Random(15)
    # the receiver is slow now and then and fails 5% of requests, so kills land mid-send
    with Receiver(plan=lambda n: 500 if rng.random() < 0.05 else
                  ("sleep", 0.02, 200) if rng.random() < 0.2 else 200) as rx:
        store = SqliteWatchStore(tmp_path / "technic.sqlite")
        assert _fill(store, rx.url) == WATCHES * PER_WATCH
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}" + os.environ.get(
            "PYTHONPATH", "")}

        def deliverer() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, str(Path(__file__).parent /
                                                         "crash_worker.py"),
                                     str(store.path)], env=env, cwd=ROOT)

        kills, started = 0, time.monotonic()
        while kills < KILLS:
            # killed once it has sent a random number of requests (whatever the box's
            # speed): mid-send, with others of its batch in flight
            proc = deliverer()
            target = len(rx.requests) + rng.randint(1, MAX_SENT_PER_LIFE)
            while len(rx.requests) < target and proc.poll() is None:
                assert time.monotonic() - started < HANG_GUARD_S, "hung: no requests"
                time.sleep(0.01)
            if proc.poll() is not None:
                assert proc.returncode == 0
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        proc = deliverer()  # then one that is left to finish
        assert proc.wait(HANG_GUARD_S) == 0
        elapsed = time.monotonic() - started
    states = store.status()["watches"]
    assert sum(w["deliveries"]["delivered"] for w in states) == WATCHES * PER_WATCH
    assert all(w["deliveries"]["pending"] == w["deliveries"]["dead"] == 0 for w in states)
    log = store.delivery_log()
    acks = [x for x in log if x["outcome"] == "delivered"]
    assert len(acks) == len({x["delivery"] for x in acks}) == WATCHES * PER_WATCH
    # every event reached the receiver and got a 200 at least once ...
    ok = {r["headers"]["webhook-id"] for r in rx.requests if r["status"] == 200}
    events = {e["id"]: e for _, e in store.events_after(0, 10_000)}
    assert ok == set(events)
    # ... and nothing was sent for a delivery after its acknowledgement was recorded
    ack_at = {}
    seq_of = {e_id: s for s, e in store.events_after(0, 10_000) for e_id in [e["id"]]}
    import sqlite3

    db = sqlite3.connect(store.path)
    by_seq = dict(db.execute("SELECT event_seq, delivered_at FROM watch_deliveries"))
    for e_id, seq in seq_of.items():
        ack_at[e_id] = by_seq[seq]
    late = [r for r in rx.requests if r["at"] > ack_at[r["headers"]["webhook-id"]]]
    assert late == []
    duplicates = len(rx.requests) - len(events)
    print(f"\n{kills} kills, {len(rx.requests)} requests for {len(events)} events "
          f"({duplicates} resent: failures and sends cut by a kill before their ack), "
          f"{elapsed:.1f} s")
    assert kills == KILLS
