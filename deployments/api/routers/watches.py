"""Watches over HTTP, and the event stream.

    GET    /v1/watches                 every watch with its delivery state
    POST   /v1/watches                 create (201); the answer holds the secret, once
    GET    /v1/watches/{name}          one watch: targets (redacted), last evaluation,
                                       deliveries by state, breakers, dead letters
    DELETE /v1/watches/{name}
    POST   /v1/watches/{name}/test     a signed test message to every target, now
    POST   /v1/watches/{name}/redeliver  dead deliveries pending again
    GET    /v1/events                  text/event-stream of the outbox: `event: watch`,
                                       `id: <outbox sequence>`, `data: <event JSON>`;
                                       resumes after `Last-Event-ID` (or `?after=`);
                                       `?follow=false` ends after the backlog
All under the API key, each in the caller's scope (technic_v4/tenancy.py): with API keys a
key's watches and their events are its own; another key's watch is a 404 like any unknown
name, and the stream carries only the caller's watches' events (an admin key's: every key's).
Event streams have slots of their own (TECHNIC_EVENT_STREAMS overall, 503 past it;
TECHNIC_EVENT_STREAMS_PER_ADDR per client address, 429), apart from the API's (and at the
edge, apart from its backend slots), so open streams never stop scans. A sequence
(Last-Event-ID, `after`) is ASCII digits within int64; anything else is a 400.
The backend's `watches` (technic_v4/watch/service.py in-process, the
Watcher deployment's handle under Serve) does the work; errors map through `errors.answer`:
bad input 422, unknown watch 404, a name taken 409, a private target 422 naming why.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from deployments.api import schemas
from deployments.api.dependencies import APIKey, Backend, Tenancy
from deployments.api.errors import InputError
from deployments.api.responses import JSONBody
from deployments.api.routers.screens import OWNED
from deployments.api.work import Slots
from technic_v4.errors import ConfigError
from technic_v4.scan.config import SCREEN_NAME
from technic_v4.watch.model import WatchSpec, check_watch_name

router = APIRouter(prefix="/v1", tags=["watches"], dependencies=[APIKey])
ERROR = schemas.ValidationErrorResponse
INVALID = {422: {"model": ERROR, "description": "Invalid name, definition or target (a private "
                 "address is refused, naming it)"}}
UNKNOWN = {404: {"model": ERROR, "description": "No watch of this name"}}
TAKEN = {409: {"model": ERROR, "description": "A watch of this name exists"}}
WatchPath = Annotated[str, Path(description="A watch name (the screen-name rule).",
                                json_schema_extra={"pattern": SCREEN_NAME.pattern})]
POLL_S = 1.0      # how often a following stream looks for new events
PING_S = 15.0     # a comment line this often keeps proxies from closing an idle stream
SEQ_MAX = 2**63 - 1  # SQLite's INTEGER: a larger sequence would overflow inside the stream
SEQ_DIGITS = re.compile(r"[0-9]{1,19}")


def _name(name: str) -> str:
    try:
        return check_watch_name(name)
    except ConfigError as exc:
        raise InputError("name", str(exc), location="path") from None


@router.get("/watches", response_model=schemas.WatchList, responses=OWNED)
async def list_watches(backend: Backend, scope: Tenancy) -> JSONBody:
    """Your watches: screen, targets (redacted), delivery state."""
    watches = await backend.watches.list(scope=scope)
    return JSONBody({"count": len(watches), "watches": watches})


@router.post("/watches", response_model=schemas.WatchCreated, status_code=201,
             responses={**OWNED, **INVALID, **TAKEN})
async def create_watch(body: schemas.WatchCreate, backend: Backend, scope: Tenancy) -> JSONBody:
    """Create a watch and evaluate its baseline; the answer holds the secret (only here)."""
    definition = None
    if body.definition is not None:
        from technic_v4.screens.saved import definition_of

        definition = definition_of(body.definition.to_config())
    spec = WatchSpec(body.name, body.screen, body.screen_version, definition,
                     tuple(body.webhooks), tuple(body.apprise), body.rank_moved, body.initial,
                     body.regime_changed)
    return JSONBody(await backend.watches.create(spec, scope=scope), status_code=201)


@router.get("/watches/{name}", response_model=schemas.WatchInfo, responses={**OWNED, **UNKNOWN,
                                                                    **INVALID})
async def get_watch(name: WatchPath, backend: Backend, scope: Tenancy) -> JSONBody:
    """One watch with its last evaluation, deliveries by state, breakers and dead letters."""
    return JSONBody(await backend.watches.get(_name(name), scope=scope))


@router.delete("/watches/{name}", response_model=schemas.WatchDeleted,
               responses={**OWNED, **UNKNOWN, **INVALID})
async def delete_watch(name: WatchPath, backend: Backend, scope: Tenancy) -> JSONBody:
    """Remove a watch with its events and pending deliveries."""
    await backend.watches.remove(_name(name), scope=scope)
    return JSONBody({"name": name, "deleted": True})


@router.post("/watches/{name}/test", response_model=schemas.WatchTestResult,
             responses={**OWNED, **UNKNOWN, **INVALID})
async def test_watch(name: WatchPath, backend: Backend, scope: Tenancy) -> JSONBody:
    """Send a signed `watch.test` message to every target now (not retried, not recorded)."""
    return JSONBody({"name": name,
                     "results": await backend.watches.test(_name(name), scope=scope)})


@router.post("/watches/{name}/redeliver", response_model=schemas.WatchRedelivered,
             responses={**OWNED, **UNKNOWN, **INVALID})
async def redeliver(name: WatchPath, backend: Backend, scope: Tenancy,
                    body: schemas.WatchRedeliver | None = None) -> JSONBody:
    """Dead deliveries pending again, with fresh attempts (all, or `deliveries`)."""
    ids = body.deliveries if body is not None else None
    return JSONBody({"name": name, "redelivered": await backend.watches.redeliver(
        _name(name), ids, scope=scope)})


def sequence(text: str, name: str, location: str) -> int:
    """An event sequence from a header or query value: ASCII digits within int64, else an
    InputError 400 naming `name` (`isdigit()` would take '²', and 19 nines overflow)."""
    text = text.strip()
    if not SEQ_DIGITS.fullmatch(text) or int(text) > SEQ_MAX:
        raise InputError(name, f"{name} is an event sequence number (the `id:` of an event): "
                         f"0 to {SEQ_MAX} in ASCII digits, got {text[:24]!r}",
                         location=location, status=400)
    return int(text)


@router.get("/events", responses={**OWNED, **INVALID, 400: {
    "model": ERROR, "description": "Last-Event-ID or `after` not ASCII digits within int64"},
    503: {"description": "Every event stream slot in use (TECHNIC_EVENT_STREAMS); "
          "Retry-After"}, 200: {
    "content": {"text/event-stream": {}},
    "description": "`event: watch`, `id: <sequence>`, `data: <event JSON>` per event"}})
async def events(request: Request, backend: Backend, scope: Tenancy,
                 after: Annotated[str | None, Query(max_length=32, description=(
                     "Start after this sequence, 0 to 2^63-1 (default: Last-Event-ID, else "
                     "only new events)."))] = None,
                 watch: Annotated[str | None, Query(max_length=64)] = None,
                 follow: Annotated[bool, Query(description="Wait for new events (false: end "
                                               "after the backlog).")] = True,
                 last_event_id: Annotated[str | None, Header(max_length=32)] = None,
                 ) -> EventSourceResponse:
    """Your watches' outbox events as server-sent events, resumable with Last-Event-ID."""
    if watch is not None:
        watch = _name(watch)
    start = None if after is None else sequence(after, "after", "query")
    if start is None and last_event_id is not None:
        start = sequence(last_event_id, "last-event-id", "header")
    slots: Slots = request.app.state.streams
    address = request.client.host if request.client else "-"
    slots.take(address)  # 429 / 503 + Retry-After past the caps; freed when the stream ends
    released = False

    def release() -> None:  # once: the stream's end, or the response's if it never started
        nonlocal released
        if not released:
            released = True
            slots.release(address)

    try:
        if start is None:
            start = await backend.watches.last_seq(scope=scope)
    except BaseException:
        release()
        raise

    async def stream() -> AsyncIterator[dict[str, Any]]:
        seq = start
        try:
            while True:
                batch = await backend.watches.events(seq, 200, watch, scope=scope)
                for seq, event in batch:
                    yield {"id": str(seq), "event": "watch", "data": json.dumps(event)}
                if len(batch) == 200:
                    continue
                if not follow or await request.is_disconnected():
                    return
                await asyncio.sleep(POLL_S)
        finally:
            release()

    return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-store"},
                               background=BackgroundTask(release))
