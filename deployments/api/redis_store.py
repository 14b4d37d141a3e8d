"""The shared layer of the result cache: opaque byte values in Redis, and what to do when it fails.

`ResultCache` (cache.py) decides what is stored and under which key; this module only moves
bytes and keeps the fault state, so a slow or dead Redis can never slow or fail a scan:

 1. One client per event loop (redis-py's asyncio pool is bound to the loop that made it),
    connect and socket timeouts of `timeout_s` (100 ms by default) and no client-side retries.
 2. Every call goes through `_call`. The first connection error or timeout marks the store
    degraded: for the next `retry_s` seconds every call is skipped at once (the scan runs
    uncached) instead of paying the timeout on every request. After that, one request at a
    time probes Redis again; a success clears the state, a failure restarts the wait.
 3. `get` fetches the value and its remaining TTL in one round trip (a pipeline), so the
    caller's in-process copy can expire at the same moment as the shared one. `put` writes
    with `PX ttl`: every entry expires, whatever Redis's eviction policy is.
 4. `run_script` runs a Lua script (EVALSHA, loading it on NOSCRIPT) through the same `_call`.
    The shared rate limiter (redis_limiter.py) uses it on the cache's store, so one process
    has one Redis connection pool, one degraded state and one probe, whoever noticed first.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

TIMEOUT_S = 0.1
RETRY_S = 5.0
MAX_ITEM_BYTES = 64 << 20
_SKIPPED = object()


class RedisStore:
    """get/put of bytes under string keys with a TTL; failures are counted, never raised."""

    def __init__(self, url: str, ttl_s: float, *, timeout_s: float = TIMEOUT_S,
                 retry_s: float = RETRY_S, max_item_bytes: int = MAX_ITEM_BYTES):
        if not 0 < ttl_s <= 86_400:
            raise ValueError(f"cache TTL must be in (0, 86400] seconds, not {ttl_s}")
        from redis.asyncio import Redis  # here, not in the first request: it takes ~0.1 s
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self._new_client = functools.partial(
            Redis.from_url, url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0))
        self._faults = (RedisError, OSError)  # OSError includes TimeoutError
        self.url, self.ttl_s, self.timeout_s = url, ttl_s, timeout_s
        self.retry_s, self.max_item_bytes = retry_s, max_item_bytes
        self.errors = 0
        self.last_error: str | None = None
        self._down_until = 0.0  # time.monotonic(); 0 while healthy
        self._probing = False
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, Any] = {}  # source -> AsyncScript (its SHA1, any client)

    @property
    def degraded(self) -> bool:
        return self._down_until > 0

    def _conn(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client, self._loop = self._new_client(), loop
        return self._client

    def _admit(self) -> bool:
        """Healthy, or degraded and due for a probe (one caller at a time)."""
        if not self._down_until:
            return True
        if self._probing or time.monotonic() < self._down_until:
            return False
        self._probing = True
        return True

    async def _call(self, op: Callable[[Any], Awaitable[Any]]) -> Any:
        if not self._admit():
            return _SKIPPED
        try:
            out = await op(self._conn())
        except self._faults as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._down_until = time.monotonic() + self.retry_s
            self._probing = False
            return _SKIPPED
        except BaseException:
            self._probing = False  # cancelled mid-probe: the next caller probes instead
            raise
        self._down_until, self._probing = 0.0, False
        return out

    async def get(self, key: str) -> tuple[bytes, float] | None:
        """(value, seconds it has left), or None when absent or Redis is unavailable."""
        async def op(r: Any) -> list[Any]:
            async with r.pipeline(transaction=False) as p:
                p.get(key)
                p.pttl(key)
                return await p.execute()

        out = await self._call(op)
        if out is _SKIPPED or out[0] is None:
            return None
        return out[0], max(int(out[1]), 0) / 1000

    async def put(self, key: str, value: bytes) -> bool:
        """Store `value` for ttl_s; False when it is too big or Redis is unavailable."""
        if len(value) > self.max_item_bytes:
            return False
        ttl_ms = max(1, int(self.ttl_s * 1000))
        return await self._call(lambda r: r.set(key, value, px=ttl_ms)) is not _SKIPPED

    async def run_script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """The script's reply, or None when Redis is unavailable (so a script run this way
        should never return nil). EVALSHA first; redis-py loads the script on NOSCRIPT (a
        restarted or failed-over Redis has an empty script cache)."""
        async def op(r: Any) -> Any:
            script = self._scripts.get(source)
            if script is None:
                script = self._scripts[source] = r.register_script(source)
            return await script(keys, args, client=r)

        out = await self._call(op)
        return None if out is _SKIPPED else out

    async def health(self) -> dict[str, Any]:
        """Ping (unless backing off): {status: ok|degraded, error, retry_in_s}."""
        await self._call(lambda r: r.ping())
        if not self.degraded:
            return {"status": "ok"}
        return {"status": "degraded", "error": self.last_error,
                "retry_in_s": round(max(self._down_until - time.monotonic(), 0.0), 3)}

    def stats(self) -> dict[str, Any]:
        return {"status": "degraded" if self.degraded else "ok", "errors": self.errors,
                "last_error": self.last_error, "ttl_s": self.ttl_s,
                "timeout_s": self.timeout_s, "retry_s": self.retry_s}
