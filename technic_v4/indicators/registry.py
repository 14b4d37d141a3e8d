"""The indicator table: one entry per indicator, read by the engine, the scan and the tests.

An entry says which Panel fields a kernel reads, its parameters, the output columns it
produces and `min_bars`, the bars a symbol needs for the first non-NaN value (TA-Lib's lookback
+ 1). Adding an indicator = one kernel in `kernels.py` + one entry here + one TA-Lib reference in
`tests/test_indicators_talib.py` (the tests are parametrized over this table and fail for an
entry without a reference).

History to load: `required_bars()` is the minimum for a value at all. Entries marked
`converges=True` (EMA / Wilder recursions: RSI, MACD, ATR) depend on where the history starts,
like TA-Lib's own "unstable period": the seed's weight decays as (1 - 1/14)^k for RSI/ATR
(3e-5 after 140 bars, 1e-8 after 250), so a scan should load more (e.g. >= 250 bars).
The engine computes on whatever it is given; the caller decides how much to load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from technic_v4.data.panel import FIELDS, Array2D
from technic_v4.indicators import kernels

Array3D = npt.NDArray[np.float64]  # (outputs, N symbols, W sessions)

# The indicator definitions' version, recorded in every scan result (point-in-time scans):
# bump it when a kernel, a parameter or an entry of this table changes a value.
INDICATORS_VERSION = "1.0"


@dataclass(frozen=True, eq=False)
class IndicatorSpec:
    """One kernel call: `kernel(*inputs, *params.values(), out)` fills out[k] with output k."""

    name: str
    inputs: tuple[str, ...]
    params: Mapping[str, int | float]
    outputs: tuple[str, ...]
    min_bars: int
    kernel: Callable[..., None] = field(repr=False)
    converges: bool = False

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


_SPECS = (
    IndicatorSpec("RSI", ("close",), {"n": 14}, ("RSI",), 15, kernels.rsi, converges=True),
    IndicatorSpec(
        "MACD",
        ("close",),
        {"fast": 12, "slow": 26, "signal": 9},
        ("MACD", "MACD_signal", "MACD_hist"),
        34,
        kernels.macd,
        converges=True,
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
        converges=True,
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
)

REGISTRY: dict[str, IndicatorSpec] = {spec.name: spec for spec in _SPECS}
# output column -> the entry that produces it
OUTPUTS: dict[str, IndicatorSpec] = {out: spec for spec in _SPECS for out in spec.outputs}

if len(OUTPUTS) != sum(len(s.outputs) for s in _SPECS) or len(REGISTRY) != len(_SPECS):
    raise RuntimeError("indicator registry: duplicate entry or output name")
if any(f not in FIELDS for s in _SPECS for f in s.inputs):
    raise RuntimeError("indicator registry: input is not a Panel field")


def resolve(names: Iterable[str] | None = None) -> tuple[list[IndicatorSpec], list[str]]:
    """Output names -> (entries to run, each once, in table order; outputs in asked order).
    None means every output. An unknown name is an error naming the valid ones."""
    outputs = list(OUTPUTS) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in outputs if n not in OUTPUTS]
    if unknown:
        raise KeyError(f"unknown indicator output(s) {unknown}; valid: {sorted(OUTPUTS)}")
    wanted = {OUTPUTS[n].name for n in outputs}
    return [s for s in _SPECS if s.name in wanted], outputs


def required_bars(names: Iterable[str] | None = None) -> int:
    """Bars a symbol needs for every named output (default: all) to have a value.
    This is the minimum, not the convergence horizon: see the module docstring."""
    specs, _ = resolve(names)
    return max((s.min_bars for s in specs), default=0)
