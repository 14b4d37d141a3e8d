"""Rate-limit token buckets shared by every ingress replica and node, in Redis.

keys.py's `RateLimiter` keeps buckets in one process, so R ingress replicas give a key R x N
requests per period. With REDIS_URL set (and TECHNIC_RATE_LIMIT), `install_auth` wraps it in
`SharedRateLimiter`, which keeps the buckets in Redis instead:

 1. One bucket per identity, a Redis hash {tokens, ts} under
    `technic:rl:v1:<N>/<period ms>:key:<hex SHA-256 of the API key>` (the digest the KeyRing
    already matched; the raw key never leaves the process) or `...:addr:<client address>` on
    an open API. The limit is part of the key, so replicas briefly running two configs during
    a rollout never share a bucket with different meanings.
 2. Each request runs `BUCKET_LUA` once, atomically: read the bucket, refill it by the time
    elapsed on Redis's own clock (`TIME`; the replicas' clocks never enter), take a token or
    compute the wait, write it back and PEXPIRE it after one period. An idle bucket is full
    again after one period, which is exactly when it expires, so dropping it changes nothing.
    The script goes by EVALSHA (redis_store.RedisStore.run_script; reloaded on NOSCRIPT).
 3. Redis down, slow or failing: the store's fault handling (100 ms timeout, then skipped for
    `TECHNIC_CACHE_RETRY_S` and probed once) answers None and the request takes a token from
    this process's own bucket (`local`), counted in `fallbacks`. So a request is never failed
    and never unlimited. The bound while degraded is the pre-Redis one: each of R replicas
    gives a key up to N at once and N per period after, R x N in all; exactly, at most
    R x (N + N*T/P) requests in any T seconds of the outage (shared: N + N*T/P), plus what
    the key had already taken from Redis in that window, since local buckets start full.
    When the store recovers the next request is shared again (buckets start full if Redis
    lost them).

The store is the result cache's (`app.state.cache.remote`): one connection pool, one degraded
state and one probe per process, and one health reported by /readyz.
"""

from __future__ import annotations

from typing import Any

from deployments.api.keys import RateLimiter
from deployments.api.redis_store import RedisStore

KEY_PREFIX = "technic:rl:v1:"

# KEYS[1] the bucket; ARGV[1] capacity N, ARGV[2] period in ms. Returns the wait in ms as a
# string ("0": a token was taken). Strings, because Redis truncates Lua numbers to integers.
# Needs Redis >= 5 (scripts replicate their effects, so calling TIME before a write is allowed).
BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local period_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
local elapsed = math.max(0, now - ts)
tokens = math.min(capacity, tokens + elapsed * capacity / period_ms)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) * period_ms / capacity
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(period_ms))
return tostring(wait)
"""


class SharedRateLimiter:
    """`RateLimiter`'s limit, enforced in Redis; `local` answers while Redis is unavailable."""

    def __init__(self, local: RateLimiter, store: RedisStore):
        self.local, self.store = local, store
        self.capacity, self.period_s = local.capacity, local.period_s
        self.period_ms = max(1, round(local.period_s * 1000))
        self.prefix = f"{KEY_PREFIX}{self.capacity}/{self.period_ms}:"
        self.rejected = 0  # by Redis; the local bucket counts its own
        self.fallbacks = 0

    retry_after = staticmethod(RateLimiter.retry_after)

    def bucket_key(self, ident: Any) -> str:
        """A KeyRing digest (bytes) as hex, anything else (a client address) as text."""
        if isinstance(ident, bytes):
            return f"{self.prefix}key:{ident.hex()}"
        return f"{self.prefix}addr:{ident}"

    async def acquire(self, ident: Any) -> float:
        """0.0 if `ident` may go ahead (a token is taken), else seconds until it may."""
        out = await self.store.run_script(BUCKET_LUA, [self.bucket_key(ident)],
                                          [self.capacity, self.period_ms])
        if out is None:
            self.fallbacks += 1
            return self.local.take(ident)
        wait = float(out.decode() if isinstance(out, bytes) else out) / 1000
        if wait > 0:
            self.rejected += 1
        return wait

    def stats(self) -> dict[str, Any]:
        """For /readyz and /v1/stats: `mode` is `shared`, or `local (redis degraded: <error>)`
        while the store is backing off (requests then use this process's buckets)."""
        degraded = self.store.degraded
        mode = f"local (redis degraded: {self.store.last_error})" if degraded else "shared"
        return {"mode": mode, "status": "degraded" if degraded else "ok",
                "limit": self.local.describe(), "rejected": self.rejected + self.local.rejected,
                "fallbacks": self.fallbacks, "local_buckets": len(self.local.buckets)}
