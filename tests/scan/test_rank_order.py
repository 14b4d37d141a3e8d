"""`rank_order(values, ascending, limit)` is the full order's first `limit` rows, ties and
NaN included, whichever way it gets there."""

from __future__ import annotations

import numpy as np
import pytest

from technic_v4.scan.result import rank_order


@pytest.mark.parametrize("seed", range(6))
def test_limited_order_is_the_prefix_of_the_full_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(300):
        n = int(rng.integers(0, 500))
        values = (rng.integers(0, 15, n).astype(float) if trial % 2
                  else rng.normal(size=n))  # many ties / none
        values[rng.random(n) < 0.2] = np.nan
        if trial % 11 == 0:
            values[:] = np.nan
        for ascending in (True, False):
            full = rank_order(values, ascending)
            for limit in (0, 1, 2, 7, 40, n, n + 5):
                np.testing.assert_array_equal(rank_order(values, ascending, limit),
                                              full[:limit])
