"""Peers the benchmarks race against: the same indicators computed the usual slow way."""

from __future__ import annotations

import numpy as np
import talib

from technic_v4.data.panel import Panel


def talib_loop(panel: Panel) -> dict[str, np.ndarray]:
    """The 23 outputs at each symbol's last bar, TA-Lib called once per symbol per function."""
    out: dict[str, np.ndarray] = {}

    def put(name: str, i: int, values: np.ndarray) -> None:
        out.setdefault(name, np.full(panel.n_symbols, np.nan))[i] = values[-1]

    for i in range(panel.n_symbols):
        bar = np.isfinite(panel.close[i])
        if not bar.any():
            continue
        c, h, lo, v = (a[i, bar] for a in (panel.close, panel.high, panel.low, panel.volume))
        put("RSI", i, talib.RSI(c, 14))
        macd = talib.MACD(c, 12, 26, 9)
        for name, values in zip(("MACD", "MACD_signal", "MACD_hist"), macd, strict=True):
            put(name, i, values)
        up, mid, low = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        for name, values in (("BB_upper", up), ("BB_middle", mid), ("BB_lower", low)):
            put(name, i, values)
        put("BB_width", i, (up[-1:] - low[-1:]) / mid[-1:])
        atr = talib.ATR(h, lo, c, 14)
        put("ATR", i, atr)
        put("ATR_pct", i, atr[-1:] / c[-1:])
        vol = talib.SMA(v, 20)
        put("Volume_SMA20", i, vol)
        put("Volume_ratio", i, v[-1:] / vol[-1:])
        for n in (5, 21, 63, 126):
            put(f"mom_{n}", i, talib.ROCR(c, n)[-1:] - 1.0)
        for n in (20, 50, 200):
            put(f"SMA{n}", i, talib.SMA(c, n))
        hi20, lo20 = talib.MAX(h, 20), talib.MIN(lo, 20)
        put("high_20", i, hi20)
        put("low_20", i, lo20)
        put("dist_high_20", i, c[-1:] / hi20[-1:] - 1.0)
        put("dist_low_20", i, c[-1:] / lo20[-1:] - 1.0)
    return out
