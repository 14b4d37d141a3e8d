"""Random session frames for the intraday tests: one-minute bars of a few symbols over a
session's minute grid, with minutes left out (quiet minutes, halts)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic_v4.data.intraday import FRAME_COLUMNS, session_grid


def random_frame(session: str | pd.Timestamp, symbols: list[str], seed: int,
                 present: float = 0.9, halt: tuple[int, int] | None = None,
                 hours: str = "regular") -> pd.DataFrame:
    """Bars of `symbols` on `session`'s grid: each minute present with probability
    `present`; minutes [halt[0], halt[1]) of the grid absent for the first symbol."""
    rng = np.random.default_rng(seed)
    grid = session_grid(pd.Timestamp(session), hours=hours)  # type: ignore[arg-type]
    parts = []
    for k, sym in enumerate(symbols):
        keep = rng.random(len(grid)) < present
        if halt is not None and k == 0:
            keep[halt[0]:halt[1]] = False
        m = int(keep.sum())
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, m)))
        open_ = close * np.exp(rng.normal(0, 0.001, m))
        high = np.maximum(open_, close) * (1 + rng.random(m) * 0.002)
        low = np.minimum(open_, close) * (1 - rng.random(m) * 0.002)
        volume = np.floor(rng.random(m) * 5_000)
        parts.append(pd.DataFrame({"ts": grid[keep], "symbol": sym, "open": open_,
                                   "high": high, "low": low, "close": close,
                                   "volume": volume}))
    out = pd.concat(parts, ignore_index=True).sort_values(["ts", "symbol"], kind="stable")
    return out.loc[:, list(FRAME_COLUMNS)].reset_index(drop=True)
