"""The indicator engine: a Panel in, one row of indicator values per symbol out.

Walk-through of `compute_indicators(panel, names, history, extra)`:

1. Resolve. The asked output names (default: the scan's DEFAULT_OUTPUTS; ALL_OUTPUTS for
   everything) map to registry entries; an entry with several outputs (MACD, BBANDS, ATR, ...)
   runs once however many of its outputs were asked for. An entry may read an input that is
   not a Panel field (BETA reads "market"): the caller passes it in `extra` as an (N, T)
   array on the panel's session axis, and it is packed with each symbol's bars like a field.
2. Lay out. One pass over `close` (a bar is a finite close) gives each symbol's bar count, the
   session index of its last bar, and whether its row is already PACKED: leading NaNs, then
   bars without a gap up to the last session. Most rows of a live market are.
3. Pack the rest. A missing day is simply not a bar, as TA-Lib sees a symbol's own bar list.
   The rows that are not packed (mid-history gaps, delisted symbols) are right-aligned in one
   numba kernel, all needed fields (and extra inputs) together, so column T-1 holds each
   symbol's own last bar.
   Packed rows are used in place, without a copy. If most rows need packing, all are packed.
4. Run. Each entry's kernel runs over the panel's arrays and over the packed block; block
   results replace the rows they stand for. Kernels store only the last session unless
   history is asked for (the recursions still run over every bar).
5. Collect. `last` = column T-1 (each symbol's own last bar); `insufficient` = fewer bars than
   the entry's `min_bars` (the value is NaN for that reason, not a guess); with
   `history=True`, full (N, T) outputs unpacked back onto the panel's session axis, NaN where
   a symbol has no bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from numba import njit, prange

from technic_v4 import cancel
from technic_v4.data.panel import FIELDS, Array1D, Array2D, BoolArray, IntArray, Panel
from technic_v4.indicators.kernels import first_bar
from technic_v4.indicators.registry import DEFAULT_OUTPUTS, EXTRA_INPUTS, IndicatorSpec, resolve


@dataclass(frozen=True)
class IndicatorTable:
    """Indicator values at each symbol's own last bar (row i = panel.symbols[i])."""

    symbols: npt.NDArray[np.object_]
    outputs: tuple[str, ...]
    last: dict[str, Array1D]  # output -> (N,)
    bars: IntArray  # (N,) bars each symbol has in the panel window
    last_bar: IntArray  # (N,) session index of each symbol's last bar, -1 if none
    insufficient: dict[str, BoolArray]  # output -> (N,) NaN because too few bars
    history: dict[str, Array2D] | None = None  # output -> (N, T) on the session axis
    tails: dict[str, Array2D] = field(default_factory=dict)  # asked tails, on own bars

    def to_frame(self) -> pd.DataFrame:
        """`last` as a DataFrame indexed by symbol, columns in output order."""
        index = pd.Index(self.symbols, name="symbol")
        return pd.DataFrame({name: self.last[name] for name in self.outputs}, index=index)


def compute_indicators(
    panel: Panel,
    names: Iterable[str] | None = None,
    history: bool = False,
    extra: Mapping[str, Array2D] | None = None,
    tails: Mapping[str, int] | None = None,
) -> IndicatorTable:
    """Indicators for every symbol of `panel` (names = output columns, default the scan's
    DEFAULT_OUTPUTS). `extra` supplies the non-Panel inputs an entry reads (registry
    EXTRA_INPUTS), each an (N, T) array on the panel's axes; a missing one is an error.
    `tails` {output or Panel field: width}: also those last values on each symbol's own
    bars, as `packed_series` gives them (IndicatorTable.tails), from the same kernel runs."""
    tails = dict(tails or {})
    if tails:
        names = [*(DEFAULT_OUTPUTS if names is None else names),
                 *(n for n in tails if n not in FIELDS)]
    specs, outputs = resolve(names)
    fields = [f for f in FIELDS if f == "close" or f in tails
              or any(f in s.inputs for s in specs)]
    arrays = {f: np.ascontiguousarray(getattr(panel, f), dtype=np.float64) for f in fields}
    arrays |= _extra_inputs(specs, outputs, extra or {}, arrays["close"].shape)
    fields += [f for f in arrays if f not in fields]
    close = arrays["close"]
    n = close.shape[0]
    counts, last_bar, is_packed = bar_layout(close)

    rows = np.flatnonzero(~is_packed)
    direct = 2 * len(rows) <= n  # else packing everything is cheaper than running twice
    if not direct:
        rows = np.arange(n)
    block = None
    if len(rows):
        stacked = pack_rows(close, tuple(arrays[f] for f in fields), rows)
        block = {f: stacked[k] for k, f in enumerate(fields)}

    t = close.shape[1]
    width: int | dict[str, int] = t if history else min(t, 1)
    if tails and not history:  # per entry: the widest tail of its outputs
        width = {spec.name: min(t, max(tails.get(o, 1) for o in spec.outputs))
                 for spec in specs}
    wanted = set(outputs)
    full = _run(specs, arrays, width, wanted) if direct else {}
    part = _run(specs, block, width, wanted) if block is not None else {}
    packed_tails = {}
    for name, w in tails.items():
        keep = min(w, t)
        if name in FIELDS:
            mine = (np.where(np.isfinite(close[:, t - keep:]), arrays[name][:, t - keep:],
                             np.nan) if direct else np.empty((n, keep)))
            if block is not None:
                mine[rows] = block[name][:, t - keep:]
        else:
            mine = full[name][:, -keep:].copy() if direct else np.empty((n, keep))
            if block is not None:
                mine[rows] = part[name][:, -keep:]
        packed_tails[name] = _left_pad(mine, w)
    last: dict[str, Array1D] = {}
    hist: dict[str, Array2D] = {}
    for name in outputs:
        last[name], h = _collect(full.get(name), part.get(name), rows, close, history)
        if h is not None:
            hist[name] = h
    min_bars = {name: spec.bars_needed(name) for spec in specs for name in spec.outputs}
    insufficient = {name: counts < min_bars[name] for name in outputs}
    return IndicatorTable(
        symbols=panel.symbols,
        outputs=tuple(outputs),
        last=last,
        bars=counts,
        last_bar=last_bar,
        insufficient=insufficient,
        history=hist if history else None,
        tails=packed_tails,
    )


def packed_series(panel: Panel, names: Iterable[str], width: int,
                  extra: Mapping[str, Array2D] | None = None) -> dict[str, Array2D]:
    """The last `width` values of each named output and Panel field ("open" ... "volume") on
    each symbol's OWN bars, right-aligned: (N, width), column width-1 = the symbol's last bar,
    NaN before its first. What a screen expression reads (lags and windows count own bars)."""
    wanted = list(dict.fromkeys(names))
    bars = [f for f in wanted if f in FIELDS]
    specs, outputs = resolve([n for n in wanted if n not in FIELDS])
    fields = [f for f in FIELDS if f in ("close", *bars) or any(f in s.inputs for s in specs)]
    arrays = {f: np.ascontiguousarray(getattr(panel, f), dtype=np.float64) for f in fields}
    arrays |= _extra_inputs(specs, outputs, extra or {}, arrays["close"].shape)
    fields += [f for f in arrays if f not in fields]
    close = arrays["close"]
    n, t = close.shape
    keep = min(width, t)
    _, _, is_packed = bar_layout(close)
    rows = np.flatnonzero(~is_packed)  # packed rows are read in place (module docstring, 3)
    direct = 2 * len(rows) <= n
    if not direct:
        rows = np.arange(n)
    block = None
    if len(rows):
        stacked = pack_rows(close, tuple(arrays[f] for f in fields), rows)
        block = {f: stacked[k] for k, f in enumerate(fields)}
    out: dict[str, Array2D] = {}
    if direct:
        is_bar = np.isfinite(close[:, t - keep:])
        out = {f: np.where(is_bar, arrays[f][:, t - keep:], np.nan) for f in bars}
        out |= _run(specs, arrays, keep, set(outputs))
    if block is not None:
        for f in bars:
            if f in out:
                out[f][rows] = block[f][:, t - keep:]
            else:
                out[f] = block[f][:, t - keep:]
        for name, values in _run(specs, block, keep, set(outputs)).items():
            if name in out:
                out[name][rows] = values
            else:
                out[name] = values
    padded = {}
    for name in [*bars, *outputs]:
        cancel.check()
        padded[name] = _left_pad(out[name], width)
    return padded


def _left_pad(a: Array2D, width: int) -> Array2D:
    """`a` (N, w <= width) with NaN columns on the left up to `width`."""
    if a.shape[1] == width:
        return np.ascontiguousarray(a)
    return np.concatenate([np.full((a.shape[0], width - a.shape[1]), np.nan), a], axis=1)


def _extra_inputs(
    specs: list[IndicatorSpec],
    outputs: list[str],
    extra: Mapping[str, Array2D],
    shape: tuple[int, int],
) -> dict[str, Array2D]:
    """The extra (non-Panel) inputs the entries read, as contiguous float64 (N, T) arrays."""
    arrays: dict[str, Array2D] = {}
    for name in (f for s in specs for f in s.inputs if f not in FIELDS):
        if name not in extra:
            needing = [o for s in specs if name in s.inputs for o in s.outputs if o in outputs]
            raise ValueError(
                f"indicator output(s) {needing} need the input {name!r}, which was not given: "
                f"pass extra={{{name!r}: ...}}, {EXTRA_INPUTS[name]}"
            )
        arr = np.ascontiguousarray(extra[name], dtype=np.float64)
        if arr.shape != shape:
            raise ValueError(f"extra input {name!r} has shape {arr.shape}, expected {shape}")
        arrays[name] = arr
    return arrays


def _run(
    specs: list[IndicatorSpec], arrays: dict[str, Array2D], width: int | Mapping[str, int],
    wanted: set[str],
) -> dict[str, Array2D]:
    """Every entry over `arrays` (one parallel region each): output name -> (rows, width).
    Not chunked by rows on purpose: cache-sized row chunks halve 20,000 x 1,260 when the
    cores are idle, but multiply the parallel regions, and each region's barrier waits for a
    descheduled thread when other processes compete for the cores (10x slower measured)."""
    outs: dict[str, Array2D] = {}
    for spec in specs:
        cancel.check()  # between indicators: a cancelled request stops here (cancel.py)
        res = spec.run(arrays, width if isinstance(width, int) else width[spec.name])
        for k, name in enumerate(spec.outputs):
            if name in wanted:
                outs[name] = res[k]
    return outs


def _collect(
    full: Array2D | None, part: Array2D | None, rows: IntArray, close: Array2D, history: bool
) -> tuple[Array1D, Array2D | None]:
    """Last-bar values and (with history) the unpacked (N, T) history of one output.
    `full` is the in-place run over all rows (None when every row was packed), `part` the
    packed block's run for `rows` (None when no row needed packing); both (rows, W)."""
    if full is None:
        assert part is not None, "an output comes from the full run, the packed one or both"
        return _last_column(part), unpack_rows(part, close, rows) if history else None
    last = _last_column(full)
    if part is not None:
        last[rows] = _last_column(part)
        if history:
            full[rows] = unpack_rows(part, close, rows)
    return last, full if history else None


def _last_column(a: Array2D) -> Array1D:
    """The last stored column (each symbol's own last bar); all NaN for a zero-session panel."""
    return a[:, -1].copy() if a.shape[1] else np.full(a.shape[0], np.nan)


# ---------------------------------------------------------------- layout kernels
@njit(parallel=True, cache=True)
def bar_layout(close):
    """Per row: bar count, last-bar session index (-1 if none), and whether it is already packed."""
    N, T = close.shape
    counts = np.zeros(N, np.int64)
    last = np.full(N, -1, np.int64)
    packed = np.ones(N, np.bool_)
    for i in prange(N):
        row = close[i]
        s = first_bar(row)
        c = 0
        for t in range(s, T):
            if math.isfinite(row[t]):
                c += 1
                last[i] = t
        counts[i] = c
        packed[i] = c == T - s
    return counts, last, packed


@njit(parallel=True, cache=True)
def pack_rows(close, fields, rows):
    """Right-align each given row's bars (close finite = bar) for all fields at once.
    Returns (len(fields), len(rows), T); column T-1 holds each symbol's own last bar."""
    T = close.shape[1]
    F = len(fields)
    B = rows.shape[0]
    out = np.empty((F, B, T))
    for b in prange(B):
        i = rows[b]
        j = T - 1
        for t in range(T - 1, -1, -1):
            if math.isfinite(close[i, t]):
                for f in range(F):
                    out[f, b, j] = fields[f][i, t]
                j -= 1
        for f in range(F):
            for k in range(j + 1):
                out[f, b, k] = np.nan
    return out


@njit(parallel=True, cache=True)
def unpack_rows(packed, close, rows):
    """Inverse of pack_rows for one output: values back onto the session axis, NaN where no bar."""
    B, T = packed.shape
    out = np.empty((B, T))
    for b in prange(B):
        i = rows[b]
        j = T - 1
        for t in range(T - 1, -1, -1):
            if math.isfinite(close[i, t]):
                out[b, t] = packed[b, j]
                j -= 1
            else:
                out[b, t] = np.nan
    return out
