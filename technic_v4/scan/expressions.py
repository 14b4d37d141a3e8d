"""A scan's `where` and `rank` expressions: what they may read, what they need, where they run.

Walk-through:
  1. `SCHEMA` names every column an expression may read: the bars (Open ... Volume), every
     indicator output (indicators/registry.py, ALL_OUTPUTS), TechRating and the other result
     numbers, and the text columns (Symbol, Sector, Industry, Signal, Name, quality_flags).
  2. `compile_expressions(cfg)` compiles both with the screens package (a lark grammar, never
     eval); a bad expression is a ConfigError on the field `where` / `rank` whose message points
     at the place (line:column) and suggests names. A string compared with Sector is resolved
     as `-s` resolves it (aliases, any case: `Sector == "Tech"` is the sector filter Tech); an
     unknown sector is an error naming the valid ones. Strings compared with Industry are
     checked against the store's industries, and with Indexes (the index lists a symbol is
     in: `Indexes in ("sp500", "dow")` keeps members of either) against the store's
     memberships, by `industries_read` (plan.py).
  3. `series_needed(...)` runs the compiled tree once on a recording Env to learn how many bars
     of each column it reads, per timeframe: the scan's WindowSpec asks the evaluation for just
     those (packed on each symbol's own bars, right-aligned), and refuses history of a column
     that has only a last-bar value (Alpha5d[1]).
  4. `Expressions.check_cost` holds both against a budget (screens/cost.py) for a number of
     symbols and sessions: scan/plan.py calls it before any price is loaded.
  5. `BlockEnv` serves the evaluated block's series to the compiled tree; the orchestrator
     evaluates `where` over the scan's universe (rows with valid data) and `rank` over the rows
     kept, so cross-sectional functions (pct_rank, sector_rank) rank within those rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from technic_v4 import regimes
from technic_v4.data.indexes import MEMBERSHIP_ID
from technic_v4.data.universe import normalize_sector
from technic_v4.errors import ConfigError
from technic_v4.indicators.market import rs_percentile
from technic_v4.indicators.registry import ALL_OUTPUTS
from technic_v4.scan.columns import EXTRA_COLUMNS, RESULT_COLUMNS
from technic_v4.scan.columns import TEXT_COLUMNS as RESULT_TEXT
from technic_v4.screens import CompiledScreen, ScreenError, compile_screen
from technic_v4.screens.cost import Budget, CostError
from technic_v4.screens.env import TimeframesOnBars

BARS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
HISTORY_COLUMNS = (*BARS, *ALL_OUTPUTS, "TechRating")  # columns with a value at every bar
FRAME_COLUMNS = ("Alpha5d", "Alpha10d", "DollarVolume", "Bars")  # the result row's values
# numbers every measured frame holds at the last bar: one bar of them needs no series
IN_FRAME = {*RESULT_COLUMNS, *EXTRA_COLUMNS} - {*RESULT_TEXT, "AlphaScore"}
# the market regime at the evaluated session (regimes.py), the same for every symbol
MARKET_COLUMNS = (*regimes.NUMBERS, "regime")
LAST_BAR_COLUMNS = (*FRAME_COLUMNS, "perf_ytd", "RS_rating", *regimes.NUMBERS)  # no history
TEXT_COLUMNS = ("Symbol", "Sector", "Industry", "Signal", "Name", "quality_flags", "Indexes",
                "regime")
SETS = ("Indexes",)  # text columns holding a set of ids: `Indexes in ("sp500")` is membership
SCHEMA: dict[str, str] = {
    **dict.fromkeys(HISTORY_COLUMNS, "number"), **dict.fromkeys(LAST_BAR_COLUMNS, "number"),
    **dict.fromkeys(TEXT_COLUMNS, "text")}
RESOLVE: dict[str, Callable[[str], str | Sequence[str]]] = {
    "Sector": normalize_sector, "regime": regimes.part_names,
    "Indexes": lambda value: _index_id(value)}
RANK_ONLY = ("AlphaScore",)  # relative to the rows kept: given by the orchestrator, last bar
RANK_SCHEMA = {**SCHEMA, **dict.fromkeys(RANK_ONLY, "number")}


@dataclass(frozen=True)
class Expressions:
    """A config's compiled `where` and `rank` (None when absent)."""

    where: CompiledScreen | None
    rank: CompiledScreen | None

    def series(self, all_columns: bool = False) -> tuple[tuple[str, str, int], ...]:
        """(column, timeframe, bars) the expressions read, sorted (a WindowSpec field). A scan
        reads one bar of the columns its result frame holds from there; `all_columns` lists
        those too (a replay over history computes every one)."""
        need: dict[tuple[str, str], int] = {}
        for screen in (self.where, self.rank):
            if screen is None:
                continue
            for (name, tf), width in series_needed(screen).items():
                if tf == "text" or name in FRAME_COLUMNS or name in RANK_ONLY or (
                        name in MARKET_COLUMNS) or (
                        not all_columns and tf == "D" and width == 1 and name in IN_FRAME):
                    continue  # read from the result frame
                key = ("rs_raw", tf) if name == "RS_rating" else (name, tf)
                need[key] = max(need.get(key, 0), width)
        return tuple(sorted((name, tf, width) for (name, tf), width in need.items()))

    def check_cost(self, budget: Budget, symbols: int, sessions: int = 1,
                   at_once: bool = False) -> None:
        """ConfigError on `where` / `rank` (the costlier) when evaluating both over `symbols`
        at `sessions` sessions exceeds `budget` (screens/cost.py); `at_once`: all sessions in
        one evaluation (a replay of one-bar expressions), so its memory grows with them."""
        screens = [(f, s) for f, s in (("where", self.where), ("rank", self.rank)) if s]
        if not screens:
            return
        costs = [(f, s.cost_at(sessions) if at_once else s.cost) for f, s in screens]
        field, worst = max(costs, key=lambda fc: fc[1].costliest.work)
        both = replace(worst, work=sum(c.work for _, c in costs),
                       bytes=sum(c.bytes for _, c in costs))
        try:
            budget.check(both, symbols, 1 if at_once else sessions)
        except CostError as exc:
            raise ConfigError(field, f"{field}: {exc}", details=exc.to_dict()) from None


    def columns_read(self) -> list[str]:
        """The daily columns (numbers and text) the expressions read, in reading order:
        the result shows each at the as-of session."""
        read: dict[str, None] = {}
        for screen in (self.where, self.rank):
            if screen is not None:
                read |= {name: None for (name, tf) in series_needed(screen) if tf != "W"}
        return list(read)


def industries_read(where: str | None, rank: str | None, known: list[str],
                    indexes: list[str] | None = None) -> None:
    """ConfigError (naming the valid values) when a string compared with Industry is not one
    of the store's `known` industries, or one tested against Indexes is not one of its
    `indexes` (memberships): such a comparison would keep no symbol."""
    def member(value: str) -> str:
        value = _index_id(value)
        if indexes is not None and value not in indexes:
            raise ValueError(f"no symbol of the store is in index {value!r}: " + (
                f"its memberships are {', '.join(indexes)}" if indexes else
                "it has no index memberships (build it from `technic data universe LIST "
                "--out FILE`)"))
        return value

    def check(value: str) -> str:
        if value not in known:
            near = [k for k in known if k.lower() == " ".join(value.split()).lower()]
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ValueError(f"unknown industry {value!r}: {hint}the store's industries are "
                             f"{', '.join(known)}")
        return value

    for field, text, schema, kind in (("where", where, SCHEMA, "bool"),
                                      ("rank", rank, RANK_SCHEMA, "number")):
        if text is not None:
            try:
                compile_screen(text, schema, kind,  # type: ignore[arg-type]
                               resolve={**RESOLVE, "Industry": check, "Indexes": member},
                               sets=SETS)
            except ScreenError as exc:
                raise ConfigError(field, f"{field}: {exc}", known,
                                  details=exc.to_dict()) from None


def _index_id(value: str) -> str:
    """An index id as memberships store it (lower case), or ValueError saying the shape."""
    key = value.strip().lower()
    if not MEMBERSHIP_ID.fullmatch(key):
        raise ValueError(f"{value[:40]!r} is not an index id (lower-case letters, digits, '_': "
                         "sp500, nasdaq100, dow, ...)")
    return key


def column_series(columns: list[str]) -> tuple[tuple[str, str, int], ...]:
    """(column, "D", 1) for each of `columns` (result columns to show) that the measured
    frame lacks: read at the as-of session like an expression's one-bar column."""
    need = {("rs_raw" if c == "RS_rating" else c)
            for c in columns if c in SCHEMA and SCHEMA[c] == "number"
            and c not in IN_FRAME and c not in FRAME_COLUMNS and c not in MARKET_COLUMNS}
    return tuple((name, "D", 1) for name in sorted(need))


def merge_series(*parts: tuple[tuple[str, str, int], ...]) -> tuple[tuple[str, str, int], ...]:
    """Series lists merged: each (column, timeframe) once, with its widest width; sorted."""
    need: dict[tuple[str, str], int] = {}
    for part in parts:
        for name, tf, width in part:
            need[(name, tf)] = max(need.get((name, tf), 0), width)
    return tuple(sorted((name, tf, width) for (name, tf), width in need.items()))


def compile_expressions(where: str | None, rank: str | None, intraday: bool = False
                        ) -> Expressions:
    """Both expressions compiled (once per text: a compiled screen is immutable);
    ConfigError("where" / "rank", ...) pointing at the place. Intraday timeframes (M5.x)
    only with `intraday` (an intraday scan, scan/intraday.py)."""
    for field, text in (("where", where), ("rank", rank)):
        if text is not None and not isinstance(text, str):
            raise ConfigError(field, f"{field} must be an expression (text), got "
                              f"{type(text).__name__}")
    out = _compile_both(where, rank)
    for field, screen in (("where", out.where), ("rank", out.rank)):
        if screen is not None and screen.intraday_columns and not intraday:
            tf, names = sorted(screen.intraday_columns.items())[0]
            raise ConfigError(field, f"{field}: {tf}.{sorted(names)[0]} is on intraday bars: "
                              "evaluate it with an intraday scan (`technic scan --at TIME`)")
    return out


@functools.lru_cache(maxsize=512)
def _compile_both(where: str | None, rank: str | None) -> Expressions:
    return Expressions(_compiled("where", where, SCHEMA, "bool"),
                       _compiled("rank", rank, RANK_SCHEMA, "number"))


def _compiled(field: str, text: str | None, schema: dict[str, str], kind: str
              ) -> CompiledScreen | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ConfigError(field, f"{field} must be an expression (text), got "
                          f"{type(text).__name__}")
    try:
        screen = compile_screen(text, schema, kind,  # type: ignore[arg-type]
                                resolve=RESOLVE, sets=SETS)
        series_needed(screen)
    except ScreenError as exc:
        raise ConfigError(field, f"{field}: {exc}", details=exc.to_dict()) from None
    return screen


def series_needed(screen: CompiledScreen) -> dict[tuple[str, str], int]:
    """{(column, timeframe): bars} the screen reads at width 1; ScreenError for history of a
    last-bar-only column."""
    recorder = _Recorder()
    screen.evaluate(recorder, 1)
    for (name, tf), width in recorder.widths.items():
        if (name in LAST_BAR_COLUMNS or name in RANK_ONLY) and (width > 1 or tf == "W"):
            raise ScreenError(f"{name} has a value at the last bar only: no lags, windows or "
                              "weekly bars of it", hint=f"use {name} as it is now")
    return recorder.widths


class _Recorder:
    """An Env of one all-missing row that records how many bars of each column are read."""

    n_rows = 1
    universe = np.ones(1, dtype=bool)

    def __init__(self) -> None:
        self.widths: dict[tuple[str, str], int] = {}

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        key = (name, timeframe)
        self.widths[key] = max(self.widths.get(key, 0), width)
        return np.full((1, width), np.nan)

    def text(self, name: str) -> np.ndarray:
        self.widths.setdefault((name, "text"), 1)
        return np.array([None], dtype=object)

    def groups(self, name: str) -> np.ndarray:
        return np.full(1, -1, dtype=np.int64)

    def weeks_spanned(self, width: int) -> int:
        return max(1, (width + 4) // 5)

    def align_weekly(self, values: np.ndarray, width: int) -> np.ndarray:
        return np.full((values.shape[0], width), np.nan)

    def spanned(self, source: str, target: str, width: int) -> int:
        return TimeframesOnBars().spanned(source, target, width)

    def align(self, values: np.ndarray, source: str, target: str, width: int) -> np.ndarray:
        return np.full((values.shape[0], width), np.nan)


class WeeklyOnDaily:
    """How a scan reads weekly values on its daily bars: at the evaluation session the last
    closed week; a column j bars before it, the week five sessions per bar back."""

    def weeks_spanned(self, width: int) -> int:
        return max(1, (width + 4) // 5)

    def align_weekly(self, values: np.ndarray, width: int) -> np.ndarray:
        out = np.full((values.shape[0], width), np.nan)
        for j in range(width):
            k = values.shape[1] - 1 - (width - 1 - j) // 5
            if k >= 0:
                out[:, j] = values[:, k]
        return out


class FrameColumns:
    """A measured frame's columns as arrays, each converted once however many screens read
    it (execute_many runs a hundred over one frame); `take(rows)`: the same for some rows,
    cut from the converted arrays instead of copying the frame."""

    def __init__(self, frame: pd.DataFrame | None, parent: FrameColumns | None = None,
                 rows: np.ndarray | None = None):
        self.frame, self.parent, self.rows = frame, parent, rows
        self.n_rows = len(frame) if frame is not None else len(rows)  # type: ignore[arg-type]
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def take(self, rows: np.ndarray) -> FrameColumns:
        return FrameColumns(None, self, np.asarray(rows))

    def number(self, name: str) -> np.ndarray:
        return self._get("number", name)

    def text(self, name: str) -> np.ndarray:
        return self._get("text", name)

    def codes(self, name: str) -> np.ndarray:
        return self._get("codes", name)

    def _get(self, kind: str, name: str) -> np.ndarray:
        found = self._cache.get((kind, name))
        if found is None:
            found = self._cache[(kind, name)] = self._convert(kind, name)
        return found

    def _convert(self, kind: str, name: str) -> np.ndarray:
        if kind == "codes":  # group labels: numbered by first appearance, -1 for missing
            source = self.frame[name] if self.frame is not None else self.text(name)
            return pd.factorize(source)[0].astype(np.int64)
        if self.frame is None:
            assert self.parent is not None and self.rows is not None
            return self.parent._get(kind, name)[self.rows]
        col = self.frame[name]
        return col.to_numpy(dtype=float) if kind == "number" else col.to_numpy(dtype=object)


class BlockEnv(WeeklyOnDaily):
    """The Env of some rows of a measured frame: `series` {(name, tf): (N, w)} packed arrays,
    last-bar values and text from `frame` (a DataFrame, or its FrameColumns shared by many
    screens), ranks among the rows marked in `universe`."""

    def __init__(self, frame: pd.DataFrame | FrameColumns,
                 series: Mapping[tuple[str, str], np.ndarray],
                 universe: np.ndarray, values: Mapping[str, np.ndarray] | None = None):
        self.columns = frame if isinstance(frame, FrameColumns) else FrameColumns(frame)
        self.series, self.values = series, dict(values or {})
        self.n_rows = self.columns.n_rows
        self.universe = np.asarray(universe, dtype=bool)

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        if name == "RS_rating":  # IBD-style 1..99 among the universe's rows
            raw = self.series[("rs_raw", timeframe)][:, -1]
            rating = np.full(self.n_rows, np.nan)
            rating[self.universe] = rs_percentile(raw[self.universe])
            return _right(rating[:, None], width)
        found = self.series.get((name, timeframe))
        if found is None:  # a last-bar value: given (the forecasts), else the result frame's
            col = self.values.get(name)
            col = self.columns.number(name) if col is None else col
            return _right(np.asarray(col, dtype=float)[:, None], width)
        return _right(found, width)

    def text(self, name: str) -> np.ndarray:
        found = self.values.get(name)
        return self.columns.text(name) if found is None else np.asarray(found, dtype=object)

    def groups(self, name: str) -> np.ndarray:
        return self.columns.codes(name)


def _right(source: np.ndarray, width: int) -> np.ndarray:
    """The last `width` columns, NaN-padded on the left when there are fewer."""
    have = source.shape[1]
    if width <= have:
        return source[:, have - width:]
    pad = np.full((source.shape[0], width - have), np.nan)
    return np.concatenate([pad, source], axis=1)


def column_catalogue() -> list[dict[str, object]]:
    """Every column a screen may read, in SCHEMA order (`technic screen columns`, GET
    /v1/screen/columns): its kind (number / text); `history`: lags and windows of it work
    (x[1], highest(x, 20)), and so do its weekly bars (W.x); `where`: usable in `where`
    (AlphaScore, relative to the rows kept, only in `rank`)."""
    return [{"name": name, "kind": kind, "history": name in HISTORY_COLUMNS,
             "weekly": name in HISTORY_COLUMNS, "where": name in SCHEMA}
            for name, kind in RANK_SCHEMA.items()]
