"""GET /v1/universe and /v1/sectors: what can be scanned, read from the universe table only.

Both bodies are built once per (data_version, filter) and kept in the result cache.
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
from deployments.api.schemas import SectorsResponse, UniverseResponse, ValidationErrorResponse
from technic_v4.data.panel import memberships
from technic_v4.data.reader import Snapshot
from technic_v4.data.universe import (
    GICS_SECTORS,
    SECTOR_ALIASES,
    UnknownSectorError,
    normalize_sector,
)
from technic_v4.scan.plan import industry_matches

router = APIRouter(prefix="/v1", tags=["universe"], dependencies=[APIKey])
ERRORS = {401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
          422: {"model": ValidationErrorResponse}}


def _dates(col: pd.Series) -> list[str | None]:
    ts = pd.DatetimeIndex(col)
    return [None if pd.isna(t) else str(t.date()) for t in ts]


async def _cached(cache: Any, key: tuple, build: Any) -> Response:
    async def compute() -> CachedBody:
        content = await build()
        return CachedBody(JSONBody(content).body, "application/json",
                          meta_headers(content["meta"]))

    item, how = await cache.get_or_compute(key, compute)
    return Response(item.body, media_type=item.media_type,
                    headers={**item.headers, "X-Technic-Cache": how})


@router.get("/universe", response_model=UniverseResponse, responses=ERRORS)
async def universe(
    backend: Backend, cache: Cache,
    sector: str | None = Query(None, max_length=100, description="A GICS sector or alias."),
    industry: str | None = Query(None, max_length=100,
                                 description="An industry, case-insensitive."),
) -> Response:
    """Every symbol with its name, sector, industry and first/last session in the store."""
    snap, uni = await backend.universe()
    try:
        canon = normalize_sector(sector) if sector is not None else None
    except UnknownSectorError as exc:
        raise InputError("sector", str(exc), exc.valid, location="query") from exc

    async def build() -> dict[str, Any]:
        nonlocal uni
        if canon is not None:
            uni = uni[uni["sector"] == canon]
        if industry is not None:
            known = sorted(set(uni["industry"].astype(str)))
            uni = uni[industry_matches(uni["industry"], [industry])]
            if uni.empty:
                raise InputError("industry", f"unknown industry {industry!r}", known, "query")
        cols = {c: uni[c].astype(str).tolist() for c in ("symbol", "name", "sector", "industry")}
        cols["first_session"] = _dates(uni["first_session"])
        cols["last_session"] = _dates(uni["last_session"])
        cols["indexes"] = [m.split(",") if m else [] for m in memberships(uni)]
        rows = [dict(zip(cols, r, strict=True)) for r in zip(*cols.values(), strict=True)]
        return {"meta": _meta(snap), "count": len(rows), "rows": rows}

    return await _cached(cache, ("universe", snap.data_version, canon, industry), build)


@router.get("/sectors", response_model=SectorsResponse, responses=ERRORS)
async def sectors(backend: Backend, cache: Cache) -> Response:
    """The 11 GICS sectors: symbols and industries in each, and the aliases accepted."""
    snap, uni = await backend.universe()

    async def build() -> dict[str, Any]:
        out = []
        for name in GICS_SECTORS:
            part = uni[uni["sector"] == name]
            out.append({"name": name, "symbols": len(part),
                        "industries": sorted(set(part["industry"].astype(str))),
                        "aliases": sorted(a for a, s in SECTOR_ALIASES.items() if s == name)})
        return {"meta": _meta(snap), "sectors": out}

    return await _cached(cache, ("sectors", snap.data_version), build)


def _meta(snap: Snapshot) -> dict[str, Any]:
    return {"data_version": snap.data_version, "source": snap.source,
            "as_of": snap.last_session}
