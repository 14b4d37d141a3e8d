"""One symbol's chart: its bars and every indicator's history over the last `days` sessions.

The indicators are computed over `days` plus HISTORY_WARMUP extra sessions, so EMA-type values
(RSI, MACD, ATR) have converged by the first session shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from technic_v4.errors import UnknownSymbolError
from technic_v4.indicators import compute_indicators, required_bars

HISTORY_MAX_DAYS = 1260   # bound of `days` for a symbol's chart history (5 years)
HISTORY_WARMUP = 250      # extra bars so EMA-type indicators have converged (registry doc)
HISTORY_BARS = HISTORY_MAX_DAYS + HISTORY_WARMUP


def symbol_history(reader: Any, symbol: str, days: int) -> dict[str, Any]:
    """Bars and every indicator's history for `symbol` (already validated) from `reader`'s
    latest window of HISTORY_BARS sessions; UnknownSymbolError when it is not in the store."""
    panel = reader.load(None, HISTORY_BARS)
    row = reader.rows(panel, [symbol])[0]
    if row < 0:
        raise UnknownSymbolError(f"unknown symbol {symbol!r}: not in the universe "
                                 f"(data_version {panel.data_version})")
    one = panel.take(np.array([row]))
    one = one.window(one.n_sessions - 1, days + max(HISTORY_WARMUP, required_bars()))
    table = compute_indicators(one, history=True)
    assert table.history is not None
    cut = slice(max(0, one.n_sessions - days), None)
    info = one.universe.iloc[0]
    return {
        "symbol": symbol, "name": str(info["name"]), "sector": str(info["sector"]),
        "industry": str(info["industry"]),
        "sessions": [str(s.date()) for s in one.sessions[cut]],
        "bars": {f: getattr(one, f)[0, cut].tolist()
                 for f in ("open", "high", "low", "close", "volume")},
        "indicators": {name: table.history[name][0, cut].tolist() for name in table.outputs},
        "data_version": panel.data_version, "source": panel.source,
        "as_of": str(panel.sessions[-1].date()),
    }
