"""POST /v1/scan and /v1/scan/stream: the scan as one body, or as progress lines then the body.

Both run every check the engine makes (schema, `ScanConfig.validate`, the data-dependent checks
of `check_against`) before anything is computed, so a bad request is a 4xx and never a
half-sent stream; both map errors through `errors.answer`. `/v1/scan` answers from the result
cache when it can (header `X-Technic-Cache: hit`, `shared` or `miss`), keyed by the data and
model versions the answer was computed from; the stream always computes, since its point is
the progress. A scan by screen name (`screen`) is resolved by the engine; the cache key also
names the screen's version, so saving a new version is never answered from the old one, and
a saved screen's owner (screen names resolve in the caller's namespace, technic_v4/tenancy.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from deployments.api.cache import CachedBody
from deployments.api.dependencies import APIKey, Backend, Cache, Caller
from deployments.api.errors import InputError
from deployments.api.responses import (
    MEDIA_TYPES,
    Progress,
    meta_headers,
    negotiate,
    progress_stream,
)
from deployments.api.schemas import ScanRequest, ScanResult, ValidationErrorResponse
from deployments.api.work import admit, heavy
from technic_v4 import formats
from technic_v4.cancel import CancelToken
from technic_v4.scan import ScanConfig
from technic_v4.tenancy import Scope

log = logging.getLogger("technic.api")
router = APIRouter(prefix="/v1", tags=["scan"], dependencies=[APIKey])
ERRORS = {401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
          406: {"description": "Accept names no format this API serves"},
          422: {"model": ValidationErrorResponse,
                "description": "Invalid field; `valid` lists the accepted values"},
          503: {"description": "Data or models loading, or the store unreadable; Retry-After"}}


async def render(frame: Any, status: Any, req: Any, fmt: str, backend: Any,
                 cfg: ScanConfig) -> CachedBody:
    """The result as `fmt` bytes with the status as meta (JSON body / Parquet metadata);
    JSON rows joined from the backend's pre-rendered rows of this evaluation (`cfg`: the
    request with its screen resolved)."""
    meta = status.summary()
    meta["request"] = req.model_dump(mode="json", exclude_none=True)
    if req.include_rejections and fmt == "json":
        meta["rejections"] = status.rejections.astype(str).to_dict(orient="records")
    if fmt == "json":
        fragments = backend.fragments(cfg, status)
        body = await asyncio.to_thread(formats.to_json, frame, meta, fragments)
    else:
        body = await asyncio.to_thread(formats.serialise, frame, meta, fmt)
    headers = meta_headers(meta)
    if fmt != "json":
        headers["Content-Disposition"] = f'attachment; filename="technic-scan-{status.as_of}.{fmt}"'
    return CachedBody(body, MEDIA_TYPES[fmt], headers)


def answer_key(req: Any, fmt: str, data_version: str, models_version: str,
               screen: str) -> tuple:
    return ("scan", data_version, models_version, screen, req.cache_key(fmt))


def screen_tag(ref: dict[str, Any] | None) -> str:
    """A screen's ref as in the X-Technic-Screen header (name:version; "" for none)."""
    return "" if ref is None else f"{ref['name']}:{ref['version']}"


def owned(tag: str, ref: dict[str, Any] | None, scope: Scope) -> str:
    """A cache key's screen part: `tag`, and the owner of a saved (not preset) screen, so
    two keys' screens of one name never share an answer."""
    return f"{tag}@{scope.owner}" if ref and not ref.get("preset") and scope.owner else tag


@router.post("/scan", response_model=ScanResult, responses={
    200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {},
                      "application/vnd.apache.arrow.stream": {}},
          "description": "JSON (default), CSV, Parquet or Arrow IPC by `format` or Accept"},
    **ERRORS})
async def scan(req: ScanRequest, request: Request, backend: Backend, cache: Cache,
               caller: Caller) -> Response:
    """Scan, score and rank the universe: indicators, TechRating, Signal, alpha."""
    fmt = negotiate(request, req.format)
    cfg: ScanConfig = req.to_config()
    resolved, ref = await backend.check(cfg, caller)
    snap_version = (await asyncio.to_thread(backend.snapshot)).data_version
    key = answer_key(req, fmt, snap_version, await backend.models_version(),
                     owned(screen_tag(ref), ref, caller))
    refresh = "no-cache" in request.headers.get("cache-control", "").lower()

    async def compute() -> CachedBody:
        if not (resolved.where or resolved.rank):
            frame, status = await backend.scan(cfg, scope=caller)
        else:  # an expression: a heavy request's slot and cancel token (work.py)
            async with heavy(request) as token:
                frame, status = await backend.scan(cfg, scope=caller, cancel_token=token)
        return await render(frame, status, req, fmt, backend, resolved)

    def computed_key(item: CachedBody) -> tuple:  # the versions the answer was made from
        return answer_key(req, fmt, item.headers.get("X-Technic-Data-Version", ""),
                          item.headers.get("X-Technic-Models", ""),
                          owned(item.headers.get("X-Technic-Screen", ""), ref, caller))

    item, how = await cache.get_or_compute(key, compute, refresh, rekey=computed_key)
    return Response(item.body, media_type=item.media_type,
                    headers={**item.headers, "X-Technic-Cache": how})


@router.post("/scan/stream", response_class=StreamingResponse, responses={
    200: {"content": {"application/x-ndjson": {}}, "description": (
        "One JSON object per line: {event: progress, stage, done, total, elapsed_ms} in "
        "stage order load, indicators, score, alpha, rank; then {event: result, meta, rows} "
        "(the /v1/scan JSON body), or {event: error, status, detail}.")},
    **ERRORS})
async def scan_stream(req: ScanRequest, request: Request, backend: Backend, caller: Caller
                      ) -> StreamingResponse:
    """The same scan, streamed: NDJSON progress events, then the result."""
    if req.format not in (None, "json"):
        raise InputError("format", "the stream sends JSON lines; use /v1/scan for "
                         f"{req.format}", ["json"])
    cfg: ScanConfig = req.to_config()
    resolved, _ = await backend.check(cfg, caller)
    job = admit(request) if resolved.where or resolved.rank else None  # 429/503 up front

    async def run(report: Progress, token: CancelToken) -> bytes:
        frame, status = await backend.scan(cfg, report, fresh=True, scope=caller,
                                           cancel_token=token)
        return (await render(frame, status, req, "json", backend, resolved)).body

    stream = progress_stream(run, "POST /v1/scan/stream", job)
    snap = await asyncio.to_thread(backend.snapshot)
    return StreamingResponse(stream, media_type="application/x-ndjson",
                             headers=meta_headers({"data_version": snap.data_version,
                                                   "source": snap.source,
                                                   "as_of": snap.last_session}))
