"""The Panel: every symbol's daily bars as 2-D float arrays on its exchange's session axis.

A Panel loaded from a store carries the store's calendar name in `meta["calendar"]` (and the
calendar sessions its axis lacks in `meta["missing_sessions"]`, the holidays the market traded
that it holds in `meta["extra_sessions"]`, the sessions nothing traded on that it leaves out
in `meta["closures"]`); one built from arrays is on XNYS unless its meta says otherwise.

Array convention (stated once, here, and used by every kernel):
    shape (N symbols, T sessions), float64, C-contiguous, oldest session first.
    NaN where a symbol has no bar (before listing, after delisting, missing days).
A bar is present when its close is finite; ingest guarantees the other fields are then finite too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

Array1D = npt.NDArray[np.float64]
Array2D = npt.NDArray[np.float64]  # (N symbols, T sessions)
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FIELDS = ("open", "high", "low", "close", "volume")
UNIVERSE_COLUMNS = ("symbol", "name", "sector", "industry")
# Optional: the index lists a symbol is in, ids joined by "," ("sp500,dow"; "" for none),
# written by `technic data universe` / ingest of a universe file with an Indexes column
MEMBERSHIPS = "indexes"


def universe_columns(universe: pd.DataFrame) -> list[str]:
    """The universe columns a store keeps of `universe`: UNIVERSE_COLUMNS, then MEMBERSHIPS
    when it has them."""
    return [*UNIVERSE_COLUMNS, *([MEMBERSHIPS] if MEMBERSHIPS in universe.columns else [])]


def memberships(universe: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Each row's index memberships ("sp500,dow"), "" for none or a store without them."""
    if MEMBERSHIPS not in universe.columns:
        return np.full(len(universe), "", dtype=object)
    return universe[MEMBERSHIPS].fillna("").astype(str).to_numpy(dtype=object)


@dataclass(frozen=True)
class Panel:
    """N symbols x T sessions of OHLCV plus the universe table, aligned row for row."""

    symbols: npt.NDArray[np.object_]
    sessions: pd.DatetimeIndex
    open: Array2D
    high: Array2D
    low: Array2D
    close: Array2D
    volume: Array2D
    universe: pd.DataFrame  # columns UNIVERSE_COLUMNS [+ MEMBERSHIPS], row i: symbols[i]
    data_version: str = "unversioned"
    source: str = "unknown"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, t = len(self.symbols), len(self.sessions)
        for name in FIELDS:
            arr = getattr(self, name)
            if arr.shape != (n, t):
                raise ValueError(f"Panel.{name} has shape {arr.shape}, expected ({n}, {t})")
        if len(self.universe) != n:
            raise ValueError(f"universe has {len(self.universe)} rows for {n} symbols")

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_sessions(self) -> int:
        return len(self.sessions)

    def bar_counts(self) -> IntArray:
        """Bars each symbol has in the panel window."""
        return np.isfinite(self.close).sum(axis=1)

    def last_bar_index(self) -> IntArray:
        """Session index of each symbol's last bar, -1 when it has none."""
        present = np.isfinite(self.close)
        idx = self.n_sessions - 1 - np.argmax(present[:, ::-1], axis=1)
        return np.where(present.any(axis=1), idx, -1)

    def take(self, rows: IntArray | BoolArray) -> Panel:
        """The sub-panel of the given symbol rows (indices or mask), same sessions."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        arrays: dict[str, Any] = {f: np.ascontiguousarray(getattr(self, f)[idx])
                                  for f in FIELDS}
        return replace(
            self,
            symbols=self.symbols[idx],
            universe=self.universe.iloc[idx].reset_index(drop=True),
            **arrays,
        )

    def select(self, rows: IntArray) -> Panel:
        """`take(rows)`, but as views when the rows are one consecutive run (the usual chunk of
        a universe): copying 1,250 x 200 x 5 floats costs ~5 ms, a view nothing. Read-only use."""
        rows = np.asarray(rows)
        n = len(rows)
        if n == 0 or rows[-1] - rows[0] + 1 != n or not bool((np.diff(rows) == 1).all()):
            return self.take(rows)
        if n == self.n_symbols:
            return self
        sl = slice(int(rows[0]), int(rows[-1]) + 1)
        views: dict[str, Any] = {f: getattr(self, f)[sl] for f in FIELDS}
        return replace(self, symbols=self.symbols[sl],
                       universe=self.universe.iloc[sl].reset_index(drop=True), **views)

    def window(self, end: int, bars: int) -> Panel:
        """The last `bars` sessions ending at session index `end` (inclusive)."""
        start = max(0, end + 1 - bars)
        arrays: dict[str, Any] = {f: np.ascontiguousarray(getattr(self, f)[:, start : end + 1])
                                  for f in FIELDS}
        return replace(self, sessions=self.sessions[start : end + 1], **arrays)


def panel_from_arrays(
    symbols: list[str] | npt.NDArray[np.object_],
    sessions: pd.DatetimeIndex,
    *,
    close: Array2D,
    open: Array2D | None = None,
    high: Array2D | None = None,
    low: Array2D | None = None,
    volume: Array2D | None = None,
    universe: pd.DataFrame | None = None,
    source: str = "arrays",
) -> Panel:
    """Build a Panel straight from arrays (tests, notebooks): missing fields default from close."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    sym = np.asarray(symbols, dtype=object)
    if universe is None:
        universe = pd.DataFrame(
            {"symbol": sym, "name": sym, "sector": "Unknown", "industry": "Unknown"}
        )

    def _f(a: Array2D | None, default: Array2D) -> Array2D:
        return np.ascontiguousarray(default if a is None else a, dtype=np.float64)

    vol_default = np.where(np.isfinite(close), 1.0e6, np.nan)
    return Panel(
        symbols=sym,
        sessions=pd.DatetimeIndex(sessions, name="session"),
        open=_f(open, close),
        high=_f(high, close),
        low=_f(low, close),
        close=close,
        volume=_f(volume, vol_default),
        universe=universe.reset_index(drop=True),
        source=source,
    )
