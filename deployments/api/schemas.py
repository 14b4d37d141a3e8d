"""Request and response shapes of the HTTP API (pydantic v2); they are the OpenAPI document.

A scan request is data: `ScanRequest` validates and normalises it (sector aliases to GICS
names, symbols upper-cased and deduplicated, enumerations checked against the valid values)
and turns into the library's `ScanConfig`. The normalised request is also the cache key.
Responses are serialised by hand (orjson, `technic_v4.formats`) for speed; the models below
document them.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from technic_v4 import scoring
from technic_v4.data.universe import SECTOR_ALIASES, normalize_sectors, validate_symbol
from technic_v4.scanner_core import SORTABLE, ScanConfig

SortColumn = Literal[SORTABLE]  # type: ignore[valid-type]
SignalName = Literal[scoring.SIGNALS]  # type: ignore[valid-type]
Format = Literal["json", "csv", "parquet"]
MAX_WINDOW = 1260
MAX_SYMBOLS = 5_000     # symbols in one request (a 64 KiB body holds ~9,000 short ones)
MAX_INDUSTRIES = 200
MAX_SECTORS = 11 + len(SECTOR_ALIASES)  # every GICS name and every alias once
# The store's symbol pattern (technic_v4.data.universe), either case: no '/', '..' or NUL.
SYMBOL_REGEX = r"^[A-Za-z][A-Za-z0-9]{0,9}(?:[.\-][A-Za-z0-9]{1,3})?$"
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_REGEX)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CONFIG_FIELDS = {f.name for f in fields(ScanConfig)}


class ScanRequest(BaseModel):
    """What to scan; every field is optional and the defaults scan the whole universe."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              json_schema_extra={"examples": [
                                  {"sectors": ["Technology"], "min_tech_rating": 20,
                                   "sort_by": "TechRating", "limit": 50}]})

    sectors: list[Name] | None = Field(None, min_length=1, max_length=MAX_SECTORS, description=(
        "GICS sectors or aliases (Technology, Healthcare, ...), case-insensitive."))
    industries: list[Name] | None = Field(None, min_length=1, max_length=MAX_INDUSTRIES,
                                         description="Industry names, case-insensitive.")
    symbols: list[Symbol] | None = Field(None, min_length=1, max_length=MAX_SYMBOLS,
                                      description="Only these symbols (unknown ones are "
                                                  "reported in meta.error_details).")
    signals: list[SignalName] | None = Field(None, min_length=1, max_length=len(scoring.SIGNALS),
                                             description="Keep only these Signal values.")
    min_tech_rating: float | None = Field(None, ge=-100, le=100, allow_inf_nan=False, strict=True)
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False, strict=True)
    min_dollar_volume: float | None = Field(None, ge=0, allow_inf_nan=False, strict=True,
                                            description="Close x 20-session average volume.")
    as_of_date: date | None = Field(None, description="Scan as of this session (YYYY-MM-DD).")
    lookback_days: int = Field(150, ge=1, le=MAX_WINDOW, description=(
        "Sessions of history, raised to what the indicators need."))
    min_bars: int = Field(50, ge=1, le=MAX_WINDOW)
    max_stale_sessions: int = Field(5, ge=0, le=MAX_WINDOW)
    sort_by: SortColumn = "TechRating"
    ascending: bool = False
    max_symbols: int | None = Field(
        None, ge=1, le=100_000, validation_alias=AliasChoices("max_symbols", "limit"),
        description="Rows returned after ranking (alias: limit); omit for all.")
    format: Format | None = Field(None, description=(
        "json, csv or parquet; overrides the Accept header."))
    exclude_flagged: bool = Field(False, description=(
        "Reject symbols with any data-quality flag (default: keep them, flagged)."))
    exclude_flags: list[Name] | None = Field(None, min_length=1, max_length=20, description=(
        "Reject symbols with these quality flags only (ohlc, gaps, stale, zero_volume, "
        "split)."))
    include_rejections: bool = Field(False, description=(
        "Add every rejected symbol and the reason to meta.rejections (JSON only)."))

    @field_validator("sectors")
    @classmethod
    def _sectors(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else normalize_sectors(v)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else list(dict.fromkeys(validate_symbol(s) for s in v))

    @field_validator("industries")
    @classmethod
    def _industries(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted({" ".join(s.split()) for s in v})

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted(set(v))

    def to_config(self) -> ScanConfig:
        quality = {k: getattr(self, k) for k in ("exclude_flagged", "exclude_flags")
                   if k in CONFIG_FIELDS}
        return ScanConfig(**quality,
            max_symbols=self.max_symbols, lookback_days=self.lookback_days,
            sectors=self.sectors, industries=self.industries, symbols=self.symbols,
            min_tech_rating=self.min_tech_rating, as_of_date=self.as_of_date,
            min_price=self.min_price, min_dollar_volume=self.min_dollar_volume,
            signals=self.signals, min_bars=self.min_bars,
            max_stale_sessions=self.max_stale_sessions, sort_by=self.sort_by,
            ascending=self.ascending)

    def cache_key(self, fmt: str) -> str:
        return self.model_dump_json(exclude={"format"}) + "|" + fmt


class Meta(BaseModel):
    """Where an answer came from; also sent as X-Technic-* headers on every response."""

    data_version: str
    source: str = Field(description="`synthetic` for the demo market, `ingest:<file>` else.")
    as_of: str = Field(description="The session the answer is as of.")
    elapsed_ms: float | None = None


class ScanMeta(Meta):
    attempted: int
    kept: int
    rejected: int
    errors: int
    rejected_by_reason: dict[str, int]
    error_details: list[dict[str, str]]
    window_bars: int
    scoring_version: str
    alpha: dict[str, Any] = Field(description="Model ids/versions, or available=false + reason.")
    timings_ms: dict[str, float]
    request: dict[str, Any]
    rejections: list[dict[str, str]] | None = None


class ScanResult(BaseModel):
    meta: ScanMeta
    rows: list[dict[str, Any]] = Field(description="Result columns, ranked; NaN as null.")


class ProgressEvent(BaseModel):
    """One NDJSON line of /v1/scan/stream; the last line has event=result (a ScanResult)."""

    event: Literal["progress", "result", "error"]
    stage: Literal["load", "indicators", "score", "alpha", "rank"] | None = None
    done: int | None = None
    total: int | None = None
    elapsed_ms: float | None = None


class UniverseRow(BaseModel):
    symbol: str
    name: str
    sector: str
    industry: str
    first_session: str | None
    last_session: str | None


class UniverseResponse(BaseModel):
    meta: Meta
    count: int
    rows: list[UniverseRow]


class SectorInfo(BaseModel):
    name: str
    symbols: int
    industries: list[str]
    aliases: list[str]


class SectorsResponse(BaseModel):
    meta: Meta
    sectors: list[SectorInfo]


class SymbolHistory(BaseModel):
    meta: Meta
    symbol: str
    name: str
    sector: str
    industry: str
    sessions: list[str]
    bars: dict[str, list[float | None]] = Field(description="open/high/low/close/volume.")
    indicators: dict[str, list[float | None]] = Field(description="Every indicator output.")


class ModelsResponse(BaseModel):
    meta: Meta
    available: bool
    reason: str | None
    models_dir: str | None
    loaded: dict[str, Any] = Field(description="Per model: id, version, test rank IC, ...")
    metadata: list[dict[str, Any]] = Field(description="The models' metadata files.")


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Any]


class ErrorEntry(BaseModel):
    loc: list[str | int]
    field: str
    msg: str
    type: str
    valid: list[str] | None = None


class ValidationErrorResponse(BaseModel):
    detail: list[ErrorEntry]
