"""BarBatch refuses what would misalign rows: naive times, ragged arrays, a symbol twice."""

import numpy as np
import pandas as pd
import pytest

from technic_v4.live import BarBatch


def _batch(**over):
    kw = dict(start=pd.Timestamp("2026-10-30 13:30", tz="UTC"), symbols=["AAA", "BBB"],
              open=[1.0, 2.0], high=[1.5, 2.5], low=[0.5, 1.5], close=[1.2, 2.2],
              volume=[100, 200])
    kw.update(over)
    return BarBatch(**kw)


def test_batch_normalises_to_utc_float_arrays():
    b = _batch(start=pd.Timestamp("2026-10-30 09:30", tz="America/New_York"))
    assert b.start == pd.Timestamp("2026-10-30 13:30", tz="UTC")
    assert b.volume.dtype == np.float64 and len(b) == 2


@pytest.mark.parametrize("over, match", [
    ({"start": pd.Timestamp("2026-10-30 13:30")}, "time zone"),
    ({"close": [1.0]}, "close has shape"),
    ({"symbols": ["AAA", "AAA"]}, "one bar per symbol"),
])
def test_batch_refuses_misaligned_input(over, match):
    with pytest.raises(ValueError, match=match):
        _batch(**over)
