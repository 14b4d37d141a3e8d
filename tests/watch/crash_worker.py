"""The deliverer as its own process, for test_watch_crash.py: deliver everything the outbox
in argv[1] holds, then exit 0. The test SIGKILLs it at random moments and starts it again."""

from __future__ import annotations

import asyncio
import sys

from technic_v4.watch.deliver import Deliverer, Policy
from technic_v4.watch.store import SqliteWatchStore


async def main(path: str) -> None:
    store = SqliteWatchStore(path)
    deliverer = Deliverer(store, Policy(allow_private=True, base_s=0.01, cap_s=0.05,
                                        timeout_s=2.0, lease_s=30.0, batch=25,
                                        concurrency=8, breaker_failures=10**6))
    while True:
        await deliverer.run_until_idle()
        counts = store.status()["watches"]
        if all(w["deliveries"]["pending"] == 0 for w in counts):
            return
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
