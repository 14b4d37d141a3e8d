"""`BarBatch`: one-minute bars of many symbols that share one start time.

Sources (a provider's stream, a REST backfill, a replay) group what they receive by bar start;
consumers fold a batch into their state in one vectorized step. A batch marked `correction`
replaces bars already delivered for that start (a provider's updated or late bar).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BarBatch:
    """Bars of `symbols` for the minute starting at `start` (UTC); arrays are aligned by row."""

    start: pd.Timestamp
    symbols: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    correction: bool = False
    trades: np.ndarray | None = field(default=None)
    vwap: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        start = pd.Timestamp(self.start)
        if start.tzinfo is None:
            raise ValueError(f"bar start {start} has no time zone; bars are stamped in UTC")
        object.__setattr__(self, "start", start.tz_convert("UTC"))
        symbols = np.asarray(self.symbols, dtype=object)
        object.__setattr__(self, "symbols", symbols)
        n = len(symbols)
        for name in FIELDS + ("trades", "vwap"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}; expected ({n},) like symbols")
            object.__setattr__(self, name, arr)
        if len(set(symbols.tolist())) != n:
            raise ValueError("a batch holds at most one bar per symbol")

    def __len__(self) -> int:
        return len(self.symbols)
