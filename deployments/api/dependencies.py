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

Tenancy (technic_v4/tenancy.py): the key check answers the caller's `Scope`, its namespace
named by the key's fingerprint (`Caller`); an admin key (`TECHNIC_ADMIN_KEYS`) sees every
key's. `Tenancy` adds `?owner=<fingerprint>` for an admin to act in one key's namespace
(`?owner=` empty: the open namespace); from any other key it is a 403.

Failed key attempts: with keys configured, each client address also has a bucket of failed
attempts (`TECHNIC_AUTH_FAILURE_LIMIT`, 30/min by default; per process). A wrong key takes a
token (a missing one does not: it guesses nothing); an address with none left gets 429 +
Retry-After on every /v1 route *before* its key is looked at, so guessing runs at that rate
whatever the guesses (a right key guessed while blocked is still a 429), and a user behind
the same address waits with the guesser.
The client address is `request.client.host`: behind the edge (deployments/edge.py) the
address HAProxy resolved (X-Forwarded-For believed only from TECHNIC_TRUSTED_PROXIES), since
the app believes X-Forwarded-For only from 127.0.0.1, the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request

from deployments.api.cache import ResultCache
from deployments.api.keys import KEYS_ENV, KeyRing, RateLimiter
from deployments.api.redis_limiter import SharedRateLimiter
from technic_v4.service.backend import ScanBackend
from technic_v4.settings import Settings
from technic_v4.tenancy import Scope

API_KEYS_ENV = KEYS_ENV
Limiter = RateLimiter | SharedRateLimiter


def install_auth(app: FastAPI, settings: Settings, api_keys: Iterable[str] | None = None,
                 admin_keys: Iterable[str] = ()) -> None:
    """Keys from `api_keys` (plain) and `admin_keys` (plain or `sha256:`) or, when
    `api_keys` is None, from `settings`; the rate limit, shared through the result cache's
    Redis store when it has one (set app.state.cache first)."""
    app.state.keyring = (KeyRing.from_settings(settings) if api_keys is None
                         else KeyRing.build(api_keys, admins=admin_keys))
    app.state.auth_failures = (RateLimiter.parse(settings.auth_failure_limit,
                                                 name="TECHNIC_AUTH_FAILURE_LIMIT")
                               if app.state.keyring else None)
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
) -> Scope:
    """The caller's scope once its key (if keys are configured) and rate limit pass."""
    keyring: KeyRing = request.app.state.keyring
    address = request.client.host if request.client else "-"
    ident: object = None
    digest: bytes | None = None
    if keyring:
        failures: RateLimiter | None = request.app.state.auth_failures
        if failures is not None:
            wait = failures.blocked(address)
            if wait > 0:
                failures.rejected += 1
                after = failures.retry_after(wait)
                raise HTTPException(status_code=429, headers={"Retry-After": after}, detail=(
                    f"too many failed X-API-Key attempts from your address (limit "
                    f"{failures.capacity} per {failures.period_s:g} s); retry after {after} s"))
        ident = digest = keyring.match(x_api_key)
        if digest is not None:  # who heavy requests count against (work.py): the key
            request.state.client = "key:" + digest.hex()[:16]
        if digest is None:
            if failures is not None and x_api_key:  # a guess (no key at all guesses nothing)
                failures.take(address)
            raise HTTPException(status_code=401, detail="missing or invalid X-API-Key header",
                                headers={"WWW-Authenticate": "X-API-Key"})
    limiter: Limiter | None = request.app.state.rate_limiter
    if limiter is not None:
        if ident is None:
            ident = address
        wait = await limiter.acquire(ident)
        if wait > 0:
            after = limiter.retry_after(wait)
            raise HTTPException(status_code=429, headers={"Retry-After": after}, detail=(
                f"rate limit of {limiter.capacity} requests per {limiter.period_s:g} s "
                f"exceeded; retry after {after} s"))
    return keyring.scope(digest)


async def get_scope(
    caller: Annotated[Scope, Depends(require_api_key)],
    owner: Annotated[str | None, Query(
        pattern=r"^(sha256:[0-9a-f]{64})?$",
        description="Admin keys only: act in this key's namespace (its `sha256:<hex>` "
                    "fingerprint, as `python -m deployments.api.keys hash KEY` prints it; "
                    "empty: the open namespace).")] = None,
) -> Scope:
    """The namespace a screen or watch route acts in: the caller's, or (an admin naming
    `owner`) that owner's."""
    if owner is None:
        return caller
    if not caller.admin:
        raise HTTPException(403, "only an admin key (TECHNIC_ADMIN_KEYS) may name an owner")
    return Scope(owner)


Backend = Annotated[ScanBackend, Depends(get_backend)]
Cache = Annotated[ResultCache, Depends(get_cache)]
RateLimit = Annotated[Limiter | None, Depends(get_rate_limiter)]
APIKey = Depends(require_api_key)
Caller = Annotated[Scope, Depends(require_api_key)]
Tenancy = Annotated[Scope, Depends(get_scope)]
