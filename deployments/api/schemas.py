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
    "industries": list[Name] | None, "indexes": list[Name] | None,
    "symbols": list[Symbol] | None, "min_tech_rating": float | None,
    "as_of_date": DateText | None, "min_price": float | None,
    "min_dollar_volume": float | None, "signals": list[Name] | None, "min_bars": int,
    "max_stale_sessions": int, "sort_by": str, "ascending": bool, "exclude_flagged": bool,
    "exclude_flags": list[Name] | None, "where": str | None, "rank": str | None,
    "screen": ScreenName | None, "columns": list[Name] | None,
    "regime_benchmark": Symbol | None,
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
    owner: str | None = Field(None, description="Shown to admin keys only: the `sha256:` "
                              "fingerprint of the key it belongs to.")


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
    alpha: dict[str, Any] = Field(description=(
        "Model ids/versions, or available=false + reason (e.g. `alpha unavailable: models "
        "trained on synthetic data; run technic models train`: Alpha columns are null)."))
    timings_ms: dict[str, float]
    request: dict[str, Any]
    rejections: list[dict[str, str]] | None = None
    screen: dict[str, Any] | None = Field(None, description=(
        "The saved screen or preset the scan ran (name, version, preset), when it named one."))
    regime_tags: dict[str, Any] = Field(default_factory=dict, description=(
        "The market regime at the scan's session: regime (e.g. `trend_up/calm`), trend, "
        "volatility, benchmark, version and the numbers behind them (docs/guides/regimes.md)."))


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
    indexes: list[str] = Field(default_factory=list, description="The index lists the "
                               "symbol is in (sp500, dow, ...: `technic data universe`).")


class UniverseResponse(BaseModel):
    meta: Meta
    count: int
    rows: list[UniverseRow]


class RegimesResponse(BaseModel):
    """The market regime of every session (docs/guides/regimes.md)."""

    meta: Meta
    benchmark: str
    version: str
    config: dict[str, Any] = Field(description="The rule's windows and thresholds.")
    regimes: list[str]
    first_session: str | None
    last_session: str | None
    shares: dict[str, dict[str, Any]] = Field(description="Sessions and share per regime.")
    spans: list[dict[str, Any]] = Field(description="Runs of one regime: start, end, sessions.")
    columns: dict[str, list[Any]] = Field(description=(
        "One value per session: session, regime, trend, volatility and the numbers."))


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


class _ValidateFields(BaseModel):
    """How to replay and what to measure (technic_v4.validate.ValidateOptions)."""

    start: date | None = Field(None, description="First session (default: the first with "
                               "enough history).")
    end: date | None = Field(None, description="Last session (default: the store's last).")
    every: int = Field(1, ge=1, le=252, description="Evaluate every k-th session.")
    horizons: list[int] = Field([1, 5, 10, 21], min_length=1, max_length=8,
                                description="Forward horizons in sessions (1..252).")
    top_n: int = Field(20, ge=1, le=5000, description="Portfolio size (default: limit when "
                       "given, else 20).")
    rebalance: int = Field(5, ge=1, le=252, description="Sessions between rebalances.")
    cost_bps: float = Field(0.0, ge=0, le=1000, allow_inf_nan=False,
                            description="Cost per side in basis points.")

    def options(self) -> Any:
        from technic_v4.validate import ValidateOptions

        return ValidateOptions(None if self.start is None else str(self.start),
                               None if self.end is None else str(self.end), self.every,
                               tuple(self.horizons), self.top_n, self.rebalance, self.cost_bps)


ValidateRequest = create_model(  # type: ignore[call-overload]
    "ValidateRequest", __base__=(_Request, _ValidateFields),
    __doc__="A screen (the scan's fields) and how to validate it over history.",
    **{name: _field(name, options()[name], getattr(_DEFAULTS, name)) for name in CONFIG_FIELDS},
    format=(Literal["json", "csv", "parquet"] | None, Field(None, description=(
        "json (the report, with the daily series), csv or parquet (the daily series)."))),
)


class ValidationResult(BaseModel):
    """The validation report (technic_v4/validate/report.py) and its daily series."""

    meta: Meta
    report: dict[str, Any] = Field(description=(
        "The report: data (source; synthetic and a notice on the demo market), conventions "
        "(entry, exit, excess, Newey-West lags, span; cumulative and annualised both net over "
        "the span, gross beside), passing, horizons, portfolio, assumptions."))
    daily: dict[str, list[Any]] = Field(description="Per evaluated session: passing count, "
                                        "excess and rank IC per horizon, portfolio returns.")


# -- GET /v1/symbols/{symbol}/explain (technic_v4/scan/explain.py) ---------------------------
class ExplainRule(BaseModel):
    condition: str = Field(description="What the term compares, e.g. 'SMA20 vs SMA50'.")
    points: float = Field(description="What the rule that fired gives this term.")
    inputs: dict[str, float | None] = Field(description="The values it read (null: missing).")
    text: str = Field(description="The rule that fired, e.g. 'RSI 66.6 >= 65: +1'.")


class ExplainSubScore(BaseModel):
    name: Literal["trend", "momentum", "volume", "volatility", "oscillator", "breakout"]
    weight: float
    score: float = Field(description="In [-1, 1]; combined from the rules' points.")
    weighted: float = Field(description="weight * score")
    combine: Literal["mean", "product", "single"] = Field(
        description="How the rules' points make the score.")
    inputs: dict[str, float | None]
    rules: list[ExplainRule]


class ExplainRisk(BaseModel):
    value: float
    ATR_pct: float | None
    formula: str
    text: str


class ExplainSignal(BaseModel):
    value: Literal["Strong Long", "Long", "Avoid", "Short", "Strong Short"]
    rule: str = Field(description="The Signal rule that matched, with the values.")
    thresholds: dict[str, float]


class ExplainRating(BaseModel):
    """TechRating = 100 * weighted_sum / weight_total * risk_factor.value."""

    scoring_version: str
    sub_scores: list[ExplainSubScore]
    weight_total: float
    weighted_sum: float = Field(description="Sum of the sub-scores' `weighted`.")
    risk_factor: ExplainRisk
    value: float = Field(description="The TechRating, as the scan shows it.")
    formula: str
    signal: ExplainSignal


class ExplainContribution(BaseModel):
    feature: str
    value: float | None = Field(description="The feature's value (null: missing).")
    contribution: float = Field(description="Its TreeSHAP contribution to the forecast.")


class ExplainModel(BaseModel):
    """One model: forecast = sum of contributions + bias (float32), or why it is missing."""

    id: str
    horizon: int
    column: str = Field(description="The scan column it fills: Alpha5d, Alpha10d.")
    available: bool
    reason: str | None = None
    version: str | None = None
    data_source: str | None = Field(None, description="The source its training data had.")
    calendar: str | None = Field(None, description="The exchange calendar it was trained on.")
    forecast: float | None = None
    bias: float | None = None
    sum: float | None = Field(None, description="Sum of the contributions plus the bias.")
    contributions: list[ExplainContribution] | None = Field(
        None, description="In the model's feature order.")


class ExplainAlpha(BaseModel):
    available: bool
    reason: str | None
    models_version: str | None
    features: dict[str, float | None]
    models: list[ExplainModel]
    alpha_score: str


class ExplainScan(BaseModel):
    """What a default scan as of the session does with the symbol."""

    kept: bool
    reason: str | None = Field(description="The rejection reason when not kept (e.g. stale).")
    detail: str | None


class ExplainMeta(Meta):
    calendar: str | None = Field(None, description="The store's exchange calendar.")
    window_bars: int
    scoring_version: str
    models_version: str | None


class ExplainResponse(BaseModel):
    meta: ExplainMeta
    symbol: str
    name: str
    sector: str
    industry: str
    last_bar: str | None = Field(description="The symbol's last bar on or before as_of.")
    bars: int = Field(description="Bars in the scan's window.")
    close: float | None
    incomplete: list[str] = Field(description="Indicators it has too few bars for.")
    quality_flags: list[str]
    scan: ExplainScan
    tech_rating: ExplainRating
    alpha: ExplainAlpha


class WatchCreate(BaseModel):
    """A watch: a screen (saved/preset `screen`, or an inline `definition`) + targets."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "oversold-tech", "screen": "oversold-uptrend",
         "webhooks": ["https://example.com/hooks/technic"], "rank_moved": 5}]})

    name: ScreenName = Field(description="The watch's name (the screen-name rule).")
    screen: ScreenName | None = Field(None, description="A saved screen or preset.")
    screen_version: int | None = Field(None, ge=1, le=2**62, strict=True, description=(
        "Pin the saved screen's version (default: follow its latest)."))
    definition: ScreenDefinition | None = Field(  # type: ignore[valid-type]
        None, description="Scan fields (as PUT /v1/screens/{name} takes), instead of screen.")
    webhooks: list[Annotated[str, StringConstraints(min_length=1, max_length=2000)]] = Field(
        [], max_length=10, description="http/https URLs, signed per Standard Webhooks.")
    apprise: list[Annotated[str, StringConstraints(min_length=1, max_length=2000)]] = Field(
        [], max_length=10, description="Apprise URLs (tgram://, slack://, mailto://, ...): "
        "one summary per session.")
    rank_moved: int | None = Field(None, ge=1, le=100_000, strict=True, description=(
        "Also send rank_moved events when a kept symbol moves this many places."))
    initial: bool = Field(False, strict=True, description="Announce the first evaluation's "
                          "symbols as entered (default: a silent baseline).")
    regime_changed: bool = Field(False, strict=True, description=(
        "Also send a regime_changed event when the market regime differs from the previous "
        "session's (docs/guides/regimes.md)."))


class WatchTarget(BaseModel):
    id: int
    kind: Literal["webhook", "apprise"]
    url: str = Field(description="Redacted: scheme, host, port and a fingerprint only.")


class WatchInfo(BaseModel):
    name: str
    id: str
    created: str
    screen: str | None
    screen_version: int | None
    definition: dict[str, Any] | None
    rank_moved: int | None
    initial: bool
    regime_changed: bool = False
    targets: list[WatchTarget]
    state: dict[str, Any] | None = Field(None, description=(
        "Deliveries by state (pending, delivered, dead), each target's breaker, the last "
        "evaluation and the newest dead letters."))
    owner: str | None = Field(None, description="Shown to admin keys only: the `sha256:` "
                              "fingerprint of the key it belongs to.")


class WatchCreated(WatchInfo):
    secret: str = Field(description="The webhook signing secret (whsec_...): returned only "
                        "here, once.")
    baseline: dict[str, Any] | None


class WatchList(BaseModel):
    count: int
    watches: list[WatchInfo]


class WatchDeleted(BaseModel):
    name: str
    deleted: bool


class WatchTestResult(BaseModel):
    name: str
    results: list[dict[str, Any]] = Field(description="Per target: ok, status, error.")


class WatchRedeliver(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deliveries: list[int] | None = Field(None, max_length=10_000, description=(
        "Only these dead deliveries (default: every dead one of the watch)."))


class WatchRedelivered(BaseModel):
    name: str
    redelivered: int
