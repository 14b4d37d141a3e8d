"""API keys hashed at rest, checked in constant time, and per-key rate limits (token buckets).

Configuration (read once, when the app is built):

  TECHNIC_API_KEY_HASHES  comma-separated `sha256:<64 hex>` entries (what to keep in config)
  TECHNIC_API_KEYS        comma-separated plain keys (still accepted; hashed at startup)
  TECHNIC_ADMIN_KEYS      comma-separated admin keys, plain or `sha256:<hex>`: keys too (no
                          need to list them twice) that see every key's screens and watches
  TECHNIC_RATE_LIMIT      e.g. `60/min`, `5/s`, `1000/hour`; unset or empty = no limit

With neither key variable set the API is open. Only SHA-256 digests are kept in memory: a
request's `X-API-Key` is hashed and compared with `hmac.compare_digest` against every digest,
with no early exit, so the time taken does not depend on which key (or how much of one)
matched. Keys are random tokens, so an unsalted fast hash is enough (no password stretching).
A matched key's `scope` (technic_v4/tenancy.py) names its namespace by the key's fingerprint,
the same `sha256:<hex>` entry (`fingerprint`): what technic.sqlite stores as an owner.

Rate limits: one token bucket per key (per client address when the API is open) holding up to
N tokens, refilled at N per period; a request takes one token or gets 429 with `Retry-After`
(whole seconds until a token is back). So a key gets at most N at once and N per period
sustained. Where the buckets live:

  REDIS_URL unset   `RateLimiter` below, in each ingress replica's memory: with R replicas a
                    key can get up to R x N per period.
  REDIS_URL set     `redis_limiter.SharedRateLimiter`: the buckets are in Redis, shared by all
                    replicas and nodes, so N per period in total. While Redis is down or slow
                    each replica falls back to its own `RateLimiter` (never unlimited, never
                    a 5xx): R x N per period again until Redis answers. /readyz and /v1/stats
                    show `rate_limit.mode` (`shared`, `local`, `local (redis degraded: ...)`,
                    `off`) and the count of `fallbacks`.

Make a hash:  python -m deployments.api.keys hash KEY     (or `-` to read the key from stdin)
New key:      python -m deployments.api.keys new          (prints a random key and its hash)
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from cachetools import LRUCache

from technic_v4.settings import Settings
from technic_v4.tenancy import OPEN, Scope

KEYS_ENV = "TECHNIC_API_KEYS"
HASHES_ENV = "TECHNIC_API_KEY_HASHES"
RATE_ENV = "TECHNIC_RATE_LIMIT"
HASH_PATTERN = re.compile(r"sha256:([0-9a-fA-F]{64})")
PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
           "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}


def hash_key(key: str) -> str:
    """The `sha256:<hex>` entry for `key`, as TECHNIC_API_KEY_HASHES takes it."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_hash(entry: str) -> bytes:
    """The 32-byte digest of a `sha256:<hex>` entry, or ValueError."""
    m = HASH_PATTERN.fullmatch(entry.strip())
    if not m:
        raise ValueError(f"{HASHES_ENV}: expected sha256:<64 hex digits>, got {entry[:12]!r}...")
    return bytes.fromhex(m.group(1))


def _split(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def fingerprint(digest: bytes) -> str:
    """A key's owner name in technic.sqlite: its `sha256:<hex>` entry (never the key)."""
    return "sha256:" + digest.hex()


def _digest(entry: str) -> bytes:
    """An admin entry's digest: a `sha256:` entry as it is, a plain key hashed."""
    return parse_hash(entry) if entry.startswith("sha256:") else hashlib.sha256(
        entry.encode()).digest()


class KeyRing:
    """The accepted keys as SHA-256 digests (the admin keys' among them); empty = open API."""

    def __init__(self, digests: Iterable[bytes] = (), admins: Iterable[bytes] = ()):
        self.admins = frozenset(admins)
        self.digests = tuple(dict.fromkeys([*digests, *self.admins]))

    @classmethod
    def build(cls, keys: Iterable[str] = (), hashes: Iterable[str] = (),
              admins: Iterable[str] = ()) -> KeyRing:
        """Plain `keys`, `sha256:` `hashes`, and `admins` (plain or `sha256:` entries)."""
        plain = [hashlib.sha256(k.encode()).digest() for k in keys if k]
        return cls([*plain, *(parse_hash(h) for h in hashes)],
                   [_digest(a) for a in admins if a])

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """TECHNIC_API_KEYS (plain), TECHNIC_API_KEY_HASHES and TECHNIC_ADMIN_KEYS,
        comma-separated."""
        return cls.build(_split(settings.api_keys), _split(settings.api_key_hashes),
                         _split(settings.admin_keys))

    def scope(self, digest: bytes | None) -> Scope:
        """The namespace of a matched key (`match`); None (an open API): the open one."""
        if digest is None:
            return OPEN
        return Scope(fingerprint(digest), admin=digest in self.admins)

    def __bool__(self) -> bool:
        return bool(self.digests)

    def match(self, given: str | None) -> bytes | None:
        """The digest `given` matches, else None; same work whichever key matched."""
        digest = hashlib.sha256((given or "").encode()).digest()
        found = None
        for d in self.digests:
            if hmac.compare_digest(digest, d):
                found = d
        return found if given else None


class RateLimiter:
    """Token buckets of `capacity` tokens refilled at `capacity / period_s`, one per identity.

    At most `max_buckets` identities are tracked (least recently seen dropped first), so
    a flood of distinct client addresses cannot grow memory without bound.
    """

    def __init__(self, capacity: int, period_s: float, *, max_buckets: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        if capacity < 1 or period_s <= 0:
            raise ValueError(f"rate limit needs >= 1 request per positive period, got "
                             f"{capacity}/{period_s}s")
        self.capacity, self.period_s, self.max_buckets = capacity, period_s, max_buckets
        self.rate = capacity / period_s
        self.clock = clock
        self.buckets: LRUCache[Any, tuple[float, float]] = LRUCache(max_buckets)  # id -> tokens, t
        self.rejected = 0

    @classmethod
    def parse(cls, spec: str | None, *, name: str = RATE_ENV, **kwargs: Any
              ) -> RateLimiter | None:
        """`N/period` (period: s, min, hour, day, or e.g. `10s`) as a limiter; empty = None.
        `name`: the variable it came from, for the error."""
        if not spec or not spec.strip():
            return None
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+)\s*", spec.lower())
        if not m or m.group(3) not in PERIODS:
            raise ValueError(f"{name}: expected N/s, N/min, N/hour or N/day (e.g. "
                             f"60/min), got {spec!r}")
        scale = float(m.group(2)) if m.group(2) else 1.0
        return cls(int(m.group(1)), scale * PERIODS[m.group(3)], **kwargs)

    def take(self, ident: Any) -> float:
        """0.0 if `ident` may go ahead (a token is taken), else seconds until it may."""
        now = self.clock()
        tokens, last = self.buckets.pop(ident, (float(self.capacity), now))
        tokens = min(float(self.capacity), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
            self.rejected += 1
        self.buckets[ident] = (tokens, now)  # the least recently used bucket out past max
        return wait

    def blocked(self, ident: Any) -> float:
        """Seconds until `ident` has a token again (0.0: it has one now); takes nothing."""
        entry = self.buckets.get(ident)
        if entry is None:
            return 0.0
        tokens, last = entry
        tokens = min(float(self.capacity), tokens + (self.clock() - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    async def acquire(self, ident: Any) -> float:
        """`take`, behind the async interface SharedRateLimiter also has (dependencies.py)."""
        return self.take(ident)

    @staticmethod
    def retry_after(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))

    def describe(self) -> str:
        return f"{self.capacity}/{self.period_s:g}s"

    def stats(self) -> dict[str, Any]:
        """For /readyz and /v1/stats: buckets in this process only (per replica)."""
        return {"mode": "local", "status": "ok", "limit": self.describe(),
                "rejected": self.rejected, "local_buckets": len(self.buckets)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hash"] and len(args) == 2:
        key = sys.stdin.readline().strip() if args[1] == "-" else args[1]
        print(hash_key(key))
        return 0
    if args == ["new"]:
        key = secrets.token_urlsafe(32)
        print(f"key:  {key}\nhash: {hash_key(key)}")
        return 0
    print("usage: python -m deployments.api.keys hash KEY|-   |   new", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
