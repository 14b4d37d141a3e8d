"""POST /v1/validate and /v1/validate/stream: a screen replayed over history (issue 14).

The request is a scan request (the same derived fields, checked the same way) plus how to
validate; the answer is the report (technic_v4/validate/report.py) with its daily series, or
the daily series alone as CSV / Parquet. The stream sends NDJSON progress lines (indicators,
replay), then the result line, or an error line mapped like every other error (errors.answer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from deployments.api.cache import CachedBody
from deployments.api.dependencies import APIKey, Backend, Cache, Caller
from deployments.api.errors import InputError
from deployments.api.responses import (
    JSON_OPTIONS,
    MEDIA_TYPES,
    Progress,
    meta_headers,
    negotiate,
    progress_stream,
)
from deployments.api.routers.scan import owned, screen_tag
from deployments.api.schemas import ValidateRequest, ValidationErrorResponse, ValidationResult
from deployments.api.work import admit, heavy
from technic_v4.cancel import CancelToken

router = APIRouter(prefix="/v1", tags=["validate"], dependencies=[APIKey])
ERRORS = {401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
          422: {"model": ValidationErrorResponse,
                "description": "Invalid field; `valid` lists the accepted values"},
          503: {"description": "Data loading or the store unreadable; Retry-After"}}


def body(result: Any, fmt: str) -> CachedBody:
    """The report as JSON (with the daily series as columns), or the series as CSV/Parquet."""
    report = result.report
    meta = {"data_version": report["data"]["data_version"], "source": report["data"]["source"],
            "as_of": report["data"]["last_session"]}
    headers = meta_headers(meta)
    if fmt == "json":
        daily = {c: result.daily[c].tolist() for c in result.daily.columns}
        payload = orjson.dumps({"meta": meta, "report": report, "daily": daily},
                               option=JSON_OPTIONS)
    else:
        payload = result.daily_bytes(fmt)
    if fmt != "json":
        headers["Content-Disposition"] = f'attachment; filename="technic-validate.{fmt}"'
    return CachedBody(payload, MEDIA_TYPES[fmt], headers)


@router.post("/validate", response_model=ValidationResult, responses={
    200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
          "description": "JSON (default): the report and daily series; CSV or Parquet: the "
                         "daily series"}, **ERRORS})
async def validate(req: ValidateRequest, request: Request, backend: Backend,
                   cache: Cache, caller: Caller) -> Response:  # type: ignore[valid-type]
    """Replay a screen at every past session; what its picks did next, with statistics."""
    fmt = negotiate(request, req.format)
    if fmt == "arrow":
        raise InputError("format", "validation answers json, csv or parquet",
                         ["json", "csv", "parquet"], status=406)
    cfg, opts = req.to_config(), req.options()
    opts.check()  # before anything is sent: a 422, not an error line
    _, ref = await backend.check(cfg, caller)
    snap = await asyncio.to_thread(backend.snapshot)
    key = ("validate", snap.data_version, owned(screen_tag(ref), ref, caller),
           req.model_dump_json(exclude={"format"}), fmt)

    async def compute() -> CachedBody:  # a heavy request's slot and cancel token (work.py)
        async with heavy(request) as token:
            result = await backend.validate(cfg, opts, scope=caller, cancel_token=token)
        return await asyncio.to_thread(body, result, fmt)

    item, how = await cache.get_or_compute(key, compute)
    return Response(item.body, media_type=item.media_type,
                    headers={**item.headers, "X-Technic-Cache": how})


@router.post("/validate/stream", response_class=StreamingResponse, responses={
    200: {"content": {"application/x-ndjson": {}}, "description": (
        "One JSON object per line: {event: progress, stage, done, total, elapsed_ms}, then "
        "{event: result, meta, report, daily} or {event: error, status, detail}.")},
    **ERRORS})
async def validate_stream(req: ValidateRequest,  # type: ignore[valid-type]
                          request: Request, backend: Backend, caller: Caller
                          ) -> StreamingResponse:
    """The same validation, streamed: NDJSON progress events, then the report."""
    if req.format not in (None, "json"):
        raise InputError("format", "the stream sends JSON lines", ["json"])
    cfg, opts = req.to_config(), req.options()
    opts.check()  # before anything is sent: a 422, not an error line
    await backend.check(cfg, caller)
    job = admit(request)  # 429/503 before the stream starts

    async def run(report: Progress, token: CancelToken) -> bytes:
        result = await backend.validate(cfg, opts, report, scope=caller, cancel_token=token)
        return (await asyncio.to_thread(body, result, "json")).body

    return StreamingResponse(progress_stream(run, "POST /v1/validate/stream", job),
                             media_type="application/x-ndjson")
