"""Intraday and live: one-minute bars arriving as batches, folded into each timeframe's state.

`bars` holds the unit every source yields (a live stream, a REST backfill, a replay of a stored
session) and every consumer reads (the incremental indicator state, the bar store).
`aggregate` folds minute batches into each timeframe's closed bars; `state` steps every
timeframe's indicators over them in O(1) per symbol (the numba steps in `steps`); `env` lets
a compiled screen read the live state.
"""

from technic_v4.live.aggregate import (
    TIMEFRAMES,
    Aggregator,
    ClosedBars,
    session_bounds,
    session_number,
)
from technic_v4.live.bars import BarBatch
from technic_v4.live.env import LiveEnv
from technic_v4.live.state import LiveState, TimeframeState

__all__ = ["TIMEFRAMES", "Aggregator", "BarBatch", "ClosedBars", "LiveEnv", "LiveState",
           "TimeframeState", "session_bounds", "session_number"]
