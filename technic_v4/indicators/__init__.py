"""Indicator stage: Panel -> one row of TA-Lib-exact indicator values per symbol.

`kernels`, `oscillators` and `patterns` hold the numba arithmetic, `registry` the table of
indicators, `engine` the pack / run / collect walk-through, `market` the cross-sectional
helpers (market index, RS percentile, year-to-date). Callers need only what is exported here.
"""

from technic_v4.indicators.engine import IndicatorTable, compute_indicators
from technic_v4.indicators.registry import (
    ALL_OUTPUTS,
    DEFAULT_OUTPUTS,
    INDICATORS_VERSION,
    REGISTRY,
    convergence_bars,
    required_bars,
)

__all__ = ["ALL_OUTPUTS", "DEFAULT_OUTPUTS", "INDICATORS_VERSION", "REGISTRY", "IndicatorTable",
           "compute_indicators", "convergence_bars", "required_bars"]
