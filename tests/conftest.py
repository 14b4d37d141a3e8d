"""Shared fixtures. Tests build Panels in memory: no network, no store on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.panel import Panel, panel_from_arrays

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def real_bars() -> Panel:
    """Real daily OHLCV (AAPL, FB, GOOG, IBM, MSFT, 2000-2013; see fixtures/PROVENANCE.md)
    on the union of their dates, NaN where a ticker has no row (GOOG and FB list later)."""
    df = pd.read_csv(FIXTURES / "stocks.csv.gz", parse_dates=["Date"])
    wide = {
        col.lower(): df.pivot(index="Ticker", columns="Date", values=col).sort_index()
        for col in ("Open", "High", "Low", "Close", "Volume")
    }
    arrays = {name: frame.to_numpy(dtype=np.float64) for name, frame in wide.items()}
    return panel_from_arrays(
        wide["close"].index.to_list(),
        pd.DatetimeIndex(wide["close"].columns),
        source="quandl-wiki-fixture",
        **arrays,
    )
