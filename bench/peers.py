"""Peers the benchmarks race against: the same indicators computed the usual slow way."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import talib

from technic_v4.data.panel import Panel

Bars = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # row, close, high, low, volume
Put = Callable[[str, int, np.ndarray], None]


def _symbols(panel: Panel) -> tuple[dict[str, np.ndarray], Put, Iterator[Bars]]:
    """(outputs, put(name, row, values): the last value into outputs, each symbol's own bars)."""
    out: dict[str, np.ndarray] = {}

    def put(name: str, i: int, values: np.ndarray) -> None:
        out.setdefault(name, np.full(panel.n_symbols, np.nan))[i] = values[-1]

    def rows() -> Iterator[Bars]:
        for i in range(panel.n_symbols):
            bar = np.isfinite(panel.close[i])
            if bar.any():
                yield i, *(a[i, bar] for a in (panel.close, panel.high, panel.low,
                                               panel.volume))

    return out, put, rows()


def talib_loop(panel: Panel) -> dict[str, np.ndarray]:
    """The 23 outputs at each symbol's last bar, TA-Lib called once per symbol per function."""
    out, put, rows = _symbols(panel)
    for i, c, h, lo, v in rows:
        put("RSI", i, talib.RSI(c, 14))
        macd = talib.MACD(c, 12, 26, 9)
        for name, values in zip(("MACD", "MACD_signal", "MACD_hist"), macd, strict=True):
            put(name, i, values)
        up, mid, low = talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA)
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


def talib_seed_loop(panel: Panel) -> dict[str, np.ndarray]:
    """The seed's columns at each symbol's last bar, TA-Lib called once per symbol per
    function, as the scanner technic replaces computed them: RSI, MACD, BBANDS, ATR,
    SMA 20/50/200, the volume SMA and ROC 21/63/126."""
    out, put, rows = _symbols(panel)
    for i, c, h, lo, v in rows:
        put("RSI", i, talib.RSI(c, 14))
        for name, values in zip(("MACD", "MACD_signal", "MACD_hist"), talib.MACD(c, 12, 26, 9),
                                strict=True):
            put(name, i, values)
        for name, values in zip(("BB_upper", "BB_middle", "BB_lower"),
                                talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA), strict=True):
            put(name, i, values)
        put("ATR", i, talib.ATR(h, lo, c, 14))
        for n in (20, 50, 200):
            put(f"SMA{n}", i, talib.SMA(c, n))
        put("Volume_SMA20", i, talib.SMA(v, 20))
        for n in (21, 63, 126):
            put(f"ROC{n}", i, talib.ROC(c, n))
    return out
