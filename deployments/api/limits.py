"""Limits on what a client can send, and their place in the OpenAPI document.

  request body       <= 64 KiB (`TECHNIC_MAX_BODY_BYTES`): 413 with the limit in the message,
                     by Content-Length before anything is read, or while a chunked body streams
  list lengths       symbols <= 5,000, sectors <= 11 + aliases, industries <= 200,
                     each string <= 100 characters (schemas.py; 422)
  max_symbols/limit  1..100,000; lookback_days, min_bars, days: 1..1,260 (422)
  symbols            ^[A-Za-z][A-Za-z0-9]{0,9}([.-][A-Za-z0-9]{1,3})?$ in bodies and paths (422,
                     before any lookup; a path with `/`, `..` or NUL never reaches the store)
  request time       Serve's `http_options.request_timeout_s` (serve_config.yaml, 120 s)
  requests per key   `TECHNIC_RATE_LIMIT` (keys.py; 429 + Retry-After)

`document(app)` adds the 401/429 (and 400/413 where there is a body) answers to every /v1
operation of the schema, so clients and schemathesis (tests/test_fuzz.py) know every status
code they can get.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is a 413, however it is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def reject(self, send: Send) -> None:
        body = orjson.dumps({"detail": f"request body too large: the limit is "
                                       f"{self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = None
        if declared is not None and declared > self.max_bytes:
            await self.reject(send)
            return
        seen, over, answered, started = 0, False, False, False

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # end the body here; the app's answer is replaced
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered, started
            if not over or started:  # (a response already under way is left alone)
                started = started or message["type"] == "http.response.start"
                await send(message)
            elif not answered:
                answered = True
                await self.reject(send)

        await self.app(scope, counted, guarded)


ANSWERS = {
    "401": {"description": "X-API-Key missing or wrong (when keys are configured)"},
    "429": {"description": "Rate limit exceeded; `Retry-After` says when to come back",
            "headers": {"Retry-After": {"schema": {"type": "integer"},
                                        "description": "Seconds to wait"}}},
}
TOO_LARGE = {"400": {"description": "Body that cannot be parsed at all (not UTF-8)"},
             "413": {"description": "Request body over the limit (64 KiB by default)"}}


def document(app: FastAPI) -> None:
    """Wrap `app.openapi`: each /v1 operation lists 401, 429 (400, 413 if it has a body)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            for path, ops in spec.get("paths", {}).items():
                if not path.startswith("/v1/"):
                    continue
                for op in ops.values():
                    extra = {**ANSWERS, **(TOO_LARGE if "requestBody" in op else {})}
                    for code, answer in extra.items():
                        op.setdefault("responses", {}).setdefault(code, answer)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
