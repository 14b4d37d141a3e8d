"""Evaluate: a Panel's symbols measured at the as-of session, one row each, nothing filtered.

`measure(panel, spec)` is the per-symbol half of a scan: indicators on each symbol's own bars,
last-bar values, dollar volume, listing dates, the data-quality flags and TechRating/Signal,
for every row of `panel`. Nothing in it depends on the other rows or on the request's filters,
only on the `WindowSpec` (as-of session, bars loaded, staleness limit, scoring), so:
  - chunks of a universe give, row for row, what one call over all of it gives (the Serve app
    evaluates chunks on its Indicators replicas: `evaluate_chunk`);
  - a service can keep a data version's full evaluation and answer every request that shares
    its WindowSpec by screening it (screen.py), without recomputing (run.py's `Evaluations`).
The frame holds the result columns (Alpha columns NaN until run.py fills them) and private
facts for the screen, prefixed `_`: `_age` (sessions from the symbol's last bar to the as-of
session; the window length when it has none), `_first_seen`, `_last_seen`, `_flag_<name>`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import pandas as pd

from technic_v4 import scoring
from technic_v4.data.calendar import DEFAULT_CALENDAR, effective_sessions
from technic_v4.data.panel import Panel, memberships
from technic_v4.data.quality import FLAGS as QUALITY_FLAGS
from technic_v4.data.quality import QualityConfig, check_panel
from technic_v4.data.weekly import weekly_panel
from technic_v4.errors import StaleDataError
from technic_v4.indicators import compute_indicators, convergence_bars, required_bars
from technic_v4.indicators.engine import packed_series
from technic_v4.indicators.market import market_field, market_index, perf_ytd
from technic_v4.indicators.registry import OUTPUTS
from technic_v4.regimes import REGIME_CACHE
from technic_v4.scan.columns import RESULT_COLUMNS, SHOWN_INDICATORS
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.expressions import BARS, column_series, compile_expressions, merge_series
from technic_v4.scan.terms import SCAN_OUTPUTS, Terms

# the settling window is rounded up to this many sessions, so that screens whose series need
# a few more bars than the default (MACD a few bars back) share one evaluation (many.py)
WINDOW_STEP = 50


@dataclass(frozen=True)
class WindowSpec:
    """What an evaluation depends on besides the symbols (module docstring)."""

    as_of: str | None          # a date (the last session on or before it); None: the latest
    bars: int                  # sessions loaded, ending at the as-of session
    max_stale_sessions: int
    scoring: scoring.ScoringConfig = field(default_factory=scoring.ScoringConfig)
    series: tuple[tuple[str, str, int], ...] = ()  # (column, "D"|"W", bars) expressions read
    regime_benchmark: str | None = None  # the market regime's benchmark (regimes.py)

    @classmethod
    def of(cls, cfg: ScanConfig) -> WindowSpec:
        series = merge_series(compile_expressions(cfg.where, cfg.rank).series(),
                              column_series(list(cfg.columns or ())))
        settle = settle_needed(series) or convergence_bars(SCAN_OUTPUTS) or 0
        bars = max(cfg.lookback_days, required_bars(SCAN_OUTPUTS), cfg.min_bars,
                   -(-settle // WINDOW_STEP) * WINDOW_STEP,
                   *(_sessions_for(name, tf, width) for name, tf, width in series))
        as_of = None if cfg.as_of_date is None else str(cfg.as_of_date)
        return cls(as_of, bars, cfg.max_stale_sessions, cfg.scoring, series,
                   cfg.regime_benchmark)

    def terms(self) -> Terms:
        """The indicator outputs an evaluation of this spec computes (terms.py)."""
        return Terms.of(self.series)

    def key(self) -> bytes:
        """A canonical key of the spec (ScoringConfig holds a dict, so it is not hashable)."""
        return orjson.dumps(self, option=orjson.OPT_SORT_KEYS)  # orjson reads dataclasses


@dataclass(frozen=True)
class Block:
    """Measured rows of some symbols: `frame` (module docstring), the `series` expressions
    read ({(column, timeframe): (rows, bars)} on each symbol's own bars, right-aligned), and
    where they came from."""

    frame: pd.DataFrame
    source: str
    data_version: str
    as_of: str
    window_bars: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    series: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    computed: tuple[str, ...] = ()  # the indicator outputs the kernels ran for (terms.py)
    regime: dict[str, Any] = field(default_factory=dict)  # regimes.RegimeSeries.tags_at as-of


def measure(panel: Panel, spec: WindowSpec, market: np.ndarray | None = None) -> Block:
    """Every symbol of `panel` measured at its last session (module docstring)."""
    t0 = time.perf_counter()
    tails = daily_tails(spec)
    table = compute_indicators(panel, SCAN_OUTPUTS, tails=tails)
    t1 = time.perf_counter()
    last = table.last
    last_idx = panel.last_bar_index()
    close, volume = at_last_bar(panel.close, last_idx), at_last_bar(panel.volume, last_idx)
    first_seen, last_seen = listing_dates(panel, last_idx)
    rating, subs = scoring.tech_rating({**last, "Close": close}, spec.scoring)
    quality = check_panel(panel, QualityConfig(max_stale_sessions=spec.max_stale_sessions))
    incomplete = np.full(panel.n_symbols, "", dtype=object)
    for name in SHOWN_INDICATORS:
        short = table.insufficient[name]
        if short.any():
            incomplete[short] = incomplete[short] + (name + " ")
    cols: dict[str, Any] = {
        "Symbol": panel.symbols,
        "Sector": panel.universe["sector"].to_numpy(dtype=object),
        "Industry": panel.universe["industry"].to_numpy(dtype=object),
        "Close": close,
        "Volume": volume,
        **{k: last[k] for k in RESULT_COLUMNS[5:15]},
        "TechRating": rating,
        "Signal": scoring.signal(rating, subs, spec.scoring),
        "Alpha5d": np.nan,
        "Alpha10d": np.nan,
        "Name": panel.universe["name"].to_numpy(dtype=object),
        "AlphaScore": np.nan,
        **{k: last[k] for k in ["mom_5", "SMA20", "SMA50", "SMA200", "dist_high_20"]},
        "DollarVolume": close * last["Volume_SMA20"],
        "Bars": table.bars,
        "LastDate": pd.DatetimeIndex(np.where(last_idx >= 0, last_seen, np.datetime64("NaT"))),
        "Incomplete": np.char.strip(incomplete.astype(str)).astype(object),
        "Source": panel.source,
        "quality_flags": quality.flags,
        "Indexes": memberships(panel.universe),
        "_age": np.where(last_idx >= 0, panel.n_sessions - 1 - last_idx, panel.n_sessions),
        "_first_seen": first_seen,
        "_last_seen": last_seen,
        **{f"_flag_{name}": quality.found[name] for name in QUALITY_FLAGS},
    }
    frame = pd.DataFrame(cols)
    t2 = time.perf_counter()
    ran: list[str] = list(table.outputs)
    series = expression_series(panel, spec, market, table.tails, ran) if spec.series else {}
    return Block(frame, panel.source, panel.data_version, str(panel.sessions[-1].date())
                 if panel.n_sessions else "", panel.n_sessions,
                 {"indicators": _ms(t1 - t0), "score": _ms(t2 - t1)}, series,
                 tuple(dict.fromkeys(ran)))


def expression_series(panel: Panel, spec: WindowSpec, market: np.ndarray | None,
                      tails: dict[str, np.ndarray] | None = None, ran: list[str] | None = None
                      ) -> dict[tuple[str, str], np.ndarray]:
    """The (column, timeframe) series of `spec.series`, each (N, bars) on own bars. Daily
    ones from `tails` (the measurement's own kernel runs: `daily_tails`) where given, else
    `packed_series`; weekly ones from `weekly_panel` (closed weeks only; the weekly fields
    they read); TechRating from the score over the scoring inputs' series; `market` is the
    universe's index level (beta_60), else this panel's. The outputs whose kernels run here
    are appended to `ran`."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for tf in ("D", "W"):
        wanted = [(name, width) for name, t, width in spec.series if t == tf]
        if not wanted:
            continue
        names = {BARS.get(n, n) for n, _ in wanted if n not in ("TechRating", "perf_ytd")}
        if any(n == "TechRating" for n, _ in wanted):
            names |= {BARS.get(n, n) for n in scoring.SCORING_INPUTS}
        source = panel
        if tf == "W":
            source = weekly_panel(panel, last_week_closed(panel.sessions[-1], panel.meta),
                                  fields_read(names))
        width = max(w for _, w in wanted)
        given = {n: v for n, v in (tails or {}).items() if n in names} if tf == "D" else {}
        names -= set(given)
        extra = None
        if "beta_60" in names:
            index = market_index(panel) if market is None else market
            if tf == "W":
                index = index[panel.sessions.get_indexer(source.sessions)]
            extra = {"market": market_field(source, index)}
        got = packed_series(source, sorted(names), width, extra) if names else {}
        if ran is not None:
            ran.extend(n for n in sorted(names) if n in OUTPUTS)
        got |= given
        for name, w in wanted:
            if name == "TechRating":  # the score per bar, over w bars of its inputs
                inputs = {k: got[BARS.get(k, k)][:, -w:] for k in scoring.SCORING_INPUTS}
                values = scoring.tech_rating(inputs, spec.scoring)[0]
            elif name == "perf_ytd":
                values = np.asarray(perf_ytd(source))[:, None]
            else:
                values = got[BARS.get(name, name)]
            out[(name, tf)] = np.ascontiguousarray(values[:, -w:])
    return out


def daily_tails(spec: WindowSpec) -> dict[str, int]:
    """{output or bar field: bars} of the daily series that the measurement's own kernel
    runs can give (compute_indicators' tails): all but TechRating's score, perf_ytd and
    outputs that read more than the bars (beta_60 reads the market)."""
    from technic_v4.data.panel import FIELDS

    out: dict[str, int] = {}
    for name, tf, width in spec.series:
        if tf != "D" or name == "perf_ytd":
            continue
        for column in scoring.SCORING_INPUTS if name == "TechRating" else (name,):
            column = BARS.get(column, column)
            if column in FIELDS or (column in OUTPUTS and all(
                    f in FIELDS for f in OUTPUTS[column].inputs)):
                out[column] = max(out.get(column, 0), width)
    return out


def fields_read(names: set[str]) -> tuple[str, ...]:
    """The bar fields (open ... volume) that the outputs and bar columns `names` read."""
    from technic_v4.data.panel import FIELDS
    from technic_v4.indicators.registry import resolve

    specs, _ = resolve(sorted(n for n in names if n not in FIELDS))
    read = {"close", *(n for n in names if n in FIELDS), *(f for s in specs for f in s.inputs)}
    return tuple(f for f in FIELDS if f in read)


def last_week_closed(session: pd.Timestamp, meta: Mapping[str, Any] | None = None) -> bool:
    """Whether `session` is the last trading session of its calendar week (the next session
    falls in a later week): then that week's bar is complete. Sessions are the store's
    (`meta` of its Panel: calendar, extra sessions, closures; default XNYS)."""
    meta = meta or {}
    ahead = effective_sessions(session + pd.Timedelta(days=1), session + pd.Timedelta(days=14),
                               meta.get("calendar") or DEFAULT_CALENDAR,
                               extra=meta.get("extra_sessions") or (),
                               closures=meta.get("closures") or ())
    if not len(ahead):
        return True
    return bool(ahead[0].to_period("W-SUN") != session.to_period("W-SUN"))


def _sessions_for(name: str, timeframe: str, width: int, settled: bool = True) -> int:
    """Sessions of history a series of `width` bars of `name` needs: daily, until its last
    `width` values equal the full history's (`_settle`; with `settled=False`, a replay's, whose
    series run over the whole history: its first values); weekly, its first values."""
    if timeframe == "D":
        if settled:
            return _settle(name, width) or _first_values(name, width)
        return _first_values(name, width)
    return 5 * _first_values(name, width) + 5


def _first_values(name: str, width: int) -> int:
    """Bars until a series of `name` has `width` values."""
    if name in BARS:
        return width
    if name == "TechRating":
        return required_bars(scoring.SCORING_INPUTS[1:]) + width - 1
    if name == "perf_ytd":
        return 262  # back to the previous year's last session from any day of the year
    return required_bars([name]) + width - 1


def _settle(name: str, width: int) -> int | None:
    """Own bars after which the last `width` daily values of `name` equal the full history's
    (registry.convergence_bars); None when only the whole history gives them."""
    if name in BARS:
        return width
    if name == "perf_ytd":
        return 262  # back to the previous year's last session from any day of the year
    inputs = scoring.SCORING_INPUTS[1:] if name == "TechRating" else [name]
    settle = convergence_bars(inputs)
    return None if settle is None else settle + width - 1


def settle_needed(series: tuple[tuple[str, str, int], ...]) -> int | None:
    """Own bars after which the scan's values (the default outputs and the daily `series`
    expressions and columns read) equal the full history's; None when one is anchored."""
    need = [convergence_bars(SCAN_OUTPUTS), *(_settle(n, w) for n, tf, w in series if tf == "D")]
    return None if any(n is None for n in need) else max(n for n in need if n is not None)


def evaluate_chunk(reader: Any, symbols: list[str], spec: WindowSpec,
                   data_version: str | None = None) -> Block:
    """`measure` for `symbols` on the window `reader` holds (a StoreReader or PanelSource);
    StaleDataError when the reader's data is not `data_version` (the store changed since the
    scan was planned) or lacks a symbol. Rows that need their whole history (`full_history`)
    are measured again on it; rows whose weekly series alone need it (a weekly recursion
    converges over years of weeks, a daily one within the window) get just those series
    from it."""
    panel = reader.load(spec.as_of, spec.bars)
    if data_version is not None and panel.data_version != data_version:
        raise StaleDataError(f"scan planned on data_version {data_version}, the store now "
                             f"holds {panel.data_version}")
    return replace(_evaluate_rows(reader, panel, symbols, spec),
                   regime=regime_tags(reader, spec, panel))


def regime_tags(reader: Any, spec: WindowSpec, panel: Panel) -> dict[str, Any]:
    """The market regime at the window's last session (regimes.py), from the regime series
    of the reader's data version (computed once per version and benchmark)."""
    series = REGIME_CACHE.get(reader, spec.regime_benchmark)
    if series.data_version != panel.data_version:
        raise StaleDataError(f"regimes computed on data_version {series.data_version}, the "
                             f"scan reads {panel.data_version}")
    return series.tags_at(series.index_of(panel.sessions[-1]) if panel.n_sessions else -1)


def _evaluate_rows(reader: Any, panel: Panel, symbols: list[str], spec: WindowSpec) -> Block:
    rows = reader.rows(panel, symbols)
    if (rows < 0).any():
        missing = [s for s, r in zip(symbols, rows, strict=True) if r < 0][:5]
        raise StaleDataError(f"symbols {missing} are not in store version {panel.data_version}")
    sub = panel.select(rows)
    # the whole universe's market level, not a chunk's (only beta_60 reads it)
    market = market_index(panel) if any(n == "beta_60" for n, _, _ in spec.series) else None
    daily, weekly = full_history(sub, spec)
    weekly_series = tuple(s for s in spec.series if s[1] == "W")
    block = measure(sub, replace(spec, series=tuple(s for s in spec.series if s[1] != "W"))
                    if weekly.any() else spec, market)
    longer = daily | weekly
    if not longer.any():
        return block
    if weekly.any():  # the window's weekly series for rows that have no history before it
        shorter = np.flatnonzero(~weekly)
        w_spec = replace(spec, series=weekly_series)
        ran: list[str] = list(block.computed)
        window = expression_series(sub.select(shorter), w_spec, market, None, ran) \
            if len(shorter) else {(n, tf): np.empty((0, w)) for n, tf, w in weekly_series}
        block = replace(block, series={**block.series,
                                       **_rows_series(sub.n_symbols, shorter, window)},
                        computed=tuple(dict.fromkeys(ran)))
    wanted = np.flatnonzero(longer)
    full = reader.load_rows(spec.as_of, list(sub.symbols[wanted]))
    if market is not None:  # the whole universe's market levels over the whole history
        market = whole_market(reader, spec, full.sessions)
    if weekly.any():  # over all of `full` (weekly bars are small; the daily ones are not)
        only = np.flatnonzero(weekly[wanted])
        ran = list(block.computed)
        values = expression_series(full, replace(spec, series=weekly_series), market, None,
                                   ran)
        block = replace(block, computed=tuple(dict.fromkeys(ran)))
        for key, v in values.items():
            block.series[key][wanted[only]] = v[only]
    if daily.any():
        again = np.flatnonzero(daily[wanted])
        block = with_rows(block, wanted[again], measure(full.select(again), spec, market))
    return block


def whole_market(reader: Any, spec: WindowSpec, sessions: pd.DatetimeIndex) -> np.ndarray:
    """The universe's market index level on `sessions` (a whole history up to the as-of
    session): beta_60 of a row measured on its whole history reads the market on its own
    last bars, which may lie before the scan's window (a delisted or thinly traded symbol)."""
    universe = reader.load(spec.as_of, len(sessions))
    level = pd.Series(market_index(universe), index=universe.sessions).reindex(sessions)
    if level.isna().any():
        raise StaleDataError("the store's sessions changed while the market index was read")
    return level.to_numpy()


def _rows_series(n: int, rows: np.ndarray, values: dict[tuple[str, str], np.ndarray]
                 ) -> dict[tuple[str, str], np.ndarray]:
    """Series of some rows placed in (n, w) arrays, NaN in the other rows."""
    out = {}
    for key, v in values.items():
        out[key] = np.full((n, v.shape[1]), np.nan)
        out[key][rows] = v
    return out


def full_history(sub: Panel, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose values must all come from their whole history, rows whose weekly series
    must): rows that traded before the window and have fewer own bars in it than what they
    read needs to settle (`settle_needed`), or every such row with bars when an expression
    reads an anchored output (OBV, days since a cross); for weekly series every row with bars
    that traded before the window (400 weekly bars are 8 years)."""
    bars = np.isfinite(sub.close).sum(axis=1)
    listed = pd.DatetimeIndex(sub.universe["first_session"]) if "first_session" in \
        sub.universe else pd.DatetimeIndex([pd.NaT] * sub.n_symbols)
    before = np.asarray(listed < sub.sessions[0]) if sub.n_sessions else np.zeros(len(bars), bool)
    old = (bars > 0) & before
    need = settle_needed(spec.series)
    daily = old if need is None else old & (bars < need)
    weekly = old if any(tf == "W" for _, tf, _ in spec.series) else np.zeros(len(bars), bool)
    return daily, weekly & ~daily


def with_rows(block: Block, rows: np.ndarray, full: Block) -> Block:
    """`block` with the indicator-derived values (and series) of `rows` taken from `full`,
    their whole-history measurement; the window's facts (bars in the window, staleness,
    listing dates, quality flags) stay, so the screen's checks mean the same for every row."""
    frame = block.frame.copy()
    for name in FROM_HISTORY:  # whole columns set: much cheaper than frame.loc per column
        column = frame[name]
        values = column.to_numpy(copy=True)
        values[rows] = full.frame[name].to_numpy(dtype=values.dtype)
        frame[name] = pd.Series(values, index=frame.index, dtype=column.dtype)
    series = dict(block.series)
    for key, values in full.series.items():
        series[key] = block.series[key].copy()
        series[key][rows] = values
    return replace(block, frame=frame, series=series)


FROM_HISTORY = [*SHOWN_INDICATORS, "TechRating", "Signal", "DollarVolume", "Incomplete"]


def listing_dates(panel: Panel, last_idx: np.ndarray) -> tuple[pd.DatetimeIndex, ...]:
    """First and last bar dates per symbol: from the window, else from the store's universe."""
    sessions = panel.sessions
    present = np.isfinite(panel.close)
    first_idx = np.where(present.any(axis=1), present.argmax(axis=1), -1)
    nat = np.datetime64("NaT", "ns")
    first = np.where(first_idx >= 0, sessions.values[np.maximum(first_idx, 0)], nat)
    last = np.where(last_idx >= 0, sessions.values[np.maximum(last_idx, 0)], nat)
    uni = panel.universe
    if "first_session" in uni and "last_session" in uni:
        outside = last_idx < 0
        first[outside] = pd.DatetimeIndex(uni["first_session"]).values[outside]
        last[outside] = pd.DatetimeIndex(uni["last_session"]).values[outside]
    return pd.DatetimeIndex(first), pd.DatetimeIndex(last)


def at_last_bar(values: np.ndarray, last_idx: np.ndarray) -> np.ndarray:
    """Each row's value at its own last bar (NaN for a row with no bar)."""
    out = values[np.arange(len(values)), np.maximum(last_idx, 0)]
    return np.where(last_idx >= 0, out, np.nan)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
