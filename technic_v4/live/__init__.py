"""Intraday and live: one-minute bars arriving as batches, folded into each timeframe's state.

`bars` holds the unit every source yields (a live stream, a REST backfill, a replay of a stored
session) and every consumer reads (the incremental indicator state, the bar store).
"""

from technic_v4.live.bars import BarBatch

__all__ = ["BarBatch"]
