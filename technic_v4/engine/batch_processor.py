"""`BatchProcessor().process_batch(symbols_data, config)`: the origin design's batch step,
kept because users' scripts call it with price frames they already hold.

It measures those frames as the scan measures the store: the frames become one Panel
(`panel_from_arrays`, NaN where a symbol has no bar), `compute_indicators` runs the scan's
kernels over it (each symbol on its own bars, as TA-Lib sees them), and `scoring.tech_rating`
/ `scoring.signal` rate the last bar. The values equal a scan's for the same bars (a scan
reads enough history that its recursions equal the full history's: indicators/registry.py).
Forecasts are `technic_v4.engine.alpha_inference`'s; a whole scan is `run_scan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from technic_v4 import scoring
from technic_v4.data.panel import FIELDS, Panel, panel_from_arrays
from technic_v4.data.universe import validate_symbol
from technic_v4.indicators import compute_indicators
from technic_v4.scan import SHOWN_INDICATORS, ScanConfig

OUTPUTS: tuple[str, ...] = tuple(dict.fromkeys(
    [*SHOWN_INDICATORS, *(n for n in scoring.SCORING_INPUTS if n != "Close")]))
ROW_KEYS: tuple[str, ...] = ("Symbol", "Close", "Volume", *SHOWN_INDICATORS, "TechRating",
                             "Signal", "Bars", "LastDate", "Incomplete")


class BatchProcessor:
    """Indicators, TechRating and Signal for per-symbol price frames (module docstring)."""

    def process_batch(self, symbols_data: Mapping[str, pd.DataFrame | None],
                      config: ScanConfig | None = None) -> list[dict[str, Any]]:
        """One dict per symbol, in the order given, keyed ROW_KEYS: each frame's columns
        Open, High, Low, Close, Volume (any case) on a DatetimeIndex; a row without a finite
        Close is no bar. A symbol with too few bars for an indicator gets NaN there and the
        indicator named in `Incomplete`, never a guess; one with no bars (None or an empty
        frame) also gets no TechRating (NaN) and no Signal (None).
        `config`: its scoring rates the rows; its `as_of_date` drops the bars after it."""
        cfg = config or ScanConfig()
        panel = batch_panel(symbols_data, cfg.as_of_date)
        table = compute_indicators(panel, OUTPUTS)
        last = table.last_bar
        has = last >= 0
        close, volume = (_at_last_bar(panel.close, last), _at_last_bar(panel.volume, last))
        rating, subs = scoring.tech_rating({**table.last, "Close": close}, cfg.scoring)
        signal = scoring.signal(rating, subs, cfg.scoring)
        rows = []
        for i, sym in enumerate(panel.symbols):
            row: dict[str, Any] = {"Symbol": sym, "Close": float(close[i]),
                                   "Volume": float(volume[i])}
            row |= {name: float(table.last[name][i]) for name in SHOWN_INDICATORS}
            row |= {"TechRating": float(rating[i]) if has[i] else np.nan,
                    "Signal": str(signal[i]) if has[i] else None,
                    "Bars": int(table.bars[i]),
                    "LastDate": panel.sessions[last[i]] if has[i] else None,
                    "Incomplete": " ".join(n for n in SHOWN_INDICATORS
                                           if table.insufficient[n][i])}
            rows.append(row)
        return rows


def batch_panel(symbols_data: Mapping[str, pd.DataFrame | None],
                as_of: object = None) -> Panel:
    """The frames as one Panel on the union of their dates (up to `as_of`); ValueError naming
    the symbol and the problem for a frame that is not OHLCV on distinct dates."""
    frames: dict[str, pd.DataFrame] = {}
    for key, frame in symbols_data.items():
        sym = validate_symbol(key)
        if sym in frames:
            raise ValueError(f"symbol {sym!r} given twice (symbols are upper-cased)")
        frames[sym] = _ohlcv(sym, frame)
    dates = [f.index for f in frames.values() if len(f)]
    sessions = (dates[0].append(dates[1:]).unique().sort_values() if dates
                else pd.DatetimeIndex([]))
    if as_of is not None:
        sessions = sessions[sessions <= pd.Timestamp(str(as_of))]
    arrays = {f: np.vstack([frames[s][f].reindex(sessions).to_numpy(dtype=np.float64)
                            for s in frames]) if frames else np.empty((0, len(sessions)))
              for f in FIELDS}
    return panel_from_arrays(list(frames), pd.DatetimeIndex(sessions), source="frames",
                             **arrays)


def _at_last_bar(values: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Each row's value at its session `last` (NaN where it is -1: no bar)."""
    out = np.full(len(last), np.nan)
    has = last >= 0
    out[has] = values[np.flatnonzero(has), last[has]]
    return out


def _ohlcv(sym: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """`frame`'s bars as lower-case OHLCV columns on a DatetimeIndex (no time zone)."""
    if frame is None:
        return pd.DataFrame({f: pd.Series(dtype=float) for f in FIELDS},
                            index=pd.DatetimeIndex([]))
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{sym}: expected a pandas DataFrame, got {type(frame).__name__}")
    columns = {str(c).lower(): c for c in frame.columns}
    missing = [f.capitalize() for f in FIELDS if f not in columns]
    if missing:
        raise ValueError(f"{sym}: the price frame lacks columns {missing} (it has "
                         f"{[str(c) for c in frame.columns][:10]})")
    try:
        index = pd.DatetimeIndex(frame.index).tz_localize(None).normalize()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{sym}: the price frame's index is not dates ({exc})") from None
    if index.has_duplicates:
        raise ValueError(f"{sym}: the price frame has the date "
                         f"{index[index.duplicated()][0].date()} twice")
    try:
        out = pd.DataFrame({f: pd.to_numeric(frame[columns[f]], errors="raise").to_numpy(
            dtype=np.float64) for f in FIELDS}, index=index)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{sym}: the price frame holds a value that is not a number "
                         f"({exc})") from None
    return out.sort_index()
