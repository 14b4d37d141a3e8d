"""Select: the one place a screen picks and orders rows, at one session or at many at once.

Walk-through of `select(cfg, exprs, valid, alive, env)`, shared by a scan (run.py `execute`),
many screens at one session (many.py `execute_many`: watches) and a replay over past sessions
(technic_v4/validate/replay.py); the masks have one shape, (N,) at one session or (N, D) at D
sessions:
  1. checks -> masks: the caller's `screen` / `screen_masks` (screen.py) over its facts give
     `valid` (the data checks passed: the day's universe) and `alive` (every check passed).
  2. where: the compiled `where` over `env(valid, "where")`, so cross-sectional functions rank
     within the universe; `passing = alive & where`.
  3. rank: the compiled `rank` over `env(passing, "rank")` (cross-sectional functions rank
     within the rows kept), else `sort(passing)`, the sort_by column; NaN outside `passing`.
  4. top-N: `Selected.order` orders the passing rows of one session by that rank (stable, NaN
     last either way: `rank_order`), cut to max_symbols when asked.
Evaluated at one session it is a scan; at every session a validation; at the newest session
for many configs a watch run. What differs between them is only where the Env reads its
values from (a measured frame, or a replay's history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from technic_v4.alpha.inference import alpha_score
from technic_v4.scan.expressions import Expressions
from technic_v4.screens import CompiledScreen, Env

EnvOf = Callable[[np.ndarray, str], Env]  # (universe mask, "where" | "rank") -> its Env
SortOf = Callable[[np.ndarray], np.ndarray]  # passing mask -> the sort_by column's values


@dataclass(frozen=True)
class Selected:
    """A screen's verdict: masks and rank values of one shape, (N,) or (N, D)."""

    valid: np.ndarray    # the universe: data checks passed
    passing: np.ndarray  # every check and the where expression passed
    rank: np.ndarray     # the rank expression's (or sort_by's) value where passing, else NaN

    @property
    def rows(self) -> np.ndarray:
        """Positions of the passing rows (one session), ascending."""
        return np.flatnonzero(self.passing)

    def order(self, ascending: bool, limit: int | None = None) -> np.ndarray:
        """The passing rows of one session in rank order, as indices into `rows`; with
        `limit`, the first `limit` of them."""
        return rank_order(self.rank[self.passing], ascending, limit)


def select(exprs: Expressions, valid: np.ndarray, alive: np.ndarray, env: EnvOf,
           sort: SortOf, where: Callable[[CompiledScreen, np.ndarray], np.ndarray] | None = None
           ) -> Selected:
    """Steps 2-3 of the module docstring over the masks of step 1. `where(screen, valid)`
    evaluates the where expression when the caller shares its results between screens
    (execute_many); default: the expression over `env(valid, "where")`."""
    passing = alive
    if exprs.where is not None:
        hit = (where(exprs.where, valid) if where is not None
               else at_sessions(exprs.where, env(valid, "where"), alive.shape))
        passing = alive & hit
    if exprs.rank is not None:
        rank = at_sessions(exprs.rank, env(passing, "rank"), passing.shape)
    else:
        rank = sort(passing)
    rank = np.where(passing, np.asarray(rank, dtype=float), np.nan)
    return Selected(valid, passing, rank)


def at_sessions(screen: CompiledScreen, env: Env, shape: tuple[int, ...] = ()) -> np.ndarray:
    """`screen`'s values at the Env's sessions: the last column at one session (shape (N,)),
    all D columns at D sessions (shape (N, D))."""
    if len(shape) == 2:
        return screen.evaluate(env, shape[1])
    return screen.evaluate(env, 1)[:, -1]


def with_alpha_score(alpha: dict[str, np.ndarray], passing: np.ndarray, available: bool
                     ) -> dict[str, np.ndarray]:
    """The forecasts `alpha` ({Alpha5d, Alpha10d}: (N,)) and AlphaScore over the `passing`
    rows (relative to them, so it is the rank's, not the where's), NaN elsewhere."""
    score = np.full(len(passing), np.nan)
    if available:
        rows = np.flatnonzero(passing)
        score[rows] = alpha_score(alpha["Alpha5d"][rows], alpha["Alpha10d"][rows])
    return {**alpha, "AlphaScore": score}


def rank_order(values: np.ndarray, ascending: bool, limit: int | None = None) -> np.ndarray:
    """Row order by `values` (stable: ties keep their order), NaN last either way; with
    `limit`, only the first `limit` of that order (the rows up to the limit-th value,
    ties included, sorted: the same rows in the same order, without sorting them all)."""
    keyed = np.where(np.isnan(values), np.inf, values if ascending else -values)
    if limit is not None and 0 < limit < len(keyed) // 4:
        cut = np.partition(keyed, limit - 1)[limit - 1]
        head = np.flatnonzero(keyed <= cut)  # ascending positions: stable among ties
        return head[np.argsort(keyed[head], kind="stable")][:limit]
    order = np.argsort(keyed, kind="stable")
    return order if limit is None else order[:max(limit, 0)]
