"""One block of a validation measured on its own, and the blocks merged exactly.

Every statistic of the report is a function of per-session figures (stats.py), and each
session's figures depend only on that session's cross-section and its symbols' next bars. So a
block of sessions (replay.py's `replay_block`, which loads its own warm-up and the forward bars
its horizons read) is measured alone, into `BlockStats`: per session the universe and passing
counts and, per horizon, the passing set's mean excess, the rank IC, the hit counts, the simple
excess, the decile and sector means; the portfolio's picks at its rebalances (a block starts at
one) and its gross step excess. `merge` lays the blocks side by side in session order: the
report's means, Newey-West t (over the merged series), deciles and portfolio path are then
computed from exactly the numbers one pass would have, in any order the blocks finished, in
one process or on many nodes (deployments/ray_validate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from technic_v4 import cancel
from technic_v4.validate import stats
from technic_v4.validate.history import Axis
from technic_v4.validate.replay import Progress, ReplayPlan, replay_block
from technic_v4.validate.returns import Forwards

BUCKETS = 10


@dataclass(frozen=True)
class Horizon:
    """Per-session figures of one horizon over a block's D sessions."""

    mean: np.ndarray      # (D,) the passing set's mean log excess
    ic: np.ndarray        # (D,) rank IC against the simple return
    hit: np.ndarray       # (D,) passing cells with a finite log excess above 0
    cells: np.ndarray     # (D,) passing cells with a finite log excess
    simple: np.ndarray    # (D,) the passing set's mean simple excess
    truncated: int        # passing cells whose symbol delisted inside the horizon
    deciles: np.ndarray   # (BUCKETS, D) mean log excess by rank bucket
    sectors: np.ndarray   # (groups, D) the passing set's mean log excess by sector


@dataclass(frozen=True)
class BlockStats:
    """A block's measurements (module docstring): small, whatever the universe."""

    block: int
    universe: np.ndarray  # (D,) symbols in the day's universe
    passing: np.ndarray   # (D,) symbols passing
    horizons: dict[int, Horizon]
    picks: list[np.ndarray]  # the portfolio's rows at each rebalance of the block
    gross: np.ndarray     # (D,) the portfolio's gross step excess


@dataclass(frozen=True)
class Measure:
    """What every block measures: the report's horizons and portfolio."""

    horizons: tuple[int, ...]
    every: int
    top: int
    rebalance: int


# runs every block of a plan (in this process: `run_blocks`; on Ray: deployments/ray_validate)
Runner = Callable[[ReplayPlan, Measure, "Progress | None"], list["BlockStats"]]


def run_blocks(reader: object, plan: ReplayPlan, what: Measure,
               progress: Progress | None = None) -> list[BlockStats]:
    """Every block of `plan`, one after the other in this process, reading `reader`; the
    cancel token checked between blocks, progress ("indicators", blocks done, blocks)."""
    report = progress or (lambda stage, done, total: None)
    out = []
    for b in range(len(plan.blocks)):
        report("indicators", b, len(plan.blocks))
        cancel.check()  # between blocks (technic_v4/cancel.py)
        out.append(measure_block(plan, reader, b, what, progress))
    report("indicators", len(plan.blocks), len(plan.blocks))
    return out


def sector_codes(plan: ReplayPlan) -> tuple[np.ndarray, pd.Index]:
    """Each row's sector as a code into the names (the same for every block)."""
    codes, names = pd.factorize(plan.universe["sector"].astype(str))
    return codes.astype(np.int64), names


def measure_block(plan: ReplayPlan, reader: object, b: int, what: Measure,
                  progress: Progress | None = None) -> BlockStats:
    """Block `b` of `plan` replayed from `reader` and measured (module docstring)."""
    horizons, every = what.horizons, what.every
    rep = replay_block(plan, reader, b, progress)
    valid, passing, rank = rep.valid, rep.passing, rep.rank
    d = rep.history.axes["D"]  # what forward returns read: Close on own bars
    forwards = Forwards(Axis({"Close": d.packed["Close"]}, d.n_bars, d.pos, d.width),
                        rep.columns, valid, plan.delisted)
    del rep, d  # the block's prices and other series: not needed from here
    part = plan.blocks[b].part
    codes, names = sector_codes(plan)
    cancel.check()
    ranked = stats.Ranked.of(rank, plan.cfg.ascending)
    in_universe = passing & valid
    out: dict[int, Horizon] = {}
    step = None
    for h in sorted(set(horizons) | {every}):
        cancel.check()
        fwd = forwards.horizon(h)
        if h == every:
            step = fwd
        if h not in horizons:
            continue
        cancel.check()
        hit, cells = stats.hits(passing, fwd.log_excess)
        out[h] = Horizon(
            stats.passing_excess(passing, fwd.log_excess, valid),
            stats.rank_ics(ranked, fwd.raw),  # the order of log_excess; equal returns tie
            hit, cells,
            stats.passing_excess(in_universe, fwd.raw, valid, fwd.raw_mean),
            int((fwd.truncated & passing).sum()),
            stats.group_means(ranked.bucket, fwd.log_excess, BUCKETS, offset=1),
            stats.group_means(codes[:, None], fwd.log_excess, len(names), passing))
    assert step is not None
    taken = plan.columns[part] + every <= plan.stop  # the step ends inside the data
    picks, gross = stats.portfolio_steps(rank, plan.cfg.ascending, step, what.top,
                                         what.rebalance, taken)
    return BlockStats(b, valid.sum(0), passing.sum(0), out, picks, gross)


@dataclass(frozen=True)
class Merged:
    """The blocks side by side, in session order."""

    universe: np.ndarray
    passing: np.ndarray
    horizons: dict[int, Horizon]
    picks: list[np.ndarray]
    gross: np.ndarray


def merge(parts: list[BlockStats]) -> Merged:
    """`parts` (one per block, in any order) concatenated in the blocks' order."""
    parts = sorted(parts, key=lambda p: p.block)

    def cat(get: object, axis: int = 0) -> np.ndarray:
        return np.concatenate([get(p) for p in parts], axis=axis)  # type: ignore[operator]

    horizons = {h: Horizon(cat(lambda p, h=h: p.horizons[h].mean),
                           cat(lambda p, h=h: p.horizons[h].ic),
                           cat(lambda p, h=h: p.horizons[h].hit),
                           cat(lambda p, h=h: p.horizons[h].cells),
                           cat(lambda p, h=h: p.horizons[h].simple),
                           sum(p.horizons[h].truncated for p in parts),
                           cat(lambda p, h=h: p.horizons[h].deciles, 1),
                           cat(lambda p, h=h: p.horizons[h].sectors, 1))
                for h in parts[0].horizons}
    return Merged(cat(lambda p: p.universe), cat(lambda p: p.passing), horizons,
                  [rows for p in parts for rows in p.picks], cat(lambda p: p.gross))
