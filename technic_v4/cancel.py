"""Cooperative cancellation: a token the caller sets, checked by the engine between pieces.

Work that a client no longer waits for (it disconnected, or its time ran out) should stop
and free its memory instead of running to the end. Python cannot stop a thread from outside,
so the engine stops itself: `execute`, `execute_many`, `replay` and `validate` take a
`CancelToken` and make it current (`active`) for their duration; between chunks, sessions,
expression nodes and blocks of rows of a rolling kernel they call `check()`, which raises
`Cancelled` once the token is set or its deadline has passed. The current token lives in a
context variable, so it follows the work into `asyncio.to_thread` (which copies the context)
without being passed through every function in between. No token (the CLI, tests): `check()`
costs one context-variable read and never raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Cancelled(Exception):
    """The work was cancelled (its client left, or its deadline passed): `reason` says which."""

    def __init__(self, reason: str = "cancelled"):
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    """Set once, by whoever owns the request; `check()` raises Cancelled from then on, and
    after `deadline_s` seconds (from creation) without being set."""

    def __init__(self, deadline_s: float | None = None):
        self._event = threading.Event()
        self.reason = ""
        self._deadline = None if deadline_s is None else time.monotonic() + deadline_s
        self._deadline_s = deadline_s

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        if self._event.is_set():
            return True
        if self._deadline is not None and time.monotonic() > self._deadline:
            self.cancel(f"deadline of {self._deadline_s:g} s passed")
            return True
        return False

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled(self.reason)


_current: ContextVar[CancelToken | None] = ContextVar("technic_cancel", default=None)


def check() -> None:
    """Raise Cancelled when the current token (if any) is set (module docstring)."""
    token = _current.get()
    if token is not None:
        token.check()


@contextmanager
def active(token: CancelToken | None) -> Iterator[None]:
    """`token` as the current one inside the block (None: leave the current one); checked
    on entry."""
    if token is None:
        yield
        return
    token.check()
    reset = _current.set(token)
    try:
        yield
    finally:
        _current.reset(reset)


def current() -> CancelToken | None:
    """The current token, to hand to work that runs outside this context."""
    return _current.get()
