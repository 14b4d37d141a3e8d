"""One-minute bars for the demo market's newest sessions, consistent with its daily bars.

Built on demand (`technic data intraday demo [--sessions N]`), never by a plain scan. For each
session and every symbol with a daily bar (open O, high H, low L, close C, volume V), on the
session's regular-hours minute grid of M minutes (390; 210 on an early close):
 1. Minute closes follow a Brownian bridge from O to C (its scale a fifth of the day's range),
    clipped into [L, H] and rounded like the daily prices (cents; $0.0001 below $1); the last
    minute closes at C. A minute opens at the previous minute's close, the first at O.
 2. Each minute's high and low extend the body by a small wick, clipped into [L, H]; the
    minute of the highest close gets the high H and the minute of the lowest close the low L.
 3. Volume: V split over the minutes by a U-shaped time-of-day profile with log-normal noise,
    in whole shares, the remainder on the last minute, so the minutes sum to V exactly.
 4. A minute with no volume has no bar (thin names trade in some minutes only), except the
    first, the last and the high and low minutes, which carry the daily bar's extremes.
So the daily resample of the minutes (resample.daily_bars) equals the daily bar exactly, for
every symbol and session. Everything is drawn from one generator seeded by the session date,
so the same daily store gives the same minute bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from technic_v4.data.intraday import FRAME_COLUMNS, IntradayError, session_grid, write_session
from technic_v4.data.panel import Panel
from technic_v4.data.store_fs import DataDir

DEFAULT_SESSIONS = 3
MAX_SESSIONS = 60


def demo_minutes(panel: Panel, session: int, seed: int = 23) -> pd.DataFrame:
    """The session frame of session index `session` of `panel` (module docstring)."""
    day = panel.sessions[session]
    grid = session_grid(day, str(panel.meta.get("calendar", "XNYS")))
    m = len(grid)
    rows = np.flatnonzero(np.isfinite(panel.close[:, session]))
    o, h, lo, c, v = (getattr(panel, f)[rows, session][:, None]
                      for f in ("open", "high", "low", "close", "volume"))
    n = len(rows)
    rng = np.random.default_rng([seed, day.toordinal()])
    steps = rng.standard_normal((n, m))
    walk = np.cumsum(steps, axis=1)
    frac = np.arange(1, m + 1) / m
    bridge = (walk - frac * walk[:, -1:]) / np.sqrt(m) * ((h - lo) / 5)
    decimals = np.where(c < 1, 4, 2)
    close = _round(np.clip(o + (c - o) * frac + bridge, lo, h), decimals)
    close = np.clip(close, lo, h)
    close[:, -1] = c[:, 0]
    open_ = np.concatenate([o, close[:, :-1]], axis=1)
    wick = (h - lo) * 0.05
    high = np.minimum(_round(np.maximum(open_, close) + wick * rng.random((n, m)), decimals), h)
    low = np.maximum(_round(np.minimum(open_, close) - wick * rng.random((n, m)), decimals), lo)
    high, low = np.maximum(high, np.maximum(open_, close)), np.minimum(low, np.minimum(open_,
                                                                                      close))
    top, bottom = close.argmax(axis=1), close.argmin(axis=1)
    every = np.arange(n)
    high[every, top] = h[:, 0]
    low[every, bottom] = lo[:, 0]
    profile = 1 + 2.5 * (np.linspace(-1, 1, m) ** 2)
    weight = profile * np.exp(0.5 * rng.standard_normal((n, m)))
    volume = np.floor(v * weight / weight.sum(axis=1, keepdims=True))
    volume[:, -1] += v[:, 0] - volume.sum(axis=1)
    keep = volume > 0
    keep[:, [0, -1]] = True
    keep[every, top] = keep[every, bottom] = True
    sym, col = np.nonzero(keep.T)[1], np.nonzero(keep.T)[0]  # time-major: (minute, row)
    return pd.DataFrame({
        "ts": grid[col], "symbol": pd.Categorical.from_codes(sym, categories=pd.Index(
            panel.symbols[rows], dtype=object)),
        "open": open_[sym, col], "high": high[sym, col], "low": low[sym, col],
        "close": close[sym, col], "volume": volume[sym, col]}).loc[:, list(FRAME_COLUMNS)]


def _round(x: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    return np.where(decimals == 4, np.round(x, 4), np.round(x, 2))


def build_demo_intraday(data_dir: DataDir, sessions: int = DEFAULT_SESSIONS) -> list[str]:
    """Write minute bars for the demo store's newest `sessions` sessions; returns them
    (YYYY-MM-DD). IntradayError when the store is not the synthetic demo market (minute bars
    made up for real data would pass for real)."""
    from technic_v4.data.store import load_panel, read_manifest

    if not 1 <= sessions <= MAX_SESSIONS:
        raise IntradayError(f"--sessions must be between 1 and {MAX_SESSIONS}, got {sessions}")
    manifest = read_manifest(data_dir)
    if manifest.source != "synthetic":
        raise IntradayError(f"the store holds {manifest.source!r} data, not the synthetic demo "
                            "market: demo minute bars are made only for the demo market")
    panel = load_panel(data_dir, bars=sessions, manifest=manifest)
    done = []
    for k in range(panel.n_sessions):
        write_session(data_dir, panel.sessions[k], demo_minutes(panel, k), manifest.calendar)
        done.append(str(panel.sessions[k].date()))
    return done
