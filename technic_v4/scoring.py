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
    breakout   near the 20-bar high (high_20 - Close <= 2% of Close) and mom_5 > +2%: +1;
               near the 20-bar low (Close - low_20 <= 2% of Close) and mom_5 < -2%: -1

    raw        = sum(weight_i * sub_i) / sum(weight_i)            in [-1, 1]
    risk       = 0.7 + 0.3 * clip(1 - 50 * ATR_pct, 0, 1)         (calmer = closer to 1)
    TechRating = 100 * raw * risk                                 in [-100, 100]

Signal (first match): Strong Long if TechRating >= 50 and trend > 0 and momentum > 0;
Long if >= 20 and trend >= 0; Strong Short / Short mirror those; otherwise Avoid.

`explain_scores` says the same in words for given rows: each sub-score's inputs and the rule
of each of its terms that fired, the weighted sum, the risk factor, TechRating and the Signal
rule that matched. Its numbers are the arrays above (`terms`, `_combine`, `_signal_rules`:
the code `tech_rating` and `signal` run), so the explanation cannot drift from the score.

Deliberate departures from the seed's sketch, for symmetry: the lower RSI band is 35 (the
mirror of 65), not 40; the oscillator's extremes are 70/30; "near" is measured in fractions of
the close on both sides. A missing input (NaN, e.g. SMA200 for a young listing) makes its
condition neutral (0); it never makes TechRating NaN. Change any rule here and bump SCORING_VERSION.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from technic_v4.data.panel import Array1D, BoolArray

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


# Thresholds of the fixed bands (the configurable ones are fields of ScoringConfig).
RSI_BANDS = (35.0, 45.0, 55.0, 65.0)      # momentum: <=35 -1, <=45 -.5, >=55 +.5, >=65 +1
VOLUME_BANDS = (0.7, 1.2, 1.5)            # volume: <=0.7 -.5, >=1.2 +.5, >=1.5 +1
CALM_ATR, WILD_ATR = 0.01, 0.03           # volatility: ATR_pct below / above
OVERSOLD, OVERBOUGHT = 30.0, 70.0         # oscillator
RISK_FORMULA = "0.7 + 0.3 * clip(1 - 50 * ATR_pct, 0, 1)"
RATING_FORMULA = "TechRating = 100 * (sum of weight * score) / (sum of weights) * risk factor"

Row = Mapping[str, float]
Say = Callable[[Row, float], str]  # (the row's inputs, the points the rule gave) -> its text


@dataclass(frozen=True)
class Term:
    """One condition of a sub-score: the points it gives each row, the inputs it reads, and
    `say`, which words the rule that fired for a row (explain_scores)."""

    condition: str
    inputs: tuple[str, ...]
    points: Array1D
    say: Say


@dataclass(frozen=True)
class SubScore:
    """A sub-score: its terms, how they combine ("mean", "product" or "single": one term)
    and the result."""

    name: str
    combine: str
    terms: tuple[Term, ...]
    value: Array1D


def _sign(x: Array1D) -> Array1D:
    """sign(x) with NaN -> 0 (unknown counts as neutral)."""
    return np.nan_to_num(np.sign(x), nan=0.0)


def _rsi_band(rsi: Array1D) -> Array1D:
    lo, mid_lo, mid_hi, hi = RSI_BANDS
    out = np.zeros_like(rsi)
    out[rsi >= mid_hi] = 0.5
    out[rsi >= hi] = 1.0
    out[rsi <= mid_lo] = -0.5
    out[rsi <= lo] = -1.0
    return out


def terms(ind: Mapping[str, Array1D], cfg: ScoringConfig | None = None) -> dict[str, SubScore]:
    """The six sub-scores with their terms, for arrays of last-bar indicator values: what
    `sub_scores` (the numbers) and `explain_scores` (the rules, in words) both read."""
    cfg = cfg or ScoringConfig()
    close = ind["Close"]
    t = (Term("SMA20 vs SMA50", ("SMA20", "SMA50"), _sign(ind["SMA20"] - ind["SMA50"]),
              _say_sign("SMA20", "SMA50")),
         Term("SMA50 vs SMA200", ("SMA50", "SMA200"), _sign(ind["SMA50"] - ind["SMA200"]),
              _say_sign("SMA50", "SMA200")),
         Term("Close vs SMA50", ("Close", "SMA50"), _sign(close - ind["SMA50"]),
              _say_sign("Close", "SMA50")))
    trend = (t[0].points + t[1].points + t[2].points) / 3.0

    hi, lo = ind["high_20"], ind["low_20"]
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        range_pos = np.where(span > 0, 2.0 * (close - lo) / span - 1.0, 0.0)
    range_pos = np.nan_to_num(np.clip(range_pos, -1.0, 1.0), nan=0.0)
    m = (Term("RSI band", ("RSI",), _rsi_band(ind["RSI"]), _say_rsi_band),
         Term("MACD histogram", ("MACD_hist",), _sign(ind["MACD_hist"]),
              _say_sign("MACD_hist", None)),
         Term("position in the 20-bar range", ("Close", "low_20", "high_20"), range_pos,
              _say_range))
    momentum = (m[0].points + m[1].points + m[2].points) / 3.0

    vr = ind["Volume_ratio"]
    v_lo, v_mid, v_hi = VOLUME_BANDS
    vol_band = np.select([vr >= v_hi, vr >= v_mid, vr <= v_lo], [1.0, 0.5, -0.5], 0.0)
    v = (Term("Volume_ratio band", ("Volume_ratio",), vol_band, _say_volume),
         Term("direction of the 5-bar move", ("mom_5",), _sign(ind["mom_5"]),
              _say_sign("mom_5", None)))
    volume = v[0].points * v[1].points

    atr_pct = ind["ATR_pct"]
    calm = np.select([atr_pct < CALM_ATR, atr_pct > WILD_ATR], [1.0, -1.0], 0.0)
    c = (Term("ATR_pct band", ("ATR_pct",), calm, _say_calm),
         Term("direction of the trend", ("trend",), _sign(trend), _say_sign("trend", None)))
    volatility = c[0].points * c[1].points

    rsi = ind["RSI"]
    oscillator = np.select([rsi > OVERBOUGHT, rsi < OVERSOLD], [-1.0, 1.0], 0.0)
    o = (Term("RSI extremes", ("RSI",), oscillator, _say_oscillator),)

    with np.errstate(invalid="ignore", divide="ignore"):
        near_high = hi - close <= cfg.near_extreme * close
        near_low = close - lo <= cfg.near_extreme * close
    m5 = ind["mom_5"]
    breakout = np.select([near_high & (m5 > cfg.breakout_move),
                          near_low & (m5 < -cfg.breakout_move)], [1.0, -1.0], 0.0)
    b = (Term("breakout", ("Close", "high_20", "low_20", "mom_5"), breakout,
              _say_breakout(cfg)),)
    return {"trend": SubScore("trend", "mean", t, trend),
            "momentum": SubScore("momentum", "mean", m, momentum),
            "volume": SubScore("volume", "product", v, volume),
            "volatility": SubScore("volatility", "product", c, volatility),
            "oscillator": SubScore("oscillator", "single", o, oscillator),
            "breakout": SubScore("breakout", "single", b, breakout)}


def sub_scores(ind: Mapping[str, Array1D], cfg: ScoringConfig | None = None) -> dict[str, Array1D]:
    """The six sub-scores, each in [-1, 1], for arrays of last-bar indicator values."""
    return {name: s.value for name, s in terms(ind, cfg).items()}


def risk_factor(atr_pct: Array1D) -> Array1D:
    """0.7 (wild or unknown) .. 1.0 (calm): shrinks the rating of volatile names toward 0."""
    calm = np.clip(1.0 - 50.0 * np.nan_to_num(atr_pct, nan=np.inf), 0.0, 1.0)
    return 0.7 + 0.3 * calm


def _combine(subs: Mapping[str, Array1D], atr_pct: Array1D, cfg: ScoringConfig
             ) -> tuple[Array1D, Array1D, float, Array1D]:
    """(TechRating, weighted sum, total weight, risk factor): the one place they are formed."""
    total_w = float(sum(cfg.weights.values()))
    weighted = np.asarray(sum(cfg.weights[k] * v for k, v in subs.items()))
    risk = risk_factor(atr_pct)
    return 100.0 * (weighted / total_w) * risk + 0.0, weighted, total_w, risk  # no -0.0


def tech_rating(
    ind: Mapping[str, Array1D], cfg: ScoringConfig | None = None
) -> tuple[Array1D, dict[str, Array1D]]:
    """TechRating in [-100, 100] (never NaN) and the sub-scores it came from."""
    cfg = cfg or ScoringConfig()
    subs = sub_scores(ind, cfg)
    return _combine(subs, ind["ATR_pct"], cfg)[0], subs


def _signal_rules(rating: Array1D, subs: Mapping[str, Array1D], cfg: ScoringConfig
                  ) -> list[tuple[str, BoolArray]]:
    """(label, rows it matches) in the order they are tried; no match is Avoid."""
    trend, mom = subs["trend"], subs["momentum"]
    return [
        ("Strong Long", (rating >= cfg.strong) & (trend > 0) & (mom > 0)),
        ("Long", (rating >= cfg.normal) & (trend >= 0)),
        ("Strong Short", (rating <= -cfg.strong) & (trend < 0) & (mom < 0)),
        ("Short", (rating <= -cfg.normal) & (trend <= 0)),
    ]


def signal(
    rating: Array1D, subs: Mapping[str, Array1D], cfg: ScoringConfig | None = None
) -> npt.NDArray[np.object_]:
    """Strong Long / Long / Avoid / Short / Strong Short, mirror-symmetric around 0."""
    cfg = cfg or ScoringConfig()
    rules = _signal_rules(rating, subs, cfg)
    choices, labels = [m for _, m in rules], [k for k, _ in rules]
    return np.select(choices, labels, "Avoid").astype(object)


def explain_scores(ind: Mapping[str, Array1D], cfg: ScoringConfig | None = None
                   ) -> list[dict[str, Any]]:
    """For each row of `ind` (arrays of last-bar values, as `tech_rating` takes them): every
    sub-score with its weight, inputs and the rules that produced it, the weighted sum, the
    risk factor, TechRating and the Signal rule that matched. The numbers are the arrays
    `tech_rating` and `signal` compute (the same `terms`, `_combine`, `_signal_rules`), so
    `100 * weighted_sum / weight_total * risk_factor` is the row's TechRating."""
    cfg = cfg or ScoringConfig()
    parts = terms(ind, cfg)
    subs = {k: s.value for k, s in parts.items()}
    rating, weighted, total_w, risk = _combine(subs, ind["ATR_pct"], cfg)
    labels = signal(rating, subs, cfg)
    rules = _signal_rules(rating, subs, cfg)
    n = len(np.asarray(rating))
    out = []
    for i in range(n):
        row = {k: _num(ind[k][i]) for k in ind}
        row.update({k: _num(v[i]) for k, v in subs.items()})
        scores = []
        for name, part in parts.items():
            score, weight = _num(part.value[i]), float(cfg.weights[name])
            inputs = dict.fromkeys(k for term in part.terms for k in term.inputs)
            scores.append({
                "name": name, "weight": weight, "score": score,
                "weighted": _num(weight * score),
                "combine": part.combine, "inputs": {k: row[k] for k in inputs},
                "rules": [{"condition": term.condition, "points": _num(term.points[i]),
                           "inputs": {k: row[k] for k in term.inputs},
                           "text": term.say(row, _num(term.points[i]))}
                          for term in part.terms]})
        label = str(labels[i])
        matched = next((k for k, mask in rules if mask[i]), "Avoid")
        assert matched == label
        atr = row["ATR_pct"]
        out.append({
            "scoring_version": SCORING_VERSION, "sub_scores": scores,
            "weight_total": float(total_w), "weighted_sum": _num(weighted[i]),
            "risk_factor": {"value": float(risk[i]), "ATR_pct": atr, "formula": RISK_FORMULA,
                            "text": _say_risk(atr, float(risk[i]))},
            "value": _num(rating[i]), "formula": RATING_FORMULA,
            "signal": {"value": label, "rule": _say_signal(label, row, _num(rating[i]), cfg),
                       "thresholds": {"strong": cfg.strong, "normal": cfg.normal}},
        })
    return out


# -- the rules in words (explain_scores); the points always come from `terms` --------------
def _num(x: object) -> float:
    """A float without a sign on zero (-0.0 from 0 x -1 prints as "-0.0000")."""
    return float(x) + 0.0  # type: ignore[arg-type]


def _fmt(x: float) -> str:
    return f"{x:.6g}" if np.isfinite(x) else "missing"


def _pts(p: float) -> str:
    return "0" if p == 0 else f"{p:+g}"


def _pct(x: float) -> str:
    return f"{x:+.2%}" if np.isfinite(x) else "missing"


def _missing(row: Row, names: tuple[str, ...], p: float) -> str | None:
    gone = [k for k in names if not np.isfinite(row[k])]
    return f"{' and '.join(gone)} missing (too few bars): {_pts(p)}" if gone else None


def _say_sign(left: str, right: str | None) -> Say:
    """sign(left - right) (right None: sign(left)), e.g. "SMA20 101.2 > SMA50 99.8: +1"."""
    def say(row: Row, p: float) -> str:
        names = (left,) if right is None else (left, right)
        gone = _missing(row, names, p)
        if gone:
            return gone
        x = row[left]
        shown = _pct(x) if left == "mom_5" else f"{x:+.4g}" if left == "trend" else _fmt(x)
        lhs = f"{left} {shown}"
        rhs = "0" if right is None else f"{right} {_fmt(row[right])}"
        op = ">" if p > 0 else "<" if p < 0 else "="
        return f"{lhs} {op} {rhs}: {_pts(p)}"
    return say


def _say_rsi_band(row: Row, p: float) -> str:
    rsi = row["RSI"]
    lo, mid_lo, mid_hi, hi = RSI_BANDS
    r = f"RSI {rsi:.4g}"
    text = {1.0: f"{r} >= {hi:g}", 0.5: f"{mid_hi:g} <= {r} < {hi:g}",
            -0.5: f"{lo:g} < {r} <= {mid_lo:g}", -1.0: f"{r} <= {lo:g}"}.get(p)
    if text is None:
        return _missing(row, ("RSI",), p) or f"{mid_lo:g} < {r} < {mid_hi:g}: 0"
    return f"{text}: {_pts(p)}"


def _say_range(row: Row, p: float) -> str:
    c, lo, hi = row["Close"], row["low_20"], row["high_20"]
    gone = _missing(row, ("Close", "low_20", "high_20"), p)
    if gone:
        return gone
    if not hi > lo:
        return f"20-bar range low_20 {_fmt(lo)} .. high_20 {_fmt(hi)} is flat: 0"
    return (f"Close {_fmt(c)} in the 20-bar range low_20 {_fmt(lo)} .. high_20 {_fmt(hi)}, "
            f"2 * (Close - low_20) / (high_20 - low_20) - 1: {p:+.4f}")


def _say_volume(row: Row, p: float) -> str:
    vr = row["Volume_ratio"]
    v_lo, v_mid, v_hi = VOLUME_BANDS
    r = f"Volume_ratio {vr:.4g}"
    text = {1.0: f"{r} >= {v_hi:g} (heavy)", 0.5: f"{v_mid:g} <= {r} < {v_hi:g}",
            -0.5: f"{r} <= {v_lo:g} (thin)"}.get(p)
    if text is None:
        return _missing(row, ("Volume_ratio",), p) or f"{v_lo:g} < {r} < {v_mid:g}: 0"
    return f"{text}: {_pts(p)}"


def _say_calm(row: Row, p: float) -> str:
    a = row["ATR_pct"]
    r = f"ATR_pct {a:.2%}" if np.isfinite(a) else "ATR_pct"
    text = {1.0: f"{r} < {CALM_ATR:.0%} (calm)", -1.0: f"{r} > {WILD_ATR:.0%} (wild)"}.get(p)
    if text is None:
        return _missing(row, ("ATR_pct",), p) or f"{CALM_ATR:.0%} <= {r} <= {WILD_ATR:.0%}: 0"
    return f"{text}: {_pts(p)}"


def _say_oscillator(row: Row, p: float) -> str:
    r = f"RSI {row['RSI']:.4g}"
    text = {-1.0: f"{r} > {OVERBOUGHT:g} (overbought)",
            1.0: f"{r} < {OVERSOLD:g} (oversold)"}.get(p)
    if text is None:
        return _missing(row, ("RSI",), p) or f"{OVERSOLD:g} <= {r} <= {OVERBOUGHT:g}: 0"
    return f"{text}: {_pts(p)}"


def _say_breakout(cfg: ScoringConfig) -> Say:
    near, move = f"{cfg.near_extreme:.0%}", f"{cfg.breakout_move:.0%}"

    def say(row: Row, p: float) -> str:
        c, hi, lo, m5 = row["Close"], row["high_20"], row["low_20"], row["mom_5"]
        high = f"high_20 {_fmt(hi)} (dist_high_20 {_dist(c, hi)})"
        low = f"low_20 {_fmt(lo)} (dist_low_20 {_dist(c, lo)})"
        if p > 0:
            return (f"Close {_fmt(c)} near the 20-bar {high}: high_20 - Close <= {near} of "
                    f"Close, and mom_5 {_pct(m5)} > +{move}: +1")
        if p < 0:
            return (f"Close {_fmt(c)} near the 20-bar {low}: Close - low_20 <= {near} of "
                    f"Close, and mom_5 {_pct(m5)} < -{move}: -1")
        gone = _missing(row, ("Close", "high_20", "low_20", "mom_5"), p)
        if gone:
            return gone
        return (f"no breakout: Close {_fmt(c)}, 20-bar {high}, {low}, mom_5 {_pct(m5)} (needs "
                f"high_20 - Close or Close - low_20 <= {near} of Close, and a move beyond "
                f"{move} that way): 0")
    return say


def _dist(close: float, extreme: float) -> str:
    """The result columns' dist_high_20 / dist_low_20: Close / extreme - 1, as a percentage."""
    return _pct(close / extreme - 1.0) if extreme != 0.0 else "missing"


def _say_risk(atr: float, risk: float) -> str:
    if not np.isfinite(atr):
        return f"ATR_pct missing: counted as wild, risk factor {risk:.4g}"
    calm = min(max(1.0 - 50.0 * atr, 0.0), 1.0)
    return (f"ATR_pct {atr:.2%}: 0.7 + 0.3 * clip(1 - 50 * {atr:.4g}, 0, 1) = 0.7 + 0.3 * "
            f"{calm:.4g} = {risk:.4g}")


def _say_signal(label: str, row: Row, rating: float, cfg: ScoringConfig) -> str:
    r, t, m = f"TechRating {rating:.2f}", f"trend {row['trend']:+.3g}", \
        f"momentum {row['momentum']:+.3g}"
    s, n = f"{cfg.strong:g}", f"{cfg.normal:g}"
    if label == "Strong Long":
        return f"{r} >= {s} and {t} > 0 and {m} > 0"
    if label == "Long":
        return f"{r} >= {n} and {t} >= 0 (not Strong Long)"
    if label == "Strong Short":
        return f"{r} <= -{s} and {t} < 0 and {m} < 0"
    if label == "Short":
        return f"{r} <= -{n} and {t} <= 0 (not Strong Short)"
    if rating >= cfg.normal:
        return f"{r} >= {n} but {t} < 0 (no rule matched)"
    if rating <= -cfg.normal:
        return f"{r} <= -{n} but {t} > 0 (no rule matched)"
    return f"-{n} < {r} < {n} (no rule matched)"
