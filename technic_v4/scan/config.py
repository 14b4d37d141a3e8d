"""`ScanConfig`: what to scan, the single definition every front end derives its fields from.

Each field carries an `Option` in its metadata: help text, bounds, valid values, how the CLI
spells it, and whether HTTP exposes it. `deployments/api/schemas.py` builds the request model
from these, `technic scan` builds its options from them (tests/scan/test_config.py fails when a
field is added to one and not the others), and `validate()` checks them, so the library, the
CLI and HTTP refuse the same input with the same `ConfigError(field, message, valid)`.
`validate()` needs no data; the checks that do (industries known, as-of inside the store) are
`check_against(snapshot)` in plan.py, run by the engine before anything is computed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from typing import Any

import pandas as pd

from technic_v4 import scoring
from technic_v4.data.indexes import MEMBERSHIP_ID
from technic_v4.data.quality import FLAGS as QUALITY_FLAGS
from technic_v4.data.universe import SECTOR_NAMES, normalize_sectors, validate_symbol
from technic_v4.errors import ConfigError
from technic_v4.scan.columns import CHOOSABLE, SORTABLE
from technic_v4.scan.expressions import compile_expressions

MAX_WINDOW = 1260        # sessions: lookback_days, min_bars, max_stale_sessions
MAX_SYMBOLS = 5_000      # symbols in one request
MAX_INDUSTRIES = 200
MAX_INDEXES = 50
MAX_NAME = 100           # characters of a sector / industry / flag name
SCREEN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # saved screens and presets


@dataclass(frozen=True)
class Option:
    """How a ScanConfig field is offered and checked (dataclass field metadata["option"])."""

    help: str
    ge: float | None = None
    le: float | None = None
    valid: tuple[str, ...] | None = None   # enumeration (lists: each item)
    max_items: int | None = None           # list fields
    cli: str | None = None                 # option name, e.g. "--sector"; None: from the name
    short: str | None = None               # e.g. "-s"
    alias: str | None = None               # HTTP alias (max_symbols: limit)
    exposed: bool = True                   # False: library only (scoring weights)
    unknown: str = "unknown {name} {bad}"  # message for values outside `valid`


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its Option (list defaults must be None)."""
    return field(default=default, metadata={"option": Option(help, **kw)})


@dataclass
class ScanConfig:
    """What to scan. Every field is optional; the defaults scan the whole universe."""

    max_symbols: int | None = opt(None, "Rows returned after ranking (HTTP alias: limit); "
                                  "omit for all.", ge=1, le=100_000, alias="limit")
    lookback_days: int = opt(150, "Sessions of history, raised to what the indicators need.",
                             ge=1, le=MAX_WINDOW)
    sectors: Sequence[str] | None = opt(
        None, "GICS sectors or aliases (Technology, Healthcare, ...), case-insensitive.",
        valid=tuple(SECTOR_NAMES), max_items=len(SECTOR_NAMES), cli="--sector", short="-s")
    industries: Sequence[str] | None = opt(
        None, "Industry names, case-insensitive.", max_items=MAX_INDUSTRIES, cli="--industry")
    indexes: Sequence[str] | None = opt(
        None, "Only members of these index lists (sp500, nasdaq100, dow, ...: the store's "
        "memberships, from `technic data universe`), any of them.", max_items=MAX_INDEXES,
        cli="--index")
    symbols: Sequence[str] | None = opt(
        None, "Only these symbols (unknown ones are reported as errors).",
        max_items=MAX_SYMBOLS, cli="--symbol")
    min_tech_rating: float | None = opt(None, "Keep TechRating >= this.", ge=-100, le=100)
    as_of_date: str | date | None = opt(
        None, "Scan as of this session (YYYY-MM-DD); later bars are unseen.", cli="--as-of")
    min_price: float | None = opt(None, "Keep last close >= this.", ge=0)
    min_dollar_volume: float | None = opt(
        None, "Keep close x 20-session average volume >= this.", ge=0)
    signals: Sequence[str] | None = opt(None, "Keep only these Signal values.",
                                        valid=scoring.SIGNALS, max_items=len(scoring.SIGNALS),
                                        cli="--signal", unknown="unknown signals {bad}")
    min_bars: int = opt(50, "Fewer bars in the window: rejected.", ge=1, le=MAX_WINDOW)
    max_stale_sessions: int = opt(5, "Last bar older than this many sessions: rejected.",
                                  ge=0, le=MAX_WINDOW)
    sort_by: str = opt("TechRating", "Column to rank by.", valid=SORTABLE,
                       unknown="sort_by {bad!r} is not sortable")
    ascending: bool = opt(False, "Rank ascending instead of descending.")
    scoring: scoring.ScoringConfig = field(
        default_factory=scoring.ScoringConfig,
        metadata={"option": Option("Weights and thresholds of TechRating.", exposed=False)})
    exclude_flagged: bool = opt(False, "Reject symbols with any data-quality flag.")
    exclude_flags: Sequence[str] | None = opt(
        None, "Reject symbols with these quality flags only.", valid=QUALITY_FLAGS,
        max_items=len(QUALITY_FLAGS), cli="--exclude-flag",
        unknown="unknown quality flags {bad}")
    where: str | None = opt(
        None, "Keep only symbols meeting this condition, e.g. \"RSI < 30 and Close > SMA200\" "
        "(columns and functions: `technic screen --help`, GET /v1/screen/columns).")
    rank: str | None = opt(
        None, "Rank by this expression, e.g. \"mom_63 / ATR_pct\", instead of sort_by "
        "(descending unless ascending).")
    columns: Sequence[str] | None = opt(
        None, "Result columns, in this order after Symbol: any result column or indicator "
        "output (`technic screen columns`), e.g. RSI ADX CCI EMA50; omit for the contract "
        "columns. Columns the where/rank read are added.", valid=CHOOSABLE,
        max_items=len(CHOOSABLE), cli="--columns", unknown="unknown columns {bad}")
    screen: str | None = opt(
        None, "A saved screen or preset by name (`technic screen list`, GET /v1/screens): its "
        "definition gives the defaults; fields set here (other than their defaults) override "
        "them.")
    regime_benchmark: str | None = opt(
        None, "The market regimes' benchmark: a store symbol (e.g. SPY); omit for the "
        "equal-weighted universe (docs/guides/regimes.md).")

    def validate(self) -> None:
        """Raise ConfigError naming the field and the valid values for anything malformed."""
        for f in fields(self):
            option: Option = f.metadata["option"]
            if option.exposed:
                _check(f.name, getattr(self, f.name), option, str(f.type).startswith("int"))
        if self.sectors is not None:
            normalize_sectors(self.sectors)
        for s in self.symbols or []:
            validate_symbol(s)
        for i in self.indexes or []:
            index_id_shape(i)
        if self.as_of_date is not None:
            as_of_timestamp(self.as_of_date)
        compile_expressions(self.where, self.rank)
        if self.screen is not None:
            check_screen_name(self.screen)
        if self.regime_benchmark is not None:
            try:
                validate_symbol(self.regime_benchmark)
            except ConfigError as exc:
                raise ConfigError("regime_benchmark", f"regime_benchmark: {exc.message}"
                                  ) from None

    def normalized(self) -> ScanConfig:
        """The same request in canonical form: sector aliases resolved, symbols upper-cased
        and deduplicated, names trimmed, enumerations sorted (what a cache key is made of)."""
        def names(v: Sequence[str] | None) -> list[str] | None:
            return None if v is None else sorted({" ".join(str(s).split()) for s in v})

        compiled = compile_expressions(self.where, self.rank)
        return replace(
            self,
            sectors=None if self.sectors is None else normalize_sectors(self.sectors),
            symbols=None if self.symbols is None else list(dict.fromkeys(
                validate_symbol(s) for s in self.symbols)),
            industries=names(self.industries), signals=names(self.signals),
            indexes=None if self.indexes is None else sorted({index_id_shape(i)
                                                              for i in self.indexes}),
            columns=None if self.columns is None else list(dict.fromkeys(self.columns)),
            exclude_flags=names(self.exclude_flags),
            as_of_date=None if self.as_of_date is None else str(
                as_of_timestamp(self.as_of_date).date()),
            where=None if compiled.where is None else compiled.where.text,
            rank=None if compiled.rank is None else compiled.rank.text,
            regime_benchmark=None if self.regime_benchmark is None else validate_symbol(
                self.regime_benchmark))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what travels to replicas and into cache keys)."""
        d = asdict(self)
        if d["as_of_date"] is not None:
            d["as_of_date"] = str(d["as_of_date"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScanConfig:
        d = dict(d)
        d["scoring"] = scoring.ScoringConfig(**d.get("scoring") or {})
        return cls(**d)


def options() -> dict[str, Option]:
    """Every field's Option, in declaration order."""
    return {f.name: f.metadata["option"] for f in fields(ScanConfig)}


def check_screen_name(name: object) -> str:
    """`name` if it can name a screen (SCREEN_NAME), else ConfigError("screen", ...)."""
    if not isinstance(name, str) or not SCREEN_NAME.fullmatch(name):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise ConfigError("screen", f"screen name {shown} is not valid: 1-64 characters, lower-"
                          "case letters, digits, '-' and '_', starting with a letter or digit "
                          "(e.g. oversold-uptrend)")
    return name


def index_id_shape(name: str) -> str:
    """An index id as stores keep memberships (lower case), or ConfigError("indexes", ...)
    saying the shape."""
    key = str(name).strip().lower()
    if not MEMBERSHIP_ID.fullmatch(key):
        raise ConfigError("indexes", f"index {str(name)[:40]!r} is not an index id: lower-case "
                          "letters, digits and '_' (sp500, nasdaq100, dow, ...)")
    return key


def as_of_timestamp(value: str | date) -> pd.Timestamp:
    """An as-of date as a Timestamp, or ConfigError saying the format wanted."""
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        ts = pd.NaT
    if pd.isna(ts) or ts.tz is not None:
        raise ConfigError("as_of_date", f"as_of_date {value!r} is not a date: use YYYY-MM-DD, "
                          "e.g. 2024-03-28")
    return ts.normalize()


def _check(name: str, value: Any, option: Option, integer: bool) -> None:
    if value is None:
        return
    if option.max_items is not None:  # a list of names
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ConfigError(name, f"{name} must be a list of strings, got "
                              f"{type(value).__name__}")
        if not value:
            raise ConfigError(name, f"{name} must not be empty (omit it for no filter)")
        if len(value) > option.max_items:
            raise ConfigError(name, f"{name} has {len(value)} entries; at most "
                              f"{option.max_items}")
        for item in value if name != "symbols" else ():  # symbols: validate_symbol says
            if not isinstance(item, str) or not item.strip() or len(item) > MAX_NAME:
                raise ConfigError(name, f"{name} entries must be non-empty strings of at most "
                                  f"{MAX_NAME} characters, got {str(item)[:40]!r}")
        if option.valid is not None and name != "sectors":  # sectors: aliases, any case
            bad = [v for v in value if v not in option.valid]
            if bad:
                raise ConfigError(name, option.unknown.format(name=name, bad=bad)
                                  + f"; valid: {', '.join(option.valid)}", option.valid)
        return
    if option.valid is not None:
        if value not in option.valid:
            raise ConfigError(name, option.unknown.format(name=name, bad=value)
                              + f"; valid: {', '.join(option.valid)}", option.valid)
        return
    if option.ge is None and option.le is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(name, f"{name} must be a finite number, got {value!r}")
    if integer and not isinstance(value, int):
        raise ConfigError(name, f"{name} must be a whole number, got {value!r}")
    if (option.ge is not None and value < option.ge) or (
            option.le is not None and value > option.le):
        lo = "" if option.ge is None else f">= {option.ge:g}"
        hi = "" if option.le is None else f"<= {option.le:g}"
        raise ConfigError(name, f"{name} must be {' and '.join(p for p in (lo, hi) if p)}, "
                          f"got {value!r}")
