"""Cancellation inside expression evaluation: rolling kernels run in row blocks with a check
between blocks, which must give exactly the values of one call, and stop once the current
token is set."""

from __future__ import annotations

import numpy as np
import pytest

from technic_v4 import cancel
from technic_v4.cancel import Cancelled, CancelToken
from technic_v4.screens import functions, kernels


@pytest.fixture
def series() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.lognormal(0, 0.02, (301, 400)).cumprod(axis=1)
    x[5, :40] = np.nan  # a symbol before its first bar
    x[17, 200] = np.nan  # a hole
    return x


@pytest.mark.parametrize("name, window", [("sma", 50), ("highest", 20), ("lowest", 63),
                                          ("ema", 12), ("crosses_above", 5)])
def test_row_blocks_give_the_values_of_one_call(series, monkeypatch, name, window):
    fn = functions.FUNCTIONS[name]
    args = [series, series[::-1].copy()] if name.startswith("crosses") else [series]
    width = series.shape[1] - fn.adds((window,))
    whole = fn.impl(args, (window,), width)
    monkeypatch.setattr(functions, "BLOCK_STEPS", 7 * series.shape[1] * window)  # 7 rows
    blocked = fn.impl(args, (window,), width)
    np.testing.assert_array_equal(blocked, whole)


def test_a_set_token_stops_a_rolling_window_between_blocks(series, monkeypatch):
    monkeypatch.setattr(functions, "BLOCK_STEPS", 1)  # one row per block
    calls = []

    def counted(x, n):  # the real kernel, counting blocks; cancels after the third
        calls.append(len(x))
        if len(calls) == 3:
            token.cancel("the client disconnected")
        return kernels.rolling_mean(x, n)

    token = CancelToken()
    with cancel.active(token), pytest.raises(Cancelled, match="the client disconnected"):
        functions.by_rows(counted, [series], 50, 50)
    assert calls == [1, 1, 1]


def test_a_deadline_cancels_without_anyone_setting_the_token():
    token = CancelToken(deadline_s=0.0)
    with pytest.raises(Cancelled, match="deadline"):
        token.check()
    cancel.check()  # no current token: nothing to check
