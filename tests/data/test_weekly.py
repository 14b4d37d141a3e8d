"""Weekly bars: the numba pass gives what the plain definition gives (first open, highest
high, lowest low, last close, summed volume over each closed week's days; no bar for a week
without one), for every field or only those asked for."""

from __future__ import annotations

import numpy as np
import pytest
from panels import small_panel

from technic_v4.data.panel import FIELDS, Panel
from technic_v4.data.weekly import week_starts, weekly_panel


def reference(panel: Panel, last_week_closed: bool) -> dict[str, np.ndarray]:
    """The definition, one week at a time with numpy reductions."""
    starts = week_starts(panel.sessions)
    ends = np.r_[starts[1:], panel.n_sessions]
    if not last_week_closed:
        starts, ends = starts[:-1], ends[:-1]
    n, w = panel.n_symbols, len(starts)
    out = {f: np.full((n, w), np.nan) for f in FIELDS}
    present = np.isfinite(panel.close)
    rows = np.arange(n)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        has = present[:, a:b]
        any_bar = has.any(axis=1)
        first = a + has.argmax(axis=1)
        last = b - 1 - has[:, ::-1].argmax(axis=1)
        with np.errstate(all="ignore"):
            out["open"][:, k] = np.where(any_bar, panel.open[rows, first], np.nan)
            out["close"][:, k] = np.where(any_bar, panel.close[rows, last], np.nan)
            out["high"][:, k] = np.where(any_bar, np.fmax.reduce(panel.high[:, a:b], axis=1),
                                         np.nan)
            out["low"][:, k] = np.where(any_bar, np.fmin.reduce(panel.low[:, a:b], axis=1),
                                        np.nan)
            out["volume"][:, k] = np.where(any_bar, np.nansum(panel.volume[:, a:b], axis=1),
                                           np.nan)
    return out


@pytest.mark.parametrize("closed", [True, False])
def test_weekly_bars_equal_the_definition(closed: bool) -> None:
    panel = small_panel()
    panel.high[7, 100:103] = np.nan  # a week whose high is partly missing
    panel.volume[8, 50:60] = np.nan
    want = reference(panel, closed)
    got = weekly_panel(panel, closed)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(got, f), want[f], err_msg=f)
    only = weekly_panel(panel, closed, ("close",))
    np.testing.assert_array_equal(only.close, want["close"])
    assert np.isnan(only.open).all() and only.open.shape == want["open"].shape
    assert (only.sessions == got.sessions).all()
