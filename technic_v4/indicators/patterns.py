"""Numba kernels for TA-Lib's candlestick patterns (CDL*), same conventions as `kernels.py`.

Each kernel fills out[0] with TA-Lib's integer answer as a float: +100 bullish, -100 bearish,
0 none (CDLENGULFING answers +-80 when the two bodies share an end), NaN before the pattern's
first bar (TA-Lib's lookback). Rows are PACKED; the running sums start at the row's first bar
+ lookback, as TA-Lib's do on the symbol's own bar list, so the comparisons see the very same
rounding and the answers are equal, not merely close.

TA-Lib's candle settings: "long", "short", "near", ... compare a candle part with `factor`
times the average of a range over the `period` candles BEFORE the one judged (period 0: the
candle's own range). The defaults (TA_RestoreCandleDefaultSettings; the library this project
tests against runs with them):

    setting          range       period  factor     setting          range     period  factor
    BodyLong         real body   10      1.0        ShadowVeryShort  high-low  10      0.1
    BodyShort        real body   10      1.0        Near             high-low   5      0.2
    BodyDoji         high-low    10      0.1        Far              high-low   5      0.6
    ShadowLong       real body    0      1.0

TA_CANDLEAVERAGE = factor * (sum / period) (or factor * the candle's own range when period is
0); each running sum is kept as TA-Lib keeps it: summed over the first window, then
`sum += range(new) - range(leaving)` after every candle. Only CDLMORNINGSTAR fuses a
multiply-add (its penetration test, TA-Lib's FMA inventory); CDLEVENINGSTAR's is a
subtraction and is not fused.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from technic_v4.indicators.kernels import _nan_until, first_bar, fma

_ROW = {"cache": True, "error_model": "numpy"}
_PAR = {"parallel": True, "cache": True, "error_model": "numpy"}

# TA-Lib's lookback with the default candle settings (a pattern's min_bars = lookback + 1)
LB_ENGULFING = 2
LB_DOJI = 10
LB_HAMMER = 11
LB_SHOOTINGSTAR = 11
LB_STAR = 12  # CDLMORNINGSTAR and CDLEVENINGSTAR
LB_3WHITESOLDIERS = 12
LB_3BLACKCROWS = 13


# ---------------------------------------------------------------- candle parts
@njit(**_ROW)
def _body(o, c, t):
    """TA_REALBODY: |close - open|."""
    return abs(c[t] - o[t])


@njit(**_ROW)
def _hl(h, l, t):  # noqa: E741 (low)
    """TA_HIGHLOWRANGE: high - low."""
    return h[t] - l[t]


@njit(**_ROW)
def _upper(o, h, c, t):
    """TA_UPPERSHADOW: high - the body's top."""
    return h[t] - (c[t] if c[t] >= o[t] else o[t])


@njit(**_ROW)
def _lower(o, l, c, t):  # noqa: E741 (low)
    """TA_LOWERSHADOW: the body's bottom - low."""
    return (o[t] if c[t] >= o[t] else c[t]) - l[t]


@njit(**_ROW)
def _white(o, c, t):
    """TA_CANDLECOLOR == 1 (close >= open; an unchanged candle counts as white)."""
    return c[t] >= o[t]


@njit(**_ROW)
def _avg(total, period, factor):
    """TA_CANDLEAVERAGE of a real-body / high-low setting with period > 0."""
    return factor * (total / period) / 1.0


# ---------------------------------------------------------------- one symbol's row
@njit(**_ROW)
def _engulfing_row(o, h, l, c, off, out):  # noqa: E741 (low)
    """TA_CDLENGULFING: a white (black) body engulfing the prior black (white) body, one end
    allowed to match: +-100, or +-80 when an end matches."""
    T = c.shape[0]
    start = first_bar(c) + LB_ENGULFING
    _nan_until(out, off, start)
    for i in range(max(start, off), T):
        bull = (_white(o, c, i) and not _white(o, c, i - 1)
                and ((c[i] >= o[i - 1] and o[i] < c[i - 1])
                     or (c[i] > o[i - 1] and o[i] <= c[i - 1])))
        bear = (not _white(o, c, i) and _white(o, c, i - 1)
                and ((o[i] >= c[i - 1] and c[i] < o[i - 1])
                     or (o[i] > c[i - 1] and c[i] <= o[i - 1])))
        value = 0.0
        if bull or bear:
            sign = 1.0 if _white(o, c, i) else -1.0
            value = sign * (100.0 if o[i] != c[i - 1] and c[i] != o[i - 1] else 80.0)
        out[i - off] = value


@njit(**_ROW)
def _doji_row(o, h, l, c, off, out):  # noqa: E741 (low)
    """TA_CDLDOJI: body <= BodyDoji (0.1 x the mean high-low of the 10 prior candles): 100."""
    T = c.shape[0]
    start = first_bar(c) + LB_DOJI
    _nan_until(out, off, start)
    if start >= T:
        return
    doji = 0.0
    for i in range(start - 10, start):
        doji += _hl(h, l, i)
    for i in range(start, T):
        if i >= off:
            out[i - off] = 100.0 if _body(o, c, i) <= _avg(doji, 10, 0.1) else 0.0
        doji += _hl(h, l, i) - _hl(h, l, i - 10)


@njit(**_ROW)
def _hammer_row(o, h, l, c, off, out):  # noqa: E741 (low)
    """TA_CDLHAMMER: short body, lower shadow longer than the body, very short upper shadow,
    body's bottom near or below the prior candle's low (Near on the prior candle): 100."""
    T = c.shape[0]
    start = first_bar(c) + LB_HAMMER
    _nan_until(out, off, start)
    if start >= T:
        return
    body = 0.0
    shadow = 0.0
    near = 0.0
    for i in range(start - 10, start):
        body += _body(o, c, i)
    for i in range(start - 10, start):
        shadow += _hl(h, l, i)
    for i in range(start - 6, start - 1):
        near += _hl(h, l, i)
    for i in range(start, T):
        if i >= off:
            hit = (_body(o, c, i) < _avg(body, 10, 1.0)
                   and _lower(o, l, c, i) > 1.0 * _body(o, c, i) / 1.0
                   and _upper(o, h, c, i) < _avg(shadow, 10, 0.1)
                   and min(c[i], o[i]) <= l[i - 1] + _avg(near, 5, 0.2))
            out[i - off] = 100.0 if hit else 0.0
        body += _body(o, c, i) - _body(o, c, i - 10)
        shadow += _hl(h, l, i) - _hl(h, l, i - 10)
        near += _hl(h, l, i - 1) - _hl(h, l, i - 6)


@njit(**_ROW)
def _shooting_star_row(o, h, l, c, off, out):  # noqa: E741 (low)
    """TA_CDLSHOOTINGSTAR: body gapping up from the prior body, short body, upper shadow
    longer than the body, very short lower shadow: -100."""
    T = c.shape[0]
    start = first_bar(c) + LB_SHOOTINGSTAR
    _nan_until(out, off, start)
    if start >= T:
        return
    body = 0.0
    shadow = 0.0
    for i in range(start - 10, start):
        body += _body(o, c, i)
    for i in range(start - 10, start):
        shadow += _hl(h, l, i)
    for i in range(start, T):
        if i >= off:
            hit = (min(o[i], c[i]) > max(o[i - 1], c[i - 1])
                   and _body(o, c, i) < _avg(body, 10, 1.0)
                   and _upper(o, h, c, i) > 1.0 * _body(o, c, i) / 1.0
                   and _lower(o, l, c, i) < _avg(shadow, 10, 0.1))
            out[i - off] = -100.0 if hit else 0.0
        body += _body(o, c, i) - _body(o, c, i - 10)
        shadow += _hl(h, l, i) - _hl(h, l, i - 10)


@njit(**_ROW)
def _star_row(o, h, l, c, penetration, bullish, off, out):  # noqa: E741 (low)
    """TA_CDLMORNINGSTAR (bullish) / TA_CDLEVENINGSTAR: a long black (white) body, a short
    body gapping away from it, then a white (black) body longer than short closing more than
    `penetration` of the first body back into it: +100 / -100."""
    T = c.shape[0]
    start = first_bar(c) + LB_STAR
    _nan_until(out, off, start)
    if start >= T:
        return
    long1 = 0.0
    short2 = 0.0
    short3 = 0.0
    for i in range(start - 12, start - 2):
        long1 += _body(o, c, i)
    for i in range(start - 11, start - 1):
        short2 += _body(o, c, i)
        short3 += _body(o, c, i + 1)
    for i in range(start, T):
        if i >= off:
            if bullish:
                shape = (not _white(o, c, i - 2) and _white(o, c, i)
                         and max(o[i - 1], c[i - 1]) < min(o[i - 2], c[i - 2])
                         and c[i] > fma(_body(o, c, i - 2), penetration, c[i - 2]))
            else:
                shape = (_white(o, c, i - 2) and not _white(o, c, i)
                         and min(o[i - 1], c[i - 1]) > max(o[i - 2], c[i - 2])
                         and c[i] < c[i - 2] - _body(o, c, i - 2) * penetration)
            hit = (shape
                   and _body(o, c, i - 2) > _avg(long1, 10, 1.0)
                   and _body(o, c, i - 1) <= _avg(short2, 10, 1.0)
                   and _body(o, c, i) > _avg(short3, 10, 1.0))
            out[i - off] = (100.0 if bullish else -100.0) if hit else 0.0
        long1 += _body(o, c, i - 2) - _body(o, c, i - 12)
        short2 += _body(o, c, i - 1) - _body(o, c, i - 11)
        short3 += _body(o, c, i) - _body(o, c, i - 10)


@njit(**_ROW)
def _three_soldiers_row(o, h, l, c, off, out):  # noqa: E741 (low)
    """TA_CDL3WHITESOLDIERS: three white candles with very short upper shadows, higher closes,
    each opening above the prior open and within / near (Near) the prior body, none far
    (Far) shorter than the one before, the third not short: 100."""
    T = c.shape[0]
    start = first_bar(c) + LB_3WHITESOLDIERS
    _nan_until(out, off, start)
    if start >= T:
        return
    sh = np.zeros(3)  # ShadowVeryShort sums for candles i, i-1, i-2
    near = np.zeros(3)
    far = np.zeros(3)
    body = 0.0
    for i in range(start - 10, start):
        for k in range(2, -1, -1):
            sh[k] += _hl(h, l, i - k)
    for i in range(start - 5, start):
        near[2] += _hl(h, l, i - 2)
        near[1] += _hl(h, l, i - 1)
    for i in range(start - 5, start):
        far[2] += _hl(h, l, i - 2)
        far[1] += _hl(h, l, i - 1)
    for i in range(start - 10, start):
        body += _body(o, c, i)
    for i in range(start, T):
        if i >= off:
            hit = (_white(o, c, i - 2) and _upper(o, h, c, i - 2) < _avg(sh[2], 10, 0.1)
                   and _white(o, c, i - 1) and _upper(o, h, c, i - 1) < _avg(sh[1], 10, 0.1)
                   and _white(o, c, i) and _upper(o, h, c, i) < _avg(sh[0], 10, 0.1)
                   and c[i] > c[i - 1] and c[i - 1] > c[i - 2]
                   and o[i - 1] > o[i - 2] and o[i - 1] <= c[i - 2] + _avg(near[2], 5, 0.2)
                   and o[i] > o[i - 1] and o[i] <= c[i - 1] + _avg(near[1], 5, 0.2)
                   and _body(o, c, i - 1) > _body(o, c, i - 2) - _avg(far[2], 5, 0.6)
                   and _body(o, c, i) > _body(o, c, i - 1) - _avg(far[1], 5, 0.6)
                   and _body(o, c, i) > _avg(body, 10, 1.0))
            out[i - off] = 100.0 if hit else 0.0
        for k in range(2, -1, -1):
            sh[k] = sh[k] + (_hl(h, l, i - k) - _hl(h, l, i - 10 - k))
        for k in range(2, 0, -1):
            far[k] = far[k] + (_hl(h, l, i - k) - _hl(h, l, i - 5 - k))
            near[k] = near[k] + (_hl(h, l, i - k) - _hl(h, l, i - 5 - k))
        body += _body(o, c, i) - _body(o, c, i - 10)


@njit(**_ROW)
def _three_crows_row(o, h, l, c, off, out):  # noqa: E741 (low)
    """TA_CDL3BLACKCROWS: a white candle, then three black candles with declining closes,
    each opening within the prior body, very short lower shadows, the first closing under
    the white candle's high: -100."""
    T = c.shape[0]
    start = first_bar(c) + LB_3BLACKCROWS
    _nan_until(out, off, start)
    if start >= T:
        return
    sh = np.zeros(3)
    for i in range(start - 10, start):
        for k in range(2, -1, -1):
            sh[k] += _hl(h, l, i - k)
    for i in range(start, T):
        if i >= off:
            hit = (_white(o, c, i - 3) and not _white(o, c, i - 2)
                   and not _white(o, c, i - 1) and not _white(o, c, i)
                   and o[i - 1] < o[i - 2] and o[i - 1] > c[i - 2]
                   and o[i] < o[i - 1] and o[i] > c[i - 1]
                   and h[i - 3] > c[i - 2] and c[i - 2] > c[i - 1] and c[i - 1] > c[i]
                   and _lower(o, l, c, i - 2) < _avg(sh[2], 10, 0.1)
                   and _lower(o, l, c, i - 1) < _avg(sh[1], 10, 0.1)
                   and _lower(o, l, c, i) < _avg(sh[0], 10, 0.1))
            out[i - off] = -100.0 if hit else 0.0
        for k in range(2, -1, -1):
            sh[k] = sh[k] + (_hl(h, l, i - k) - _hl(h, l, i - 10 - k))


# ---------------------------------------------------------------- 2-D kernels
@njit(**_PAR)
def engulfing(open_, high, low, close, out):
    """talib.CDLENGULFING(open, high, low, close) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _engulfing_row(open_[i], high[i], low[i], close[i], off, out[0, i])


@njit(**_PAR)
def doji(open_, high, low, close, out):
    """talib.CDLDOJI(open, high, low, close) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _doji_row(open_[i], high[i], low[i], close[i], off, out[0, i])


@njit(**_PAR)
def hammer(open_, high, low, close, out):
    """talib.CDLHAMMER(open, high, low, close) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _hammer_row(open_[i], high[i], low[i], close[i], off, out[0, i])


@njit(**_PAR)
def shooting_star(open_, high, low, close, out):
    """talib.CDLSHOOTINGSTAR(open, high, low, close) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _shooting_star_row(open_[i], high[i], low[i], close[i], off, out[0, i])


@njit(**_PAR)
def morning_star(open_, high, low, close, penetration, out):
    """talib.CDLMORNINGSTAR(open, high, low, close, penetration) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _star_row(open_[i], high[i], low[i], close[i], penetration, True, off, out[0, i])


@njit(**_PAR)
def evening_star(open_, high, low, close, penetration, out):
    """talib.CDLEVENINGSTAR(open, high, low, close, penetration) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _star_row(open_[i], high[i], low[i], close[i], penetration, False, off, out[0, i])


@njit(**_PAR)
def three_white_soldiers(open_, high, low, close, out):
    """talib.CDL3WHITESOLDIERS(open, high, low, close) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _three_soldiers_row(open_[i], high[i], low[i], close[i], off, out[0, i])


@njit(**_PAR)
def three_black_crows(open_, high, low, close, out):
    """talib.CDL3BLACKCROWS(open, high, low, close) -> out[0]."""
    off = close.shape[1] - out.shape[2]
    for i in prange(close.shape[0]):
        _three_crows_row(open_[i], high[i], low[i], close[i], off, out[0, i])
