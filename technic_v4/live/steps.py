"""The live state's numba steps: one closed bar per symbol updates every indicator in O(1).

A `TimeframeState` (state.py) holds, for N symbol slots of one timeframe, what each
indicator's recursion or window needs to take one more bar, as arrays over symbols (numba,
`prange` over the rows that have a bar):
  - `scalars` (N, K): running sums (SMA, volume SMA, Bollinger's shifted sums), EMA / Wilder /
    MACD / ADX states with their seeding sums, the held 20-bar extremes (TA-Lib's MAX/MIN:
    index and value, the window rescanned only when the extreme leaves it), OBV, the VWAP
    sums of the current session, and the row's bar count;
  - rings of the last bars: 256 closes (SMA200, mom_126, Bollinger), 32 highs, lows and
    volumes (TR, DM, the 20-bar extremes, the volume SMA);
  - `out` (N, 3, outputs), a ring of three per row with its newest slot `head` (N,): each
    output's value at the row's last bar, the bar before (screens read `crosses_above(x,
    y)`: width 2) and the one before that (the previous bar again after an undo).
Every step is the full-history kernel's loop body (technic_v4/indicators/kernels.py,
oscillators.py) at bar j = the row's count, statement by statement, so a state stepped over
a symbol's bars is bit-equal to the kernel run on them and to TA-Lib. Parameters and output
names come from the indicator registry; VWAP is the one output of its own, the intraday
guide's definition on every timeframe: sum(typical price x volume) / sum(volume) over the
session's minutes so far, typical price (H + L + C) / 3 of each minute. A bar brings `pv`,
the sum of typical price x volume over its minutes (a minute bar's own; a bar without its
minutes, such as a stored daily bar, its own typical price x volume).

One step back: before a row steps, its scalars and the ring slots the step overwrites are
kept (`undo_scalars`, `undo_ring`), so `undo(rows)` takes the row's last bar back and a
corrected bar can be stepped in its place. Anything older cannot be undone: the aggregator
flags it for a resync from history (aggregate.py).

Seeding: `seed()` steps the state over past bars ((N, T) arrays, NaN where a row has no bar),
so live mode starts from the values the full kernels give on that history.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from technic_v4.indicators.kernels import _div, _is_zero, fma
from technic_v4.indicators.oscillators import directional_move
from technic_v4.indicators.registry import REGISTRY

Array1D = npt.NDArray[np.float64]
Array2D = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Parameters, read from the registry (one definition of each indicator).
RSI_N = int(REGISTRY["RSI"].params["n"])
ATR_N = int(REGISTRY["ATR"].params["n"])
ADX_N = int(REGISTRY["ADX"].params["n"])
BB_N = int(REGISTRY["BBANDS"].params["n"])
BB_DEV = float(REGISTRY["BBANDS"].params["nbdev"])
FAST = int(REGISTRY["MACD"].params["fast"])
SLOW = int(REGISTRY["MACD"].params["slow"])
SIGNAL = int(REGISTRY["MACD"].params["signal"])
VOL_N = int(REGISTRY["VOLUME"].params["n"])
EXT_N = int(REGISTRY["HIGH20"].params["n"])
SMA_N = tuple(int(REGISTRY[f"SMA{n}"].params["n"]) for n in (20, 50, 200))
EMA_N = tuple(int(REGISTRY[f"EMA{n}"].params["n"]) for n in (9, 21, 50))
MOM_N = tuple(int(REGISTRY[f"mom_{n}"].params["n"]) for n in (5, 21, 63, 126))

CLOSE_RING = 256  # >= every close window (SMA200, mom_126 + 1, Bollinger 20)
SHORT_RING = 32   # >= the high / low / volume windows (20) and the previous bar
if max(*SMA_N, max(MOM_N) + 1, BB_N) > CLOSE_RING or max(VOL_N, EXT_N, 2) > SHORT_RING:
    raise RuntimeError("live state: an indicator window is longer than its ring")

BARS = ("Open", "High", "Low", "Close", "Volume")
OUTPUTS: tuple[str, ...] = (
    *BARS, "RSI", "MACD", "MACD_signal", "MACD_hist", "BB_upper", "BB_middle", "BB_lower",
    "BB_width", "ATR", "ATR_pct", "Volume_SMA20", "Volume_ratio", "mom_5", "mom_21", "mom_63",
    "mom_126", "SMA20", "SMA50", "SMA200", "high_20", "dist_high_20", "low_20", "dist_low_20",
    "ADX", "PLUS_DI", "MINUS_DI", "OBV", "EMA9", "EMA21", "EMA50", "VWAP",
)
OUT = {name: k for k, name in enumerate(OUTPUTS)}

# Scalar slots of one row (columns of `scalars`).
(COUNT, SESSION, SMA0, SMA1, SMA2, VSUM, RSI_GAIN, RSI_LOSS, M_TOTAL, M_FAST, M_SLOW, M_SIG,
 BB_SHIFT, BB_MA, BB_T1, BB_T2, BB_COUNTDOWN, ATR_TOTAL, ATR_PREV, HI_IDX, HI_BEST, LO_IDX,
 LO_BEST, DX_PLUS, DX_MINUS, DX_TR, ADX_SUM, OBV_TOTAL, EMA0, EMA1, EMA2, VW_PV, VW_V,
 N_SCALARS) = range(34)

_SMA_SLOT = np.array([SMA0, SMA1, SMA2], dtype=np.int64)
_SMA_OUT = np.array([OUT["SMA20"], OUT["SMA50"], OUT["SMA200"]], dtype=np.int64)
_SMA_LEN = np.array(SMA_N, dtype=np.int64)
_EMA_SLOT = np.array([EMA0, EMA1, EMA2], dtype=np.int64)
_EMA_OUT = np.array([OUT["EMA9"], OUT["EMA21"], OUT["EMA50"]], dtype=np.int64)
_EMA_LEN = np.array(EMA_N, dtype=np.int64)
_MOM_OUT = np.array([OUT[f"mom_{n}"] for n in (5, 21, 63, 126)], dtype=np.int64)
_MOM_LEN = np.array(MOM_N, dtype=np.int64)
_CM = CLOSE_RING - 1
_SM = SHORT_RING - 1

# Output columns the kernels write (numba reads module constants, not dicts).
O_ADX = OUT["ADX"]
O_ATR = OUT["ATR"]
O_ATR_PCT = OUT["ATR_pct"]
O_BB_LOWER = OUT["BB_lower"]
O_BB_MIDDLE = OUT["BB_middle"]
O_BB_UPPER = OUT["BB_upper"]
O_BB_WIDTH = OUT["BB_width"]
O_MACD = OUT["MACD"]
O_MACD_HIST = OUT["MACD_hist"]
O_MACD_SIGNAL = OUT["MACD_signal"]
O_MINUS_DI = OUT["MINUS_DI"]
O_OBV = OUT["OBV"]
O_PLUS_DI = OUT["PLUS_DI"]
O_RSI = OUT["RSI"]
O_VWAP = OUT["VWAP"]
O_VOLUME_SMA20 = OUT["Volume_SMA20"]
O_VOLUME_RATIO = OUT["Volume_ratio"]
O_DIST_HIGH_20 = OUT["dist_high_20"]
O_DIST_LOW_20 = OUT["dist_low_20"]
O_HIGH_20 = OUT["high_20"]
O_LOW_20 = OUT["low_20"]

_ROW = {"cache": True, "error_model": "numpy"}
_PAR = {"parallel": True, "cache": True, "error_model": "numpy"}


@njit(**_ROW)
def _extreme(ring, j, best_idx, best, sign):
    """TA_MAX (sign 1) / TA_MIN (sign -1) step at bar j over bars j-EXT_N+1..j held in `ring`:
    rescan only when the held extreme has left the window (kernels._track_max)."""
    trailing = j - EXT_N + 1
    x = ring[j & _SM]
    if best_idx < trailing:
        best_idx = trailing
        best = ring[trailing & _SM]
        for i in range(trailing + 1, j + 1):
            v = ring[i & _SM]
            if (v > best) if sign > 0 else (v < best):
                best_idx = i
                best = v
    elif (x >= best) if sign > 0 else (x <= best):
        best_idx = j
        best = x
    return best_idx, best


@njit(**_ROW)
def _step_row(s, rc, rh, rl, rv, cur, o, h, low, c, v, pv, sid):
    """One bar into one row's state; `cur` (outputs,) takes the new values."""
    j = int(s[COUNT])
    for k in range(cur.shape[0]):
        cur[k] = np.nan
    rc[j & _CM] = c
    rh[j & _SM] = h
    rl[j & _SM] = low
    rv[j & _SM] = v
    cur[0] = o
    cur[1] = h
    cur[2] = low
    cur[3] = c
    cur[4] = v
    # SMA (TA_INT_SMA): add the new bar, emit, subtract the window's oldest
    for q in range(_SMA_SLOT.shape[0]):
        n = _SMA_LEN[q]
        s[_SMA_SLOT[q]] += c
        if j >= n - 1:
            cur[_SMA_OUT[q]] = s[_SMA_SLOT[q]] / n
            s[_SMA_SLOT[q]] -= rc[(j - n + 1) & _CM]
    # volume SMA and ratio
    s[VSUM] += v
    if j >= VOL_N - 1:
        avg = s[VSUM] / VOL_N
        cur[O_VOLUME_SMA20] = avg
        cur[O_VOLUME_RATIO] = _div(v, avg)
        s[VSUM] -= rv[(j - VOL_N + 1) & _SM]
    # momentum
    for q in range(_MOM_LEN.shape[0]):
        n = _MOM_LEN[q]
        if j >= n:
            cur[_MOM_OUT[q]] = _div(c, rc[(j - n) & _CM]) - 1.0
    # RSI (TA_RSI)
    if j >= 1:
        d = c - rc[(j - 1) & _CM]
        up = d if d > 0.0 else 0.0
        if j > RSI_N:
            s[RSI_LOSS] *= RSI_N - 1
            s[RSI_GAIN] *= RSI_N - 1
        s[RSI_GAIN] += up
        s[RSI_LOSS] += up - d
        if j >= RSI_N:
            inv = 1.0 / RSI_N
            s[RSI_LOSS] *= inv
            s[RSI_GAIN] *= inv
            total = s[RSI_GAIN] + s[RSI_LOSS]
            cur[O_RSI] = 100.0 * (s[RSI_GAIN] / total) if total > 0.0 else 0.0
    # MACD (TA_MACD seeding: SMA seeds ending on bar SLOW-1, signal seeded by a mean)
    first = SLOW - 1 + SIGNAL - 1
    if j < SLOW - FAST:
        s[M_TOTAL] += c
    elif j < SLOW:
        s[M_FAST] += c
        s[M_TOTAL] += c
        if j == SLOW - 1:
            s[M_SLOW] = s[M_TOTAL] / SLOW
            s[M_FAST] = s[M_FAST] / FAST
            s[M_SIG] = 0.0
            s[M_SIG] += s[M_FAST] - s[M_SLOW]
    else:
        s[M_FAST] = fma(c - s[M_FAST], 2.0 / (FAST + 1), s[M_FAST])
        s[M_SLOW] = fma(c - s[M_SLOW], 2.0 / (SLOW + 1), s[M_SLOW])
        m = s[M_FAST] - s[M_SLOW]
        emit = True
        if j <= first:
            s[M_SIG] += m
            if j < first:
                emit = False
            else:
                s[M_SIG] = s[M_SIG] / SIGNAL
        else:
            s[M_SIG] = fma(m - s[M_SIG], 2.0 / (SIGNAL + 1), s[M_SIG])
        if emit:
            cur[O_MACD] = m
            cur[O_MACD_SIGNAL] = s[M_SIG]
            cur[O_MACD_HIST] = m - s[M_SIG]
    _bbands_step(s, rc, cur, j, c)
    # ATR (TA_ATR: SMA of the first n true ranges, then fused Wilder)
    if j >= 1:
        tr = _tr(rh, rl, rc, j)
        if j <= ATR_N:
            s[ATR_TOTAL] += tr
            if j == ATR_N:
                s[ATR_PREV] = s[ATR_TOTAL] / ATR_N
        else:
            beta = (ATR_N - 1) / ATR_N
            s[ATR_PREV] = fma(beta, s[ATR_PREV], (1.0 - beta) * tr)
        if j >= ATR_N:
            cur[O_ATR] = s[ATR_PREV]
            cur[O_ATR_PCT] = _div(s[ATR_PREV], c)
    # 20-bar high / low (TA_MAX / TA_MIN) and the distance of the close from them
    if j >= EXT_N - 1:
        hi_idx, hi = _extreme(rh, j, int(s[HI_IDX]), s[HI_BEST], 1)
        lo_idx, lo = _extreme(rl, j, int(s[LO_IDX]), s[LO_BEST], -1)
        s[HI_IDX] = hi_idx
        s[HI_BEST] = hi
        s[LO_IDX] = lo_idx
        s[LO_BEST] = lo
        cur[O_HIGH_20] = hi
        cur[O_DIST_HIGH_20] = _div(c, hi) - 1.0
        cur[O_LOW_20] = lo
        cur[O_DIST_LOW_20] = _div(c, lo) - 1.0
    _dmi_step(s, rc, rh, rl, cur, j)
    # OBV: the first bar's volume, then +/- volume as the close rises / falls
    if j == 0:
        s[OBV_TOTAL] = v
    elif c > rc[(j - 1) & _CM]:
        s[OBV_TOTAL] += v
    elif c < rc[(j - 1) & _CM]:
        s[OBV_TOTAL] -= v
    cur[O_OBV] = s[OBV_TOTAL]
    # EMA (TA_EMA: SMA seed of the first n bars, then the fused step)
    for q in range(_EMA_LEN.shape[0]):
        n = _EMA_LEN[q]
        slot = _EMA_SLOT[q]
        if j < n - 1:
            s[slot] += c
        elif j == n - 1:
            s[slot] += c
            s[slot] = s[slot] / n
            cur[_EMA_OUT[q]] = s[slot]
        else:
            s[slot] = fma(c - s[slot], 2.0 / (n + 1), s[slot])
            cur[_EMA_OUT[q]] = s[slot]
    # VWAP since the session's open
    if s[SESSION] != sid:
        s[SESSION] = sid
        s[VW_PV] = 0.0
        s[VW_V] = 0.0
    s[VW_PV] += pv
    s[VW_V] += v
    cur[O_VWAP] = _div(s[VW_PV], s[VW_V])
    s[COUNT] = j + 1


@njit(**_ROW)
def _tr(rh, rl, rc, j):
    """TA_TRANGE at bar j from the rings (kernels._true_range's order of comparisons)."""
    greatest = rh[j & _SM] - rl[j & _SM]
    prev = rc[(j - 1) & _CM]
    v2 = abs(prev - rh[j & _SM])
    if v2 > greatest:
        greatest = v2
    v3 = abs(prev - rl[j & _SM])
    if v3 > greatest:
        greatest = v3
    return greatest


@njit(**_ROW)
def _bbands_step(s, rc, cur, j, c):
    """TA_BBANDS(SMA) at bar j: kernels._bbands_row's loop body over the close ring."""
    lookback = BB_N - 1
    inv = 1.0 / BB_N
    if j == 0:
        s[BB_SHIFT] = c
        s[BB_COUNTDOWN] = 32 * BB_N
    shift = s[BB_SHIFT]
    s[BB_MA] += c
    d = c - shift
    s[BB_T1] += d
    s[BB_T2] += d * d
    if j < lookback:
        return
    mean1 = s[BB_T1] * inv
    var = s[BB_T2] * inv - mean1 * mean1
    window_sum = s[BB_MA]
    old = rc[(j - lookback) & _CM]
    s[BB_MA] -= old
    d = old - shift
    s[BB_T1] -= d
    d2 = d * d
    s[BB_T2] -= d2
    s[BB_COUNTDOWN] -= 1
    if var < 0.000001 * (s[BB_T2] * inv) or d2 > 1000000.0 * s[BB_T2] or s[BB_COUNTDOWN] <= 0:
        s[BB_COUNTDOWN] = 32 * BB_N
        acc = 0.0
        for i in range(j - lookback, j + 1):
            acc += rc[i & _CM]
        shift = acc * inv
        s[BB_SHIFT] = shift
        t1 = 0.0
        t2 = 0.0
        for i in range(j - lookback, j + 1):
            d = rc[i & _CM] - shift
            t1 += d
            t2 += d * d
        mean1 = t1 * inv
        var = t2 * inv - mean1 * mean1
        if var < 0.000000000001 * (t2 * inv):
            var = 0.0
        d = old - shift
        s[BB_T1] = t1 - d
        s[BB_T2] = t2 - d * d
    mid = window_sum / BB_N
    dev = (np.sqrt(var) if var != 0.0 else 0.0) * BB_DEV
    up = mid + dev
    lo = mid - dev
    cur[O_BB_UPPER] = up
    cur[O_BB_MIDDLE] = mid
    cur[O_BB_LOWER] = lo
    cur[O_BB_WIDTH] = _div(up - lo, mid)


@njit(**_ROW)
def _dmi_step(s, rc, rh, rl, cur, j):
    """TA_ADX / PLUS_DI / MINUS_DI at bar j: oscillators._dmi_row's loop body."""
    if j < 1:
        return
    n = ADX_N
    up, down = directional_move(rh[j & _SM] - rh[(j - 1) & _SM], rl[(j - 1) & _SM] - rl[j & _SM])
    tr = _tr(rh, rl, rc, j)
    if j < n:
        s[DX_PLUS] += up
        s[DX_MINUS] += down
        s[DX_TR] += tr
        return
    s[DX_PLUS] = s[DX_PLUS] - s[DX_PLUS] / n + up
    s[DX_MINUS] = s[DX_MINUS] - s[DX_MINUS] / n + down
    s[DX_TR] = s[DX_TR] - s[DX_TR] / n + tr
    plus_di = 0.0
    minus_di = 0.0
    dx = 0.0
    has_dx = False
    if not _is_zero(s[DX_TR]):
        minus_di = 100.0 * (s[DX_MINUS] / s[DX_TR])
        plus_di = 100.0 * (s[DX_PLUS] / s[DX_TR])
        total = minus_di + plus_di
        if not _is_zero(total):
            dx = 100.0 * (abs(minus_di - plus_di) / total)
            has_dx = True
    first_adx = 2 * n - 1
    if j <= first_adx:
        if has_dx:
            s[ADX_SUM] += dx
        if j == first_adx:
            s[ADX_SUM] = s[ADX_SUM] / n
    elif has_dx:
        s[ADX_SUM] = (s[ADX_SUM] * (n - 1) + dx) / n
    cur[O_PLUS_DI] = plus_di
    cur[O_MINUS_DI] = minus_di
    if j >= first_adx:
        cur[O_ADX] = s[ADX_SUM]


@njit(**_ROW)
def _keep(s, keep_s, keep_ring, rc, rh, rl, rv):
    """What one step of the row overwrites: its scalars and the ring slots of bar COUNT."""
    j = int(s[COUNT])
    keep_s[:] = s
    keep_ring[0] = rc[j & _CM]
    keep_ring[1] = rh[j & _SM]
    keep_ring[2] = rl[j & _SM]
    keep_ring[3] = rv[j & _SM]


@njit(**_PAR)
def _step(scalars, undo_s, undo_ring, can_undo, rc, rh, rl, rv, out, head, rows, o, h, low, c,
          v, pv, sid):
    for q in prange(rows.shape[0]):
        i = rows[q]
        _keep(scalars[i], undo_s[i], undo_ring[i], rc[i], rh[i], rl[i], rv[i])
        can_undo[i] = True
        head[i] = (head[i] + 1) % 3
        _step_row(scalars[i], rc[i], rh[i], rl[i], rv[i], out[i, head[i]], o[q], h[q], low[q],
                  c[q],
                  v[q], pv[q], sid)


@njit(**_PAR)
def _undo(scalars, undo_s, undo_ring, can_undo, rc, rh, rl, rv, head, rows):
    for q in prange(rows.shape[0]):
        i = rows[q]
        scalars[i, :] = undo_s[i]
        j = int(scalars[i, COUNT])
        rc[i, j & _CM] = undo_ring[i, 0]
        rh[i, j & _SM] = undo_ring[i, 1]
        rl[i, j & _SM] = undo_ring[i, 2]
        rv[i, j & _SM] = undo_ring[i, 3]
        head[i] = (head[i] + 2) % 3
        can_undo[i] = False


@njit(**_PAR)
def _seed(scalars, rc, rh, rl, rv, out, head, rows, o, h, low, c, v, pv, sid):
    """Step each of `rows` over its past bars (row q of the (len(rows), T) arrays)."""
    for q in prange(rows.shape[0]):
        i = rows[q]
        for t in range(c.shape[1]):
            if np.isfinite(c[q, t]):
                head[i] = (head[i] + 1) % 3
                _step_row(scalars[i], rc[i], rh[i], rl[i], rv[i], out[i, head[i]], o[q, t],
                          h[q, t], low[q, t], c[q, t], v[q, t], pv[q, t], sid[t])


# ---------------------------------------------------------------- forming bars (aggregate.py)
@njit(**_ROW)
def fold_minute(form, has, forming, rows, values):
    """One in-order minute of `rows` ((5, len(rows)) OHLCV) into the forming bar of every
    timeframe f with forming[f]: form (timeframes, 5, N), has (timeframes, N): first open,
    max high, min low, last close, summed volume."""
    for q in range(rows.shape[0]):
        i = rows[q]
        for f in range(form.shape[0]):
            if not forming[f]:
                continue
            if not has[f, i]:
                for k in range(5):
                    form[f, k, i] = values[k, q]
                has[f, i] = True
            else:
                if values[1, q] > form[f, 1, i]:
                    form[f, 1, i] = values[1, q]
                if values[2, q] < form[f, 2, i]:
                    form[f, 2, i] = values[2, q]
                form[f, 3, i] = values[3, q]
                form[f, 4, i] += values[4, q]


@njit(**_ROW)
def build_bars(minutes, have, rows, lo, hi, out, out_has):
    """The bar over minutes lo..hi-1 of each of `rows`, from the stored minutes (L, 5, N)
    and have (L, N): out (5, len(rows)) and out_has (len(rows),), folded as `fold_minute`."""
    for q in range(rows.shape[0]):
        i = rows[q]
        out_has[q] = False
        for m in range(lo, hi):
            if not have[m, i]:
                continue
            if not out_has[q]:
                for k in range(5):
                    out[k, q] = minutes[m, k, i]
                out_has[q] = True
            else:
                if minutes[m, 1, i] > out[1, q]:
                    out[1, q] = minutes[m, 1, i]
                if minutes[m, 2, i] < out[2, q]:
                    out[2, q] = minutes[m, 2, i]
                out[3, q] = minutes[m, 3, i]
                out[4, q] += minutes[m, 4, i]


@njit(**_ROW)
def read(out, head, k, width):
    """(N, width) values of output k at each row's last `width` bars, oldest first."""
    n = out.shape[0]
    res = np.empty((n, width))
    for i in range(n):
        for w in range(width):
            res[i, w] = out[i, (head[i] + 3 - (width - 1 - w)) % 3, k]
    return res
