"""How failures become HTTP answers: bad input is a 4xx naming the field and the valid values.

  RequestValidationError (pydantic)   422, one entry per field, `valid` added where known
  InputError (our own checks)         422 (406 for an Accept we cannot serve), same shape
  UnknownSymbolError                  404
  NotReadyError                       503 (data or models still loading)
  StaleDataError                      503 + Retry-After (store or models changed mid-scan twice)
  anything else                       500 with an error id; the traceback goes to the log
Nothing a client sends should reach the last line: tests/test_api.py sends every bad input
the API documents and checks for 4xx.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from deployments.pipeline import StaleDataError, UnknownSymbolError
from technic_v4 import scanner_core, scoring
from technic_v4.data.universe import GICS_SECTORS, SECTOR_ALIASES, InvalidSymbolError
from technic_v4.scanner_core import SORTABLE

log = logging.getLogger("technic.api")

FORMATS = ("json", "csv", "parquet")
SECTOR_NAMES = [*GICS_SECTORS, *sorted(SECTOR_ALIASES)]  # aliases: any case
VALID_VALUES: dict[str, list[str]] = {
    "sectors": SECTOR_NAMES,
    "sector": SECTOR_NAMES,
    "sort_by": list(SORTABLE),
    "signals": list(scoring.SIGNALS),
    "format": list(FORMATS),
}
if getattr(scanner_core, "QUALITY_FLAGS", None):  # the data-quality gate's flag names
    VALID_VALUES["exclude_flags"] = list(scanner_core.QUALITY_FLAGS)


class InputError(ValueError):
    """Input that is well-typed but not acceptable; `field` and `valid` go into the 422."""

    def __init__(self, field: str, message: str, valid: list[str] | None = None,
                 location: str = "body", status: int = 422):
        super().__init__(message)
        self.field, self.valid, self.location, self.status = field, valid, location, status


class NotReadyError(RuntimeError):
    """The service is up but its Panel or models are not loaded yet."""


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
        detail.append(_entry(list(err.get("loc", ())), msg, str(err.get("type")), None))
    return detail


def install(app: FastAPI) -> None:
    """Register the handlers of the module docstring on `app`."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc)}, status_code=422)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        entry = _entry([exc.location, *exc.field.split(".")], str(exc), "value_error",
                       exc.valid)
        return JSONResponse({"detail": [entry]}, status_code=exc.status)

    @app.exception_handler(InvalidSymbolError)
    async def _symbol(_: Request, exc: InvalidSymbolError) -> JSONResponse:
        entry = _entry(["path", "symbol"], str(exc), "value_error", None)
        return JSONResponse({"detail": [entry]}, status_code=422)

    @app.exception_handler(UnknownSymbolError)
    async def _unknown(_: Request, exc: UnknownSymbolError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(NotReadyError)
    async def _not_ready(_: Request, exc: NotReadyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503,
                              headers={"Retry-After": "2"})

    @app.exception_handler(StaleDataError)
    async def _stale(_: Request, exc: StaleDataError) -> JSONResponse:
        # the backend already scanned again once; a second change mid-scan is rare and passes
        return JSONResponse({"detail": f"{exc}; the scan was retried once; retry"},
                            status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", error_id, request.method, request.url.path)
        return JSONResponse({"detail": "internal error", "error_id": error_id},
                              status_code=500)
