"""The ingress's result cache: repeated identical scans cost a dictionary lookup.

Keyed by (data_version, model versions, normalised request incl. format), so a new store or a
new model can never serve an old answer. Bounded twice, by entries and by bytes (a full
5,000-row JSON body is ~4 MB), least recently used out first. Identical requests that arrive
while the first is still computing wait for it instead of scanning again ("shared"), which is
what keeps a burst of the same scan from queueing N copies on the replicas.
`Cache-Control: no-cache` on a request skips the lookup (the fresh answer is still stored).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


class ResultCache:
    def __init__(self, max_entries: int = 64, max_bytes: int = 256 << 20):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[tuple, CachedBody] = OrderedDict()
        self._inflight: dict[tuple, asyncio.Future[CachedBody]] = {}
        self.bytes = 0
        self.hits = self.misses = self.shared = self.evictions = 0

    def get(self, key: tuple) -> CachedBody | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item

    def put(self, key: tuple, item: CachedBody) -> None:
        if len(item.body) > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)
        self._items[key] = item
        self.bytes += len(item.body)
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            _, gone = self._items.popitem(last=False)
            self.bytes -= len(gone.body)
            self.evictions += 1

    async def get_or_compute(self, key: tuple, compute: Callable[[], Awaitable[CachedBody]],
                             refresh: bool = False) -> tuple[CachedBody, str]:
        """(body, how): how is hit, shared (waited for an identical request) or miss."""
        if not refresh:
            item = self.get(key)
            if item is not None:
                self.hits += 1
                return item, "hit"
            pending = self._inflight.get(key)
            if pending is not None:
                self.shared += 1
                return await asyncio.shield(pending), "shared"
        self.misses += 1
        future: asyncio.Future[CachedBody] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            item = await compute()
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
        self.put(key, item)
        return item, "miss"

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._items), "bytes": self.bytes, "hits": self.hits,
                "misses": self.misses, "shared": self.shared, "evictions": self.evictions,
                "max_entries": self.max_entries, "max_bytes": self.max_bytes}
