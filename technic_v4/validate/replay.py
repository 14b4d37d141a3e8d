"""Replay: a screen as it would have been evaluated at every past session, block by block.

Walk-through of `replay(cfg, reader)`:
  1. The same plan as a scan (symbols, sectors, industries; checks against the store), the
     sessions to evaluate, the expressions' cost at every one of them held to the budget
     (screens/cost.py), then the symbols' whole history up to the last session (`reader`).
  2. Blocks of sessions (`plan_replay`, `_blocks`), planned from the universe table and
     which symbol has a bar at which session (the close column alone, `reader.present`):
     the evaluated sessions split into blocks of `block_sessions` (default `block_size`: as
     many as keep a block within a memory budget, MEMORY_MB or `memory_mb`, so 5,000 symbols
     x 1,265 sessions is one block and 20,000 run in blocks of ~320). Each block reads
     (`reader.load_block`) only its own sessions, a warm-up before them (`warmup`: every
     series' settling bars (its recursions' seed weight below 1e-14: the value equals the
     whole history's) and the scan's window) and the forward bars its horizons read after
     them; the few symbols whose gaps reach further back read their own earlier bars, and
     their series are spliced in (History.splice). A series that only the whole history
     gives (or a weekly one that settles over years) makes one block. Memory then follows
     the block and the universe, not the history; the block's measurements (measure.py)
     are all a validation keeps of it.
  3. Per block, `History.build`: every series the screen reads (its filters' Close, dollar
     volume, TechRating and Signal, the where/rank expressions' columns) computed once over
     each symbol's own bars, daily and weekly, in chunks of rows (history.py). The cancel
     token is checked between blocks and between chunks.
  4. The scan's checks as masks over (symbols x sessions) at once (`screen_masks`, the same
     function a scan applies to one session): bars in the scan's window, staleness, listing,
     price / dollar-volume / TechRating / signal floors. The rows passing the data checks are
     each day's universe: what traded that day, delisted symbols included while they traded.
  4b. The first evaluated session is the first at which every series the screen reads has
     its own lookback (`history_needed`: each indicator's and function's, RS_rating's 253
     bars, weekly bars as sessions), so no early session is empty for want of history.
  5. The scan's own `select` (technic_v4/scan/select.py): the `where` expression over the
     day's Env, then the rank values (the rank expression, or the sort_by column) among the
     rows passing, at every session of the block in one evaluation (history.SessionsEnv)
     when the expressions read one bar of daily values, else session by session
     (history.SessionEnv: the scan's Env as of that session; a loop over array gathers,
     never over scans).
Only bars up to each session are read: every series is causal on own bars and gathered at
the last bar on or before the session. `technic_v4.scan.run_scan(as_of_date=d)` gives the same
passing set and ranks at any session d, and any block size the one-block replay's (tests/
validate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from numba import njit, prange

from technic_v4 import cancel
from technic_v4.data.panel import Panel, memberships
from technic_v4.data.reader import with_listing_dates
from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.regimes import NUMBERS, REGIME_CACHE
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import WindowSpec, _sessions_for, _settle
from technic_v4.scan.expressions import MARKET_COLUMNS, Expressions, compile_expressions
from technic_v4.scan.plan import plan_scan
from technic_v4.scan.screen import Facts, screen_masks
from technic_v4.scan.select import select
from technic_v4.screens.cost import Budget
from technic_v4.validate.history import Gathered, History, SessionEnv, SessionsEnv

Progress = Callable[[str, int, int], None]
IN_SAMPLE = ("Alpha5d", "Alpha10d", "AlphaScore")
MEMORY_MB = 3000  # a block's budget when none is given (block_size; TECHNIC_VALIDATE_MEMORY_MB)
CELL_BYTES = 170  # peak bytes per symbol and loaded session of a block (measured: performance.md)
BASE_BYTES = 300 * 2**20  # the process before any block: code, kernels, the plan
MIN_BLOCK = 63
EVAL_SESSIONS = 128  # sessions evaluated at once within a block (masks, where, rank)


@dataclass(frozen=True)
class Replay:
    """The screen at each evaluated session: (N symbols, D sessions) arrays."""

    panel: Panel                  # the plan's symbols, whole history up to the last session
    history: History
    sessions: pd.DatetimeIndex    # the D evaluated sessions
    columns: np.ndarray           # (D,) their index on panel.sessions
    valid: np.ndarray             # (N, D) the day's universe (data checks passed)
    passing: np.ndarray           # (N, D) every check and the where expression passed
    rank: np.ndarray              # (N, D) rank value where passing, else NaN
    ascending: bool
    window_bars: int              # sessions a scan loads (the bars each symbol needed)
    lookback: int                 # sessions before the first evaluated one it needed
    blocks: int = 1               # blocks of sessions it ran in (history: Close only if > 1)


def check_validatable(cfg: ScanConfig) -> None:
    """What a replay cannot honestly evaluate: ConfigError naming the field and why."""
    cfg.validate()
    if cfg.as_of_date is not None:
        raise ConfigError("as_of_date", "validation replays every session up to `end`; give "
                          "end (--end) instead of as_of_date (--as-of)")
    if cfg.exclude_flagged or cfg.exclude_flags:
        raise ConfigError("exclude_flagged", "validation does not replay the data-quality gate "
                          "session by session; drop exclude_flagged / exclude_flags")
    for field, text in (("where", cfg.where), ("rank", cfg.rank), ("sort_by", cfg.sort_by)):
        if text and any(name in text for name in IN_SAMPLE):
            raise ConfigError(field, f"{field} reads an alpha forecast: the models were trained "
                              "on this history, so validating them on it would be in-sample")


@dataclass(frozen=True)
class Block:
    """The sessions one block of a replay loads and evaluates (`_blocks`)."""

    first: int       # first session loaded
    last: int        # last session loaded (its forward bars included)
    part: slice      # its evaluated sessions, a slice of the plan's columns
    short: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, dtype=np.int64))
    early: int = 0   # where the `short` rows (gaps before the block) load from

    def __iter__(self) -> Iterator[Any]:
        return iter((self.first, self.last, self.part))


@dataclass(frozen=True)
class ReplayPlan:
    """What every block of a replay shares, decided before any price is read: plain data, so
    a block can run in another process or on another node (deployments/ray_validate.py)."""

    cfg: ScanConfig
    rows: np.ndarray                # (N,) the plan's symbols, as universe positions
    universe: pd.DataFrame          # their universe rows, with first and last session
    sessions: pd.DatetimeIndex      # the store's sessions up to the last evaluated one
    columns: np.ndarray             # (D,) the evaluated sessions (index on `sessions`)
    blocks: list[Block]
    delisted: np.ndarray            # (N,) the symbol's last bar is before the last session
    lookback: int
    window_bars: int
    data_version: str
    source: str

    @property
    def stop(self) -> int:
        return len(self.sessions) - 1


@dataclass(frozen=True)
class BlockReplay:
    """One block: its panel (the sessions it loaded), History, and the screen at its evaluated
    sessions `columns` (index on the block's panel), (N, D_block) arrays."""

    panel: Panel
    history: History
    columns: np.ndarray
    valid: np.ndarray
    passing: np.ndarray
    rank: np.ndarray


def plan_replay(cfg: ScanConfig, reader: object, start: str | None = None,
                end: str | None = None, every: int = 1, *, budget: Budget | None = None,
                block_sessions: int = 0, memory_mb: int = 0, ahead: int = 0,
                align: int = 1) -> ReplayPlan:
    """Steps 1-2 of the module docstring: the plan's symbols, the evaluated sessions and the
    blocks (`_blocks`), from the universe table and the close column's presence alone.
    `block_sessions` sessions per block (0: `block_size` for `memory_mb`, 0: MEMORY_MB);
    each block also loads the `ahead` sessions its forward returns read, and starts at an
    evaluated session that is a multiple of `align` (the portfolio's rebalance)."""
    check_validatable(cfg)
    for name, value in (("block_sessions", block_sessions), ("memory_mb", memory_mb)):
        if value < 0:
            raise ConfigError(name, f"{name} must be >= 0 (0: the default), got {value}")
    snap = reader.snapshot()  # type: ignore[attr-defined]
    try:
        plan = plan_scan(ScanConfig(**{**cfg.to_dict(), "as_of_date": end,
                                       "scoring": cfg.scoring}), snap, budget=budget)
    except ConfigError as exc:  # the replay's last session is `end`, not an as-of date
        if exc.field != "as_of_date":
            raise
        raise ConfigError("end", exc.message.replace("as_of_date", "end"), exc.valid,
                          exc.details) from None
    stop = int(snap.sessions.get_loc(plan.as_of))
    exprs = compile_expressions(cfg.where, cfg.rank)
    lookback = history_needed(cfg, exprs) - 1
    columns = _sessions(snap.sessions[: stop + 1], lookback, start, end, every)
    exprs.check_cost(budget or Budget(), max(len(plan.rows), 1), len(columns), _at_once(exprs))
    rows = np.asarray(plan.rows, dtype=np.int64)
    has = reader.present(stop, rows)  # type: ignore[attr-defined]
    universe = snap.universe.iloc[rows].reset_index(drop=True)
    if "first_session" not in universe:
        universe = listing_dates(universe, has, snap.sessions[: stop + 1])
    spec = WindowSpec.of(cfg)
    warm = warmup(cfg, exprs, spec)
    reach = (max(warm) if warm else 0) + ahead
    size = block_sessions or block_size(len(rows), memory_mb, reach)
    blocks = _blocks(has, columns, max(1, size // every), warm, ahead, align)
    if any("beta_60" in names for names in _series_needed(cfg, exprs).values()):
        blocks = [Block(b.early, b.last, b.part) for b in blocks]  # one market index
    last_bar = np.where(has.any(1), stop - np.argmax(has[:, ::-1], axis=1), -1)
    return ReplayPlan(cfg, rows, universe, snap.sessions[: stop + 1], columns, blocks,
                      (last_bar >= 0) & (last_bar < stop), lookback, spec.bars,
                      snap.data_version, snap.source)


def replay_block(plan: ReplayPlan, reader: object, b: int,
                 progress: Progress | None = None) -> BlockReplay:
    """Steps 3-5 of the module docstring for block `b` of `plan`: its sessions read from
    `reader` (`load_block`), its History, the screen at its evaluated sessions."""
    report = progress or (lambda stage, done, total: None)
    cfg = plan.cfg
    exprs = compile_expressions(cfg.where, cfg.rank)
    spec = WindowSpec.of(cfg)
    block = plan.blocks[b]
    first, last, part = block
    series = _series_needed(cfg, exprs)
    panel = reader.load_block(first, last, plan.rows)  # type: ignore[attr-defined]
    panel = replace(panel, universe=plan.universe)  # listing dates of the whole history
    history = History.build(panel, series, cfg.scoring)
    if len(block.short):  # the rows with gaps: their series from their own earlier bars
        cancel.check()
        rows = plan.rows[block.short]
        own = reader.load_block(block.early, last, rows)  # type: ignore[attr-defined]
        own = replace(own, universe=plan.universe.iloc[block.short].reset_index(drop=True))
        history.splice(block.short, History.build(own, series, cfg.scoring))
    columns = plan.columns[part] - first
    n, d = panel.n_symbols, len(columns)
    valid, passing = np.zeros((n, d), dtype=bool), np.zeros((n, d), dtype=bool)
    rank = np.full((n, d), np.nan)
    for lo in range(0, d, EVAL_SESSIONS):  # the evaluation in pieces
        cancel.check()
        cut = slice(lo, min(lo + EVAL_SESSIONS, d))
        valid[:, cut], passing[:, cut], rank[:, cut] = _evaluate(
            cfg, exprs, spec, panel, history, columns[cut],
            partial(_replayed, report, part.start + lo, len(plan.columns)), reader)
    return BlockReplay(panel, history, columns, valid, passing, rank)


def replay(cfg: ScanConfig, reader: object, start: str | None = None, end: str | None = None,
           every: int = 1, progress: Progress | None = None, *,
           budget: Budget | None = None, block_sessions: int = 0) -> Replay:
    """The screen `cfg` at every `every`-th session from `start` to `end` (module doc), over
    blocks of `block_sessions` sessions (0: `block_size`'s choice for the universe), gathered
    into (N, D) arrays with the whole history's panel; ConfigError before any price is read
    when its expressions, over the plan's symbols at every evaluated session, cost more than
    `budget` (default Budget())."""
    report = progress or (lambda stage, done, total: None)
    plan = plan_replay(cfg, reader, start, end, every, budget=budget,
                       block_sessions=block_sessions)
    n, d = len(plan.rows), len(plan.columns)
    valid, passing = np.zeros((n, d), dtype=bool), np.zeros((n, d), dtype=bool)
    rank = np.full((n, d), np.nan)
    panel, history = None, None
    for b, (_, _, part) in enumerate(plan.blocks):
        report("indicators", b, len(plan.blocks))
        cancel.check()  # between blocks (technic_v4/cancel.py)
        one = replay_block(plan, reader, b, progress)
        valid[:, part], passing[:, part], rank[:, part] = one.valid, one.passing, one.rank
        if len(plan.blocks) == 1:
            panel, history = one.panel, one.history
        del one
    report("indicators", len(plan.blocks), len(plan.blocks))
    report("replay", d, d)
    if panel is None or history is None:  # what forward returns read: Close over it all
        cancel.check()
        panel = replace(reader.load_block(0, plan.stop, plan.rows),  # type: ignore[attr-defined]
                        universe=plan.universe)
        history = History.build(panel, {"D": {"Close"}, "W": set()}, cfg.scoring)
    return Replay(panel, history, plan.sessions[plan.columns], plan.columns, valid, passing,
                  rank, cfg.ascending, plan.window_bars, plan.lookback, len(plan.blocks))


def listing_dates(universe: pd.DataFrame, has: np.ndarray,
                  sessions: pd.DatetimeIndex) -> pd.DataFrame:
    """`universe` with each row's first and last session with a bar (`has`: (N, T) presence
    on `sessions`), NaT for a row without bars (reader.with_listing_dates from presence)."""
    some = has.any(axis=1)
    first = np.where(some, has.argmax(axis=1), 0)
    last = np.where(some, has.shape[1] - 1 - has[:, ::-1].argmax(axis=1), 0)
    nat = np.datetime64("NaT", "ns")
    values = sessions.values
    out = universe.copy()
    out["first_session"] = pd.DatetimeIndex(np.where(some, values[first], nat))
    out["last_session"] = pd.DatetimeIndex(np.where(some, values[last], nat))
    return out


def _evaluate(cfg: ScanConfig, exprs: Expressions, spec: WindowSpec, panel: Panel,
              history: History, columns: np.ndarray, progress: Callable[[int], None],
              reader: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid, passing, rank) at the sessions `columns` of `panel` (steps 3-4 of the module
    docstring) from its History; `reader` gives the market regime when the screen reads it."""
    gathered = Gathered(history.axes["D"], columns)  # series at the evaluated sessions
    facts = _facts(panel, history, spec.bars, columns, gathered)
    cancel.check()
    valid, alive = screen_masks(cfg, facts)
    values = {c: np.broadcast_to(panel.universe[c.lower()].to_numpy(dtype=object)[:, None],
                                 alive.shape) for c in ("Sector", "Industry", "Name")}
    values |= {"Symbol": np.broadcast_to(panel.symbols[:, None], alive.shape),
               "Signal": facts.signal, "Close": facts.close, "TechRating": facts.tech_rating,
               "DollarVolume": facts.dollar_volume, "Bars": facts.bars,
               "quality_flags": np.broadcast_to(np.array("", dtype=object), alive.shape),
               "Indexes": np.broadcast_to(memberships(panel.universe)[:, None], alive.shape)}
    if _text_read(exprs) & set(MARKET_COLUMNS):  # the market's regime as of each session
        values |= session_market_columns(reader, cfg.regime_benchmark, panel, columns)

    def sort(passing: np.ndarray) -> np.ndarray:  # the sort_by column at every session
        return values[cfg.sort_by] if cfg.sort_by in values else gathered(cfg.sort_by)

    if _at_once(exprs):  # no lags, windows or weekly bars: every session in one evaluation
        chosen = select(exprs, valid, alive,
                        lambda universe, _: SessionsEnv(history, columns, values, universe,
                                                        gathered), sort)
        cancel.check()
        return valid, chosen.passing, chosen.rank
    passing, rank = alive.copy(), np.full(alive.shape, np.nan)
    for k, t in enumerate(columns):
        cancel.check()  # between sessions (technic_v4/cancel.py)
        day = {name: v[:, k] for name, v in values.items()}
        one = select(exprs, valid[:, k], alive[:, k], partial(_session_env, history, t, day),
                     partial(_session_column, sort, k))
        passing[:, k], rank[:, k] = one.passing, one.rank
        if k % 50 == 0:
            progress(k)
    return valid, passing, rank


def block_size(n_symbols: int, memory_mb: int = 0, reach: int = 0) -> int:
    """Sessions per block when none is given: as many as keep a block's loaded sessions (its
    own, and `reach`: its warm-up and forward sessions) within `memory_mb` (0: MEMORY_MB) at
    CELL_BYTES per symbol and session, and never fewer than MIN_BLOCK (a block recomputes its
    warm-up, so short blocks cost time)."""
    budget = (memory_mb or MEMORY_MB) * 2**20 - BASE_BYTES
    return max(MIN_BLOCK, int(budget // (CELL_BYTES * max(n_symbols, 1))) - reach)


def warmup(cfg: ScanConfig, exprs: Expressions, spec: WindowSpec) -> tuple[int, int] | None:
    """(own bars, sessions) a block needs before its first session so that every value it
    reads equals the whole history's: each series' settling bars (`_settle`: its recursions'
    seed weight below 1e-14; weekly ones in weeks), and the scan's window in sessions (the
    facts count bars in it). None when a series needs the whole history (then one block)."""
    daily = [("rs_raw" if name == "RS_rating" else name, "D", 1)
             for name in _series_needed(cfg, exprs)["D"]]
    bars = [cfg.min_bars, 1]
    for name, tf, width in (*daily, *exprs.series(all_columns=True)):
        settle = _settle(name, width)
        if settle is None:
            return None
        bars.append(settle if tf == "D" else 5 * settle + 10)
    return max(bars), spec.bars


def _blocks(has: np.ndarray, columns: np.ndarray, size: int,
            warm: tuple[int, int] | None, ahead: int = 0, align: int = 1) -> list[Block]:
    """A `Block` per `size` evaluated sessions (rounded up to a multiple of `align`), from
    `has` (N, T): its first session leaves every symbol `warm[0]` own bars (or its whole
    history) and `warm[1]` sessions before the block's first evaluated session, but for the
    few symbols whose gaps would pull it further back: those load their own earlier first
    (`Block.short`). Its last leaves each symbol `ahead` own bars after the block's last
    evaluated session (or its last bar). One block (sessions 0 .. T - 1) when `warm` is None
    or one block holds every column."""
    stop = has.shape[1] - 1
    size = -(-size // align) * align
    if warm is None or size >= len(columns):
        return [Block(0, stop, slice(0, len(columns)))]
    bars, window = warm
    count = np.cumsum(has, axis=1, dtype=np.int32)  # own bars up to and including t
    out = []
    for lo in range(0, len(columns), size):
        hi = min(lo + size, len(columns))
        t = int(columns[lo])
        first = max(0, min(t + 1 - window, t + 1 - bars))
        short, early = np.empty(0, dtype=np.int64), first
        if first > 0:  # symbols with gaps: back to their bars[0]-th bar before t
            before = count[:, t] - count[:, first - 1]
            short = np.flatnonzero((before < bars) & (count[:, first - 1] > 0))
            for i in short:
                need = max(int(count[i, t]) - bars + 1, 1)  # 1-based own bar number
                early = min(early, int(np.searchsorted(count[i], need)))
        out.append(Block(first, _ahead_end(has, count, int(columns[hi - 1]), ahead),
                         slice(lo, hi), short, early))
    return out


def _ahead_end(has: np.ndarray, count: np.ndarray, t: int, ahead: int) -> int:
    """The last session a block ending at session `t` loads: each symbol's `ahead`-th own bar
    after t, or its last bar when it has fewer (a delisted symbol returns to it)."""
    stop = has.shape[1] - 1
    end = min(t + ahead, stop)
    if ahead == 0 or end == stop:
        return end
    short = np.flatnonzero((count[:, end] - count[:, t] < ahead) & (count[:, t] > 0))
    for i in short:  # gaps after t (a symbol with no bar by t has no return at t)
        later = count[i, t + 1:] - count[i, t]
        reached = int(np.searchsorted(later, ahead))  # first offset with `ahead` bars
        if reached < len(later):
            end = max(end, t + 1 + reached)
        elif later[-1] > 0:
            end = max(end, t + 1 + int(np.searchsorted(later, later[-1])))
    return end


def _replayed(report: Progress, offset: int, total: int, k: int) -> None:
    report("replay", offset + k, total)


def session_market_columns(reader: object, benchmark: str | None, panel: Panel,
                           columns: np.ndarray) -> dict[str, np.ndarray]:
    """The regime's screen columns (regimes.py) as of each evaluated session `columns`,
    (N, D) broadcast over the panel's rows: each session's own regime, bars up to it only."""
    series = REGIME_CACHE.get(reader, benchmark)
    at = series.sessions.get_indexer(panel.sessions[columns])
    if series.data_version != panel.data_version or (at < 0).any():
        raise StaleDataError(f"regimes computed on data_version {series.data_version}, the "
                             f"replay read {panel.data_version}")
    shape = (panel.n_symbols, len(columns))
    out = {name: np.broadcast_to(series.numbers[name][at][None, :], shape)
           for name in NUMBERS}
    out["regime"] = np.broadcast_to(series.regime[at][None, :], shape)
    return out


def _session_env(history: History, t: int, day: dict[str, np.ndarray], universe: np.ndarray,
                 stage: str) -> SessionEnv:
    """The Env of one session `t` (select.py's `env` for a where or rank with lags)."""
    return SessionEnv(history, t, day, universe)


def _session_column(sort: Callable[[np.ndarray], np.ndarray], k: int,
                    passing: np.ndarray) -> np.ndarray:
    """Column `k` (one evaluated session) of the sort_by values at every session."""
    return np.asarray(sort(passing))[:, k]


def _series_needed(cfg: ScanConfig, exprs: Expressions) -> dict[str, set[str]]:
    """{timeframe: columns} the replay computes: Close (returns), what the filters read
    (dollar volume, TechRating and Signal), the expressions' columns, the sort column."""
    daily = {"Close"}
    if cfg.min_dollar_volume is not None:
        daily.add("Volume_SMA20")
    if cfg.min_tech_rating is not None or cfg.signals or (
            not cfg.rank and cfg.sort_by == "TechRating"):
        daily.add("TechRating")
    out = {"D": daily, "W": set()}
    for name, tf, _ in exprs.series(all_columns=True):
        out[tf].add(name)
    if any(name in ("Signal",) for name in _text_read(exprs)):
        out["D"].add("TechRating")
    if not cfg.rank and cfg.sort_by not in ("TechRating", "Close", "DollarVolume", "Bars"):
        out["D"].add(cfg.sort_by)
    return out


def history_needed(cfg: ScanConfig, exprs: Expressions) -> int:
    """Sessions of history the first evaluated session needs: the most that any series the
    screen reads needs for its first value (each indicator's and function's own lookback,
    RS_rating's 253 bars, weekly bars as sessions; what the filters and the sort read at its
    last bar), and `min_bars`."""
    last_bar = [("rs_raw" if name == "RS_rating" else name, "D", 1)
                for name in _series_needed(cfg, exprs)["D"]]
    return max(cfg.min_bars, 1, *(_sessions_for(name, tf, width, settled=False)
                                  for name, tf, width in
                                  (*last_bar, *exprs.series(all_columns=True))))


def _text_read(exprs: Expressions) -> set[str]:
    names: set[str] = set()
    for screen in (exprs.where, exprs.rank):
        if screen is not None:
            names |= set(screen.columns)
    return names


def _at_once(exprs: Expressions) -> bool:
    """Whether the expressions read one bar of daily values only (no lags, windows, weekly
    bars or the day's Signal): then one evaluation over all sessions equals the per-session
    ones, column by column (cross-sectional functions rank within each column)."""
    for screen in (exprs.where, exprs.rank):
        if screen is None:
            continue
        if screen.lookback.get("D", 0) or screen.weekly_columns or (
                {"Signal", "regime"} & screen.columns):  # text that changes by session
            return False
    return True


def _sessions(sessions: pd.DatetimeIndex, lookback: int, start: str | None,
              end: str | None, every: int) -> np.ndarray:
    """Indices of the evaluated sessions: from the first with `lookback` sessions before it
    (or `start`) to `end`, every `every`-th."""
    if every < 1:
        raise ConfigError("every", f"every must be >= 1, got {every}")
    first = lookback
    if start is not None:
        first = max(first, int(sessions.searchsorted(pd.Timestamp(start))))
    last = len(sessions) - 1
    if end is not None:
        last = int(sessions.searchsorted(pd.Timestamp(end), side="right")) - 1
    if first > last:
        raise ConfigError("start", f"no session to evaluate between {start or 'the start'} and "
                          f"{end or 'the end'} with {lookback} sessions of history before it; "
                          f"the store covers {sessions[0].date()} to {sessions[-1].date()}")
    return np.arange(first, last + 1, every)


def _facts(panel: Panel, history: History, window: int, columns: np.ndarray,
           gathered: Gathered) -> Facts:
    """The scan's facts (screen.Facts) at each evaluated session, (N, D) arrays; the series
    read are left in `gathered`."""
    uni = with_listing_dates(panel) if "first_session" not in panel.universe else panel.universe
    listed_last = pd.DatetimeIndex(uni["last_session"]).values.astype("datetime64[ns]")
    sessions = panel.sessions.values.astype("datetime64[ns]")
    bars, age, last = _window_facts(panel.close, history.axes["D"].pos,
                                    np.asarray(columns, dtype=np.int64), window,
                                    sessions.view(np.int64), listed_last.view(np.int64))
    first = np.broadcast_to(pd.DatetimeIndex(uni["first_session"]).values[:, None], bars.shape)
    d = history.axes["D"]

    def at(name: str, missing: object) -> np.ndarray:
        if name not in d.packed:  # read only: one value seen at every cell
            return np.broadcast_to(np.array(missing, dtype=object if missing is None
                                            else float), bars.shape)
        return gathered(name)

    close, vol_sma, rating = (at(n, np.nan) for n in ("Close", "Volume_SMA20", "TechRating"))
    signal = at("Signal", None)
    return Facts(bars, age, first, last.view("datetime64[ns]"), sessions[columns][None, :],
                 close, close * vol_sma, rating, signal)


@njit(parallel=True, cache=True)
def _window_facts(close, pos, columns, window, sessions, listed_last
                  ):  # pragma: no cover - compiled
    """Per row and evaluated session t (ascending): bars in the scan's window (t - window, t],
    sessions since the last bar (the window's length when none is in it) and the last bar's
    date (the listing's last session when none is in the window), dates as int64 ns."""
    n, d = close.shape[0], len(columns)
    bars = np.empty((n, d), dtype=np.int64)
    age = np.empty((n, d), dtype=np.int64)
    last = np.empty((n, d), dtype=np.int64)
    for i in prange(n):
        last_at, s = -1, 0
        for k in range(d):
            t = columns[k]
            while s <= t:  # the last bar on or before t
                if np.isfinite(close[i, s]):
                    last_at = s
                s += 1
            lo = max(t + 1 - window, 0)
            before = pos[i, lo - 1] + 1 if lo > 0 else 0
            bars[i, k] = pos[i, t] + 1 - before
            if last_at >= lo:
                age[i, k] = t - last_at
                last[i, k] = sessions[last_at]
            else:
                age[i, k] = min(t + 1, window)
                last[i, k] = listed_last[i]
    return bars, age, last
