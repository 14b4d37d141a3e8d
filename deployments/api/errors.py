"""How failures become HTTP answers: one mapping, for plain responses and stream error lines.

  RequestValidationError (pydantic)   422, one entry per field, `valid` added where known
  ConfigError (the engine's checks)   422 (406 for an Accept we cannot serve), same shape
  UnknownSymbolError                  404
  UnknownScreenError, ReadOnlyScreenError (ConfigErrors of the screen routes)   404, 409
  UnknownWatchError, WatchExistsError (the watch routes)                         404, 409
  AmbiguousNameError (an admin naming what several keys have; tenancy.py)        409
  NotReadyError                       503 + Retry-After (data or models still loading)
  StaleDataError                      503 + Retry-After (store or models changed mid-scan twice)
  Cancelled (technic_v4/cancel.py)    504: the client left or the request's time ran out
  StoreError                          503 + Retry-After (store missing or unreadable), the reason
                                      (saved screens' database: "saved screens unavailable";
                                      watches': "watches unavailable")
  anything else                       500 with an error id; the traceback goes to the log
Nothing a client sends should reach the last line: tests send every bad input the API
documents and check for 4xx. `answer(exc)` is the mapping; `install(app)` registers it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from technic_v4.cancel import Cancelled
from technic_v4.data.store_fs import StoreError
from technic_v4.errors import (
    ConfigError,
    NotReadyError,
    ReadOnlyScreenError,
    StaleDataError,
    UnknownScreenError,
    UnknownSymbolError,
)
from technic_v4.scan.config import options
from technic_v4.screens.saved import ScreenDatabaseError
from technic_v4.tenancy import AmbiguousNameError
from technic_v4.watch.store import UnknownWatchError, WatchDatabaseError, WatchExistsError

log = logging.getLogger("technic.api")

FORMATS = ("json", "csv", "parquet", "arrow")
VALID_VALUES: dict[str, list[str]] = {
    name: list(o.valid) for name, o in options().items() if o.valid is not None}
VALID_VALUES |= {"sector": VALID_VALUES["sectors"], "format": list(FORMATS)}


SCREEN_STATUS = {UnknownScreenError: 404, ReadOnlyScreenError: 409, UnknownWatchError: 404,
                 WatchExistsError: 409, AmbiguousNameError: 409}


class InputError(ConfigError):
    """A ConfigError about the HTTP request itself (a header, a query parameter)."""

    def __init__(self, field: str, message: str, valid: Sequence[str] | None = None,
                 location: str = "body", status: int = 422):
        super().__init__(field, message, valid)
        self.location, self.status = location, status


def _entry(loc: list[Any], msg: str, kind: str, valid: list[str] | None) -> dict[str, Any]:
    names = [p for p in loc if isinstance(p, str) and p not in ("body", "query", "path")]
    field = ".".join(str(p) for p in loc[1:]) if len(loc) > 1 else str(loc[0])
    out: dict[str, Any] = {"loc": loc, "field": field, "msg": msg, "type": kind}
    valid = valid if valid is not None else next(
        (VALID_VALUES[n] for n in reversed(names) if n in VALID_VALUES), None)
    if valid is not None:
        out["valid"] = valid
    return out


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    detail = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        ctx = err.get("ctx") or {}
        if "error" in ctx and msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        cause = ctx.get("error")
        valid = cause.valid if isinstance(cause, ConfigError) else None
        entry = _entry(list(err.get("loc", ())), msg, str(err.get("type")), valid)
        if isinstance(cause, ConfigError):
            entry.update({k: v for k, v in cause.details.items() if k not in entry})
        detail.append(entry)
    return detail


def remote_cause(exc: BaseException) -> BaseException:
    """The error a replica raised, for one that came back through Ray (RayTaskError keeps it
    as `.cause`; its own text is the remote traceback, with pids and addresses, which no
    client should read); any other error as it is."""
    inner = getattr(exc, "cause", None)
    return inner if isinstance(inner, BaseException) else exc


def answer(exc: BaseException, where: str = "") -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body, headers) for `exc` (module docstring)."""
    exc = remote_cause(exc)
    if isinstance(exc, ConfigError):
        status = SCREEN_STATUS.get(type(exc), getattr(exc, "status", 422))
        location = getattr(exc, "location", "path" if type(exc) in SCREEN_STATUS else "body")
        entry = _entry([location, *exc.field.split(".")], str(exc), "value_error", exc.valid)
        entry.update({k: v for k, v in exc.details.items() if k not in entry})
        return status, {"detail": [entry]}, {}
    if isinstance(exc, UnknownSymbolError):
        return 404, {"detail": str(exc)}, {}
    if isinstance(exc, NotReadyError):
        return 503, {"detail": str(exc)}, {"Retry-After": "2"}
    if isinstance(exc, StaleDataError):
        return 503, {"detail": f"{exc}; the scan was retried once; retry"}, {"Retry-After": "1"}
    if isinstance(exc, ScreenDatabaseError):  # a StoreError: technic.sqlite, not the prices
        return 503, {"detail": f"saved screens unavailable: {exc}"}, {"Retry-After": "5"}
    if isinstance(exc, WatchDatabaseError):
        return 503, {"detail": f"watches unavailable: {exc}"}, {"Retry-After": "5"}
    if isinstance(exc, Cancelled):
        return 504, {"detail": f"the request was cancelled: {exc.reason}"}, {}
    if isinstance(exc, StoreError):
        return 503, {"detail": f"the price store cannot be read: {exc}"}, {"Retry-After": "5"}
    error_id = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s", error_id, where, exc_info=exc)
    return 500, {"detail": "internal error", "error_id": error_id}, {}


def install(app: FastAPI) -> None:
    """Register `answer` for every exception on `app`."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        status, body, headers = answer(exc, f"{request.method} {request.url.path}")
        return JSONResponse(body, status_code=status, headers=headers)

    for kind in (ConfigError, UnknownSymbolError, NotReadyError, StaleDataError, StoreError,
                 Cancelled):
        app.add_exception_handler(kind, _any)  # ahead of Starlette's generic 500 path
