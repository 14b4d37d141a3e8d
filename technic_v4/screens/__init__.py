"""Screen expressions: `RSI < 30 and Close > SMA200` text -> array operations (issue 13).

Walk-through: grammar -> tree -> program.
  1. grammar.py   The text (<= 2,000 characters, brackets <= 32 deep by a raw scan) is parsed
                  by lark's LALR(1) parser into a parse tree; its depth (<= 32) and size
                  (<= 200 nodes) are checked without recursion. Syntax errors come back as
                  ScreenError with line, column and what was expected.
  2. compile.py   The parse tree is built bottom-up into a tree of small operator classes
                  (nodes.py; calls from the one table in functions.py), checking names against
                  the schema, kinds (number / condition / text), lags and windows (integer
                  literals, never negative: a screen cannot look ahead) and timeframes (daily,
                  weekly `W.x`). Each node reports the history it needs, so the compiled screen
                  knows its `lookback` per timeframe before it ever runs.
  3. program      `CompiledScreen.evaluate(env, width)` runs the tree over whole arrays from an
                  `Env` (env.py): (N symbols, width bars) out, every node asking its children for
                  just the bars it needs. Nothing is ever passed to eval / exec / compile: the
                  grammar admits no attribute access, no call outside the table, no indexing but
                  lags, so hostile text fails to parse.

    >>> screen = compile_screen("RSI < 30 and Close > SMA200", {"RSI": "number", ...})
    >>> screen.columns, screen.lookback          # what to load
    >>> hits = screen.evaluate(env)[:, -1]       # one scan: a bool per symbol

The language.
  numbers 30, 1.5, 2e-3; strings "Energy" or 'Energy' (only against text columns);
  true, false; columns by schema name (case-sensitive); W.name = the weekly bars of a number
  column. Operators, loosest first: or; and; not; comparisons < <= > >= == != (no chaining),
  `x between a and b` (inclusive), `Sector in ("A", "B")`, `Sector not in (...)`; + -; * /;
  unary -; `x[n]` (the value n bars ago on x's own bars, 0 <= n <= 1260) and calls.
  Functions: see `describe()` / FUNCTIONS (abs min max highest lowest sma ema change
  crosses_above crosses_below pct_rank sector_rank industry_rank).

NaN semantics (a NaN is a missing value: before a symbol's first bar, a hole, x / 0).
  - Arithmetic propagates NaN; division by 0 and overflow give NaN, never inf; an input of
    +-inf is read as NaN. So every number is finite or NaN.
  - A comparison involving NaN is false, != included (`x != 1` is false when x is NaN);
    `between` is false when any of its three values is NaN; `in`, `not in`, == and != on a
    missing text value are false.
  - After comparisons it is plain boolean logic: `not` of false is true, so
    `not (x == 1)` is true where x is NaN while `x != 1` is false.
  - A rolling window (highest, lowest, sma, ema, change, a lag) holding a NaN gives NaN;
    crosses_above/below counts no cross where a compared value is NaN.
  - Cross-sectional ranks rank the universe's rows with a finite value; other rows get NaN.
Timeframes: a node's bars are those of its subtree (daily, or weekly for W.); combining a
daily and a weekly subtree reads the weekly value in effect at each day (the last closed week,
see env.py); a lag or rolling function over such a mix is a compile error.
"""

from __future__ import annotations

from technic_v4.screens.compile import (
    MAX_LOOKBACK,
    ColumnKind,
    CompiledScreen,
    ScreenKind,
    compile_screen,
)
from technic_v4.screens.env import ArrayEnv, Env
from technic_v4.screens.errors import ScreenError
from technic_v4.screens.functions import EMA_ALLOWANCE, FUNCTIONS, MAX_WINDOW, describe
from technic_v4.screens.grammar import GRAMMAR, MAX_DEPTH, MAX_LENGTH, MAX_NODES

OPERATORS: tuple[tuple[str, str], ...] = (
    ("a + b, a - b, a * b, a / b", "arithmetic on numbers; x / 0 is NaN"),
    ("-x", "negation"),
    ("a < b, <=, >, >=, ==, !=", "comparisons; false when either side is missing"),
    ("x between a and b", "a <= x <= b"),
    ('Sector in ("A", "B"), not in', "a text column's value in a list of strings"),
    ("c and d, c or d, not c", "combine conditions"),
    ("x[n]", "the value n bars ago (0 <= n <= 1260), on x's own daily or weekly bars"),
    ("W.name", "a number column on weekly bars (the last closed week)"),
)


def help_text() -> str:
    """The operators and functions as plain text, one per line (`technic screen --help`)."""
    lines = ["Operators:"]
    lines += [f"  {syntax:32} {doc}" for syntax, doc in OPERATORS]
    lines.append("Functions:")
    lines += [f"  {f['signature']:32} {f['doc']}" for f in describe()]
    return "\n".join(lines)


__all__ = [
    "EMA_ALLOWANCE",
    "FUNCTIONS",
    "GRAMMAR",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_LOOKBACK",
    "MAX_NODES",
    "MAX_WINDOW",
    "OPERATORS",
    "ArrayEnv",
    "ColumnKind",
    "CompiledScreen",
    "Env",
    "ScreenError",
    "ScreenKind",
    "compile_screen",
    "describe",
    "help_text",
]
