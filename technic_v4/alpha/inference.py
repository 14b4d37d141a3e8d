"""Alpha columns for a scan: model forecasts, or an explicit "alpha unavailable" state.

No model is shipped yet, so every scan reports `available: False` with the reason, and
Alpha5d / Alpha10d / AlphaScore are NaN — never a silent 0.0 that would rank as "neutral".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from technic_v4.data.panel import Array1D, BoolArray

UNAVAILABLE_REASON = "alpha unavailable: no trained model is installed (models/ is empty)"


@dataclass(frozen=True)
class AlphaPredictions:
    alpha5d: Array1D
    alpha10d: Array1D
    score: Array1D
    state: dict[str, object] = field(default_factory=dict)


def predict_alpha(features: Mapping[str, Array1D], rows: BoolArray) -> AlphaPredictions:
    """Forecasts for `rows` (NaN elsewhere); today always the unavailable state, with its reason."""
    n = len(rows)
    nan = np.full(n, np.nan)
    return AlphaPredictions(nan, nan.copy(), nan.copy(),
                            state={"available": False, "reason": UNAVAILABLE_REASON})
