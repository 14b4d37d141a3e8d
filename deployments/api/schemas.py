"""Request and response shapes of the HTTP API (pydantic v2); they are the OpenAPI document.

A scan request is data: `ScanRequest` validates and normalises it (sector aliases to GICS
names, symbols upper-cased and deduplicated, enumerations checked against the valid values)
and turns into the library's `ScanConfig`. The normalised request is also the cache key.
Responses are serialised by hand (orjson, `technic_v4.formats`) for speed; the models below
document them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    create_model,
    field_validator,
)

from technic_v4.data.universe import SYMBOL_PATTERN
from technic_v4.scan.config import MAX_NAME, SCREEN_NAME, Option, ScanConfig, options

Format = Literal["json", "csv", "parquet", "arrow"]
# The store's symbol pattern (technic_v4.data.universe), either case: no '/', '..' or NUL.
SYMBOL_REGEX = SYMBOL_PATTERN.pattern.replace("A-Z", "A-Za-z")
# Documented in the schema; enforced by the library's validate_symbol (one message everywhere).
Symbol = Annotated[str, Field(json_schema_extra={"pattern": SYMBOL_REGEX})]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]


def _date_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):  # pydantic would read 0 as 1970-01-01
        raise ValueError("as_of_date must be a date as text: YYYY-MM-DD, e.g. 2024-03-28")
    return value


DateText = Annotated[date, BeforeValidator(_date_text)]
# Documented in the schema; enforced by the library's check_screen_name (one message everywhere).
ScreenName = Annotated[str, Field(json_schema_extra={"pattern": SCREEN_NAME.pattern})]
HTTP_TYPES: dict[str, Any] = {  # how a ScanConfig field arrives in JSON
    "max_symbols": int | None, "lookback_days": int, "sectors": list[Name] | None,
    "industries": list[Name] | None, "symbols": list[Symbol] | None,
    "min_tech_rating": float | None, "as_of_date": DateText | None, "min_price": float | None,
    "min_dollar_volume": float | None, "signals": list[Name] | None, "min_bars": int,
    "max_stale_sessions": int, "sort_by": str, "ascending": bool, "exclude_flagged": bool,
    "exclude_flags": list[Name] | None, "where": str | None, "rank": str | None,
    "screen": ScreenName | None,
}


def _field(name: str, option: Option, default: Any) -> tuple[Any, Any]:
    """The pydantic field of one ScanConfig field, from its Option."""
    kind = HTTP_TYPES[name]
    extra: dict[str, Any] = {"description": option.help}
    if kind in (bool, int, int | None):  # JSON booleans and integers only, as documented
        extra["strict"] = True            # (not 0 for false, "5" or 5.0 for 5)
    if option.ge is not None or option.le is not None:
        extra.update(ge=option.ge, le=option.le)
        if kind in (float | None,):
            extra.update(strict=True, allow_inf_nan=False)
    if option.max_items is not None:
        extra.update(min_length=1, max_length=option.max_items)
    if option.valid is not None:
        enum = {"enum": list(option.valid)}
        extra["json_schema_extra"] = {"items": enum} if option.max_items else enum
    if option.alias:
        extra["validation_alias"] = AliasChoices(name, option.alias)
    return kind, Field(default, **extra)


class _Request(BaseModel):
    """What to scan; every field is optional and the defaults scan the whole universe."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              json_schema_extra={"examples": [
                                  {"sectors": ["Technology"], "min_tech_rating": 20,
                                   "sort_by": "TechRating", "limit": 50}]})

    @field_validator("*")
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        """Each ScanConfig field checked and normalised by the library itself (one answer)."""
        if info.field_name not in CONFIG_FIELDS or value is None:
            return value
        probe = ScanConfig(**{info.field_name: value})
        probe.validate()  # a ConfigError is a ValueError: pydantic keeps it (errors.py reads it)
        return getattr(probe.normalized(), info.field_name)

    def to_config(self) -> ScanConfig:
        return ScanConfig(**{name: getattr(self, name) for name in CONFIG_FIELDS})

    def cache_key(self, fmt: str) -> str:
        return self.model_dump_json(exclude={"format"}) + "|" + fmt


CONFIG_FIELDS = tuple(name for name, o in options().items() if o.exposed)
_DEFAULTS = ScanConfig()
ScanRequest = create_model(  # type: ignore[call-overload]
    "ScanRequest", __base__=_Request, __doc__=_Request.__doc__,
    **{name: _field(name, options()[name], getattr(_DEFAULTS, name)) for name in CONFIG_FIELDS},
    format=(Format | None, Field(None, description="json, csv, parquet or arrow (Arrow IPC "
                                 "stream); overrides the Accept header.")),
    include_rejections=(bool, Field(False, description=(
        "Add every rejected symbol and the reason to meta.rejections (JSON only)."))),
)


class _Definition(_Request):
    """A saved screen's definition: the scan fields it sets (filters, where, rank, ...)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              json_schema_extra={"examples": [
                                  {"where": "RSI < 30 and Close > SMA200", "sort_by": "RSI",
                                   "ascending": True, "limit": 50}]})

    def to_config(self) -> ScanConfig:
        return ScanConfig(**{name: getattr(self, name) for name in DEFINITION_FIELDS})


DEFINITION_FIELDS = tuple(name for name in CONFIG_FIELDS if name != "screen")
ScreenDefinition = create_model(  # type: ignore[call-overload]
    "ScreenDefinition", __base__=_Definition, __doc__=_Definition.__doc__,
    **{name: _field(name, options()[name], getattr(_DEFAULTS, name))
       for name in DEFINITION_FIELDS})


class ScreenSummary(BaseModel):
    """A saved screen's latest version, or a preset (read-only, shipped with technic)."""

    name: str
    version: int
    preset: bool
    title: str = Field(description="A preset's title (empty for saved screens).")
    description: str
    definition: dict[str, Any] = Field(description="The scan fields it sets (non-default "
                                       "values, normalised); a scan naming it starts there.")
    created: str | None = Field(description="When this version was saved (UTC); null for "
                                "presets.")


class ScreenList(BaseModel):
    count: int
    screens: list[ScreenSummary]


class ScreenVersionInfo(BaseModel):
    version: int
    created: str | None


class ScreenInfo(ScreenSummary):
    versions: list[ScreenVersionInfo] = Field(description="Every version, oldest first.")


class ScreenSaved(BaseModel):
    name: str
    version: int = Field(description="The version now latest: new unless the definition was "
                         "identical to the latest one.")
    changed: bool = Field(description="False when the definition equalled the latest version.")
    definition: dict[str, Any]


class ScreenDeleted(BaseModel):
    name: str
    deleted: bool


class ColumnInfo(BaseModel):
    name: str
    kind: Literal["number", "text"]
    history: bool = Field(description="Lags (x[1]) and windows (highest(x, 20)) of it work.")
    weekly: bool = Field(description="W.name reads its weekly bars (the last closed week).")
    where: bool = Field(description="Usable in `where`; false: only in `rank` (AlphaScore).")


class OperatorInfo(BaseModel):
    syntax: str
    doc: str


class FunctionInfo(BaseModel):
    name: str
    signature: str
    returns: str
    family: str
    doc: str


class ScreenColumns(BaseModel):
    """What a `where` / `rank` expression may use."""

    columns: list[ColumnInfo]
    operators: list[OperatorInfo]
    functions: list[FunctionInfo]


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
    screen: dict[str, Any] | None = Field(None, description=(
        "The saved screen or preset the scan ran (name, version, preset), when it named one."))


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
