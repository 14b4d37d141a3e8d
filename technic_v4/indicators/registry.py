"""The indicator table: one entry per indicator, read by the engine, the scan and the tests.

An entry says which inputs a kernel reads (Panel fields, or an extra input the caller supplies:
`EXTRA_INPUTS`), its parameters, the output columns it produces and `min_bars`, the bars a
symbol needs for the first non-NaN value (TA-Lib's lookback + 1; `output_min_bars` where one
output starts later than another, as ADX after its DIs). Adding an indicator = one kernel in
`kernels.py` / `oscillators.py` / `patterns.py` + one entry here + one TA-Lib reference in
`tests/test_indicators_talib.py` (the tests are parametrized over this table and fail for an
entry without a reference).

Which outputs run: `DEFAULT_OUTPUTS` (the scan's set, what `compute_indicators(panel)` gives)
or any names up to `ALL_OUTPUTS`. The default set is frozen so adding entries never slows the
scan or changes its columns.

History to load: `required_bars()` is the minimum for a value at all; `convergence_bars()`
is what each output's own recursion needs to equal the value on the symbol's FULL history.
Entries with a `decay` are recursions whose value depends on where the loaded history starts
(TA-Lib's "unstable period"): the seed's weight in the value after k more bars is at most
`gain * k^(order-1) * decay^k`, and the output settles when that is below SETTLE_WEIGHT
(1e-14): then a seed of another price level and a far louder volatility regime (the property
test goes to 30x either way; a ratio like RSI amplifies the seed's weight) moves it by < 1e-9
relative.
  - RSI, ATR, PLUS_DI / MINUS_DI: Wilder 13/14 -> 435 bars past the first value (RSI 450);
  - ADX: Wilder smoothing of a Wilder-smoothed DX, the same rate twice: k (13/14)^k -> 548;
  - EMA n: (n-1)/(n+1) -> EMA9 154, EMA21 360, EMA50 856 bars;
  - MACD: the slow EMA (25/27) then the signal EMA (0.8), gain 1/(1 - 0.8/(25/27)) -> 479.
`anchored=True` (OBV, days since a cross) never settles: the value is a running total (or a
count) from the first bar, so it needs the whole history (`convergence_bars` is None).
Running sums (SMA, BETA, STOCH's smoothing, the candle averages) depend on the start only in
their last bits, as TA-Lib's do: their convergence is their minimum. The engine computes on
whatever it is given; the scan loads `convergence_bars()` of what it reads
(technic_v4/scan/evaluate.py), and whole histories for rows with fewer own bars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from technic_v4.data.panel import FIELDS, Array2D
from technic_v4.indicators import kernels, oscillators, patterns

Array3D = npt.NDArray[np.float64]  # (outputs, N symbols, W sessions)

# The indicator definitions' version, recorded in every scan result (point-in-time scans):
# bump it when a kernel, a parameter or an entry of this table changes a value.
INDICATORS_VERSION = "1.2"  # 1.2: longer settling windows (values on full history)
SETTLE_WEIGHT = 1e-14  # the seed's weight below which a recursion equals its full history
WILDER_14 = 13 / 14


@dataclass(frozen=True, eq=False)
class IndicatorSpec:
    """One kernel call: `kernel(*inputs, *params.values(), out)` fills out[k] with output k."""

    name: str
    inputs: tuple[str, ...]
    params: Mapping[str, int | float]
    outputs: tuple[str, ...]
    min_bars: int
    kernel: Callable[..., None] = field(repr=False)
    decay: float | None = None  # per-bar factor of the seed's weight (recursions only)
    order: int = 1              # recursions of the same rate stacked (ADX: 2)
    gain: float = 1.0           # the seed's weight at its own bar, relative
    anchored: bool = False
    output_min_bars: Mapping[str, int] = field(default_factory=dict)

    @property
    def converges(self) -> bool:
        """Whether the value depends on where the loaded history starts (a recursion)."""
        return self.decay is not None

    def bars_needed(self, output: str) -> int:
        """Bars a symbol needs for `output`'s first value (TA-Lib's lookback + 1)."""
        return self.output_min_bars.get(output, self.min_bars)

    def settle_bars(self, output: str) -> int | None:
        """Bars after which `output` equals its full-history value (module docstring);
        None for an anchored output (only the whole history gives it)."""
        if self.anchored:
            return None
        first = self.bars_needed(output)
        if self.decay is None:
            return first
        k = 1
        log_d, target = math.log(self.decay), math.log(SETTLE_WEIGHT / self.gain)
        while (self.order - 1) * math.log(k) + k * log_d >= target:
            k += 1
        return first + k

    def run(self, arrays: Mapping[str, Array2D], width: int) -> Array3D:
        """Run on packed (N, T) field arrays: (len(outputs), N, width), the last `width`
        sessions of every output (width = T: full history; 1: last-bar values)."""
        n = arrays[self.inputs[0]].shape[0]
        out = np.empty((len(self.outputs), n, width))
        self.kernel(*(arrays[f] for f in self.inputs), *self.params.values(), out)
        return out


def _mom(n: int) -> IndicatorSpec:
    return IndicatorSpec(f"mom_{n}", ("close",), {"n": n}, (f"mom_{n}",), n + 1, kernels.momentum)


def _sma(n: int) -> IndicatorSpec:
    return IndicatorSpec(f"SMA{n}", ("close",), {"n": n}, (f"SMA{n}",), n, kernels.sma)


def _ema(n: int) -> IndicatorSpec:
    return IndicatorSpec(f"EMA{n}", ("close",), {"n": n}, (f"EMA{n}",), n, kernels.ema,
                         decay=(n - 1) / (n + 1))


def _perf(label: str, n: int) -> IndicatorSpec:
    name = f"perf_{label}"
    return IndicatorSpec(name, ("close",), {"n": n}, (name,), n + 1, kernels.momentum)


def _candle(name: str, kernel: Callable[..., None], lookback: int,
            **params: float) -> IndicatorSpec:
    return IndicatorSpec(name, ("open", "high", "low", "close"), params, (name,), lookback + 1,
                         kernel)


HLC = ("high", "low", "close")


_SPECS = (
    IndicatorSpec("RSI", ("close",), {"n": 14}, ("RSI",), 15, kernels.rsi, decay=WILDER_14),
    IndicatorSpec(
        "MACD",
        ("close",),
        {"fast": 12, "slow": 26, "signal": 9},
        ("MACD", "MACD_signal", "MACD_hist"),
        34,
        kernels.macd,
        decay=25 / 27,  # the slow EMA; the signal EMA (0.8) after it multiplies the weight
        gain=1 / (1 - 0.8 / (25 / 27)),
    ),
    IndicatorSpec(
        "BBANDS",
        ("close",),
        {"n": 20, "nbdev": 2.0},
        ("BB_upper", "BB_middle", "BB_lower", "BB_width"),
        20,
        kernels.bbands,
    ),
    IndicatorSpec(
        "ATR",
        ("high", "low", "close"),
        {"n": 14},
        ("ATR", "ATR_pct"),
        15,
        kernels.atr,
        decay=WILDER_14,
    ),
    IndicatorSpec(
        "VOLUME", ("volume",), {"n": 20}, ("Volume_SMA20", "Volume_ratio"), 20, kernels.volume_sma
    ),
    *(_mom(n) for n in (5, 21, 63, 126)),
    *(_sma(n) for n in (20, 50, 200)),
    IndicatorSpec(
        "HIGH20",
        ("high", "close"),
        {"n": 20, "sign": 1},
        ("high_20", "dist_high_20"),
        20,
        kernels.rolling_extreme,
    ),
    IndicatorSpec(
        "LOW20",
        ("low", "close"),
        {"n": 20, "sign": -1},
        ("low_20", "dist_low_20"),
        20,
        kernels.rolling_extreme,
    ),
    # ---- issue 13: indicators traders filter on (not in DEFAULT_OUTPUTS)
    IndicatorSpec(
        "ADX",
        HLC,
        {"n": 14},
        ("ADX", "PLUS_DI", "MINUS_DI"),
        28,
        oscillators.dmi,
        decay=WILDER_14,
        order=2,
        output_min_bars={"PLUS_DI": 15, "MINUS_DI": 15},
    ),
    IndicatorSpec(
        "STOCH",
        HLC,
        {"fast": 14, "slow_k": 3, "slow_d": 3},
        ("STOCH_K", "STOCH_D"),
        18,
        oscillators.stoch,
    ),
    IndicatorSpec("WILLR", HLC, {"n": 14}, ("WILLR",), 14, oscillators.willr),
    IndicatorSpec("CCI", HLC, {"n": 20}, ("CCI",), 20, oscillators.cci),
    IndicatorSpec("MFI", (*HLC, "volume"), {"n": 14}, ("MFI",), 15, oscillators.mfi),
    IndicatorSpec("OBV", ("close", "volume"), {}, ("OBV",), 1, kernels.obv, anchored=True),
    IndicatorSpec("ROC", ("close",), {"n": 10}, ("ROC",), 11, kernels.roc),
    *(_ema(n) for n in (9, 21, 50)),
    IndicatorSpec(
        "HIGH52W",
        ("high", "close"),
        {"n": 252, "sign": 1},
        ("high_52w", "dist_high_52w"),
        252,
        kernels.rolling_extreme,
    ),
    IndicatorSpec(
        "LOW52W",
        ("low", "close"),
        {"n": 252, "sign": -1},
        ("low_52w", "dist_low_52w"),
        252,
        kernels.rolling_extreme,
    ),
    IndicatorSpec("GAP", ("open", "close"), {}, ("gap_pct",), 2, kernels.gap),
    *(_perf(label, n) for label, n in (("1w", 5), ("1m", 21), ("3m", 63), ("6m", 126),
                                       ("1y", 252))),
    IndicatorSpec(
        "VOLUME50",
        ("volume",),
        {"n": 50},
        ("avg_volume_50", "rel_volume_50"),
        50,
        kernels.volume_sma,
    ),
    IndicatorSpec(
        "SMA_CROSS",
        ("close",),
        {"fast": 50, "slow": 200},
        ("days_since_golden_cross", "days_since_death_cross"),
        201,  # the first bar that can be a cross: both SMAs on it and on the bar before
        kernels.sma_cross,
        anchored=True,  # counts bars since the last cross, however long ago
    ),
    IndicatorSpec("BETA", ("close", "market"), {"n": 60}, ("beta_60",), 61, oscillators.beta),
    IndicatorSpec("RS", ("close",), {}, ("rs_raw",), 253, kernels.rs_raw),
    _candle("CDLENGULFING", patterns.engulfing, patterns.LB_ENGULFING),
    _candle("CDLHAMMER", patterns.hammer, patterns.LB_HAMMER),
    _candle("CDLSHOOTINGSTAR", patterns.shooting_star, patterns.LB_SHOOTINGSTAR),
    _candle("CDLDOJI", patterns.doji, patterns.LB_DOJI),
    _candle("CDLMORNINGSTAR", patterns.morning_star, patterns.LB_STAR, penetration=0.3),
    _candle("CDLEVENINGSTAR", patterns.evening_star, patterns.LB_STAR, penetration=0.3),
    _candle("CDL3WHITESOLDIERS", patterns.three_white_soldiers, patterns.LB_3WHITESOLDIERS),
    _candle("CDL3BLACKCROWS", patterns.three_black_crows, patterns.LB_3BLACKCROWS),
)

REGISTRY: dict[str, IndicatorSpec] = {spec.name: spec for spec in _SPECS}
# output column -> the entry that produces it
OUTPUTS: dict[str, IndicatorSpec] = {out: spec for spec in _SPECS for out in spec.outputs}

# Every output, and the scan's default set: the 23 outputs before issue 13, frozen.
ALL_OUTPUTS: tuple[str, ...] = tuple(OUTPUTS)
DEFAULT_OUTPUTS: tuple[str, ...] = (
    "RSI", "MACD", "MACD_signal", "MACD_hist", "BB_upper", "BB_middle", "BB_lower", "BB_width",
    "ATR", "ATR_pct", "Volume_SMA20", "Volume_ratio", "mom_5", "mom_21", "mom_63", "mom_126",
    "SMA20", "SMA50", "SMA200", "high_20", "dist_high_20", "low_20", "dist_low_20",
)

# Inputs that are not Panel fields: the caller passes them as (N, T) arrays on the panel's
# session axis (NaN where a symbol has no bar); the engine packs them with the symbol's bars.
EXTRA_INPUTS: dict[str, str] = {
    "market": "the market index level on every symbol's bars: "
    "technic_v4.indicators.market.market_field(panel)",
}

if len(OUTPUTS) != sum(len(s.outputs) for s in _SPECS) or len(REGISTRY) != len(_SPECS):
    raise RuntimeError("indicator registry: duplicate entry or output name")
if any(f not in FIELDS and f not in EXTRA_INPUTS for s in _SPECS for f in s.inputs):
    raise RuntimeError("indicator registry: input is neither a Panel field nor an extra input")
if not set(DEFAULT_OUTPUTS) <= set(OUTPUTS):
    raise RuntimeError("indicator registry: a default output has no entry")


def resolve(names: Iterable[str] | None = None) -> tuple[list[IndicatorSpec], list[str]]:
    """Output names -> (entries to run, each once, in table order; outputs in asked order).
    None means DEFAULT_OUTPUTS. An unknown name is an error naming the valid ones."""
    outputs = list(DEFAULT_OUTPUTS) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in outputs if n not in OUTPUTS]
    if unknown:
        raise KeyError(f"unknown indicator output(s) {unknown}; valid: {sorted(OUTPUTS)}")
    wanted = {OUTPUTS[n].name for n in outputs}
    return [s for s in _SPECS if s.name in wanted], outputs


def convergence_bars(names: Iterable[str] | None = None) -> int | None:
    """Own bars after which every named output (default: DEFAULT_OUTPUTS) equals its value
    on the symbol's whole history (module docstring); None when one is anchored."""
    _, outputs = resolve(names)
    settle = [OUTPUTS[name].settle_bars(name) for name in outputs]
    if any(s is None for s in settle):
        return None
    return max((s for s in settle if s is not None), default=0)


def required_bars(names: Iterable[str] | None = None) -> int:
    """Bars a symbol needs for every named output (default: DEFAULT_OUTPUTS) to have a value.
    This is the minimum, not the convergence horizon: see the module docstring."""
    _, outputs = resolve(names)
    return max((OUTPUTS[name].bars_needed(name) for name in outputs), default=0)
