"""GET /v1/symbols/{symbol}: one symbol's bars and indicator history, for charts.

The indicators are computed over `days` plus 250 warm-up sessions, so EMA-type values
(RSI, MACD, ATR) have converged by the first session shown. A malformed symbol is a 422
(checked before anything is looked up); a well-formed one not in the universe is a 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Query

from deployments.api.dependencies import APIKey, Backend
from deployments.api.errors import InputError
from deployments.api.responses import JSONBody, meta_headers
from deployments.api.schemas import SYMBOL_REGEX, SymbolHistory, ValidationErrorResponse
from technic_v4.data.universe import InvalidSymbolError, validate_symbol
from technic_v4.scan.symbol import HISTORY_MAX_DAYS

router = APIRouter(prefix="/v1", tags=["symbols"], dependencies=[APIKey])


@router.get("/symbols/{symbol}", response_model=SymbolHistory, responses={
    401: {"description": "X-API-Key missing or wrong (when keys are configured)"},
    404: {"description": "Well-formed symbol that is not in the universe"},
    422: {"model": ValidationErrorResponse, "description": "Malformed symbol or days"}})
async def symbol_history(
    backend: Backend,
    symbol: str = Path(description="Ticker, e.g. AAPL or BRK.B (case-insensitive).",
                       pattern=SYMBOL_REGEX),
    days: int = Query(252, ge=1, le=HISTORY_MAX_DAYS, description="Sessions to return."),
) -> JSONBody:
    """Daily bars and every indicator's history for one symbol over the last `days`."""
    try:
        symbol = validate_symbol(symbol)
    except InvalidSymbolError as exc:
        raise InputError("symbol", str(exc), location="path") from exc
    data = await backend.symbol(symbol, days)
    meta = {k: data.pop(k) for k in ("data_version", "source", "as_of")}
    return JSONBody({"meta": meta, **data}, headers=meta_headers(meta))
