"""Numba kernels: TA-Lib's indicator arithmetic over (N symbols, T sessions) arrays.

Each kernel runs `prange` over symbol rows of (N, T) inputs and fills `out`, shaped
(n_outputs, N, W): every output for the last W sessions. W = T gives the full history, W = 1
each symbol's last-bar value. Why a caller's buffer and a width: the recursions must run over
every bar, but a scan wants one value per symbol, and a fresh (N, T) array per output costs
more in page faults (2-20 ms per 10 MB measured here) than the arithmetic; so a W = 1 run
stores, divides and takes square roots at the last bar only.
Rows are PACKED (the engine packs them): leading NaNs, then one contiguous run of bars ending
at column T-1. A row with fewer bars than a kernel needs comes out all-NaN; an all-NaN row works.

Why statement-by-statement TA-Lib: the contract is "TA-Lib to 1e-9", and the surest way to
hold it for every input is to do the same floating-point operations in the same order as the
TA-Lib C library that `import talib` loads (C 0.8.1, bundled with ta-lib 0.8.2): results are
then bit-equal, not merely close. That library modernised its arithmetic; mirrored here:
  - EMA step fma(x - prev, k, prev), k = 2/(n+1) (MACD; TA-Lib #96 "fused multiply-add");
  - Wilder ATR step fma(beta, prev, alpha*TR), beta = (n-1)/n, alpha = 1 - beta (#338);
  - RSI Wilder step multiplies by a hoisted 1/n and splits gain/loss without a branch (#410);
    RSI is 0 when average gain + loss is exactly 0 (a flat window), as TA-Lib answers;
  - Bollinger variance from mean-shifted running sums, re-seeded when cancellation looms
    (#118, #243): no E[x^2]-E[x]^2 cancellation; zero below 1e-12 of the mean square.
  - EMA (EMA9/21/50) seeded by the SMA of the first n bars, then the same fused step.
SMA, ROC and ROCR are the classic running sum and ratios; rolling MAX/MIN scan short windows
and keep TA-Lib's held extreme over long ones (values are exact either way).
`error_model="numpy"` gives IEEE division; fastmath stays off (reassociation breaks equality).
Where TA-Lib would divide by zero (ROCR / ROC answer 0) or a ratio is undefined (Volume_ratio,
ATR_pct, BB_width, dist_*, gap_pct, perf_*, rs_raw), the value is NaN, never a made-up number.

The range / money-flow / regression kernels (ADX, STOCH, WILLR, CCI, MFI, BETA) live in
`oscillators.py`, the candlestick patterns in `patterns.py`; both share the helpers here.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

_ROW = {"cache": True, "error_model": "numpy"}
_PAR = {"parallel": True, "cache": True, "error_model": "numpy"}


# ---------------------------------------------------------------- scalar helpers
@intrinsic
def fma(typingctx, a, b, c):
    """a*b + c rounded once (llvm.fma: the FMA instruction, or libm's exact fma without it)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64"
        )
        return builder.call(fn, args)

    return sig, codegen


@njit(**_ROW)
def first_bar(row):
    """Index of the row's first finite value (its first bar in a packed row); len(row) if none."""
    for t in range(row.shape[0]):
        if math.isfinite(row[t]):
            return t
    return row.shape[0]


@njit(**_ROW)
def _nan_until(o, off, stop):
    """NaN into the stored slots (sessions off..T-1) of the sessions before `stop`."""
    for t in range(off, min(stop, off + o.shape[0])):
        o[t - off] = np.nan


@njit(**_ROW)
def _div(a, b):
    """a / b, NaN when b is 0 (an undefined ratio; TA-Lib's ROCR would answer 0: a guess)."""
    return np.nan if b == 0.0 else a / b


@njit(**_ROW)
def _is_zero(v):
    """TA_IS_ZERO: |v| < TA_EPSILON = 1e-14 (TA-Lib's guard before dividing)."""
    return -1e-14 < v < 1e-14


@njit(**_ROW)
def _true_range(high, low, close, t):
    """TA_TRANGE at bar t (needs bar t-1): high-low, then the two previous-close distances."""
    greatest = high[t] - low[t]
    v2 = abs(close[t - 1] - high[t])
    if v2 > greatest:
        greatest = v2
    v3 = abs(close[t - 1] - low[t])
    if v3 > greatest:
        greatest = v3
    return greatest


# ---------------------------------------------------------------- one symbol's row
@njit(**_ROW)
def _sma_row(x, n, off, o):
    """TA_INT_SMA: seed n-1 bars, then add new / emit / subtract old."""
    T = x.shape[0]
    s = first_bar(x)
    first = s + n - 1
    _nan_until(o, off, first)
    total = 0.0
    for t in range(s, min(first, T)):
        total += x[t]
    for t in range(first, T):
        total += x[t]
        if t >= off:
            o[t - off] = total / n
        total -= x[t - n + 1]


@njit(**_ROW)
def _rsi_row(x, n, off, o):
    """TA_RSI: average of the first n changes, then Wilder smoothing."""
    T = x.shape[0]
    s = first_bar(x)
    first = s + n
    _nan_until(o, off, first)
    if first >= T:
        return
    inv = 1.0 / n
    gain = 0.0
    loss = 0.0
    for t in range(s + 1, T):
        d = x[t] - x[t - 1]
        up = d if d > 0.0 else 0.0
        if t > first:
            loss *= n - 1
            gain *= n - 1
        gain += up
        loss += up - d
        if t >= first:
            loss *= inv
            gain *= inv
            if t >= off:
                total = gain + loss
                o[t - off] = 100.0 * (gain / total) if total > 0.0 else 0.0


@njit(**_ROW)
def _macd_row(x, fast, slow, signal, off, o_macd, o_signal, o_hist):
    """TA_MACD: fast/slow EMAs seeded by SMAs whose windows end on the same bar (slow-1 bars
    in), the signal EMA seeded by the SMA of the first `signal` MACD values; all three
    outputs start at bar slow+signal-2 (33 for 12/26/9)."""
    T = x.shape[0]
    s = first_bar(x)
    first = s + slow - 1 + signal - 1
    _nan_until(o_macd, off, first)
    _nan_until(o_signal, off, first)
    _nan_until(o_hist, off, first)
    if first >= T:
        return
    fk = 2.0 / (fast + 1)
    sk = 2.0 / (slow + 1)
    gk = 2.0 / (signal + 1)
    total = 0.0
    for t in range(s, s + slow - fast):
        total += x[t]
    pf = 0.0
    for t in range(s + slow - fast, s + slow):
        pf += x[t]
        total += x[t]
    ps = total / slow
    pf = pf / fast
    m = pf - ps
    sig = 0.0
    sig += m  # as TA-Lib: 0.0 + m (a -0.0 line value seeds +0.0)
    for t in range(s + slow, T):
        pf = fma(x[t] - pf, fk, pf)
        ps = fma(x[t] - ps, sk, ps)
        m = pf - ps
        if t <= first:
            sig += m
            if t < first:
                continue
            sig = sig / signal
        else:
            sig = fma(m - sig, gk, sig)
        if t >= off:
            o_macd[t - off] = m
            o_signal[t - off] = sig
            o_hist[t - off] = m - sig


@njit(**_ROW)
def _bbands_row(x, n, nbdev, off, o_up, o_mid, o_lo, o_width):
    """TA_BBANDS(SMA): the SMA running sum and TA-Lib's shifted-data variance in one pass;
    the shift is re-seeded to the window mean every 32n bars or when cancellation looms."""
    T = x.shape[0]
    s = first_bar(x)
    lookback = n - 1
    first = s + lookback
    for o in (o_up, o_mid, o_lo, o_width):
        _nan_until(o, off, first)
    if first >= T:
        return
    inv = 1.0 / n
    shift = x[s]
    ma = 0.0
    total1 = 0.0
    total2 = 0.0
    for t in range(s, first):
        ma += x[t]
        d = x[t] - shift
        total1 += d
        total2 += d * d
    countdown = 32 * n
    for t in range(first, T):
        ma += x[t]
        d = x[t] - shift
        total1 += d
        total2 += d * d
        mean1 = total1 * inv
        var = total2 * inv - mean1 * mean1
        window_sum = ma
        old = x[t - lookback]
        ma -= old
        d = old - shift
        total1 -= d
        d2 = d * d
        total2 -= d2
        countdown -= 1
        if var < 0.000001 * (total2 * inv) or d2 > 1000000.0 * total2 or countdown <= 0:
            countdown = 32 * n
            acc = 0.0
            for j in range(t - lookback, t + 1):
                acc += x[j]
            shift = acc * inv
            total1 = 0.0
            total2 = 0.0
            for j in range(t - lookback, t + 1):
                d = x[j] - shift
                total1 += d
                total2 += d * d
            mean1 = total1 * inv
            var = total2 * inv - mean1 * mean1
            if var < 0.000000000001 * (total2 * inv):
                var = 0.0
            d = old - shift
            total1 -= d
            total2 -= d * d
        if t >= off:
            mid = window_sum / n
            dev = (math.sqrt(var) if var != 0.0 else 0.0) * nbdev
            up = mid + dev
            lo = mid - dev
            o_up[t - off] = up
            o_mid[t - off] = mid
            o_lo[t - off] = lo
            o_width[t - off] = _div(up - lo, mid)


@njit(**_ROW)
def _atr_row(high, low, close, n, off, o_atr, o_pct):
    """TA_ATR: SMA of the first n true ranges, then fused Wilder smoothing; and ATR / close."""
    T = close.shape[0]
    s = first_bar(close)
    first = s + n
    _nan_until(o_atr, off, first)
    _nan_until(o_pct, off, first)
    if first >= T:
        return
    beta = (n - 1) / n
    alpha = 1.0 - beta
    total = 0.0
    for t in range(s + 1, first + 1):
        total += _true_range(high, low, close, t)
    prev = total / n
    for t in range(first, T):
        if t > first:
            prev = fma(beta, prev, alpha * _true_range(high, low, close, t))
        if t >= off:
            o_atr[t - off] = prev
            o_pct[t - off] = _div(prev, close[t])


@njit(**_ROW)
def _volume_row(v, n, off, o_avg, o_ratio):
    """SMA of volume (TA_INT_SMA) and volume / SMA, NaN when the SMA is 0 (nothing traded)."""
    _sma_row(v, n, off, o_avg)
    first = first_bar(v) + n - 1
    _nan_until(o_ratio, off, first)
    for t in range(max(first, off), v.shape[0]):
        o_ratio[t - off] = _div(v[t], o_avg[t - off])


@njit(**_ROW)
def _track_max(x, t, trailing, idx, best):
    """TA_MAX's step at bar t over bars trailing..t: rescan only when the held maximum (at
    idx) has left the window, else take x[t] if >= it. Returns the new (idx, best)."""
    if idx < trailing:
        idx = trailing
        best = x[idx]
        for i in range(trailing + 1, t + 1):
            if x[i] > best:
                idx = i
                best = x[i]
    elif x[t] >= best:
        idx = t
        best = x[t]
    return idx, best


@njit(**_ROW)
def _track_min(x, t, trailing, idx, best):
    """TA_MIN's step, the mirror of _track_max."""
    if idx < trailing:
        idx = trailing
        best = x[idx]
        for i in range(trailing + 1, t + 1):
            if x[i] < best:
                idx = i
                best = x[i]
    elif x[t] <= best:
        idx = t
        best = x[t]
    return idx, best


@njit(**_ROW)
def _extreme_row(x, close, n, sign, off, o_ext, o_dist):
    """TA_MAX (sign 1) / TA_MIN (sign -1) of the last n bars, and close / extreme - 1.
    Extremes are exact, so only the stored bars are computed (one window for W = 1): a short
    window is scanned whole at every bar (branch-free, the faster for n = 20), a long one
    keeps TA-Lib's held extreme and rescans only when it leaves (52-week history)."""
    T = close.shape[0]
    first = first_bar(close) + n - 1
    _nan_until(o_ext, off, first)
    _nan_until(o_dist, off, first)
    idx = -1
    best = 0.0
    for t in range(max(first, off), T):
        if n <= 32:
            best = x[t - n + 1]
            for j in range(t - n + 2, t + 1):
                v = x[j]
                best = v if (v > best if sign > 0 else v < best) else best
        elif sign > 0:
            idx, best = _track_max(x, t, t - n + 1, idx, best)
        else:
            idx, best = _track_min(x, t, t - n + 1, idx, best)
        o_ext[t - off] = best
        o_dist[t - off] = _div(close[t], best) - 1.0


@njit(**_ROW)
def _ema_row(x, n, off, o):
    """TA_EMA: SMA of the first n bars, then fma(x - prev, k, prev), k = 2/(n+1)."""
    T = x.shape[0]
    s = first_bar(x)
    first = s + n - 1
    _nan_until(o, off, first)
    if first >= T:
        return
    k = 2.0 / (n + 1)
    total = 0.0
    for t in range(s, first + 1):
        total += x[t]
    prev = total / n
    for t in range(first, T):
        if t > first:
            prev = fma(x[t] - prev, k, prev)
        if t >= off:
            o[t - off] = prev


@njit(**_ROW)
def _cross_row(x, fast, slow, off, o_golden, o_death):
    """Bars since the last golden (death) cross: SMA(fast) moves above (below) SMA(slow), i.e.
    at bar t fast <= slow at t-1 and fast > slow at t (>= and <). Both SMAs are TA_INT_SMA
    running sums; NaN before the slow SMA exists and until the first cross."""
    T = x.shape[0]
    s = first_bar(x)
    first = s + slow - 1
    _nan_until(o_golden, off, first)
    _nan_until(o_death, off, first)
    if first >= T:
        return
    f_total = 0.0
    s_total = 0.0
    for t in range(s, s + fast - 1):
        f_total += x[t]
    for t in range(s, first):
        s_total += x[t]
    for t in range(s + fast - 1, first):  # slide the fast sum up to the first slow value
        f_total += x[t]
        f_total -= x[t - fast + 1]
    golden = -1
    death = -1
    prev_diff_sign = 0
    for t in range(first, T):
        f_total += x[t]
        s_total += x[t]
        f = f_total / fast
        sl = s_total / slow
        f_total -= x[t - fast + 1]
        s_total -= x[t - slow + 1]
        sign = 1 if f > sl else (-1 if f < sl else 0)
        if t > first:
            if sign > 0 and prev_diff_sign <= 0:
                golden = t
            if sign < 0 and prev_diff_sign >= 0:
                death = t
        prev_diff_sign = sign
        if t >= off:
            o_golden[t - off] = t - golden if golden >= 0 else np.nan
            o_death[t - off] = t - death if death >= 0 else np.nan


# ---------------------------------------------------------------- 2-D kernels
@njit(**_PAR)
def sma(x, n, out):
    """talib.SMA(x, n) -> out[0]."""
    off = x.shape[1] - out.shape[2]
    for i in prange(x.shape[0]):
        _sma_row(x[i], n, off, out[0, i])


@njit(**_PAR)
def rsi(close, n, out):
    """talib.RSI(close, n) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _rsi_row(close[i], n, off, out[0, i])


@njit(**_PAR)
def macd(close, fast, slow, signal, out):
    """talib.MACD(close, fast, slow, signal) -> out[0:3] = macd, signal, hist."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _macd_row(close[i], fast, slow, signal, off, out[0, i], out[1, i], out[2, i])


@njit(**_PAR)
def bbands(close, n, nbdev, out):
    """talib.BBANDS(close, n, nbdev, nbdev, SMA) -> out[0:4] = upper, middle, lower,
    width = (upper - lower) / middle."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _bbands_row(close[i], n, nbdev, off, out[0, i], out[1, i], out[2, i], out[3, i])


@njit(**_PAR)
def atr(high, low, close, n, out):
    """talib.ATR(high, low, close, n) -> out[0], ATR / close -> out[1]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _atr_row(high[i], low[i], close[i], n, off, out[0, i], out[1, i])


@njit(**_PAR)
def volume_sma(volume, n, out):
    """talib.SMA(volume, n) -> out[0], volume / that SMA -> out[1]."""
    off = volume.shape[1] - out.shape[2]
    for i in prange(volume.shape[0]):
        _volume_row(volume[i], n, off, out[0, i], out[1, i])


@njit(**_PAR)
def momentum(close, n, out):
    """close / close[n bars ago] - 1 (= talib.ROCR(close, n) - 1) -> out[0]."""
    T = close.shape[1]
    off = T - out.shape[2]
    for i in prange(close.shape[0]):
        x = close[i]
        o = out[0, i]
        first = first_bar(x) + n
        _nan_until(o, off, first)
        for t in range(max(first, off), T):
            o[t - off] = _div(x[t], x[t - n]) - 1.0


@njit(**_PAR)
def rolling_extreme(x, close, n, sign, out):
    """talib.MAX(x, n) (sign 1) or talib.MIN(x, n) (sign -1) -> out[0], close / it - 1 -> out[1]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _extreme_row(x[i], close[i], n, sign, off, out[0, i], out[1, i])


@njit(**_PAR)
def ema(close, n, out):
    """talib.EMA(close, n) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _ema_row(close[i], n, off, out[0, i])


@njit(**_PAR)
def obv(close, volume, out):
    """talib.OBV(close, volume) -> out[0]: volume[first bar], then +/- each bar's volume as
    the close rises / falls. A running total from the first bar in the panel (anchored)."""
    T = close.shape[1]
    off = T - out.shape[2]
    for i in prange(close.shape[0]):
        x = close[i]
        v = volume[i]
        o = out[0, i]
        s = first_bar(x)
        _nan_until(o, off, s)
        if s >= T:
            continue
        total = v[s]
        for t in range(s, T):
            if t > s:
                if x[t] > x[t - 1]:
                    total += v[t]
                elif x[t] < x[t - 1]:
                    total -= v[t]
            if t >= off:
                o[t - off] = total


@njit(**_PAR)
def roc(close, n, out):
    """talib.ROC(close, n) -> out[0]: (close / close[n bars ago] - 1) * 100 (NaN, not TA-Lib's
    0, after a zero close)."""
    T = close.shape[1]
    off = T - out.shape[2]
    for i in prange(close.shape[0]):
        x = close[i]
        o = out[0, i]
        first = first_bar(x) + n
        _nan_until(o, off, first)
        for t in range(max(first, off), T):
            o[t - off] = (_div(x[t], x[t - n]) - 1.0) * 100.0


@njit(**_PAR)
def gap(open_, close, out):
    """open / the previous bar's close - 1 -> out[0] (the symbol's own previous bar)."""
    T = close.shape[1]
    off = T - out.shape[2]
    for i in prange(close.shape[0]):
        o = out[0, i]
        first = first_bar(close[i]) + 1
        _nan_until(o, off, first)
        for t in range(max(first, off), T):
            o[t - off] = _div(open_[i, t], close[i, t - 1]) - 1.0


@njit(**_PAR)
def sma_cross(close, fast, slow, out):
    """Bars since the last golden / death cross of SMA(fast) over SMA(slow) -> out[0:2]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _cross_row(close[i], fast, slow, off, out[0, i], out[1, i])


@njit(**_PAR)
def rs_raw(close, out):
    """IBD-style strength 0.4 r63 + 0.2 r126 + 0.2 r189 + 0.2 r252 -> out[0], r_n = close /
    close[n bars ago] - 1 (ROCR - 1); NaN without 253 bars."""
    T = close.shape[1]
    off = T - out.shape[2]
    for i in prange(close.shape[0]):
        x = close[i]
        o = out[0, i]
        first = first_bar(x) + 252
        _nan_until(o, off, first)
        for t in range(max(first, off), T):
            r63 = _div(x[t], x[t - 63]) - 1.0
            r126 = _div(x[t], x[t - 126]) - 1.0
            r189 = _div(x[t], x[t - 189]) - 1.0
            r252 = _div(x[t], x[t - 252]) - 1.0
            o[t - off] = 0.4 * r63 + 0.2 * r126 + 0.2 * r189 + 0.2 * r252
