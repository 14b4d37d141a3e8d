"""Numba kernels for the range, money-flow and regression indicators (ADX / DI, STOCH, WILLR,
CCI, MFI, BETA): the conventions of `kernels.py` (packed rows, out (n_outputs, N, W), TA-Lib's
C 0.8.1 arithmetic statement by statement, IEEE division, no fastmath).

TA-Lib 0.8.x details mirrored here (checked bit-for-bit against the installed library):
  - WILLR and STOCH's fast %K divide by the range, then scale: (HH - close) / (HH - LL) * -100
    and (close - LL) / (HH - LL) * 100, 0 when HH = LL;
  - CCI's flatness tests are relative to the window's price level (#253), its sums run in
    TA-Lib's circular-buffer slot order;
  - MFI classifies a typical-price move within 1e-14 of the prices as none, zeroes its sums
    after n flowless bars and clamps the ratio (#107, #244);
  - BETA measures returns against a re-anchored shift (#242) with both outlier triggers, and
    its regressor is TA-Lib's first input: the market (talib.BETA(market, stock));
  - ADX / DI keep TA_IS_ZERO's absolute 1e-14 band on TR and on the DI sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from technic_v4.indicators.kernels import (
    _is_zero,
    _nan_until,
    _track_max,
    _track_min,
    _true_range,
    first_bar,
)

_ROW = {"cache": True, "error_model": "numpy"}
_PAR = {"parallel": True, "cache": True, "error_model": "numpy"}


# ---------------------------------------------------------------- one symbol's row
@njit(inline="always", **_ROW)
def directional_move(diff_p: float, diff_m: float) -> tuple[float, float]:
    """TA-Lib's +DM1 / -DM1 of one bar from the high's rise and the low's fall: only the
    larger move counts, and only when it is positive (the full row and the live step)."""
    if diff_m > 0 and diff_p < diff_m:
        return 0.0, diff_m
    if diff_p > 0 and diff_p > diff_m:
        return diff_p, 0.0
    return 0.0, 0.0


@njit(**_ROW)
def _dmi_row(high, low, close, n, off, o_adx, o_plus, o_minus):
    """TA_ADX, TA_PLUS_DI and TA_MINUS_DI in one pass over the same sums: +DM1 / -DM1 / TR1
    summed over n-1 bars, then Wilder's p - p/n + x1; DI = 100 DM / TR from bar n (0 when TR is
    ~0); ADX = the mean of the first n DX, then (ADX (n-1) + DX) / n, from bar 2n-1."""
    T = close.shape[0]
    s = first_bar(close)
    first_di = s + n
    first_adx = s + 2 * n - 1
    _nan_until(o_adx, off, first_adx)
    _nan_until(o_plus, off, first_di)
    _nan_until(o_minus, off, first_di)
    plus = 0.0
    minus = 0.0
    tr = 0.0
    adx = 0.0
    for t in range(s + 1, T):
        up, down = directional_move(high[t] - high[t - 1], low[t - 1] - low[t])
        if t < first_di:
            plus += up
            minus += down
            tr += _true_range(high, low, close, t)
            continue
        plus = plus - plus / n + up
        minus = minus - minus / n + down
        tr = tr - tr / n + _true_range(high, low, close, t)
        plus_di = 0.0
        minus_di = 0.0
        dx = 0.0
        has_dx = False  # no DX when TR or the DI sum is ~0: TA-Lib keeps the previous ADX
        if not _is_zero(tr):
            minus_di = 100.0 * (minus / tr)
            plus_di = 100.0 * (plus / tr)
            total = minus_di + plus_di
            if not _is_zero(total):
                dx = 100.0 * (abs(minus_di - plus_di) / total)
                has_dx = True
        if t <= first_adx:
            if has_dx:
                adx += dx  # the sum of the first n DX
            if t == first_adx:
                adx = adx / n
        elif has_dx:
            adx = (adx * (n - 1) + dx) / n
        if t >= off:
            o_plus[t - off] = plus_di
            o_minus[t - off] = minus_di
            if t >= first_adx:
                o_adx[t - off] = adx


@njit(**_ROW)
def _stoch_row(high, low, close, fast, slow_k, slow_d, off, o_k, o_d):
    """TA_STOCH(SMA, SMA): fast %K = (close - LL) / (HH - LL) * 100 over `fast` bars (0 when
    HH = LL), its SMA (slow %K) and that SMA's SMA (slow %D), each a TA_INT_SMA running sum
    (so every bar's %K is computed, not only the stored ones)."""
    T = close.shape[0]
    s = first_bar(close)
    k0 = s + fast - 1
    first = k0 + slow_k - 1 + slow_d - 1
    _nan_until(o_k, off, first)
    _nan_until(o_d, off, first)
    if first >= T:
        return
    ks = np.empty(slow_k)
    ds = np.empty(slow_d)
    k_total = 0.0
    d_total = 0.0
    lo_i, lo, hi_i, hi = -1, 0.0, -1, 0.0
    for t in range(k0, T):
        lo_i, lo = _track_min(low, t, t - fast + 1, lo_i, lo)
        hi_i, hi = _track_max(high, t, t - fast + 1, hi_i, hi)
        diff = hi - lo
        fast_k = (close[t] - lo) / diff * 100.0 if diff != 0.0 else 0.0
        j = t - k0
        k_total += fast_k
        ks[j % slow_k] = fast_k
        if j < slow_k - 1:
            continue
        k = k_total / slow_k
        k_total -= ks[(j + 1) % slow_k]
        jd = j - (slow_k - 1)
        d_total += k
        ds[jd % slow_d] = k
        if jd < slow_d - 1:
            continue
        d = d_total / slow_d
        d_total -= ds[(jd + 1) % slow_d]
        if t >= off:
            o_k[t - off] = k
            o_d[t - off] = d


@njit(**_ROW)
def _willr_row(high, low, close, n, off, o):
    """TA_WILLR: (HH - close) / (HH - LL) * -100 over n bars, 0 when HH = LL."""
    T = close.shape[0]
    first = first_bar(close) + n - 1
    _nan_until(o, off, first)
    lo_i, lo, hi_i, hi = -1, 0.0, -1, 0.0
    for t in range(max(first, off), T):
        lo_i, lo = _track_min(low, t, t - n + 1, lo_i, lo)
        hi_i, hi = _track_max(high, t, t - n + 1, hi_i, hi)
        diff = hi - lo
        o[t - off] = (hi - close[t]) / diff * -100.0 if diff != 0.0 else 0.0


@njit(**_ROW)
def _cci_row(high, low, close, n, off, o):
    """TA_CCI (0.8.x, #253): typical prices (h + l + c) / 3 summed in TA-Lib's circular-buffer
    order (slot (bar - first bar) % n, slots 0..n-1), the mean absolute deviation likewise; 0
    when the deviation or the distance from the mean is within 1e-14 of |mean|. No recursion:
    only the stored bars are computed."""
    T = close.shape[0]
    s = first_bar(close)
    first = s + n - 1
    _nan_until(o, off, first)
    for t in range(max(first, off), T):
        r = t - s
        avg = 0.0
        for j in range(n):
            b = s + r - (r - j) % n
            avg += (high[b] + low[b] + close[b]) / 3
        avg /= n
        dev = 0.0
        for j in range(n):
            b = s + r - (r - j) % n
            dev += abs((high[b] + low[b] + close[b]) / 3 - avg)
        dev /= n
        last = (high[t] + low[t] + close[t]) / 3 - avg
        band = 1e-14 * abs(avg)  # TA_IS_ZERO_SCALED: flat relative to the price level
        o[t - off] = last / (0.015 * dev) if abs(last) > band and dev > band else 0.0


@njit(**_ROW)
def _mfi_row(high, low, close, volume, n, off, o):
    """TA_MFI (0.8.x): money flow tp * volume split by the typical price's move, a move within
    1e-14 of |tp| + |prev tp| being none; a run of n flowless bars zeroes the sums exactly;
    100 pos / (pos + neg), pos clamped into [0, total]; 0 for an empty window."""
    T = close.shape[0]
    s = first_bar(close)
    first = s + n
    _nan_until(o, off, first)
    if first >= T:
        return
    pos = np.empty(n)
    neg = np.empty(n)
    pos_sum = 0.0
    neg_sum = 0.0
    null_run = 0
    prev = (high[s] + low[s] + close[s]) / 3.0
    for t in range(s + 1, T):
        j = (t - s - 1) % n
        if t > first:
            pos_sum -= pos[j]
            neg_sum -= neg[j]
        tp = (high[t] + low[t] + close[t]) / 3.0
        move = tp - prev
        scale = abs(tp) + abs(prev)
        prev = tp
        flow = 0.0 if abs(move) <= 1e-14 * scale else tp * volume[t]
        pos[j] = 0.0 if move < 0.0 else flow
        neg[j] = flow if move < 0.0 else 0.0
        pos_sum += pos[j]
        neg_sum += neg[j]
        null_run = null_run + 1 if flow == 0.0 else 0
        if null_run >= n:
            null_run = n
            pos_sum = 0.0
            neg_sum = 0.0
        if t >= max(first, off):
            total = pos_sum + neg_sum
            p = 0.0 if pos_sum < 0.0 else (total if pos_sum > total else pos_sum)
            o[t - off] = 0.0 if total <= 0.0 else 100.0 * (p / total)


@njit(**_ROW)
def _ret(p, t, prev, shift):
    """TA_BETA's shifted return of bar t: (p[t] - prev) / prev - shift (-shift if prev is 0)."""
    return (p[t] - prev) / prev - shift if prev != 0.0 else -shift


@njit(**_ROW)
def _beta_row(market, close, n, off, o):
    """TA_BETA(market, close, n) (0.8.x, #242/#253): the slope of the stock's bar-to-bar
    returns (y) on the market's (x; TA-Lib's inReal0 is the regressor), from running sums of
    returns measured against a shift, re-anchored to the window means (sums rebuilt) when
    n Sxx - Sx^2 < 1e-6 n Sxx, when the departing x^2 or y^2 exceeded 1e3 Sxx or 1e3 Syy, or
    every 32n bars; 0 unless n Sxx - Sx^2 > 1e-14 n Sxx."""
    T = close.shape[0]
    s = first_bar(close)
    first = s + n
    _nan_until(o, off, first)
    if first >= T:
        return
    nf = float(n)
    shift_x = _ret(market, s + 1, market[s], 0.0) if market[s] != 0.0 else 0.0
    shift_y = _ret(close, s + 1, close[s], 0.0) if close[s] != 0.0 else 0.0
    sxx = syy = sxy = sx = sy = 0.0
    leave_xx = leave_yy = 0.0
    countdown = 32 * n
    for t in range(s + 1, T):
        x = _ret(market, t, market[t - 1], shift_x)
        y = _ret(close, t, close[t - 1], shift_y)
        sxx += x * x
        syy += y * y
        sxy += x * y
        sx += x
        sy += y
        if t < first:
            continue
        scale = nf * sxx
        den = scale - sx * sx
        countdown -= 1
        u = t - n + 1  # the window's oldest return (bar u) leaves after this bar's output
        if (den < 0.000001 * scale or leave_xx > 1000.0 * sxx or leave_yy > 1000.0 * syy
                or countdown <= 0):
            countdown = 32 * n
            mx = my = 0.0
            for j in range(u, t + 1):
                if market[j - 1] != 0.0:
                    mx += (market[j] - market[j - 1]) / market[j - 1]
                if close[j - 1] != 0.0:
                    my += (close[j] - close[j - 1]) / close[j - 1]
            shift_x = mx / nf
            shift_y = my / nf
            sxx = syy = sxy = sx = sy = 0.0
            for j in range(u, t + 1):
                x = _ret(market, j, market[j - 1], shift_x)
                y = _ret(close, j, close[j - 1], shift_y)
                sxx += x * x
                syy += y * y
                sxy += x * y
                sx += x
                sy += y
            scale = nf * sxx
            den = max(scale - sx * sx, 0.0)
        x = _ret(market, u, market[u - 1], shift_x)
        y = _ret(close, u, close[u - 1], shift_y)
        if t >= off:
            o[t - off] = (nf * sxy - sx * sy) / den if den > 0.00000000000001 * scale else 0.0
        leave_xx = x * x
        leave_yy = y * y
        sxx -= x * x
        syy -= y * y
        sxy -= x * y
        sx -= x
        sy -= y


# ---------------------------------------------------------------- 2-D kernels
@njit(**_PAR)
def dmi(high, low, close, n, out):
    """talib.ADX, talib.PLUS_DI, talib.MINUS_DI (high, low, close, n) -> out[0:3]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _dmi_row(high[i], low[i], close[i], n, off, out[0, i], out[1, i], out[2, i])


@njit(**_PAR)
def stoch(high, low, close, fast, slow_k, slow_d, out):
    """talib.STOCH(high, low, close, fast, slow_k, 0, slow_d, 0) -> out[0:2] = slow %K, %D."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _stoch_row(high[i], low[i], close[i], fast, slow_k, slow_d, off, out[0, i], out[1, i])


@njit(**_PAR)
def willr(high, low, close, n, out):
    """talib.WILLR(high, low, close, n) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _willr_row(high[i], low[i], close[i], n, off, out[0, i])


@njit(**_PAR)
def cci(high, low, close, n, out):
    """talib.CCI(high, low, close, n) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _cci_row(high[i], low[i], close[i], n, off, out[0, i])


@njit(**_PAR)
def mfi(high, low, close, volume, n, out):
    """talib.MFI(high, low, close, volume, n) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _mfi_row(high[i], low[i], close[i], volume[i], n, off, out[0, i])


@njit(**_PAR)
def beta(close, market, n, out):
    """talib.BETA(market, close, n) -> out[0]: the stock's beta to the market series given on
    the stock's own bars (regressor first: see _beta_row)."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _beta_row(market[i], close[i], n, off, out[0, i])
