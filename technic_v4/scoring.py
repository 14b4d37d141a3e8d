"""TechRating and Signal: the one, versioned place where indicator values become a score.

Six sub-scores, each in [-1, +1], positive = bullish, negative = bearish, 0 = neutral or unknown.
Each condition is counted once, and every rule has its mirror image, so a falling stock earns
exactly the negative of the score its rising twin earns and short signals are reachable.

    trend      mean of sign(SMA20 - SMA50), sign(SMA50 - SMA200), sign(Close - SMA50)
    momentum   mean of  RSI band   (>=65: +1, >=55: +.5, 45..55: 0, <=45: -.5, <=35: -1)
                        sign(MACD_hist)
                        position in the 20-bar range, 2*(C - L20)/(H20 - L20) - 1
    volume     Volume_ratio band (>=1.5: 1, >=1.2: .5, <=0.7: -.5, else 0) x sign(mom_5):
               heavy volume confirms the 5-bar move, thin volume doubts it
    volatility calm (ATR_pct < 1%): +1, wild (> 3%): -1, else 0; times sign(trend), so a calm
               trend is trusted more in either direction
    oscillator overbought RSI > 70: -1, oversold RSI < 30: +1 (mean-reversion risk)
    breakout   within 2% of the 20-bar high and mom_5 > +2%: +1;
               within 2% of the 20-bar low  and mom_5 < -2%: -1

    raw        = sum(weight_i * sub_i) / sum(weight_i)            in [-1, 1]
    risk       = 0.7 + 0.3 * clip(1 - 50 * ATR_pct, 0, 1)         (calmer = closer to 1)
    TechRating = 100 * raw * risk                                 in [-100, 100]

Signal (first match): Strong Long if TechRating >= 50 and trend > 0 and momentum > 0;
Long if >= 20 and trend >= 0; Strong Short / Short mirror those; otherwise Avoid.

Deliberate departures from the seed's sketch, for symmetry: the lower RSI band is 35 (the
mirror of 65), not 40; the oscillator's extremes are 70/30; "near" is measured in fractions of
the close on both sides. A missing input (NaN, e.g. SMA200 for a young listing) makes its
condition neutral (0); it never makes TechRating NaN. Change any rule here and bump SCORING_VERSION.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from technic_v4.data.panel import Array1D

SCORING_VERSION = "1.0"
SIGNALS = ("Strong Long", "Long", "Avoid", "Short", "Strong Short")

# Indicator outputs the score reads; the scanner computes these.
SCORING_INPUTS = (
    "Close", "SMA20", "SMA50", "SMA200", "RSI", "MACD_hist", "high_20", "low_20",
    "Volume_ratio", "mom_5", "ATR_pct",
)


@dataclass(frozen=True)
class ScoringConfig:
    """Weights and thresholds; the defaults are the documented rating."""

    weights: dict[str, float] = field(default_factory=lambda: {
        "trend": 3.0, "momentum": 3.0, "volume": 2.0,
        "volatility": 1.0, "oscillator": 1.0, "breakout": 1.0,
    })
    strong: float = 50.0
    normal: float = 20.0
    near_extreme: float = 0.02
    breakout_move: float = 0.02

    def as_dict(self) -> dict:
        return {"version": SCORING_VERSION, **asdict(self)}


def _sign(x: Array1D) -> Array1D:
    """sign(x) with NaN -> 0 (unknown counts as neutral)."""
    return np.nan_to_num(np.sign(x), nan=0.0)


def _rsi_band(rsi: Array1D) -> Array1D:
    out = np.zeros_like(rsi)
    out[rsi >= 55] = 0.5
    out[rsi >= 65] = 1.0
    out[rsi <= 45] = -0.5
    out[rsi <= 35] = -1.0
    return out


def sub_scores(ind: Mapping[str, Array1D], cfg: ScoringConfig | None = None) -> dict[str, Array1D]:
    """The six sub-scores, each in [-1, 1], for arrays of last-bar indicator values."""
    cfg = cfg or ScoringConfig()
    close = ind["Close"]
    trend = (_sign(ind["SMA20"] - ind["SMA50"]) + _sign(ind["SMA50"] - ind["SMA200"])
             + _sign(close - ind["SMA50"])) / 3.0

    hi, lo = ind["high_20"], ind["low_20"]
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        range_pos = np.where(span > 0, 2.0 * (close - lo) / span - 1.0, 0.0)
    range_pos = np.nan_to_num(np.clip(range_pos, -1.0, 1.0), nan=0.0)
    momentum = (_rsi_band(ind["RSI"]) + _sign(ind["MACD_hist"]) + range_pos) / 3.0

    vr = ind["Volume_ratio"]
    vol_band = np.select([vr >= 1.5, vr >= 1.2, vr <= 0.7], [1.0, 0.5, -0.5], 0.0)
    move = _sign(ind["mom_5"])
    volume = vol_band * move

    atr_pct = ind["ATR_pct"]
    calm = np.select([atr_pct < 0.01, atr_pct > 0.03], [1.0, -1.0], 0.0)
    volatility = calm * _sign(trend)

    rsi = ind["RSI"]
    oscillator = np.select([rsi > 70, rsi < 30], [-1.0, 1.0], 0.0)

    with np.errstate(invalid="ignore", divide="ignore"):
        near_high = hi - close <= cfg.near_extreme * close
        near_low = close - lo <= cfg.near_extreme * close
    m5 = ind["mom_5"]
    breakout = np.select([near_high & (m5 > cfg.breakout_move),
                          near_low & (m5 < -cfg.breakout_move)], [1.0, -1.0], 0.0)
    return {"trend": trend, "momentum": momentum, "volume": volume,
            "volatility": volatility, "oscillator": oscillator, "breakout": breakout}


def risk_factor(atr_pct: Array1D) -> Array1D:
    """0.7 (wild or unknown) .. 1.0 (calm): shrinks the rating of volatile names toward 0."""
    calm = np.clip(1.0 - 50.0 * np.nan_to_num(atr_pct, nan=np.inf), 0.0, 1.0)
    return 0.7 + 0.3 * calm


def tech_rating(
    ind: Mapping[str, Array1D], cfg: ScoringConfig | None = None
) -> tuple[Array1D, dict[str, Array1D]]:
    """TechRating in [-100, 100] (never NaN) and the sub-scores it came from."""
    cfg = cfg or ScoringConfig()
    subs = sub_scores(ind, cfg)
    total_w = sum(cfg.weights.values())
    raw = sum(cfg.weights[k] * v for k, v in subs.items()) / total_w
    return 100.0 * raw * risk_factor(ind["ATR_pct"]), subs


def signal(
    rating: Array1D, subs: Mapping[str, Array1D], cfg: ScoringConfig | None = None
) -> npt.NDArray[np.object_]:
    """Strong Long / Long / Avoid / Short / Strong Short, mirror-symmetric around 0."""
    cfg = cfg or ScoringConfig()
    trend, mom = subs["trend"], subs["momentum"]
    choices = [
        (rating >= cfg.strong) & (trend > 0) & (mom > 0),
        (rating >= cfg.normal) & (trend >= 0),
        (rating <= -cfg.strong) & (trend < 0) & (mom < 0),
        (rating <= -cfg.normal) & (trend <= 0),
    ]
    labels = ["Strong Long", "Long", "Strong Short", "Short"]
    return np.select(choices, labels, "Avoid").astype(object)
