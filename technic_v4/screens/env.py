"""What a compiled screen reads from: the `Env` protocol, and `ArrayEnv`, a plain implementation.

The scan engine implements `Env` over its store; `ArrayEnv` (tests, benchmarks, notebooks)
holds whole packed arrays and answers by slicing.

Layout. Every number series comes on the symbol's OWN bar axis, right-aligned: `number(name,
width)` is (N, width) float64 whose last column is each symbol's bar at the evaluation session
and whose column j is the bar width-1-j before it; NaN before a symbol's first bar. Lags and
rolling windows count these bars. The weekly axis (`timeframe="W"`) is the same for weekly bars.

Cross-sectional functions (pct_rank, sector_rank, industry_rank) rank each output column
across rows, so the engine must give column j the same session for every row it ranks (true
when rows are session-aligned, as the scan's Panel rows are).

Weekly bars, the no-look-ahead contract: the weekly bar in effect at a daily bar is the latest
week that CLOSED at or before it (a week closes on its last session). A week still in progress
is not a bar yet; otherwise the value at a past day would depend on the days after it in that
week. `weeks_spanned(width)` is how many weekly bars are in effect over the last `width` daily
bars (1 for width 1); `align_weekly(values, width)` takes those (N, weeks) weekly values, right-
aligned, and returns (N, width) daily values: at each day, the value of the week in effect
(NaN where no week has closed yet).

Text columns (Sector, Industry, ...) have one value per row, the current one, used for every
bar of a multi-bar evaluation; a missing value is None or NaN. `groups(name)` codes a grouping
as int64 per row (-1 = none) for sector_rank / industry_rank. `universe` marks the rows that
count in cross-sectional ranks; the others get NaN there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from technic_v4.screens.nodes import BAR_MINUTES


@runtime_checkable
class Env(Protocol):
    n_rows: int
    universe: np.ndarray  # (N,) bool

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        """(N, width) float64, right-aligned on each symbol's own bars ("D" or "W")."""
        ...

    def text(self, name: str) -> np.ndarray:
        """(N,) object: each row's current value (str; None or NaN when missing)."""
        ...

    def groups(self, name: str) -> np.ndarray:
        """(N,) int64 codes of a grouping ("Sector", "Industry"); -1 for no group."""
        ...

    def weeks_spanned(self, width: int) -> int:
        """How many weekly bars are in effect over the last `width` daily bars."""
        ...

    def align_weekly(self, values: np.ndarray, width: int) -> np.ndarray:
        """(N, weeks_spanned(width)) weekly values -> (N, width) on the daily axis."""
        ...


class ArrayEnv:
    """An Env over whole packed arrays: daily (N, T), weekly (N, Tw) and `week_of` (T,), the
    index of the weekly column in effect at each daily column (-1 before the first closed
    week; non-decreasing). Rows are session-aligned: one column = one session for all rows.
    Evaluation is at the last daily column; `truncate(t)` gives the env as of column t."""

    def __init__(
        self,
        daily: Mapping[str, np.ndarray],
        *,
        text: Mapping[str, np.ndarray] | None = None,
        groups: Mapping[str, np.ndarray] | None = None,
        weekly: Mapping[str, np.ndarray] | None = None,
        week_of: np.ndarray | None = None,
        universe: np.ndarray | None = None,
    ) -> None:
        self.daily = {k: np.asarray(v, dtype=np.float64) for k, v in daily.items()}
        shapes = {v.shape for v in self.daily.values()}
        if len(shapes) != 1:
            raise ValueError(f"daily arrays must share one (N, T) shape, got {shapes}")
        self.n_rows, self.n_bars = shapes.pop()
        self.text_columns = {k: np.asarray(v, dtype=object) for k, v in (text or {}).items()}
        self.group_codes = {k: np.asarray(v, dtype=np.int64) for k, v in (groups or {}).items()}
        self.weekly = {k: np.asarray(v, dtype=np.float64) for k, v in (weekly or {}).items()}
        if week_of is None:
            week_of = np.full(self.n_bars, -1, dtype=np.int64)
        self.week_of = np.asarray(week_of, dtype=np.int64)
        if self.week_of.shape != (self.n_bars,) or np.any(np.diff(self.week_of) < 0):
            raise ValueError("week_of must be (T,) and non-decreasing")
        self.universe = (
            np.ones(self.n_rows, dtype=bool) if universe is None else np.asarray(universe, bool)
        )

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        if timeframe == "W":
            source, last = self.weekly[name], int(self.week_of[-1]) if self.n_bars else -1
        else:
            source, last = self.daily[name], self.n_bars - 1
        return _right(source[:, : last + 1], width)

    def text(self, name: str) -> np.ndarray:
        return self.text_columns[name]

    def groups(self, name: str) -> np.ndarray:
        return self.group_codes.get(name, np.full(self.n_rows, -1, dtype=np.int64))

    def weeks_spanned(self, width: int) -> int:
        weeks = self.week_of[-width:] if width <= self.n_bars else self.week_of
        seen = weeks[weeks >= 0]
        return int(seen[-1] - seen[0] + 1) if seen.size else 1

    def align_weekly(self, values: np.ndarray, width: int) -> np.ndarray:
        out = np.full((values.shape[0], width), np.nan)
        weeks = _right(self.week_of[None, :].astype(np.float64), width)[0]
        if not np.isfinite(weeks).any() or self.week_of[-1] < 0:
            return out
        last = self.week_of[-1]
        col = weeks - last + values.shape[1] - 1  # weekly column of each day in `values`
        ok = np.isfinite(weeks) & (weeks >= 0) & (col >= 0)
        out[:, ok] = values[:, col[ok].astype(np.int64)]
        return out

    def truncate(self, t: int) -> ArrayEnv:
        """The env as of daily column t (0-based): what a scan at that session would see."""
        week = int(self.week_of[t])
        return ArrayEnv(
            {k: v[:, : t + 1] for k, v in self.daily.items()},
            text=self.text_columns,
            groups=self.group_codes,
            weekly={k: v[:, : max(week + 1, 0)] for k, v in self.weekly.items()},
            week_of=self.week_of[: t + 1],
            universe=self.universe,
        )


def _right(source: np.ndarray, width: int) -> np.ndarray:
    """The last `width` columns, NaN-padded on the left when there are fewer."""
    have = source.shape[1]
    if width <= have:
        return source[:, have - width :]
    pad = np.full((source.shape[0], width - have), np.nan)
    return np.concatenate([pad, source], axis=1)


class TimeframesOnBars:
    """How an Env reads a coarser timeframe's values on a finer one's bars, on own bars like
    `WeeklyOnDaily`: at the current bar, the coarser timeframe's last closed bar; a column j
    bars before it, the coarser bar (minutes of a fine bar x j / minutes of a coarse bar)
    back (a regular session has 390 minutes, a week five sessions)."""

    def spanned(self, source: str, target: str, width: int) -> int:
        """How many `source` bars are in effect over the last `width` `target` bars."""
        ratio = max(1, BAR_MINUTES[source] // BAR_MINUTES[target])
        return max(1, (width + ratio - 1) // ratio)

    def align(self, values: np.ndarray, source: str, target: str, width: int) -> np.ndarray:
        """(N, spanned) `source` values -> (N, width) on the `target` axis."""
        ratio = max(1, BAR_MINUTES[source] // BAR_MINUTES[target])
        out = np.full((values.shape[0], width), np.nan)
        for j in range(width):
            k = values.shape[1] - 1 - (width - 1 - j) // ratio
            if k >= 0:
                out[:, j] = values[:, k]
        return out

    def weeks_spanned(self, width: int) -> int:
        return self.spanned("W", "D", width)

    def align_weekly(self, values: np.ndarray, width: int) -> np.ndarray:
        return self.align(values, "W", "D", width)
