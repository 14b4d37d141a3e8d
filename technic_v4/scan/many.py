"""Many screens at one session, sharing one evaluation: what a watch run needs (issue 15).

`execute_many(cfgs, ...)` answers, for each config, what `execute` would rank at the same
session, without a scan per config:
  1. one plan per distinct selection (symbols, sectors, industries; as-of and industries
     checked; no rejection tables: a watch shows none);
  2. the configs grouped by what an evaluation depends on (window bars, staleness, scoring:
     their WindowSpec but the expression series); each group's universe evaluated ONCE with
     the union of its expressions' series (the Evaluations memo, like a scan);
  3. one forecast for every row that any config keeps;
  4. per config: the scan's checks as masks (`screen_masks`), then the scan's own `select`
     (select.py): its `where` over the group's Env (ranks within that config's universe),
     AlphaScore over its kept rows, its rank (the rank expression or sort_by), the order cut
     to max_symbols.
     Configs share what they ask alike, computed once per group: check masks (same check
     fields), the forecast's judgement (same rows), a `where` result (same text, and the same
     forecasts / universe when it reads them), the frame's columns as arrays (FrameColumns);
     no per-config frame is built.
The ordering, the checks and the expression evaluation are the scan's own functions, so each
`Selection` lists exactly the symbols `run_scan` keeps, in its order (tests/watch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from technic_v4 import cancel
from technic_v4.alpha.inference import MODEL_FEATURES, Forecast, distinguishing, matching
from technic_v4.data.reader import Snapshot
from technic_v4.regimes import market_columns
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import WindowSpec
from technic_v4.scan.expressions import BlockEnv, FrameColumns, compile_expressions
from technic_v4.scan.plan import ScanPlan, plan_scan
from technic_v4.scan.result import RANK_COLUMN, shown_columns
from technic_v4.scan.run import (
    Evaluate,
    Evaluations,
    Predict,
    _evaluate,
    _no_report,
    snapshot_calendar,
    unfillable_alpha,
)
from technic_v4.scan.screen import Facts, screen_masks
from technic_v4.scan.select import select, with_alpha_score
from technic_v4.screens import CompiledScreen
from technic_v4.screens.cost import Budget


@dataclass(frozen=True)
class Selection:
    """One config at the session: the symbols kept, ranked (cut to max_symbols), as positions
    in the group's evaluated frame; `rows` builds their result rows when asked."""

    config: ScanConfig
    session: str
    data_version: str
    frame: pd.DataFrame = field(repr=False)  # the group's frame, alpha columns filled
    positions: np.ndarray = field(repr=False)
    rank_values: np.ndarray = field(repr=False)   # RankValue (rank expression) or NaN
    alpha_scores: np.ndarray = field(repr=False)  # AlphaScore over this config's kept rows
    universe: int = 0                             # symbols with valid data in its plan
    alpha: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # its kept rows'
    alpha_state: dict = field(default_factory=dict, repr=False)  # as a scan's status.alpha
    names: np.ndarray | None = field(default=None, repr=False)  # the frame's symbols
    extra: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # kept rows' values
    # of the columns it shows that the frame lacks (chosen or read by its where / rank)
    regime: dict[str, Any] = field(default_factory=dict)  # the session's market regime tags

    @property
    def symbols(self) -> list[str]:
        names = self.frame["Symbol"].to_numpy(dtype=object) if self.names is None \
            else self.names
        return names[self.positions].tolist()

    def rows(self) -> pd.DataFrame:
        """The result rows of the kept symbols, ranked, with run_scan's columns (result.py
        `shown_columns`: chosen or contract, read by the where / rank, RankValue)."""
        out = self.frame.iloc[self.positions].reset_index(drop=True)
        for column, values in self.alpha.items():  # a horizon withheld for these rows: NaN
            out[column] = values
        out["AlphaScore"] = self.alpha_scores
        for column, values in self.extra.items():
            out[column] = values
        if self.config.rank:
            out[RANK_COLUMN] = self.rank_values
        return out[shown_columns(self.config)]


async def execute_many(cfgs: Sequence[ScanConfig], snap: Snapshot, evaluate: Evaluate,
                       predict: Predict, *, chunk_size: int | None = None,
                       evaluations: Evaluations | None = None, budget: Budget | None = None,
                       cancel_token: cancel.CancelToken | None = None
                       ) -> tuple[list[Selection], dict[str, pd.DataFrame]]:
    """Each config's Selection at the newest session (or each config's as_of_date, which must
    then be the same for all), and {symbol: row} frames per group for rows no config kept
    (what a watch shows for a symbol that left). Module docstring. What configs share is
    computed once: plans by their selection fields, check masks by the check fields, the
    forecast's judgement by the rows it judges, frame columns as arrays (FrameColumns).
    A config whose where / rank / sort_by reads a forecast its rows cannot have is the
    scan's ConfigError (`unfillable_alpha`); a watch run then evaluates each config alone.
    `budget`: what each config's expressions may cost (plan.check_against); `cancel_token`:
    checked between groups, configs and expression nodes (cancel.py)."""
    with cancel.active(cancel_token):
        return await _execute_many(cfgs, snap, evaluate, predict, chunk_size, evaluations,
                                   budget)


async def _execute_many(cfgs: Sequence[ScanConfig], snap: Snapshot, evaluate: Evaluate,
                        predict: Predict, chunk_size: int | None,
                        evaluations: Evaluations | None, budget: Budget | None
                        ) -> tuple[list[Selection], dict[str, pd.DataFrame]]:
    for cfg in cfgs:
        cfg.validate()
    planned: dict[tuple, ScanPlan] = {}
    for cfg in cfgs:
        if _plan_key(cfg) not in planned:
            planned[_plan_key(cfg)] = plan_scan(cfg, snap, records=False, budget=budget)
    plans = [planned[_plan_key(cfg)] for cfg in cfgs]
    sessions = {p.as_of for p in plans}
    if len(sessions) > 1:
        raise ValueError(f"execute_many evaluates one session, the configs ask for {sessions}")
    windows = [WindowSpec.of(cfg) for cfg in cfgs]
    groups: dict[bytes, list[int]] = {}
    for k, window in enumerate(windows):
        groups.setdefault(replace(window, series=()).key(), []).append(k)
    out: list[Selection | None] = [None] * len(cfgs)
    frames: dict[str, pd.DataFrame] = {}
    for members in groups.values():
        specs = [windows[k] for k in members]
        series: dict[tuple[str, str], int] = {}
        for spec in specs:
            for name, tf, width in spec.series:
                series[(name, tf)] = max(series.get((name, tf), 0), width)
        as_of = plans[members[0]].as_of
        spec = replace(specs[0], bars=max(s.bars for s in specs),
                       as_of=None if as_of == snap.sessions[-1] else str(as_of.date()),
                       series=tuple(sorted((n, tf, w) for (n, tf), w in series.items())))
        whole = replace(plans[members[0]], rows=np.arange(len(snap.universe)), rejections=[],
                        errors=[], attempted=len(snap.universe))
        block = await _evaluate(whole, spec, snap, evaluate, chunk_size, _no_report,
                                evaluations)
        frame = block.frame
        n = len(frame)
        facts = Facts.of(frame, as_of)
        checked: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # (valid, alive) by checks
        plan_masks: dict[int, np.ndarray] = {}                    # plan rows as a mask
        mine: dict[int, tuple[np.ndarray, np.ndarray]] = {}       # (valid, alive) in plan
        for k in members:
            checks = _checks_key(cfgs[k])
            if checks not in checked:
                checked[checks] = screen_masks(cfgs[k], facts)
            plan = plans[k]
            if id(plan) not in plan_masks:
                plan_masks[id(plan)] = _mask(plan.rows, n)
            (valid, alive), mask = checked[checks], plan_masks[id(plan)]
            mine[k] = valid & mask, alive & mask
        any_alive = np.zeros(n, dtype=bool)
        for _, alive in mine.values():
            any_alive |= alive
        rows = np.flatnonzero(any_alive)
        forecast = matching(await predict({f: frame[f].to_numpy(dtype=float)[rows]
                                           for f in MODEL_FEATURES}),
                            snap.source, snapshot_calendar(snap))
        alpha = {f"Alpha{h}d": _scatter(v, rows, n) for h, v in forecast.values.items()}
        key = spec.key().decode()
        # the forecasts and the session's market regime columns (the same in every row)
        frames[key] = frame.assign(**alpha, **market_columns(block.regime, n))
        shared = Shared(frames[key], FrameColumns(frames[key]),
                        frames[key]["Symbol"].to_numpy(dtype=object), block.series,
                        str(as_of.date()), block.data_version, regime=block.regime)
        judged: dict[bytes, tuple[Forecast, dict[str, np.ndarray]]] = {}  # by the rows judged
        for k in members:
            cancel.check()
            valid, alive = mine[k]
            rows_key = np.packbits(alive).tobytes()
            if rows_key not in judged:
                judged[rows_key] = _judge(alive, alpha, forecast)
            verdict, own = judged[rows_key]
            refused = unfillable_alpha(cfgs[k], verdict.state)  # as the scan refuses it
            if refused is not None:
                raise refused
            # off the event loop (a where can cost seconds); the thread sees the token
            out[k] = await asyncio.to_thread(_select, cfgs[k], shared, valid, alive, own,
                                             verdict)
    return [s for s in out if s is not None], frames


@dataclass(frozen=True)
class Shared:
    """What every config of a group reads: the frame (alpha filled), its columns as arrays,
    the symbols, the expression series, the session and data version."""

    frame: pd.DataFrame
    columns: FrameColumns
    symbols: np.ndarray
    series: dict[tuple[str, str], np.ndarray]
    session: str
    data_version: str
    hits: dict[tuple, np.ndarray] = field(default_factory=dict)  # `where` results (_where)
    regime: dict[str, Any] = field(default_factory=dict)  # the session's regime tags


def _where(screen: CompiledScreen, shared: Shared, valid: np.ndarray,
           alpha: dict[str, np.ndarray]) -> np.ndarray:
    """`screen` over the group's rows, once per text and what its value depends on besides
    the frame: the forecasts when it reads them, the universe when it ranks (or RS_rating)."""
    key = (screen.text, id(alpha) if screen.columns & {"Alpha5d", "Alpha10d"} else None,
           np.packbits(valid).tobytes()
           if screen.cross_sectional or "RS_rating" in screen.columns else None)
    hit = shared.hits.get(key)
    if hit is None:
        env = BlockEnv(shared.columns, shared.series, valid, alpha)
        hit = shared.hits[key] = screen.evaluate(env, 1)[:, -1]
    return hit


def _plan_key(cfg: ScanConfig) -> tuple:
    """What plan_scan reads of a config."""
    return (None if cfg.symbols is None else tuple(cfg.symbols),
            None if cfg.sectors is None else tuple(cfg.sectors),
            None if cfg.industries is None else tuple(cfg.industries), str(cfg.as_of_date),
            None if cfg.indexes is None else tuple(cfg.indexes))


def _checks_key(cfg: ScanConfig) -> tuple:
    """What the checks (screen.checks) read of a config."""
    return (cfg.max_stale_sessions, cfg.min_bars, cfg.min_price, cfg.min_dollar_volume,
            cfg.min_tech_rating, None if not cfg.signals else tuple(cfg.signals),
            cfg.exclude_flagged, None if not cfg.exclude_flags else tuple(cfg.exclude_flags))


def _mask(rows: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _judge(mine: np.ndarray, alpha: dict[str, np.ndarray], forecast: Forecast
           ) -> tuple[Forecast, dict[str, np.ndarray]]:
    """The forecast over `mine` judged as a scan judges its own rows (`distinguishing`), and
    the alpha columns it leaves (a withheld horizon NaN)."""
    candidate = Forecast({h: alpha[f"Alpha{h}d"][mine] for h in forecast.values},
                         forecast.state)
    judged = distinguishing(candidate)
    if judged is candidate:
        return judged, alpha
    rows = np.flatnonzero(mine)
    return judged, {f"Alpha{h}d": _scatter(v, rows, len(mine))
                    for h, v in judged.values.items()}


def _select(cfg: ScanConfig, shared: Shared, valid: np.ndarray, alive: np.ndarray,
            alpha: dict[str, np.ndarray], forecast: Forecast) -> Selection:
    """`execute`'s steps after the checks (select.py), on positions (no per-config frames)."""
    exprs = compile_expressions(cfg.where, cfg.rank)
    columns, series = shared.columns, shared.series
    scored: list[dict[str, np.ndarray]] = []  # alpha and AlphaScore over the passing rows

    def values(passing: np.ndarray) -> dict[str, np.ndarray]:
        if not scored:
            scored.append(with_alpha_score(alpha, passing, forecast.available))
        return scored[0]

    def env(universe: np.ndarray, stage: str) -> BlockEnv:
        return BlockEnv(columns, series, universe,
                        alpha if stage == "where" else values(universe))

    def sort(passing: np.ndarray) -> np.ndarray:
        found = values(passing).get(cfg.sort_by)
        return columns.number(cfg.sort_by) if found is None else found

    chosen = select(exprs, valid, alive, env, sort,
                    where=lambda screen, universe: _where(screen, shared, universe, alpha))
    order = chosen.order(cfg.ascending, cfg.max_symbols)
    kept = chosen.rows[order]
    score = values(chosen.passing)["AlphaScore"][kept]
    rank = chosen.rank[kept] if exprs.rank is not None else np.full(len(kept), np.nan)
    missing = [c for c in shown_columns(cfg) if c not in shared.frame.columns
               and c != RANK_COLUMN]
    extra: dict[str, np.ndarray] = {}
    if missing:  # the values a where would read at the session (BlockEnv), for kept rows
        read = BlockEnv(columns, series, valid, alpha)
        extra = {c: read.number(c, 1)[kept, -1] for c in missing}
    return Selection(cfg, shared.session, shared.data_version, shared.frame, kept,
                     rank, score, int(valid.sum()),
                     {c: v[kept] for c, v in alpha.items()}, dict(forecast.state),
                     shared.symbols, extra, shared.regime)


def _scatter(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[rows] = values
    return out
