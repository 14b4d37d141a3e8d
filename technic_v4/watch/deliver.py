"""The deliverer: lease due deliveries, send each, record the outcome — nothing else.

`Deliverer.run_once()`:
  1. `store.claim`: up to `batch` due deliveries leased to this deliverer (attempt counted);
  2. each sent concurrently (at most `concurrency` at once): a webhook per event, an apprise
     summary per (watch, session) (send.py);
  3. outcomes recorded in groups of SETTLE_GROUP or every SETTLE_WAIT_S (`store.settle`, one
     transaction, only while the lease is held; a crash before that means a resend):
     success = the acknowledgement; failure = pending again after a backoff with full
     jitter, `uniform(0, min(cap_s, base_s · 2^(attempt−1)))`, or after the receiver's
     Retry-After when that is longer; dead after `max_attempts` attempts or `max_age_s`
     (then `technic watch redeliver`). The target's circuit breaker is updated in the same
     transaction (store.py).
`run_until_idle()` repeats while full batches come back. Counters (`stats`) say what this
process did: delivered, failed, dead, lease_lost (an outcome not recorded because the
lease had run out and another deliverer took the row: it will be sent again by that one).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from technic_v4.watch.send import Outcome, send_apprise, send_webhook, summary, webhook_body
from technic_v4.watch.send import webhook_client as make_client
from technic_v4.watch.store import Claimed, Settlement, WatchStore, lease_owner

SETTLE_GROUP = 16     # outcomes recorded per transaction (one fsync for the group) ...
SETTLE_WAIT_S = 0.05  # ... or after this long, whichever comes first


@dataclass(frozen=True)
class Policy:
    """Delivery and outbox knobs (Settings: TECHNIC_WATCH_*; tests shrink the waits):
    `max_events` per watch and session (the rest summarised in one `truncated` event),
    `retention_s` of finished events, pruned every `prune_every_s`."""

    base_s: float = 5.0
    cap_s: float = 3600.0
    max_attempts: int = 15
    max_age_s: float = 3 * 86400.0
    timeout_s: float = 10.0
    lease_s: float = 60.0
    breaker_failures: int = 5
    breaker_cooldown_s: float = 60.0
    batch: int = 64
    concurrency: int = 16
    allow_private: bool = False
    max_events: int = 500
    retention_s: float = 30 * 86400.0
    prune_every_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Any, **override: Any) -> Policy:
        return cls(**{**{"base_s": settings.watch_backoff_s,
                         "max_attempts": settings.watch_max_attempts,
                         "max_age_s": settings.watch_max_age_s,
                         "timeout_s": settings.webhook_timeout_s,
                         "allow_private": settings.webhook_allow_private,
                         "max_events": settings.watch_max_events,
                         "retention_s": settings.watch_retention_days * 86400.0,
                         "prune_every_s": settings.watch_prune_every_s}, **override})

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1)))


class Deliverer:
    """Sends what the outbox holds (module docstring). One per process is enough."""

    def __init__(self, store: WatchStore, policy: Policy | None = None, *,
                 owner: str | None = None, seed: int | None = None):
        self.store, self.policy = store, policy or Policy()
        self.owner = owner or lease_owner()
        self.rng = random.Random(seed)
        self.stats = {"delivered": 0, "failed": 0, "dead": 0, "lease_lost": 0, "claimed": 0}
        self._client: tuple[Any, Any] | None = None

    async def run_once(self) -> int:
        """One batch: claim, send, settle. Returns how many were claimed."""
        p = self.policy
        claimed = await asyncio.to_thread(self.store.claim, self.owner, p.batch, p.lease_s,
                                          p.max_age_s)
        if not claimed:
            return 0
        self.stats["claimed"] += len(claimed)
        gate = asyncio.Semaphore(p.concurrency)
        done: list[Settlement] = []
        flushing = asyncio.Lock()

        async def flush() -> None:
            async with flushing:
                group, done[:] = list(done), []
                if group:
                    await asyncio.to_thread(self._settle, group)

        async def one(item: Claimed) -> None:
            async with gate:
                outcome = await self.send(item)
            done.append(self._settlement(item, outcome))
            if len(done) >= SETTLE_GROUP:
                await flush()

        sent = asyncio.Event()

        async def ticker() -> None:  # no outcome waits long for its group; never cancelled
            while not sent.is_set():  # mid-write (a cancelled write would drop its group)
                try:
                    await asyncio.wait_for(sent.wait(), SETTLE_WAIT_S)
                except TimeoutError:
                    await flush()

        tick = asyncio.create_task(ticker())
        try:
            await asyncio.gather(*(one(c) for c in claimed))
        finally:
            sent.set()
            await tick
            await flush()
        return len(claimed)

    async def run_until_idle(self, max_batches: int = 1000) -> int:
        """Batches until one comes back short (nothing more is due now)."""
        total = 0
        await asyncio.to_thread(self.store.release_orphans)
        for _ in range(max_batches):
            n = await self.run_once()
            total += n
            if n < self.policy.batch:
                break
        return total

    async def send(self, item: Claimed) -> Outcome:
        p = self.policy
        if item.kind == "webhook":
            event = item.events[0]
            return await send_webhook(self.client(), item.url, item.secret, event["id"],
                                      webhook_body(event), allow_private=p.allow_private,
                                      timeout_s=p.timeout_s)
        title, body = summary(item.watch, item.session, item.events)
        return await send_apprise(item.url, title, body, allow_private=p.allow_private,
                                  timeout_s=p.timeout_s)

    def client(self) -> Any:
        """The webhook client of the running event loop (a client is bound to its loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            self._client = (loop, make_client(self.policy.timeout_s))
        return self._client[1]

    async def aclose(self) -> None:
        if self._client is not None and self._client[0] is asyncio.get_running_loop():
            await self._client[1].aclose()
        self._client = None

    def _settlement(self, item: Claimed, outcome: Outcome) -> Settlement:
        p = self.policy
        if outcome.ok:
            return Settlement(item, True, outcome.status)
        wait = max(p.backoff(item.attempt, self.rng), outcome.retry_after or 0.0)
        next_at = self.store.clock.now() + min(wait, p.cap_s)  # the store's time
        dead = item.attempt >= p.max_attempts or next_at - item.created > p.max_age_s
        return Settlement(item, False, outcome.status, outcome.error, next_at, dead)

    def _settle(self, group: list[Settlement]) -> None:
        p = self.policy
        recorded = self.store.settle(self.owner, group,
                                     (p.breaker_failures, p.breaker_cooldown_s))
        for r, ok in zip(group, recorded, strict=True):
            key = ("delivered" if r.ok else "dead" if r.dead else "failed") if ok \
                else "lease_lost"
            self.stats[key] += 1
