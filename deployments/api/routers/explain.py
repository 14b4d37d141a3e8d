"""GET /v1/symbols/{symbol}/explain: why a symbol has its TechRating, Signal and forecasts.

The answer of `technic_v4.scan.explain` (its docstring walks through it): each sub-score with
its inputs and the rules that fired, weights, weighted sum, risk factor, TechRating and the
Signal rule; each alpha model's per-feature contributions (or why it is unavailable); and
whether a default scan as of that session keeps the symbol. Same checks as /v1/symbols/{symbol}:
a malformed symbol is a 422, a well-formed one not in the universe a 404; `as_of_date` before
the store's first session is a 422 (a later one means the last session on or before it).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from deployments.api.dependencies import APIKey, Backend
from deployments.api.errors import InputError
from deployments.api.responses import JSONBody, header_value, meta_headers
from deployments.api.schemas import SYMBOL_REGEX, ExplainResponse, ValidationErrorResponse
from deployments.api.work import heavy
from technic_v4.data.universe import InvalidSymbolError, validate_symbol
from technic_v4.errors import ConfigError

router = APIRouter(prefix="/v1", tags=["symbols"], dependencies=[APIKey])


@router.get("/symbols/{symbol}/explain", response_model=ExplainResponse, responses={
    401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
    404: {"description": "Well-formed symbol that is not in the universe"},
    422: {"model": ValidationErrorResponse,
          "description": "Malformed symbol, or as_of_date not a date or before the store"}})
async def explain_symbol(
    backend: Backend,
    request: Request,
    symbol: str = Path(description="Ticker, e.g. AAPL or BRK.B (case-insensitive).",
                       pattern=SYMBOL_REGEX),
    as_of_date: Annotated[date | None, Query(description=(
        "Explain as of this session (the last on or before it); default: the latest."))] = None,
) -> JSONBody:
    """Why this rating: sub-scores and their rules, risk factor, Signal, alpha contributions."""
    try:
        symbol = validate_symbol(symbol)
    except InvalidSymbolError as exc:
        raise InputError("symbol", str(exc), location="path") from exc
    try:
        async with heavy(request):  # a heavy request's slot (work.py)
            data = await backend.explain(symbol,
                                         None if as_of_date is None else str(as_of_date))
    except InputError:
        raise
    except ConfigError as exc:
        raise InputError(exc.field, str(exc), exc.valid, location="query") from exc
    headers = meta_headers(data["meta"])
    if data["meta"].get("models_version"):
        headers["X-Technic-Models"] = header_value(data["meta"]["models_version"])
    return JSONBody(data, headers=headers)
