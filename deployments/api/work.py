"""Heavy requests: a bounded number at once, per client and overall, each cancellable.

Expression evaluation (a scan with `where` or `rank`), validation and explain cost
CPU-seconds and up to gigabytes each. They run off the event loop (threads: the screen
kernels and numpy release the GIL, and the backend shortens the GIL switch interval so the
loop gets it back quickly) and only inside a slot:

  per client   TECHNIC_HEAVY_PER_CLIENT at once (default 2) for one client: its API key, or
               on an open API its address (as the edge resolved it; dependencies.py) -> 429
  overall      TECHNIC_HEAVY_SLOTS at once (default 3) for everyone -> 503
Both answers carry `Retry-After`; no request waits in a queue (the client retries), so no
amount of concurrent heavy requests is ever more than the slots' worth of CPU and memory.

Every heavy request gets a `CancelToken` (technic_v4/cancel.py) that the engine checks between
chunks, sessions, expression nodes and row blocks. It is set when the client disconnects
(`http.disconnect`: a closed connection, or the edge's 504 closing it) or at
TECHNIC_REQUEST_TIMEOUT_S, so the work stops within a second and its memory is freed; the
slot is released only when the work has actually stopped. A cancelled request answers 504.
Streams (`progress_stream`) set the token when the client stops reading. When the last heavy
request ends, the slots' `idle` hook runs in a thread (the backend's `release_idle`: cached
whole histories and expression windows dropped), then `release_memory`: a full garbage
collection (a cancelled request's traceback holds its frames, and with them its arrays, in a
reference cycle that only the collector frees) and the C heap's free pages back to the system
(glibc keeps what numpy freed in its arenas otherwise, and RSS would stay at the peak).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from technic_v4.cancel import Cancelled, CancelToken
from technic_v4.settings import Settings

T = TypeVar("T")
RETRY_AFTER_S = 2  # what a 429/503 for a busy slot says; heavy work takes seconds
HEAVY = "heavy requests (where/rank, validate, explain)"


class Slots:
    """Counts of requests of one kind in flight, per client and overall: heavy requests
    (module docstring) and event streams (routers/watches.py) each have their own."""

    def __init__(self, total: int, per_client: int, what: str,
                 deadline_s: float | None = None, idle: Callable[[], object] | None = None):
        self.total, self.per_client, self.what = total, per_client, what
        self.deadline_s = deadline_s
        self.idle = idle  # run (in a thread) when the last request in a slot ends
        self._lock = threading.Lock()
        self._by_client: dict[str, int] = {}
        self.running = 0
        self.rejected = {"client": 0, "total": 0}
        self.cancelled = 0

    @classmethod
    def heavy(cls, settings: Settings, idle: Callable[[], object] | None = None) -> Slots:
        """TECHNIC_HEAVY_SLOTS / _PER_CLIENT, cancelled at TECHNIC_REQUEST_TIMEOUT_S; `idle`
        when the last one ends (module docstring)."""
        return cls(settings.heavy_slots, settings.heavy_per_client, HEAVY,
                   settings.request_timeout_s, idle)

    @classmethod
    def streams(cls, settings: Settings) -> Slots:
        """TECHNIC_EVENT_STREAMS / _PER_ADDR."""
        return cls(settings.event_streams, settings.event_streams_per_addr,
                   "open event streams")

    def take(self, client: str) -> None:
        """A slot for `client`, or HTTPException 429 (its own limit) / 503 (everyone's)."""
        with self._lock:
            mine = self._by_client.get(client, 0)
            if mine >= self.per_client:
                self.rejected["client"] += 1
                raise HTTPException(429, headers={"Retry-After": str(RETRY_AFTER_S)}, detail=(
                    f"{self.what}: {mine} of yours at once, the limit per client; retry "
                    f"after {RETRY_AFTER_S} s"))
            if self.running >= self.total:
                self.rejected["total"] += 1
                raise HTTPException(503, headers={"Retry-After": str(RETRY_AFTER_S)}, detail=(
                    f"{self.what}: the server's {self.total} are all in use; retry after "
                    f"{RETRY_AFTER_S} s"))
            self._by_client[client] = mine + 1
            self.running += 1

    def release(self, client: str) -> None:
        with self._lock:
            self.running -= 1
            left = self._by_client.get(client, 1) - 1
            if left > 0:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)

    def released(self) -> None:
        """The `idle` hook, then release_memory (when the last request in a slot ended)."""
        if self.idle is not None:
            self.idle()
        release_memory()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"slots": self.total, "per_client": self.per_client,
                    "running": self.running, "clients": len(self._by_client),
                    "rejected": dict(self.rejected), "cancelled": self.cancelled}


def client_of(request: Request) -> str:
    """Who a request counts against: its API key (set by the key check), else its address."""
    ident = getattr(request.state, "client", None)
    if ident:
        return str(ident)
    return "addr:" + (request.client.host if request.client else "-")


async def _disconnected(request: Request, token: CancelToken) -> None:
    """Set `token` when the client goes away (the body is read: the next message is the
    disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            token.cancel("the client disconnected")
            return


class Admitted:
    """One heavy request in its slot: `token` to pass to the engine, `done()` (once) when
    the work has stopped."""

    def __init__(self, slots: Slots, client: str):
        self.slots, self.client = slots, client
        self.token = CancelToken(slots.deadline_s)
        self._done = False

    def done(self) -> None:
        if not self._done:
            self._done = True
            if self.token.cancelled:
                self.slots.cancelled += 1
            self.slots.release(self.client)
            if self.slots.running == 0:  # off the loop: a collection takes ~0.1 s
                threading.Thread(target=self.slots.released, name="technic-trim",
                                 daemon=True).start()


def release_memory() -> None:
    """Free what the last heavy work left: a full garbage collection (module docstring),
    then the C heap's free pages back to the system (glibc `malloc_trim`; elsewhere nothing
    to do: other allocators return large blocks themselves)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_LIBC = (ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
         if sys.platform.startswith("linux") else None)


def admit(request: Request) -> Admitted:
    """A slot for the request's client, or 429/503 with Retry-After (Slots.take)."""
    slots: Slots = request.app.state.heavy
    client = client_of(request)
    slots.take(client)
    return Admitted(slots, client)


@asynccontextmanager
async def heavy(request: Request) -> AsyncIterator[CancelToken]:
    """A slot (admit) and its cancel token, set when the client disconnects; the slot is
    freed when the block ends, which with a token-checking engine is when the work stopped."""
    job = admit(request)
    watcher = asyncio.create_task(_disconnected(request, job.token))
    try:
        yield job.token
    finally:
        watcher.cancel()
        job.done()


async def wait_cancellable(call: Awaitable[T], cancel_call: Callable[[], Any],
                           token: CancelToken | None, poll_s: float = 0.2) -> T:
    """Await a remote call (a Serve DeploymentResponse) while watching `token`: once it is
    set, `cancel_call()` (Serve then cancels the call on its replica) and Cancelled."""
    if token is None:
        return await call
    future = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=poll_s)
            if done:
                return future.result()
            token.check()
    except (asyncio.CancelledError, Cancelled):  # this request's task, or its token
        cancel_call()
        future.cancel()
        raise
