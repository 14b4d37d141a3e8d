"""Many screens at one session, sharing one evaluation: what a watch run needs (issue 15).

`execute_many(cfgs, ...)` answers, for each config, what `execute` would rank at the same
session, without a scan per config:
  1. one plan per config (symbols, sectors, industries; as-of and industries checked);
  2. the configs grouped by what an evaluation depends on (window bars, staleness, scoring:
     their WindowSpec but the expression series); each group's universe evaluated ONCE with
     the union of its expressions' series (the Evaluations memo, like a scan);
  3. one forecast for every row that any config keeps;
  4. per config: the scan's checks as masks (`screen_masks`), its `where` over the group's Env
     (ranks within that config's universe), AlphaScore over its kept rows, its rank (the rank
     expression or sort_by) in the scan's order (`rank_order`), cut to max_symbols.
The ordering, the checks and the expression evaluation are the scan's own functions, so each
`Selection` lists exactly the symbols `run_scan` keeps, in its order (tests/watch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from technic_v4.alpha.inference import MODEL_FEATURES, Forecast, alpha_score, distinguishing
from technic_v4.data.reader import Snapshot
from technic_v4.scan.columns import EXTRA_COLUMNS, RESULT_COLUMNS
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import WindowSpec
from technic_v4.scan.expressions import BlockEnv, compile_expressions
from technic_v4.scan.plan import plan_scan
from technic_v4.scan.result import RANK_COLUMN, rank_order
from technic_v4.scan.run import Evaluate, Evaluations, Predict, _evaluate, _no_report
from technic_v4.scan.screen import Facts, screen_masks


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

    @property
    def symbols(self) -> list[str]:
        return self.frame["Symbol"].to_numpy(dtype=object)[self.positions].tolist()

    def rows(self) -> pd.DataFrame:
        """Result columns (+ RankValue with a rank expression) of the kept symbols, ranked."""
        out = self.frame.iloc[self.positions].reset_index(drop=True)
        for column, values in self.alpha.items():  # a horizon withheld for these rows: NaN
            out[column] = values
        out["AlphaScore"] = self.alpha_scores
        shown = RESULT_COLUMNS + EXTRA_COLUMNS
        if self.config.rank:
            out[RANK_COLUMN] = self.rank_values
            shown = [*shown, RANK_COLUMN]
        return out[shown]


async def execute_many(cfgs: Sequence[ScanConfig], snap: Snapshot, evaluate: Evaluate,
                       predict: Predict, *, chunk_size: int | None = None,
                       evaluations: Evaluations | None = None) -> tuple[list[Selection],
                                                                        dict[str, pd.DataFrame]]:
    """Each config's Selection at the newest session (or each config's as_of_date, which must
    then be the same for all), and {symbol: row} frames per group for rows no config kept
    (what a watch shows for a symbol that left). Module docstring."""
    for cfg in cfgs:
        cfg.validate()
    plans = [plan_scan(cfg, snap) for cfg in cfgs]
    sessions = {p.as_of for p in plans}
    if len(sessions) > 1:
        raise ValueError(f"execute_many evaluates one session, the configs ask for {sessions}")
    groups: dict[bytes, list[int]] = {}
    for k, cfg in enumerate(cfgs):
        base = replace(WindowSpec.of(cfg), series=())
        groups.setdefault(base.key(), []).append(k)
    out: list[Selection | None] = [None] * len(cfgs)
    frames: dict[str, pd.DataFrame] = {}
    for members in groups.values():
        specs = [WindowSpec.of(cfgs[k]) for k in members]
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
        facts = Facts.of(frame, as_of)
        masks = [screen_masks(cfgs[k], facts) for k in members]
        in_plan = []
        for k in members:
            mask = np.zeros(len(frame), dtype=bool)
            mask[plans[k].rows] = True
            in_plan.append(mask)
        any_alive = np.zeros(len(frame), dtype=bool)
        for (_, alive), mask in zip(masks, in_plan, strict=True):
            any_alive |= alive & mask
        rows = np.flatnonzero(any_alive)
        forecast = await predict({n: frame[n].to_numpy(dtype=float)[rows]
                                  for n in MODEL_FEATURES})
        alpha = {f"Alpha{h}d": _scatter(v, rows, len(frame)) for h, v in forecast.values.items()}
        frames[spec.key().decode()] = frame.assign(**alpha)
        for k, (valid, alive), mask in zip(members, masks, in_plan, strict=True):
            mine = alive & mask
            candidate = Forecast({h: alpha[f"Alpha{h}d"][mine] for h in forecast.values},
                                 forecast.state)
            judged = distinguishing(candidate)  # per config, as a scan judges its own rows
            own = alpha if judged is candidate else {
                f"Alpha{h}d": _scatter(v, np.flatnonzero(mine), len(frame))
                for h, v in judged.values.items()}
            out[k] = _select(cfgs[k], frames[spec.key().decode()], block.series,
                             valid & mask, mine, own, judged, str(as_of.date()),
                             block.data_version)
    return [s for s in out if s is not None], frames


def _select(cfg: ScanConfig, frame: pd.DataFrame, series: dict, valid: np.ndarray,
            alive: np.ndarray, alpha: dict[str, np.ndarray], forecast: Forecast, session: str,
            data_version: str) -> Selection:
    """`execute`'s steps after the checks, on positions (no per-config frame copies)."""
    exprs = compile_expressions(cfg.where, cfg.rank)
    if exprs.where is not None:
        alive = alive & exprs.where.evaluate(BlockEnv(frame, series, valid, alpha), 1)[:, -1]
    rows = np.flatnonzero(alive)
    score = (alpha_score(alpha["Alpha5d"][rows], alpha["Alpha10d"][rows])
             if forecast.available else np.full(len(rows), np.nan))
    rank = np.full(len(rows), np.nan)
    if exprs.rank is not None:
        kept = BlockRows(frame, rows, {**alpha, "AlphaScore": _scatter(score, rows, len(frame))})
        env = BlockEnv(kept.frame, {k: v[rows] for k, v in series.items()},
                       np.ones(len(rows), dtype=bool), kept.values)
        rank = exprs.rank.evaluate(env, 1)[:, -1]
        key = rank
    elif cfg.sort_by == "AlphaScore":
        key = score
    elif cfg.sort_by in alpha:
        key = alpha[cfg.sort_by][rows]
    else:
        key = frame[cfg.sort_by].to_numpy(dtype=float)[rows]
    order = rank_order(key, cfg.ascending)
    if cfg.max_symbols is not None:
        order = order[: cfg.max_symbols]
    kept = rows[order]
    return Selection(cfg, session, data_version, frame, kept, rank[order], score[order],
                     int(valid.sum()), {c: v[kept] for c, v in alpha.items()},
                     dict(forecast.state))


class BlockRows:
    """Some rows of a frame and their given values, for a BlockEnv over just those rows."""

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray, values: dict[str, np.ndarray]):
        self.frame = frame.iloc[rows]
        self.values = {k: v[rows] for k, v in values.items()}


def _scatter(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[rows] = values
    return out
