"""Generated screens against a plain-Python interpreter, and the no-look-ahead property.

Hypothesis builds random well-formed expression trees over a schema of number and text
columns (screen_reference.py), renders them to text relying on operator precedence, and
compares the compiled evaluation on random packed arrays (NaN prefixes, holes, +-inf, ties,
zeros, weekly bars with weeks after the evaluation session) with an interpreter that walks the
generated tree row by row over Python floats: exactly for conditions, within 1e-9 for numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from screen_reference import SCHEMA, Reference, bool_expr, env_of, number_expr, packed_data, render

from technic_v4.screens import compile_screen

pytestmark = pytest.mark.slow  # Hypothesis against a row-by-row reference, many examples

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_numbers(got: np.ndarray, want: np.ndarray, text: str) -> None:
    assert got.shape == want.shape, text
    same_nan = np.isnan(got) == np.isnan(want)
    assert same_nan.all(), (text, got, want)
    ok = np.isnan(want) | np.isclose(got, want, rtol=1e-9, atol=1e-9)
    assert ok.all(), (text, got, want)


@SETTINGS
@given(data=packed_data(), expr=bool_expr(depth=4), frac=st.floats(0, 1))
def test_conditions_match_the_reference(data, expr, frac):
    text = render(expr)
    screen = compile_screen(text, SCHEMA, kind="bool")
    width = 1 + int(frac * (data.shape[1] - 1))
    got = screen.evaluate(env_of(data), width)
    want = Reference(data).run(expr, width)
    assert got.dtype == np.bool_ and got.shape == (data.shape[0], width)
    assert np.array_equal(got, want), (text, got, want)


@SETTINGS
@given(data=packed_data(), expr=number_expr(depth=4), frac=st.floats(0, 1))
def test_numbers_match_the_reference(data, expr, frac):
    text = render(expr)
    screen = compile_screen(text, SCHEMA, kind="number")
    width = 1 + int(frac * (data.shape[1] - 1))
    got = screen.evaluate(env_of(data), width)
    assert got.dtype == np.float64
    assert_numbers(got, Reference(data).run(expr, width), text)


@SETTINGS
@given(data=packed_data(), expr=st.one_of(bool_expr(depth=4), number_expr(depth=3)))
def test_normalised_text_is_the_same_screen(data, expr):
    kind = "number" if number_expr_kind(expr) else "bool"
    first = compile_screen(render(expr), SCHEMA, kind=kind)
    again = compile_screen(first.text, SCHEMA, kind=kind)
    assert again.text == first.text
    assert again.lookback == first.lookback and again.columns == first.columns
    env = env_of(data)
    a, b = first.evaluate(env, data.shape[1]), again.evaluate(env, data.shape[1])
    assert np.array_equal(a, b, equal_nan=kind == "number"), first.text


def number_expr_kind(expr: tuple) -> bool:
    from screen_reference import is_bool

    return not is_bool(expr)


@SETTINGS
@given(data=packed_data(), expr=st.one_of(bool_expr(depth=4), number_expr(depth=4)))
def test_no_look_ahead(data, expr):
    """The value at session t from arrays cut at t (a scan that day) equals column t of one
    evaluation over all sessions: nothing at t depends on a later bar, daily or weekly."""
    kind = "number" if number_expr_kind(expr) else "bool"
    screen = compile_screen(render(expr), SCHEMA, kind=kind)
    env = env_of(data)
    t_all = data.shape[1]
    wide = screen.evaluate(env, t_all)
    for t in range(t_all):
        one = screen.evaluate(env.truncate(t), 1)[:, 0]
        assert np.array_equal(one, wide[:, t], equal_nan=kind == "number"), (screen.text, t)


@settings(max_examples=60, deadline=None)
@given(data=packed_data(), expr=bool_expr(depth=3))
def test_lookback_is_enough(data, expr):
    """Arrays holding only the last width + lookback bars give the same answer."""
    screen = compile_screen(render(expr), SCHEMA)
    env = env_of(data)
    full = screen.evaluate(env, 1)
    keep = 1 + screen.lookback["D"]
    cut = data.shape[1] - keep
    if cut <= 0 or "W" in screen.lookback:
        return
    from technic_v4.screens import ArrayEnv

    short = ArrayEnv(
        {k: v[:, cut:] for k, v in data.daily.items()},
        text=data.text,
        groups=data.groups,
        universe=data.universe,
    )
    assert np.array_equal(screen.evaluate(short, 1), full), screen.text
