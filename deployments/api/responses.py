"""Response helpers: orjson bodies, the X-Technic-* headers, and format negotiation.

Every response says where its data came from: `X-Technic-Data-Version`, `X-Technic-Source`,
`X-Technic-As-Of` (scans add `X-Technic-Models`, and `X-Technic-Screen: name:version` when run
by screen name), plus `X-Technic-Elapsed-Ms` and `Server-Timing` (time to the response head,
i.e. the whole computation for non-streaming routes). Routes that know better (a scan as of a
past session) set the headers themselves; `MetaHeaders` fills in the rest from the store's
manifest, so errors and health checks carry them too.
"""

from __future__ import annotations

import asyncio
import string
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.api import errors
from deployments.api.errors import FORMATS, InputError
from deployments.api.work import Admitted
from technic_v4.cancel import CancelToken

HEADER_SAFE = "".join(c for c in string.printable if c.isprintable() and c != "%")
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "parquet": "application/vnd.apache.parquet",
               "arrow": "application/vnd.apache.arrow.stream"}
ACCEPTED = {"application/json": "json", "text/csv": "csv",
            "application/vnd.apache.parquet": "parquet", "application/x-parquet": "parquet",
            "application/parquet": "parquet", "application/vnd.apache.arrow.stream": "arrow",
            "*/*": "json", "application/*": "json"}


class JSONBody(Response):
    """JSON via orjson: numpy values allowed, NaN as null (as the scan rows need)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=JSON_OPTIONS)


def header_value(text: object) -> str:
    """`text` as a header value: printable ASCII as is, anything else (non-ASCII, control
    characters, `%`) percent-encoded as UTF-8. Header values travel as Latin-1 at best, and a
    source such as `ingest:<file name>` may hold any character; the JSON `meta` has it raw."""
    return quote(str(text), safe=HEADER_SAFE)


def meta_headers(meta: dict[str, Any]) -> dict[str, str]:
    """The X-Technic-* headers of `meta`; a scan's also names the model versions that made
    its alpha columns (`X-Technic-Models: alpha_5d:<sha12>,alpha_10d:<sha12>`)."""
    out = {"X-Technic-Data-Version": header_value(meta.get("data_version", "")),
           "X-Technic-Source": header_value(meta.get("source", "")),
           "X-Technic-As-Of": header_value(meta.get("as_of", ""))}
    models = (meta.get("alpha") or {}).get("models_version")
    if models:
        out["X-Technic-Models"] = header_value(models)
    screen = meta.get("screen")
    if screen:  # the saved screen or preset a scan ran: name:version
        out["X-Technic-Screen"] = header_value(f"{screen['name']}:{screen['version']}")
    return out


def negotiate(request: Request, explicit: str | None) -> str:
    """The body format: the request's `format` field, else the Accept header, else JSON."""
    if explicit:
        return explicit
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return "json"
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind in ACCEPTED:
            return ACCEPTED[kind]
    raise InputError("format", f"cannot answer Accept: {accept!r}; send format or one of "
                     f"{', '.join(k for k in ACCEPTED if '*' not in k)}", list(FORMATS),
                     location="header", status=406)


class MetaHeaders:
    """ASGI middleware adding the headers of the module docstring to every response."""

    def __init__(self, app: ASGIApp, backend: Any):
        self.app, self.backend = app, backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def send_with_meta(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-technic-data-version" not in headers:
                    try:
                        info = self.backend.data_info()
                        for k, v in meta_headers(vars(info)).items():
                            headers[k] = v
                    except Exception:  # no store yet: the body says what is wrong
                        headers["X-Technic-Data-Version"] = "unavailable"
                ms = (time.perf_counter() - t0) * 1000
                headers["X-Technic-Elapsed-Ms"] = f"{ms:.1f}"
                headers.append("Server-Timing", f"total;dur={ms:.1f}")
            await send(message)

        await self.app(scope, receive, send_with_meta)


Progress = Callable[[str, int, int], None]
_RUNNING: set[asyncio.Task[None]] = set()


def progress_stream(run: Callable[[Progress, CancelToken], Awaitable[bytes]], where: str,
                    job: Admitted | None = None) -> AsyncIterator[bytes]:
    """The NDJSON lines of a streamed route (`/v1/scan/stream`, `/v1/validate/stream`):
    {event: progress, ...} for each report `run` makes (from the event loop or a worker
    thread), then {event: result, ...} from the JSON object `run` returns, or {event: error,
    status, detail[, retry_after]} as the same route's plain answer would say it. A client
    that leaves sets the cancel token `run` gets (the `job`'s, a heavy request's slot, freed
    when `run` has stopped; work.py)."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    loop, loop_thread = asyncio.get_running_loop(), threading.get_ident()
    t0 = time.perf_counter()

    def report(stage: str, done: int, total: int) -> None:
        line = orjson.dumps({"event": "progress", "stage": stage, "done": done, "total": total,
                             "elapsed_ms": round((time.perf_counter() - t0) * 1000, 1)})
        if threading.get_ident() == loop_thread:
            queue.put_nowait(line + b"\n")
        else:  # in order with the loop's own puts: the thread's end is signalled after these
            loop.call_soon_threadsafe(queue.put_nowait, line + b"\n")

    token = job.token if job is not None else CancelToken()

    async def produce() -> None:
        try:
            body = await run(report, token)
            queue.put_nowait(b'{"event":"result",' + body[1:] + b"\n")
        except Exception as exc:  # the route's error answer, as a line (errors.answer)
            code, detail, headers = errors.answer(exc, where)
            event = {"event": "error", "status": code, "detail": detail.get("detail")}
            if "Retry-After" in headers:
                event["retry_after"] = int(headers["Retry-After"])
            queue.put_nowait(orjson.dumps(event) + b"\n")
        finally:
            queue.put_nowait(None)
            if job is not None:
                job.done()

    task = asyncio.create_task(produce())
    _RUNNING.add(task)  # the loop keeps only a weak reference; the work may outlive the stream
    task.add_done_callback(_RUNNING.discard)

    async def lines() -> AsyncIterator[bytes]:
        try:
            while (line := await queue.get()) is not None:
                yield line
        finally:
            if not task.done():  # the client left: the engine stops at its next check
                token.cancel("the client disconnected")

    return lines()
