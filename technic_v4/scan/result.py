"""The scan's answer: the ranked result table and a status in which every symbol is counted.

`finish_scan` orders the rows that passed (as select.py ranked them), cuts to `max_symbols`
(the rest become "beyond max_symbols" rejections) and builds `ScanStatus`, asserting
attempted = kept + rejected + errors: a symbol can never silently disappear.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from technic_v4 import scoring
from technic_v4.data.quality import QUALITY_VERSION
from technic_v4.indicators import INDICATORS_VERSION
from technic_v4.scan.columns import EXTRA_COLUMNS, RESULT_COLUMNS
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import Block
from technic_v4.scan.expressions import compile_expressions
from technic_v4.scan.plan import ScanPlan
from technic_v4.scan.screen import concat_rejections
from technic_v4.scan.select import rank_order

__all__ = ["RANK_COLUMN", "STAGES", "ScanStatus", "finish_scan", "rank_order", "shown_columns"]

STAGES = ("load", "indicators", "score", "alpha", "rank")  # progress and timings, in order
RANK_COLUMN = "RankValue"  # the rank expression's value, a result column when `rank` is set


@dataclass
class ScanStatus:
    """How the scan went: counts that add up (attempted = kept + rejected + errors) and why."""

    attempted: int = 0
    kept: int = 0
    rejected: int = 0
    errors: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rejections: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["Symbol", "reason", "detail"]))
    error_details: list[dict[str, str]] = field(default_factory=list)
    source: str = ""
    data_version: str = ""
    as_of: str = ""
    window_bars: int = 0
    scoring_version: str = scoring.SCORING_VERSION
    indicators_version: str = INDICATORS_VERSION
    quality_version: str = QUALITY_VERSION
    quality_flagged: int = 0                # kept rows that carry a quality flag
    alpha: dict[str, object] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    screen: dict[str, object] | None = None  # the saved screen / preset run: name, version
    regime_tags: dict[str, object] = field(default_factory=dict)  # regimes.py, at as_of

    def summary(self) -> dict:
        """Every field but the rejections table, as plain data (the JSON meta)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name != "rejections"}


def shown_columns(cfg: ScanConfig) -> list[str]:
    """The result's columns (columns.py): the contract's or Symbol + the chosen `columns`,
    then every column the where / rank read, then RankValue when ranked by an expression."""
    base = RESULT_COLUMNS + EXTRA_COLUMNS if cfg.columns is None else ["Symbol", *cfg.columns]
    read = compile_expressions(cfg.where, cfg.rank).columns_read()
    return list(dict.fromkeys([*base, *read, *([RANK_COLUMN] if cfg.rank else [])]))


def finish_scan(cfg: ScanConfig, plan: ScanPlan, block: Block, frame: pd.DataFrame,
                order: np.ndarray, rejections: Sequence[pd.DataFrame], alpha_state: dict
                ) -> tuple[pd.DataFrame, ScanStatus]:
    """The passing rows `frame` in `order` (select.py: by the rank expression, else sort_by),
    cut to max_symbols; count every symbol exactly once."""
    parts = [*plan.rejections, *rejections]
    if cfg.max_symbols is not None and len(order) > cfg.max_symbols:
        beyond = frame["Symbol"].to_numpy()[order[cfg.max_symbols:]]
        parts.append(pd.DataFrame({"Symbol": beyond, "reason": "beyond max_symbols",
                                   "detail": f"ranked past the top {cfg.max_symbols} "
                                             f"by {cfg.rank or cfg.sort_by}"}))
        order = order[: cfg.max_symbols]
    shown = shown_columns(cfg)
    columns = [frame.columns.get_loc(c) for c in shown]
    flagged = int((frame["quality_flags"].iloc[order].fillna("") != "").sum())
    frame = frame.iloc[order, columns].reset_index(drop=True)
    frame.attrs.update(source=block.source, data_version=block.data_version, as_of=block.as_of,
                       scoring_version=scoring.SCORING_VERSION,
                       indicators_version=INDICATORS_VERSION, quality_version=QUALITY_VERSION)
    rejected = concat_rejections(parts)
    counts = rejected["reason"].value_counts()
    status = ScanStatus(
        attempted=plan.attempted, kept=len(frame), rejected=len(rejected),
        errors=len(plan.errors), rejected_by_reason={str(k): int(v) for k, v in counts.items()},
        rejections=rejected, error_details=plan.errors, source=block.source,
        data_version=block.data_version, as_of=block.as_of, window_bars=block.window_bars,
        alpha=alpha_state, quality_flagged=flagged,
    )
    if status.attempted != status.kept + status.rejected + status.errors:
        raise AssertionError(f"scan lost symbols: {status.summary()}")
    return frame, status
