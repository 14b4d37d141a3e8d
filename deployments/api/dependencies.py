"""Request dependencies as `Annotated` aliases: the backend, the result cache, the API-key check.

API keys (deployments/api/keys.py): `TECHNIC_API_KEY_HASHES` (`sha256:<hex>` entries) and/or
plain `TECHNIC_API_KEYS`, read when the app is built and kept only as SHA-256 digests. When
neither is set the API is open (the README says so); when set, every /v1 route needs a
matching `X-API-Key` header (401 otherwise), checked in constant time. With
`TECHNIC_RATE_LIMIT` set, each key (each client address on an open API) has a token bucket
and a request over it is a 429 with `Retry-After`. The buckets are in this process, or in
Redis when the result cache has one (REDIS_URL; redis_limiter.py), falling back to this
process's buckets while Redis is unavailable. /healthz, /readyz, the scan page and the
OpenAPI docs (/docs, /openapi.json) stay open for load balancers and humans.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from deployments.api.backend import ScanBackend
from deployments.api.cache import ResultCache
from deployments.api.keys import KEYS_ENV, KeyRing, RateLimiter
from deployments.api.redis_limiter import SharedRateLimiter
from technic_v4.settings import Settings

API_KEYS_ENV = KEYS_ENV
Limiter = RateLimiter | SharedRateLimiter


def install_auth(app: FastAPI, settings: Settings, api_keys: Iterable[str] | None = None
                 ) -> None:
    """Keys from `api_keys` (plain) or, when None, from `settings`; the rate limit,
    shared through the result cache's Redis store when it has one (set app.state.cache
    first)."""
    app.state.keyring = (KeyRing.from_settings(settings) if api_keys is None
                         else KeyRing.build(api_keys))
    local = RateLimiter.parse(settings.rate_limit)
    store = getattr(app.state.cache, "remote", None)
    app.state.rate_limiter = (local if local is None or store is None
                              else SharedRateLimiter(local, store))


def get_backend(request: Request) -> ScanBackend:
    return request.app.state.backend


def get_cache(request: Request) -> ResultCache:
    return request.app.state.cache


def get_rate_limiter(request: Request) -> Limiter | None:
    return request.app.state.rate_limiter


def rate_limit_stats(limiter: Limiter | None) -> dict[str, Any]:
    """The limiter's mode and counters for /readyz and /v1/stats; `off` without a limit."""
    return {"mode": "off"} if limiter is None else limiter.stats()


async def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="Needed when the server has API "
                                                         "keys configured.")] = None,
) -> None:
    keyring: KeyRing = request.app.state.keyring
    ident: object = None
    if keyring:
        ident = keyring.match(x_api_key)
        if ident is None:
            raise HTTPException(status_code=401, detail="missing or invalid X-API-Key header",
                                headers={"WWW-Authenticate": "X-API-Key"})
    limiter: Limiter | None = request.app.state.rate_limiter
    if limiter is not None:
        if ident is None:
            ident = request.client.host if request.client else "-"
        wait = await limiter.acquire(ident)
        if wait > 0:
            after = limiter.retry_after(wait)
            raise HTTPException(status_code=429, headers={"Retry-After": after}, detail=(
                f"rate limit of {limiter.capacity} requests per {limiter.period_s:g} s "
                f"exceeded; retry after {after} s"))


Backend = Annotated[ScanBackend, Depends(get_backend)]
Cache = Annotated[ResultCache, Depends(get_cache)]
RateLimit = Annotated[Limiter | None, Depends(get_rate_limiter)]
APIKey = Depends(require_api_key)
