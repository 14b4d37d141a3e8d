"""Each operator and function against plain numpy / pandas / TA-Lib, NaN cases included."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from technic_v4.screens import ArrayEnv, compile_screen, describe, help_text

SCHEMA = {"x": "number", "y": "number", "z": "number", "Sector": "text", "Industry": "text"}
N, T = 6, 40


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    out = {}
    for name in ("x", "y", "z"):
        a = 50 + np.cumsum(rng.normal(0, 1, (N, T)), axis=1)
        a[1, :12] = np.nan  # a symbol that listed later
        a[2, :] = np.nan  # one without any bar
        out[name] = a
    out["y"][3] = out["x"][3] + np.where(np.arange(T) % 4 < 2, 1.0, -1.0)  # crosses x often
    return out


def run(text: str, env: ArrayEnv, width: int = T, kind: str = "bool") -> np.ndarray:
    return compile_screen(text, SCHEMA, kind=kind).evaluate(env, width)


def num(text: str, env: ArrayEnv, width: int = T) -> np.ndarray:
    return run(text, env, width, kind="number")


def frame_rows(a: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(a.T)  # pandas rolls down columns: one column per symbol


@pytest.fixture(scope="module")
def env(arrays) -> ArrayEnv:
    return ArrayEnv(arrays)


def same(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("fn, pd_fn", [("highest", "max"), ("lowest", "min"), ("sma", "mean")])
@pytest.mark.parametrize("n", [1, 5, 20])
def test_rolling_windows_match_pandas(env, arrays, fn, pd_fn, n):
    want = getattr(frame_rows(arrays["x"]).rolling(n, min_periods=n), pd_fn)().to_numpy().T
    same(num(f"{fn}(x, {n})", env), want)


def test_window_with_a_hole_is_nan(arrays):
    x = arrays["x"].copy()
    x[0, 30] = np.nan
    got = num("sma(x, 3)", ArrayEnv({"x": x, "y": x, "z": x}))
    assert np.isnan(got[0, 30:33]).all() and np.isfinite(got[0, [29, 33]]).all()


def test_ema_is_talib_over_its_window(env, arrays):
    talib = pytest.importorskip("talib")
    n = 5
    got = num(f"ema(x, {n})", env)
    span = 4 * n
    for i in (0, 3, 4):
        for t in range(span - 1, T):
            want = talib.EMA(arrays["x"][i, t - span + 1 : t + 1], n)[-1]
            assert got[i, t] == pytest.approx(want, rel=1e-12)
        assert np.isnan(got[i, : span - 1]).all()
        full = talib.EMA(arrays["x"][i], n)  # seeded at the first bar: converged by 4n
        np.testing.assert_allclose(got[i, span - 1 :], full[span - 1 :], rtol=2e-3)
    assert np.isnan(got[1, : 12 + span - 1]).all()  # the late lister needs 4n bars of its own


def test_change_matches_pandas_and_zero_base_is_nan(arrays):
    x = arrays["x"].copy()
    x[0, 10] = 0.0
    e = ArrayEnv({"x": x, "y": x, "z": x})
    want = np.array(frame_rows(x).pct_change(3, fill_method=None).to_numpy().T)
    want[~np.isfinite(want)] = np.nan
    same(num("change(x, 3)", e), want)
    assert np.isnan(num("change(x, 3)", e)[0, 13])


def test_crosses_above_and_below(env, arrays):
    x, y = arrays["x"], arrays["y"]
    above = np.zeros((N, T), bool)
    above[:, 1:] = (x[:, 1:] > y[:, 1:]) & (x[:, :-1] <= y[:, :-1])
    below = np.zeros((N, T), bool)
    below[:, 1:] = (x[:, 1:] < y[:, 1:]) & (x[:, :-1] >= y[:, :-1])
    assert np.array_equal(run("crosses_above(x, y)", env), above)
    assert np.array_equal(run("crosses_below(x, y)", env), below)
    assert above[3].any() and below[3].any()
    within3 = above.copy()
    within3[:, 1:] |= above[:, :-1]
    within3[:, 2:] |= above[:, :-2]
    assert np.array_equal(run("crosses_above(x, y, within=3)", env), within3)
    assert not run("crosses_above(x, y)", env)[2].any()  # no bars: no cross


def test_pct_rank_matches_pandas_among_the_universe(arrays):
    x = arrays["x"].copy()
    x[4, :] = x[5, :]  # ties share the average rank
    universe = np.array([True, True, True, False, True, True])
    e = ArrayEnv({"x": x, "y": x, "z": x}, universe=universe)
    masked = np.where(universe[:, None], x, np.nan)
    want = pd.DataFrame(masked).rank(axis=0, pct=True, method="average").to_numpy()
    got = num("pct_rank(x)", e)
    same(got, want)
    assert np.isnan(got[3]).all()  # outside the universe
    assert np.nanmax(got[:, -1]) == 1.0


def test_group_ranks_match_pandas(arrays):
    x = arrays["x"].copy()
    x[5, :] = x[0, :]  # a tie within sector 0
    sectors = np.array([0, 0, 1, 1, -1, 0])
    e = ArrayEnv({"x": x, "y": x, "z": x}, groups={"Sector": sectors})
    got = num("sector_rank(x)", e)
    for t in range(T):
        col = pd.Series(np.where(sectors >= 0, x[:, t], np.nan))
        ranked = col.groupby(sectors).rank(ascending=False, method="min").to_numpy()
        want = np.where(sectors < 0, np.nan, ranked)
        same(got[:, t], want)
    assert (got[0] == got[5]).all() and np.nanmin(got) == 1
    assert np.isnan(num("industry_rank(x)", e)).all()  # no industry codes given: no groups


def test_elementwise_functions_and_arithmetic(env, arrays):
    x, y = arrays["x"], arrays["y"]
    same(num("abs(x - y)", env), np.abs(x - y))
    same(num("min(x, y)", env), np.minimum(x, y))
    same(num("max(x, y) * 2 - -x / 4", env), np.maximum(x, y) * 2 + x / 4)
    same(num("-x + 1", env), 1 - x)
    same(num("x - y - z", env), (x - y) - arrays["z"])
    same(num("x - (y - z)", env), x - (y - arrays["z"]))
    same(num("2 + 3 * x", env), 2 + 3 * x)


def test_division_by_zero_and_overflow_are_nan_never_inf():
    x = np.array([[1.0, 0.0, -1.0, np.inf, 1e300]])
    y = np.array([[0.0, 0.0, 0.0, 1.0, 1e300]])
    e = ArrayEnv({"x": x, "y": y, "z": x})
    assert np.isnan(num("x / y", e, 5)[0, :4]).all()
    assert np.isnan(num("x * y", e, 5)[0, 4])
    assert np.isnan(num("x", e, 5)[0, 3])  # an inf input reads as NaN


def test_comparisons_with_nan_are_false_and_not_is_plain_logic():
    x = np.array([[np.nan, 1.0, 2.0]])
    e = ArrayEnv({"x": x, "y": x, "z": x})
    assert run("x != 1", e, 3).tolist() == [[False, False, True]]
    assert run("not (x == 1)", e, 3).tolist() == [[True, False, True]]
    assert run("x < 5", e, 3).tolist() == [[False, True, True]]
    assert run("not x < 5", e, 3).tolist() == [[True, False, False]]
    assert run("x between 1 and 2", e, 3).tolist() == [[False, True, True]]
    assert run("x between 1.5 and 2", e, 3).tolist() == [[False, False, True]]
    assert run("x between 2 and 1", e, 3).tolist() == [[False, False, False]]
    assert run("x < 2 or x > 1", e, 3).tolist() == [[False, True, True]]
    assert run("true and not false", e, 3).all()


def test_text_comparisons_and_in_with_missing_values():
    x = np.zeros((4, 2))
    e = ArrayEnv(
        {"x": x, "y": x, "z": x},
        text={
            "Sector": np.array(["Energy", "Tech", None, np.nan], dtype=object),
            "Industry": np.array(["Oil", "Chips", "Oil", "Oil"], dtype=object),
        },
    )
    col = lambda text: run(text, e, 2)[:, -1].tolist()  # noqa: E731
    assert col('Sector in ("Energy", "Utilities")') == [True, False, False, False]
    assert col("Sector not in ('Energy')") == [False, True, False, False]
    assert col('Sector == "Tech"') == [False, True, False, False]
    assert col('"Tech" != Sector') == [True, False, False, False]
    assert col("not Sector == 'Tech'") == [True, False, True, True]
    assert col("Sector == Industry") == [False, False, False, False]
    assert run('Sector == "Tech" and x == 0', e, 2).tolist() == [
        [False, False],
        [True, True],
        [False, False],
        [False, False],
    ]


def test_lags_read_earlier_bars_of_any_sub_expression(env, arrays):
    x, y = arrays["x"], arrays["y"]
    lagged = np.full((N, T), np.nan)
    lagged[:, 3:] = x[:, :-3]
    same(num("x[3]", env), lagged)
    same(num("x[0]", env), x)
    hh = frame_rows(y).rolling(5).max().shift(1).to_numpy().T
    same(num("highest(y, 5)[1]", env), hh)
    cond = x > y
    prev = np.zeros((N, T), bool)
    prev[:, 2:] = cond[:, :-2]
    assert np.array_equal(run("(x > y)[2]", env), prev)
    same(num("(x - y)[1] * 2", env), np.c_[np.full(N, np.nan), (x - y)[:, :-1]] * 2)


@pytest.fixture(scope="module")
def weekly_env() -> ArrayEnv:
    # 12 days; weeks close on days 4, 9 (5-day weeks); days 10, 11 are in an open week.
    daily = np.arange(12, dtype=float)[None, :].repeat(2, axis=0)
    weekly = np.array([[10.0, 20.0, 99.0], [1.0, np.nan, 99.0]])  # week 2 is not closed yet
    week_of = np.array([-1, -1, -1, -1, 0, 0, 0, 0, 0, 1, 1, 1])
    return ArrayEnv(
        {"x": daily, "y": daily, "z": daily}, weekly={"x": weekly, "y": weekly}, week_of=week_of
    )


def test_weekly_values_align_to_the_week_in_effect(weekly_env):
    got = num("W.x", weekly_env, 12)
    assert np.array_equal(got[0], [np.nan] * 4 + [10] * 5 + [20] * 3, equal_nan=True)
    assert num("W.x", weekly_env, 1)[0, 0] == 20  # a scan sees the last closed week, not 99
    assert np.array_equal(num("W.x[1]", weekly_env, 12)[0], [np.nan] * 9 + [10] * 3, equal_nan=True)
    assert num("sma(W.x, 2)", weekly_env, 1)[0, 0] == 15
    assert np.isnan(num("sma(W.x, 2)", weekly_env, 1)[1, 0])  # a NaN week in the window
    assert np.array_equal(num("x + W.x", weekly_env, 3)[0], [29, 30, 31])
    # a weekly condition: false on days before any week closed, even under `not`
    assert run("not W.x > 15", weekly_env, 12)[0].tolist() == [False] * 4 + [True] * 5 + [False] * 3
    assert run("W.x > 15 and x > 9", weekly_env, 3)[0].tolist() == [False, True, True]


def test_evaluate_width_gives_the_last_bars(env):
    screen = compile_screen("x > sma(x, 5) and y < highest(y, 3)[1]", SCHEMA)
    wide = screen.evaluate(env, T)
    for width in (1, 2, 7):
        assert np.array_equal(screen.evaluate(env, width), wide[:, T - width :])
    assert np.array_equal(screen.evaluate(env, T + 5)[:, 5:], wide)  # more bars than exist
    with pytest.raises(ValueError):
        screen.evaluate(env, 0)


class RecordingEnv(ArrayEnv):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, int, str]] = []

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        self.asked.append((name, width, timeframe))
        return super().number(name, width, timeframe)


def test_nodes_ask_only_for_the_bars_they_need(arrays):
    e = RecordingEnv(arrays)
    compile_screen("x > highest(y, 50)[1] and z > 1 and x > 2", SCHEMA).evaluate(e, 1)
    assert sorted(e.asked) == [("x", 1, "D"), ("y", 51, "D"), ("z", 1, "D")]  # x read once
    e.asked.clear()
    compile_screen("crosses_above(x, y, within=3) or ema(z, 10) > 0", SCHEMA).evaluate(e, 2)
    assert sorted(e.asked) == [("x", 5, "D"), ("y", 5, "D"), ("z", 41, "D")]


@pytest.mark.parametrize(
    "text, lookback",
    [
        ("x > 1", {"D": 0}),
        ("x[5] > 1", {"D": 5}),
        ("highest(x, 50)[1] < x", {"D": 50}),
        ("ema(x, 10) > 0", {"D": 39}),
        ("crosses_above(x, y, within=3)", {"D": 3}),
        ("change(x, 21) > 0 and sma(sma(x, 10), 5)[2] > 0", {"D": 21}),
        ("sma(sma(x, 10), 5)[2] > 0", {"D": 15}),
        ("W.x[1] > 50 and x < 30", {"D": 0, "W": 1}),
        ("sma(W.x, 10) > highest(x, 20)", {"D": 19, "W": 9}),
        ('Sector == "Energy"', {"D": 0}),
    ],
)
def test_lookback_from_the_tree(text, lookback):
    assert dict(compile_screen(text, SCHEMA).lookback) == lookback


def test_compiled_attributes():
    s = compile_screen("W.x > 50 and sector_rank(y) <= 5 and Sector in ('Energy')", SCHEMA)
    assert s.columns == {"y", "Sector"} and s.weekly_columns == {"x"}
    assert s.groups == {"Sector"} and s.cross_sectional and s.kind == "bool"
    assert s.text == 'W.x > 50 and sector_rank(y) <= 5 and Sector in ("Energy")'
    r = compile_screen("x/  y", SCHEMA, kind="number")
    assert (r.kind, r.text, r.cross_sectional, r.groups) == ("number", "x / y", False, set())


@pytest.mark.parametrize(
    "text, normal",
    [
        ("x<30 and y>1", "x < 30 and y > 1"),
        ("x<30  and(y>2 and z>1)", "x < 30 and y > 2 and z > 1"),
        ("(x < 1 or y < 1) and z > 0", "(x < 1 or y < 1) and z > 0"),
        ("x between 1 and 2 and not (y > 3)", "x between 1 and 2 and not y > 3"),
        ("--x > -(3)", "--x > -3"),
        ("(-3)[1] < x", "(-3)[1] < x"),
        ("crosses_above(x, y, within=1)", "crosses_above(x, y)"),
        ("x > 1.50 and x < 2e3", "x > 1.5 and x < 2000"),
    ],
)
def test_normalised_text(text, normal):
    assert compile_screen(text, SCHEMA).text == normal


def test_compiled_screens_pickle_as_their_text(env):
    screen = compile_screen("x > sma(x, 5) and not y < z[2]", SCHEMA)
    again = pickle.loads(pickle.dumps(screen))
    assert again.text == screen.text and again.lookback == screen.lookback
    assert np.array_equal(again.evaluate(env, 3), screen.evaluate(env, 3))


def test_describe_lists_every_function_with_a_doc():
    rows = describe()
    names = [r["name"] for r in rows]
    assert names == [
        "abs",
        "min",
        "max",
        "highest",
        "lowest",
        "sma",
        "ema",
        "change",
        "crosses_above",
        "crosses_below",
        "pct_rank",
        "sector_rank",
        "industry_rank",
    ]
    assert all(r["doc"] and "\n" not in r["doc"] for r in rows)
    assert {r["signature"] for r in rows} >= {"crosses_above(a, b, within=1)", "sma(x, n)"}
    text = help_text()
    assert "x between a and b" in text and "pct_rank(x)" in text
