"""The ingress's result cache: repeated identical scans cost a dictionary lookup.

Keyed by (data_version, model versions, normalised request incl. format), so a new store or a
new model can never serve an old answer. Bounded twice, by entries and by bytes (a full
5,000-row JSON body is ~4 MB), least recently used out first. Identical requests that arrive
while the first is still computing wait for it instead of scanning again ("shared"), which is
what keeps a burst of the same scan from queueing N copies on the replicas.
`Cache-Control: no-cache` on a request skips the lookup (the fresh answer is still stored).

Shared across replicas and nodes (`from_env`, when env REDIS_URL is set): the LRU becomes a
small L1 (TECHNIC_CACHE_L1_ENTRIES, 16) in front of Redis. An L1 miss asks Redis under
`technic:result:v1:<sha256 of the key as JSON>`; a miss there computes and writes the answer
back with a TTL (env TECHNIC_CACHE_TTL_S, 300 s by default), and the L1 copy expires with it.
Values are bytes we produce ourselves, `encode`: b"TRC1", a 4-byte big-endian header length,
a JSON header (media type, response headers), then the response body exactly as served;
nothing is ever unpickled and a value that does not parse is a miss. The Redis lookup runs
inside the single-flight window, so a burst of one request costs one Redis read. When Redis
is down or slow the cache degrades to this process only (redis_store.py says how it backs
off); `health()` feeds /readyz and `stats()` /v1/stats.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cachetools import TLRUCache

from deployments import metrics
from deployments.api.redis_store import RedisStore
from technic_v4.cancel import Cancelled
from technic_v4.settings import Settings

MAGIC = b"TRC1"
KEY_PREFIX = "technic:result:v1:"


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def encode(item: CachedBody) -> bytes:
    header = orjson.dumps({"media_type": item.media_type, "headers": item.headers})
    return b"".join((MAGIC, struct.pack(">I", len(header)), header, item.body))


def decode(blob: bytes) -> CachedBody:
    """The CachedBody `encode` wrote; ValueError for anything else."""
    if blob[:4] != MAGIC or len(blob) < 8:
        raise ValueError("not a technic cache value")
    (n,) = struct.unpack(">I", blob[4:8])
    header = orjson.loads(blob[8:8 + n])
    if not (isinstance(header, dict) and isinstance(header.get("media_type"), str)
            and isinstance(header.get("headers"), dict)):
        raise ValueError("bad technic cache header")
    return CachedBody(blob[8 + n:], header["media_type"],
                      {str(k): str(v) for k, v in header["headers"].items()})


def redis_key(key: tuple) -> str:
    return KEY_PREFIX + hashlib.sha256(orjson.dumps(key, default=str)).hexdigest()


class _Bodies(TLRUCache):
    """Bodies with their expiry time, least recently used out past `maxsize` bytes; counts
    what it evicts (an expired body is dropped, not evicted)."""

    def __init__(self, max_bytes: int):
        super().__init__(max(1, max_bytes), ttu=lambda _key, entry, _now: entry[1],
                         timer=time.monotonic, getsizeof=lambda entry: len(entry[0].body))
        self.evictions = 0

    def popitem(self) -> tuple[tuple, tuple[CachedBody, float]]:
        self.evictions += 1
        return super().popitem()


class ResultCache:
    def __init__(self, max_entries: int = 64, max_bytes: int = 256 << 20,
                 shared: RedisStore | None = None):
        self.max_entries, self.max_bytes, self.remote = max_entries, max_bytes, shared
        self._items = _Bodies(max_bytes)
        self._inflight: dict[tuple, asyncio.Future[CachedBody]] = {}
        self.hits = self.misses = self.shared = 0
        self.redis_hits = self.bad_values = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultCache:
        """In-process only, or with REDIS_URL set: a small L1 over Redis (module docstring);
        the TTL, L1 size, timeout and retry wait from `settings` (technic_v4/settings.py)."""
        url = settings.redis_url.strip()
        if not url:
            return cls()
        store = RedisStore(url, settings.cache_ttl_s, timeout_s=settings.cache_timeout_s,
                           retry_s=settings.cache_retry_s)
        return cls(settings.cache_l1_entries, 64 << 20, shared=store)

    @property
    def bytes(self) -> int:
        return int(self._items.currsize)

    @property
    def evictions(self) -> int:
        return self._items.evictions

    def get(self, key: tuple) -> CachedBody | None:
        entry = self._items.get(key)
        return None if entry is None else entry[0]

    def put(self, key: tuple, item: CachedBody, expires: float = math.inf) -> None:
        """Keep `item` until evicted or until time.monotonic() passes `expires`."""
        self._items.pop(key, None)
        if len(item.body) > self.max_bytes or self.max_entries <= 0:
            return
        self._items[key] = (item, expires)
        while len(self._items) > self.max_entries:
            self._items.popitem()

    async def get_or_compute(self, key: tuple, compute: Callable[[], Awaitable[CachedBody]],
                             refresh: bool = False,
                             rekey: Callable[[CachedBody], tuple] | None = None
                             ) -> tuple[CachedBody, str]:
        """(body, how): how is hit, shared (waited for an identical request) or miss.

        `key` names the versions the caller expects; `rekey(item)`, when given, names the
        versions a computed item was actually made from, and the item is stored under that
        key only: a lookup can then only ever find an answer made from the versions its key
        names, whatever changed while it was computed."""
        if not refresh:
            item = self.get(key)
            if item is not None:
                self.hits += 1
                self._observe("hit")
                return item, "hit"
            pending = self._inflight.get(key)
            if pending is not None:
                self.shared += 1
                self._observe("shared")
                try:
                    return await asyncio.shield(pending), "shared"
                except Cancelled:  # the computing request's client left: compute for this one
                    pass
        future: asyncio.Future[CachedBody] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            item, how, expires = await self._fill(key, compute, refresh, rekey)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        future.set_result(item)
        self.put(rekey(item) if rekey is not None and how == "miss" else key, item, expires)
        self._observe(how)
        return item, how

    def _observe(self, how: str) -> None:
        """The lookup and the hit rate after it, to deployments/metrics.py."""
        looked = self.hits + self.shared + self.misses
        metrics.observe_cache(how, (self.hits + self.shared) / looked if looked else 0.0)

    async def _fill(self, key: tuple, compute: Callable[[], Awaitable[CachedBody]],
                    refresh: bool, rekey: Callable[[CachedBody], tuple] | None = None
                    ) -> tuple[CachedBody, str, float]:
        """(item, hit|miss, L1 expiry): from Redis when it has the key, else computed."""
        remote = self.remote
        if remote is None:
            self.misses += 1
            return await compute(), "miss", math.inf
        rkey = redis_key(key)
        if not refresh:
            found = await remote.get(rkey)
            if found is not None:
                try:
                    item = decode(found[0])
                except ValueError:
                    self.bad_values += 1
                else:
                    self.hits += 1
                    self.redis_hits += 1
                    return item, "hit", time.monotonic() + found[1]
        self.misses += 1
        item = await compute()
        await remote.put(redis_key(rekey(item)) if rekey is not None else rkey, encode(item))
        return item, "miss", time.monotonic() + remote.ttl_s

    async def health(self) -> dict[str, Any]:
        """/readyz's `cache` check: backend and ok|degraded (never makes the service unready)."""
        if self.remote is None:
            return {"backend": "memory", "status": "ok"}
        return {"backend": "redis", **await self.remote.health()}

    def stats(self) -> dict[str, Any]:
        """Counters; hit_rate = (hits + shared) / (hits + shared + misses)."""
        looked = self.hits + self.shared + self.misses
        out: dict[str, Any] = {
            "backend": "memory" if self.remote is None else "redis", "status": "ok",
            "entries": len(self._items), "bytes": self.bytes, "hits": self.hits,
            "misses": self.misses, "shared": self.shared, "evictions": self.evictions,
            "hit_rate": round((self.hits + self.shared) / looked, 4) if looked else 0.0,
            "errors": 0, "max_entries": self.max_entries, "max_bytes": self.max_bytes}
        if self.remote is not None:
            out.update(self.remote.stats(), redis_hits=self.redis_hits,
                       errors=self.remote.errors + self.bad_values)
        return out
