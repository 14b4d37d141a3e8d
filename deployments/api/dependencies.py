"""Request dependencies as `Annotated` aliases: the backend, the result cache, the API-key check.

API keys: env `TECHNIC_API_KEYS`, comma-separated, read when the app is built. When it is unset
or empty the API is open (the README says so); when set, every /v1 route needs a matching
`X-API-Key` header, compared with `hmac.compare_digest` against every key so the time taken
does not tell how much of a key was right. /healthz, /readyz and the OpenAPI docs stay open
for load balancers and humans.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from deployments.api.backend import ScanBackend
from deployments.api.cache import ResultCache

API_KEYS_ENV = "TECHNIC_API_KEYS"


def keys_from_env() -> tuple[str, ...]:
    raw = os.environ.get(API_KEYS_ENV, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def get_backend(request: Request) -> ScanBackend:
    return request.app.state.backend


def get_cache(request: Request) -> ResultCache:
    return request.app.state.cache


def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="Needed when the server has "
                                                         "TECHNIC_API_KEYS set.")] = None,
) -> None:
    keys: tuple[str, ...] = request.app.state.api_keys
    if not keys:
        return
    given = (x_api_key or "").encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode())
    if not ok:
        raise HTTPException(status_code=401, detail="missing or invalid X-API-Key header",
                            headers={"WWW-Authenticate": "X-API-Key"})


Backend = Annotated[ScanBackend, Depends(get_backend)]
Cache = Annotated[ResultCache, Depends(get_cache)]
APIKey = Depends(require_api_key)
