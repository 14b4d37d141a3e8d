"""Request dependencies as `Annotated` aliases: the backend, the result cache, the API-key check.

API keys (deployments/api/keys.py): `TECHNIC_API_KEY_HASHES` (`sha256:<hex>` entries) and/or
plain `TECHNIC_API_KEYS`, read when the app is built and kept only as SHA-256 digests. When
neither is set the API is open (the README says so); when set, every /v1 route needs a
matching `X-API-Key` header (401 otherwise), checked in constant time. With
`TECHNIC_RATE_LIMIT` set, each key (each client address on an open API) has a token bucket
and a request over it is a 429 with `Retry-After`. /healthz, /readyz, the scan page and the
OpenAPI docs (/docs, /openapi.json) stay open for load balancers and humans.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from deployments.api.backend import ScanBackend
from deployments.api.cache import ResultCache
from deployments.api.keys import KEYS_ENV, RATE_ENV, KeyRing, RateLimiter

API_KEYS_ENV = KEYS_ENV


def install_auth(app: FastAPI, api_keys: Iterable[str] | None = None) -> None:
    """Keys from `api_keys` (plain) or, when None, from the environment; the rate limit."""
    app.state.keyring = KeyRing.from_env() if api_keys is None else KeyRing.build(api_keys)
    app.state.rate_limiter = RateLimiter.parse(os.environ.get(RATE_ENV))


def get_backend(request: Request) -> ScanBackend:
    return request.app.state.backend


def get_cache(request: Request) -> ResultCache:
    return request.app.state.cache


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
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        if ident is None:
            ident = request.client.host if request.client else "-"
        wait = limiter.take(ident)
        if wait > 0:
            after = limiter.retry_after(wait)
            raise HTTPException(status_code=429, headers={"Retry-After": after}, detail=(
                f"rate limit of {limiter.capacity} requests per {limiter.period_s:g} s "
                f"exceeded; retry after {after} s"))


Backend = Annotated[ScanBackend, Depends(get_backend)]
Cache = Annotated[ResultCache, Depends(get_cache)]
APIKey = Depends(require_api_key)
