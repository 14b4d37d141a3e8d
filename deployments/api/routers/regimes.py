"""GET /v1/regimes: the market regime of every session in the store (technic_v4/regimes.py).

The timeline is computed once per data version and benchmark where the prices are (in
process, or on an Indicators replica) and the answer kept in the result cache.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Query
from starlette.responses import Response

from deployments.api.cache import CachedBody
from deployments.api.dependencies import APIKey, Backend, Cache
from deployments.api.errors import InputError
from deployments.api.responses import JSONBody, meta_headers
from deployments.api.schemas import RegimesResponse, ValidationErrorResponse
from technic_v4.data.universe import validate_symbol
from technic_v4.errors import ConfigError

router = APIRouter(prefix="/v1", tags=["universe"], dependencies=[APIKey])
ERRORS = {401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
          422: {"model": ValidationErrorResponse},
          503: {"description": "Data loading or the store unreadable; Retry-After"}}


def _date(name: str, value: str | None) -> str | None:
    if value is not None and pd.isna(pd.to_datetime(value, errors="coerce", format="%Y-%m-%d")):
        raise InputError(name, f"{name} {value[:40]!r} is not a date: use YYYY-MM-DD",
                         location="query")
    return value


@router.get("/regimes", response_model=RegimesResponse, responses=ERRORS)
async def regimes(
    backend: Backend, cache: Cache,
    benchmark: str | None = Query(None, max_length=20, description=(
        "A store symbol as the benchmark (default: the equal-weighted universe).")),
    start: str | None = Query(None, max_length=10, description="First session (YYYY-MM-DD)."),
    end: str | None = Query(None, max_length=10, description="Last session (YYYY-MM-DD)."),
) -> Response:
    """The market regime of every session: trend x volatility, the numbers behind it, each
    regime's share and its runs."""
    snap = backend.snapshot()
    if benchmark is not None:
        try:
            benchmark = validate_symbol(benchmark)
        except ConfigError as exc:
            raise InputError("benchmark", exc.message, location="query") from exc
        if benchmark not in snap.index:
            raise InputError("benchmark", f"benchmark {benchmark!r} is not a symbol in the "
                             "store; omit it for the equal-weighted universe",
                             location="query")
    start, end = _date("start", start), _date("end", end)

    async def compute() -> CachedBody:
        timeline = await backend.regimes(benchmark, start, end)
        content: dict[str, Any] = {
            "meta": {"data_version": timeline["data_version"], "source": snap.source,
                     "as_of": timeline["last_session"] or snap.last_session},
            **{k: v for k, v in timeline.items() if k != "data_version"}}
        return CachedBody(JSONBody(content).body, "application/json",
                          meta_headers(content["meta"]))

    item, how = await cache.get_or_compute(
        ("regimes", snap.data_version, benchmark, start, end), compute)
    return Response(item.body, media_type=item.media_type,
                    headers={**item.headers, "X-Technic-Cache": how})
