"""The clock the watch store, the deliverer and the service read: leases, backoff, breaker
cool-downs, retention and the watcher's wait between ticks all use `Clock.now()` (seconds
since the epoch) and `Clock.sleep()`. `SYSTEM` is the real one; a test passes its own so
time moves when the test says, not when the machine gets round to it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds (`now`) and an awaitable wait (`sleep`)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """`time.time()` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told: `advance`, `advance_to`, or a `sleep`, which
    returns at once with the time moved on. For tests and benchmarks that need a lease to
    expire, a breaker to cool down or a retention to pass without waiting for it."""

    def __init__(self, start: float = 1_750_000_000.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, float(seconds))

    def advance_to(self, t: float) -> None:
        self.t = max(self.t, float(t))
