"""Peers the benchmarks race against: the same indicators computed the usual slow ways."""

from __future__ import annotations

import numpy as np
import talib

from technic_v4.data.panel import Panel


def talib_loop(panel: Panel) -> dict[str, np.ndarray]:
    """TA-Lib called per symbol (on that symbol's own bars), last-bar values collected.

    The same outputs the scan reads: RSI, MACD x3, BBANDS, ATR, volume SMA, 4 momenta,
    3 SMAs, 20-bar high/low.
    """
    n = panel.n_symbols
    names = ["RSI", "MACD", "MACD_signal", "MACD_hist", "BB_width", "ATR_pct", "Volume_ratio",
             "mom_5", "mom_21", "mom_63", "mom_126", "SMA20", "SMA50", "SMA200", "high_20",
             "low_20"]
    out = {k: np.full(n, np.nan) for k in names}
    for i in range(n):
        ok = np.isfinite(panel.close[i])
        if not ok.any():
            continue
        c, h, lo, v = panel.close[i][ok], panel.high[i][ok], panel.low[i][ok], panel.volume[i][ok]
        out["RSI"][i] = talib.RSI(c, 14)[-1]
        m, s, hist = talib.MACD(c, 12, 26, 9)
        out["MACD"][i], out["MACD_signal"][i], out["MACD_hist"][i] = m[-1], s[-1], hist[-1]
        up, mid, low = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        out["BB_width"][i] = (up[-1] - low[-1]) / mid[-1]
        out["ATR_pct"][i] = talib.ATR(h, lo, c, 14)[-1] / c[-1]
        out["Volume_ratio"][i] = v[-1] / talib.SMA(v, 20)[-1]
        for k in (5, 21, 63, 126):
            out[f"mom_{k}"][i] = talib.ROCR(c, k)[-1] - 1.0
        for k in (20, 50, 200):
            out[f"SMA{k}"][i] = talib.SMA(c, k)[-1]
        out["high_20"][i] = talib.MAX(h, 20)[-1]
        out["low_20"][i] = talib.MIN(lo, 20)[-1]
    return out
