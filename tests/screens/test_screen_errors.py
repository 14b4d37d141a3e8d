"""Errors: exact messages, places and suggestions; kind errors; every limit."""

from __future__ import annotations

import pickle

import pytest

from technic_v4.screens import MAX_DEPTH, MAX_LENGTH, MAX_NODES, ScreenError, compile_screen

S = {
    "RSI": "number",
    "RSI2": "number",
    "Close": "number",
    "SMA200": "number",
    "High": "number",
    "MACD": "number",
    "Sector": "text",
}


def error(text: str, kind: str = "bool") -> ScreenError:
    with pytest.raises(ScreenError) as info:
        compile_screen(text, S, kind=kind)
    assert type(info.value) is ScreenError
    return info.value


@pytest.mark.parametrize(
    "text, shown",
    [
        ("RSII < 30", "unknown column 'RSII' at 1:1 — did you mean RSI or RSI2?"),
        ("RSI < 30 and )", "unexpected ')' at 1:14 — expected a number, a column or '('"),
        ("RSI < 30 and\n  Clsoe > 1", "unknown column 'Clsoe' at 2:3 — did you mean Close?"),
        ("(RSI < 30", "unexpected end of the screen at 1:10 — expected ')'"),
        ("RSI > 1 and\n\nRSI2 <", "unexpected end of the screen at 3:7 — expected a number, "
         "a column or '('"),
        ("RSI < 30 and Close > (SMA200))", "unexpected ')' at 1:30 — expected the end of the "
         "screen"),
        ("RSI 3", "unexpected '3' at 1:5 — expected a comparison, an operator, 'and', 'or' or "
         "the end of the screen"),
        ("hihgest(High, 5) > 1", "unknown function 'hihgest' at 1:1 — did you mean highest?"),
        ("Close(3) > 1", "unknown function 'Close' at 1:1 — Close is a column, not a function"),
        ("sma > 1", "sma is a function at 1:1 — call it: sma(x, n)"),
        ("highest(High) > 1", "highest() needs n at 1:1 — usage: highest(x, n)"),
        ("highest(High, 5, 3) > 1", "highest() takes 2 arguments at 1:18 — usage: "
         "highest(x, n)"),
        ("crosses_above(RSI, MACD, witin=2)", "crosses_above() has no parameter 'witin' at "
         "1:26 — did you mean within?"),
        ("crosses_above(RSI, MACD, within=2, within=3)", "crosses_above() got within twice at "
         "1:36"),
        ("crosses_above(within=2, RSI, MACD)", "crosses_above(): a positional argument after a "
         "keyword one at 1:25"),
        ("RSI = 3", "unexpected '=' at 1:5 — did you mean '=='?"),
        ("RSI > 1 > 2", "unexpected '>' at 1:9 — comparisons do not chain: write a < b and "
         "b < c"),
        ("RSI && 3", "unexpected character '&' at 1:5 — use 'and'"),
        ("RSI.__class__", "unexpected character '.' at 1:4 — there is no attribute access; a "
         "timeframe's column is written W.<name>, M5.<name>"),
        ("RSI \u2212 3 > 1", "unexpected character U+2212 MINUS SIGN at 1:5 — use '-'"),
        ("RSI\x00 > 1", "unexpected character U+0000 at 1:4 — control characters are not "
         "allowed"),
        ('Sector == "abc', 'unterminated string at 1:11 — close it with " on the same line'),
        ("", "empty screen at 1:1 — write a condition such as RSI < 30"),
    ],
)  # fmt: skip
def test_messages_places_and_hints(text, shown):
    assert str(error(text)) == shown


def test_fields_and_suggestions():
    err = error("rsi < 30")
    assert (err.line, err.column, err.message) == (1, 1, "unknown column 'rsi'")
    assert err.suggestions == ["RSI", "RSI2"]  # the case-insensitive match first
    assert err.hint == "did you mean RSI or RSI2?"
    assert error("W.RSII > 1").suggestions == ["W.RSI", "W.RSI2"]
    assert error("Nothing_like_it > 1").suggestions == []
    assert error("Nothing_like_it > 1").hint == ""
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.suggestions == err.suggestions
    assert err.to_dict()["column"] == 1 and err.to_dict()["error"] == str(err)


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("RSI + (Close > 1) > 2", "'+' needs a number, but Close > 1 is a condition", 8),
        ("RSI and Close > 1", "'and' needs a condition, but RSI is a number", 1),
        ("Close > 1 or 2", "'or' needs a condition, but 2 is a number", 14),
        ("not RSI", "'not' needs a condition, but RSI is a number", 5),
        ("true + 1 > 0", "'+' needs a number, but true is a condition", 1),
        ("Sector > 'A'", "'>' does not apply to text", 8),
        ("Sector + 1 > 2", "'+' needs a number, but Sector is text", 1),
        ("RSI == 'x'", "'==' cannot compare a number with text", 5),
        ("(RSI > 1) == (RSI < 3)", "'==' cannot compare conditions", 11),
        ("'Energy' == 'Energy'", "two strings compared", 1),
        ("RSI in ('a')", "'in' needs a text column on its left, but RSI is a number", 1),
        ("'a' in ('a')", "'in' needs a text column on its left, but \"a\" is a string", 1),
        ("RSI > 'a' + 1", "'+' needs a number, but \"a\" is text", 7),
        ("W.Sector == 'x'", "W. applies to number columns; Sector is text", 1),
        ("abs(Sector) > 1", "abs()'s x needs a number, but Sector is text", 5),
        ("min(RSI, RSI > 3) > 1", "min()'s b needs a number, but RSI > 3 is a condition", 10),
        ("Sector[1] == 'a'", "a lag needs a number or a condition; text has only its current "
         "value", 1),
        ("(RSI + W.RSI)[1] > 1", "a lag over daily and weekly values mixed together", 1),
        ("sma(RSI + W.RSI, 3) > 1", "sma() over daily and weekly values mixed together", 1),
        ("crosses_above(W.RSI, RSI)", "crosses_above() over daily and weekly values mixed "
         "together", 1),
    ],
)  # fmt: skip
def test_kind_and_timeframe_errors_point_at_the_place(text, message, column):
    err = error(text)
    assert (err.message, err.line, err.column) == (message, 1, column)


def test_where_must_be_a_condition_and_rank_a_number():
    assert error("RSI").message.startswith("the screen must be a condition")
    assert error("Sector").message.endswith("but it is text")
    assert error("RSI > 1", kind="number").message == (
        "the screen must be a number, but it is a condition"
    )
    assert compile_screen("RSI / Close", S, kind="number").kind == "number"
    with pytest.raises(ValueError):
        compile_screen("RSI > 1", S, kind="text")  # a caller's mistake, not the user's


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("RSI[-1] > 1", "a lag cannot be negative", 5),
        ("RSI[1261] > 1", "a lag must be between 0 and 1260, got 1261", 5),
        ("RSI[1.5] > 1", "a lag must be a whole number written out, such as 1 or 20", 5),
        ("RSI[RSI] > 1", "a lag must be a whole number written out, such as 1 or 20", 5),
        ("RSI[" + "9" * 30 + "] > 1", "a lag must be between 0 and 1260, got 999999999999", 5),
        ("sma(RSI, 0) > 1", "sma()'s n must be between 1 and 1260, got 0", 10),
        ("sma(RSI, 1261) > 1", "sma()'s n must be between 1 and 1260, got 1261", 10),
        ("sma(RSI, -3) > 1", "sma()'s n cannot be negative", 10),
        ("sma(RSI, 2.5) > 1", "sma()'s n must be a whole number written out, such as 1 or 20", 10),
        ("crosses_above(RSI, 50, within=0)", "crosses_above()'s within must be between 1 and "
         "1260, got 0", 31),
        ("RSI >= 1e400", "number out of range: 1e400", 8),
        ("RSI > " + "9" * 41, "number too long", 7),
        ("sma(sma(sma(sma(sma(RSI, 1260), 1260), 1260), 1260), 1260) > 1", "the screen needs "
         "6,295 bars of history", 1),
    ],
)  # fmt: skip
def test_lag_window_and_number_limits(text, message, column):
    err = error(text)
    assert (err.message, err.column) == (message, column)


def test_limits_accepted_at_the_edge():
    assert compile_screen("RSI[1260] > 1 and RSI[0] > 1", S).lookback == {"D": 1260}
    assert compile_screen("sma(RSI, 1260) > 1", S).lookback == {"D": 1259}
    assert compile_screen("RSI[-0] > 1", S).text == "RSI[0] > 1"
    assert compile_screen("ema(RSI, 1260)[1] > 0", S).lookback == {"D": 5040}
    assert error("ema(RSI, 1260)[2] > 0").message == "the screen needs 5,041 bars of history"


def test_length_limit():
    ok = "RSI > 1" + " " * (MAX_LENGTH - 7)
    assert compile_screen(ok, S).text == "RSI > 1"
    err = error(ok + " ")
    assert err.message == f"screen too long: {MAX_LENGTH + 1:,} characters"
    assert error("9" * 5000).message == "screen too long: 5,000 characters"


def test_depth_limit_by_brackets_before_any_tree():
    ok = "(" * MAX_DEPTH + "RSI > 1" + ")" * MAX_DEPTH
    assert compile_screen(ok, S).text == "RSI > 1"
    deep = "(" * (MAX_DEPTH + 1) + "RSI > 1" + ")" * (MAX_DEPTH + 1)
    err = error(deep)
    assert (err.message, err.column) == ("brackets nested too deeply", MAX_DEPTH + 1)
    err = error("abs(" * 40 + "RSI" + ")" * 40 + " > 1")
    assert err.message == "brackets nested too deeply"
    assert error("(" * 10_000 + ")" * 10_000).message.startswith("screen too long")
    # within the length limit, 990 brackets: refused by the scan, no recursion anywhere
    assert error("(" * 990 + "1" + ")" * 990).message == "brackets nested too deeply"
    in_string = "'" + "(" * 40 + "' == Sector"  # brackets inside a string do not count
    assert compile_screen(in_string, S).columns == {"Sector"}


def test_depth_limit_counts_operators_too():
    err = error("not " * 40 + "RSI > 1")
    assert err.message == "screen nested too deeply"
    assert error("-" * 900 + "RSI > 1").message == "screen nested too deeply"
    assert compile_screen("not " * 20 + "RSI > 1", S).text == "not " * 20 + "RSI > 1"
    chain = " and ".join(["RSI > 1"] * 60)  # a long and-chain is one level, not 60
    assert compile_screen(chain, S).text == chain


def test_node_limit():
    ok = " + ".join(["RSI"] * (MAX_NODES - 3)) + " > 1"  # sum + operands + compare + literal
    assert compile_screen(ok, S)
    err = error(" + ".join(["RSI"] * (MAX_NODES - 2)) + " > 1")
    assert err.message == "screen too large"
    assert error(" and ".join(["RSI > 1"] * 67)).message == "screen too large"
