"""Small in-memory panels shared by the engine tests (no store, no network)."""

import numpy as np
import pandas as pd

from technic_v4.data.calendar import sessions_between
from technic_v4.data.panel import panel_from_arrays
from technic_v4.data.universe import GICS_SECTORS

N_PER_SECTOR = 6


def small_panel(seed=1):
    sessions = sessions_between("2023-01-03", "2024-06-28")
    sectors = np.repeat(GICS_SECTORS, N_PER_SECTOR)
    n, t = len(sectors), len(sessions)
    rng = np.random.default_rng(seed)
    close = np.exp(
        np.log(rng.uniform(5, 300, (n, 1))) + np.cumsum(rng.normal(0.0003, 0.02, (n, t)), axis=1)
    ).round(2)
    symbols = [f"S{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(n)]
    close[0, :-30] = np.nan  # SAA: listed 30 sessions ago -> too few bars
    close[1, -10:] = np.nan  # SAB: last bar 10 sessions ago -> stale
    close[2, -200:-195] = np.nan  # SAC: a few missing days, still scanned
    close[3, :-120] = np.nan  # SAD: 120 bars: kept, SMA200 and mom_126 incomplete
    close[4, :] = np.nan  # SAE: no bars at all
    close[5] = 0.5 * close[5] / close[5, -1]  # SAF: a $0.50 stock
    high = close * (1 + rng.uniform(0, 0.03, (n, t)))
    low = close * (1 - rng.uniform(0, 0.03, (n, t)))
    openp = np.clip(close * (1 + rng.normal(0, 0.01, (n, t))), low, high)
    volume = np.where(np.isfinite(close), rng.integers(10_000, 5_000_000, (n, t)), np.nan)
    universe = pd.DataFrame(
        {
            "symbol": symbols,
            "name": [f"{s} Corp" for s in symbols],
            "sector": sectors,
            "industry": [f"{sec} Ind{i % 2}" for i, sec in enumerate(sectors)],
        }
    )
    return panel_from_arrays(
        symbols,
        sessions,
        close=close,
        open=openp,
        high=high,
        low=low,
        volume=volume.astype(float),
        universe=universe,
        source="synthetic",
    )
