"""`where` and `rank` in the scan engine: the same answer as plain Python on the result rows,
TA-Lib-style windows on each symbol's own bars, weekly bars without look-ahead, errors that
point at the place."""

from __future__ import annotations

import math
import operator

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from panels import small_panel

from technic_v4.data.panel import Panel
from technic_v4.data.reader import PanelSource
from technic_v4.data.weekly import weekly_panel
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig, run_scan

NUMBERS = ["RSI", "Close", "SMA50", "mom_21", "TechRating", "Volume_ratio", "ATR_pct",
           "MACD_hist"]


@pytest.fixture(scope="module")
def panel() -> Panel:
    return small_panel(seed=3)


@pytest.fixture(scope="module")
def base(panel):
    frame, status = run_scan(ScanConfig(), loader=PanelSource(panel))
    return frame.set_index("Symbol")


def scan(panel, **kw):
    return run_scan(ScanConfig(**kw), loader=PanelSource(panel))


# --- generated expressions vs a row-by-row Python reference -------------------------------
def numbers() -> st.SearchStrategy:
    leaf = st.one_of(st.sampled_from(NUMBERS),
                     st.floats(-50, 150, allow_nan=False).map(lambda v: f"{v:.3f}"))
    return st.recursive(leaf, lambda inner: st.tuples(
        inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} "
                                                                      f"{t[2]})"), max_leaves=4)


def conditions() -> st.SearchStrategy:
    comp = st.tuples(numbers(), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
                     numbers()).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
    return st.recursive(comp, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"not ({c})")), max_leaves=4)


OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq, "!=": operator.ne}


def reference(expr: str, row: pd.Series) -> bool:
    """The expression on one row in plain Python floats (a tiny recursive-descent reader of
    exactly what the strategies generate); NaN semantics as documented."""
    tokens = expr.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def value() -> float:
        tok = take()
        if tok == "(":
            left = value()
            op = take()
            right = value()
            take()  # ")"
            if op == "/":
                return left / right if right != 0 and math.isfinite(left / right if right
                                                                     else 0.0) else math.nan
            out = OPS[op](left, right)
            return out if math.isfinite(out) else math.nan
        return float(row[tok]) if tok in NUMBERS else float(tok)

    def cond() -> bool:
        if peek() == "not":
            take()
            return not cond()
        kind = _group(pos) if peek() == "(" else "compare"
        if kind == "logic":
            take()
            left = cond()
            op = take()
            right = cond()
            take()
            return (left and right) if op == "and" else (left or right)
        if kind == "paren":
            take()
            out = cond()
            take()
            return out
        left = value()
        op = take()
        right = value()
        if math.isnan(left) or math.isnan(right):
            return False
        return CMP[op](left, right)

    def _group(at: int) -> str:
        """What the parenthesis at `at` holds, by its depth-1 operators: a logic group, a
        parenthesised condition, or arithmetic (the left side of a comparison)."""
        depth = 0
        for k, tok in enumerate(tokens[at:], start=at):
            if tok == "(":
                depth += 1
            elif tok == ")":
                depth -= 1
                if depth == 0:
                    follows = tokens[k + 1] if k + 1 < len(tokens) else ")"
                    return "arith" if follows in CMP else "paren"
            elif depth == 1 and tok in ("and", "or"):
                return "logic"
        return "arith"

    return cond()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@pytest.mark.slow
@given(expr=conditions())
def test_where_equals_python_on_the_result_rows(panel, base, expr):
    frame, status = scan(panel, where=expr)
    want = {sym for sym, row in base.iterrows() if reference(expr, row)}
    assert set(frame["Symbol"]) == want, expr
    assert status.attempted == status.kept + status.rejected + status.errors
    assert status.rejected_by_reason.get("where", 0) == len(base) - len(want)


# --- windows, lags, crosses on each symbol's own bars ----------------------------------------
def _own(panel: Panel, i: int, field: str) -> np.ndarray:
    close = panel.close[i]
    return getattr(panel, field)[i][np.isfinite(close)]


def test_breakout_and_cross_on_own_bars(panel, base):
    frame, _ = scan(panel, where="Close > highest(High, 50)[1] or "
                                  "crosses_above(MACD, MACD_signal, within=3)")
    got = set(frame["Symbol"])
    assert got, "the screen should find something on this panel"
    want = set()
    for i, sym in enumerate(panel.symbols):
        if sym not in base.index:
            continue
        close, high = _own(panel, i, "close"), _own(panel, i, "high")
        macd, signal, _ = talib.MACD(close, 12, 26, 9)
        breakout = len(high) > 50 and close[-1] > high[-51:-1].max()
        cross = any(macd[-1 - k] > signal[-1 - k] and macd[-2 - k] <= signal[-2 - k]
                    for k in range(3))
        if breakout or cross:
            want.add(sym)
    assert got == want


def test_rank_expression_orders_and_is_shown(panel, base):
    frame, status = scan(panel, rank="mom_63 / ATR_pct", max_symbols=10)
    ref = (base["mom_63"] / base["ATR_pct"]).dropna().sort_values(ascending=False)
    assert list(frame["Symbol"]) == list(ref.index[:10])
    np.testing.assert_allclose(frame["RankValue"], ref.iloc[:10], rtol=1e-12)
    assert status.rejected_by_reason["beyond max_symbols"] == len(base) - 10


def test_cross_sectional_rank_is_within_the_universe(panel, base):
    frame, _ = scan(panel, where="pct_rank(mom_21) > 0.8")
    pct = base["mom_21"].rank(pct=True)
    assert set(frame["Symbol"]) == set(pct.index[pct > 0.8])


# --- weekly bars and look-ahead -----------------------------------------------------------
def test_weekly_bars_are_closed_weeks_of_own_bars(panel):
    weekly = weekly_panel(panel, last_week_closed=False)
    sessions = panel.sessions
    i = 7
    s = pd.Series(panel.close[i], index=sessions).dropna()
    by_week = s.groupby(s.index.to_period("W-SUN")).last()
    want = by_week.iloc[:-1] if sessions[-1].to_period("W-SUN") == by_week.index[-1] else by_week
    got = pd.Series(weekly.close[i], index=weekly.sessions.to_period("W-SUN")).dropna()
    pd.testing.assert_series_equal(got.loc[want.index], want, check_names=False)


def test_no_look_ahead_for_lags_windows_and_weeks(panel):
    where = "W.RSI > 45 and RSI > RSI[3] and Close > sma(Close, 20)"
    as_of = panel.sessions[-40]
    first, _ = scan(panel, where=where, as_of_date=str(as_of.date()))
    changed = Panel(symbols=panel.symbols, sessions=panel.sessions, open=panel.open.copy(),
                    high=panel.high.copy(), low=panel.low.copy(), close=panel.close.copy(),
                    volume=panel.volume.copy(), universe=panel.universe, source=panel.source)
    after = panel.sessions > as_of
    for f in ("open", "high", "low", "close"):
        getattr(changed, f)[:, after] *= 3.0
    second, _ = scan(changed, where=where, as_of_date=str(as_of.date()))
    pd.testing.assert_frame_equal(first, second)


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("field, text, message, column", [
    ("where", "RSII < 30", "unknown column 'RSII' at 1:1 — did you mean RSI?", 1),
    ("where", "RSI < 30 and", "at 1:", None),
    ("where", "RSI[-1] > 3", "cannot look ahead", 5),
    ("where", "mom_63", "must be a condition", None),
    ("rank", "RSI > 3", "must be a number", None),
    ("where", "__import__('os')", "at 1:", None),
    ("where", "Alpha5d[2] > 0", "last bar only", None)])
def test_bad_expressions_are_config_errors_at_the_place(panel, field, text, message, column):
    with pytest.raises(ConfigError) as info:
        scan(panel, **{field: text})
    assert info.value.field == field and message in str(info.value), str(info.value)
    assert {"line", "column"} <= set(info.value.details)
    if column is not None:
        assert info.value.details["column"] == column


# --- the result's columns and text comparisons ---------------------------------------------
def test_results_carry_the_columns_where_and_rank_read(panel):
    frame, _ = scan(panel, where="ADX > 20 and CCI > 0", rank="mom_63 / ATR_pct")
    assert {"ADX", "CCI", "RankValue"} <= set(frame.columns)
    assert ((frame["ADX"] > 20) & (frame["CCI"] > 0)).all() and len(frame)
    np.testing.assert_allclose(frame["RankValue"], frame["mom_63"] / frame["ATR_pct"],
                               rtol=1e-12)
    full, _ = scan(panel, columns=["ADX", "CCI"], min_bars=1)
    both = frame.merge(full, on="Symbol", suffixes=("", "_all"))
    np.testing.assert_array_equal(both["ADX"], both["ADX_all"])  # the same value either way


def test_columns_choose_the_result_columns(panel, base):
    frame, _ = scan(panel, columns=["EMA50", "RSI", "RS_rating", "perf_ytd", "Open"],
                    where="W.RSI > 0 or RSI > 0")
    assert list(frame.columns) == ["Symbol", "EMA50", "RSI", "RS_rating", "perf_ytd", "Open"]
    assert list(frame["Symbol"]) == list(base.index)  # the ranking does not change
    np.testing.assert_array_equal(frame["RSI"], base["RSI"])
    rated = frame["RS_rating"].dropna()  # NaN: fewer than 253 bars
    assert len(rated) > len(frame) / 2 and rated.between(1, 99).all()
    with pytest.raises(ConfigError) as info:
        scan(panel, columns=["RSI", "EMA5O"])
    assert info.value.field == "columns" and "EMA5O" in str(info.value)
    assert "EMA50" in info.value.valid and "beta_60" in info.value.valid


@pytest.mark.parametrize("where, sectors", [
    ('Sector == "Tech"', ["Tech"]),
    ('Sector == "healthcare"', ["Healthcare"]),
    ('Sector in ("Financial Services", "energy")', ["Financial Services", "Energy"]),
])
def test_sector_text_equals_the_sector_filter(panel, where, sectors):
    by_where, _ = scan(panel, where=where)
    by_filter, _ = scan(panel, sectors=sectors)
    assert len(by_where) and list(by_where["Symbol"]) == list(by_filter["Symbol"])
    not_it, _ = scan(panel, where='Sector != "Tech"')
    assert set(not_it["Symbol"]).isdisjoint(by_where["Symbol"]) or "Tech" not in where


@pytest.mark.parametrize("where, valid", [
    ('Sector == "Techno"', "Information Technology"),
    ('RSI > 0 and Sector in ("Energy", "Oil")', "Energy"),
    ('Industry == "Energy ind0"', "Energy Ind0"),
])
def test_unknown_sector_or_industry_text_is_an_error_naming_the_valid_values(panel, where,
                                                                             valid):
    with pytest.raises(ConfigError) as info:
        scan(panel, where=where)
    assert info.value.field == "where" and valid in str(info.value), str(info.value)
