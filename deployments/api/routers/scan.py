"""POST /v1/scan and /v1/scan/stream: the scan as one body, or as progress lines then the body.

Both validate the same way (schema, `ScanConfig.validate`, then the data-dependent checks of
the backend) before anything is computed, so a bad request is a 4xx and never a half-sent
stream. `/v1/scan` answers from the result cache when it can (header `X-Technic-Cache: hit`,
`shared` or `miss`); the stream always computes, since its point is the progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import fields
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from deployments.api.cache import CachedBody
from deployments.api.dependencies import APIKey, Backend, Cache
from deployments.api.errors import InputError, NotReadyError
from deployments.api.responses import MEDIA_TYPES, meta_headers, negotiate
from deployments.api.schemas import ScanRequest, ScanResult, ValidationErrorResponse
from deployments.pipeline import UnknownSymbolError
from technic_v4 import formats
from technic_v4.data.universe import InvalidSymbolError, UnknownSectorError
from technic_v4.scanner_core import ScanConfig

log = logging.getLogger("technic.api")
router = APIRouter(prefix="/v1", tags=["scan"], dependencies=[APIKey])
CONFIG_FIELDS = {f.name for f in fields(ScanConfig)}
KEYWORDS = {"signals": "signals", "quality flags": "exclude_flags"}  # messages naming no field
ERRORS = {401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
          406: {"description": "Accept names no format this API serves"},
          422: {"model": ValidationErrorResponse,
                "description": "Invalid field; `valid` lists the accepted values"}}


async def checked_config(req: ScanRequest, backend: Any) -> ScanConfig:
    """`req` as a ScanConfig that passed every check, or an InputError naming the field."""
    cfg = req.to_config()
    try:
        cfg.validate()
    except UnknownSectorError as exc:
        raise InputError("sectors", str(exc)) from exc
    except InvalidSymbolError as exc:
        raise InputError("symbols", str(exc)) from exc
    except ValueError as exc:
        msg = str(exc)
        field = next((w for w in msg.replace(",", " ").split() if w in CONFIG_FIELDS),
                     next((f for k, f in KEYWORDS.items() if k in msg), "body"))
        raise InputError(field, msg) from exc
    await backend.check(cfg)
    return cfg


async def render(frame: Any, status: Any, req: ScanRequest, fmt: str) -> CachedBody:
    """The result as `fmt` bytes with the status as meta (JSON body / Parquet metadata)."""
    meta = status.summary()
    meta["request"] = req.model_dump(mode="json", exclude_none=True)
    if req.include_rejections and fmt == "json":
        meta["rejections"] = status.rejections.astype(str).to_dict(orient="records")
    body = await asyncio.to_thread(formats.serialise, frame, meta, fmt)
    headers = meta_headers(meta)
    if fmt != "json":
        headers["Content-Disposition"] = f'attachment; filename="technic-scan-{status.as_of}.{fmt}"'
    return CachedBody(body, MEDIA_TYPES[fmt], headers)


@router.post("/scan", response_model=ScanResult, responses={
    200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
          "description": "JSON (default), CSV or Parquet by `format` or the Accept header"},
    **ERRORS})
async def scan(req: ScanRequest, request: Request, backend: Backend, cache: Cache) -> Response:
    """Scan, score and rank the universe: indicators, TechRating, Signal, alpha."""
    fmt = negotiate(request, req.format)
    cfg = await checked_config(req, backend)
    info = backend.data_info()
    key = ("scan", info.data_version, backend.model_versions(), req.cache_key(fmt))
    refresh = "no-cache" in request.headers.get("cache-control", "").lower()

    async def compute() -> CachedBody:
        frame, status = await backend.scan(cfg)
        return await render(frame, status, req, fmt)

    item, how = await cache.get_or_compute(key, compute, refresh)
    return Response(item.body, media_type=item.media_type,
                    headers={**item.headers, "X-Technic-Cache": how})


@router.post("/scan/stream", response_class=StreamingResponse, responses={
    200: {"content": {"application/x-ndjson": {}}, "description": (
        "One JSON object per line: {event: progress, stage, done, total, elapsed_ms} in "
        "stage order load, indicators, score, alpha, rank; then {event: result, meta, rows} "
        "(the /v1/scan JSON body), or {event: error, status, detail}.")},
    **ERRORS})
async def scan_stream(req: ScanRequest, backend: Backend) -> StreamingResponse:
    """The same scan, streamed: NDJSON progress events, then the result."""
    if req.format not in (None, "json"):
        raise InputError("format", "the stream sends JSON lines; use /v1/scan for "
                         f"{req.format}", ["json"])
    cfg = await checked_config(req, backend)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    t0 = time.perf_counter()

    def report(stage: str, done: int, total: int) -> None:
        ms = round((time.perf_counter() - t0) * 1000, 3)
        queue.put_nowait(orjson.dumps({"event": "progress", "stage": stage, "done": done,
                                       "total": total, "elapsed_ms": ms}) + b"\n")

    async def produce() -> None:
        try:
            frame, status = await backend.scan(cfg, report)
            item = await render(frame, status, req, "json")
            queue.put_nowait(b'{"event":"result",' + item.body[1:] + b"\n")
        except Exception as exc:
            code = (422 if isinstance(exc, InputError) else 404 if isinstance(
                exc, UnknownSymbolError) else 503 if isinstance(exc, NotReadyError) else 500)
            if code == 500:
                log.exception("scan stream failed")
            detail = str(exc) if code != 500 else "internal error"
            queue.put_nowait(orjson.dumps({"event": "error", "status": code,
                                           "detail": detail}) + b"\n")
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(produce())

    async def lines():  # type: ignore[no-untyped-def]
        try:
            while (line := await queue.get()) is not None:
                yield line
        finally:
            if not task.done():
                task.cancel()

    info = backend.data_info()
    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers=meta_headers(vars(info)))
