"""Test helpers: random screen expressions, their text, and a plain-Python reference interpreter.

Expressions are generated as small tuples (never through the code under test), rendered to
text with as few parentheses as precedence allows (plus some redundant ones), and evaluated by
`Reference`: row by row, bar by bar, over each row's own bar list as Python floats, following
the documented semantics. The compiled screen must agree with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

NUMBER_COLS = ("a", "b", "c")
TEXT_COLS = ("Sector", "Industry")
SCHEMA = {**{c: "number" for c in NUMBER_COLS}, **{c: "text" for c in TEXT_COLS}}
TEXT_VALUES = ("Energy", "Tech", "Utilities")
PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "between": 4, "in": 4, "textcmp": 4,
        "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}  # fmt: skip
ROLLING = {"highest", "lowest", "sma", "ema", "change"}
CROSS = {"pct_rank": None, "sector_rank": "Sector", "industry_rank": "Industry"}


# ---------------------------------------------------------------- generating expressions
def _literal(x: float) -> tuple:
    return ("num", float(x))


numbers = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 0.5, 3.0, 30.0, 1e-3, 1e300]),
    st.floats(-50, 50, allow_nan=False, width=32).map(float),
)


@st.composite
def number_expr(draw, depth: int = 3, mode: str = "any") -> tuple:
    """A number expression. mode "D" / "W": only that timeframe (and constants); "any": both."""
    leaves = [numbers.map(_literal)]
    if mode in ("D", "any"):
        leaves.append(st.sampled_from(NUMBER_COLS).map(lambda c: ("col", c)))
    if mode in ("W", "any"):
        leaves.append(st.sampled_from(NUMBER_COLS).map(lambda c: ("wcol", c)))
    if depth <= 0 or draw(st.integers(0, 4)) == 0:
        return draw(st.one_of(leaves))
    pure = mode if mode != "any" else draw(st.sampled_from(["D", "W"]))
    sub = depth - 1
    kind = draw(
        st.sampled_from(
            ["neg", "arith", "arith", "lag", "abs", "minmax", "rolling", "cross", "paren"]
        )
    )
    if kind == "neg":
        return ("neg", draw(number_expr(sub, mode)))
    if kind == "arith":
        op = draw(st.sampled_from("+-*/"))
        return ("arith", op, draw(number_expr(sub, mode)), draw(number_expr(sub, mode)))
    if kind == "lag":
        return ("lag", draw(number_expr(sub, pure)), draw(st.integers(0, 3)))
    if kind == "abs":
        return ("call", "abs", (draw(number_expr(sub, mode)),), ())
    if kind == "minmax":
        fn = draw(st.sampled_from(["min", "max"]))
        return ("call", fn, (draw(number_expr(sub, mode)), draw(number_expr(sub, mode))), ())
    if kind == "rolling":
        fn = draw(st.sampled_from(sorted(ROLLING)))
        n = draw(st.integers(1, 2 if fn == "ema" else 4))
        return ("call", fn, (draw(number_expr(sub, pure)),), (n,))
    if kind == "cross":
        fn = draw(st.sampled_from(sorted(CROSS)))
        return ("call", fn, (draw(number_expr(sub, mode)),), ())
    return ("paren", draw(number_expr(sub, mode)))


@st.composite
def bool_expr(draw, depth: int = 3, mode: str = "any") -> tuple:
    leaves = [st.sampled_from([("bool", True), ("bool", False)])]
    if depth <= 0 or draw(st.integers(0, 5)) == 0:
        return draw(st.one_of(leaves))
    pure = mode if mode != "any" else draw(st.sampled_from(["D", "W"]))
    sub = depth - 1
    kind = draw(
        st.sampled_from(
            [
                "cmp",
                "cmp",
                "cmp",
                "between",
                "in",
                "textcmp",
                "not",
                "and",
                "or",
                "lag",
                "crosses",
                "paren",
            ]
        )
    )
    if kind == "cmp":
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return ("cmp", op, draw(number_expr(sub, mode)), draw(number_expr(sub, mode)))
    if kind == "between":
        return ("between", *(draw(number_expr(sub, mode)) for _ in range(3)))
    if kind == "in":
        options = tuple(
            draw(st.lists(st.sampled_from(TEXT_VALUES + ("Other",)), min_size=1, max_size=3))
        )
        return ("in", draw(st.sampled_from(TEXT_COLS)), options, draw(st.booleans()))
    if kind == "textcmp":
        return (
            "textcmp",
            draw(st.sampled_from(["==", "!="])),
            draw(st.sampled_from(TEXT_COLS)),
            draw(st.sampled_from(TEXT_VALUES)),
            draw(st.booleans()),
        )
    if kind == "not":
        return ("not", draw(bool_expr(sub, mode)))
    if kind in ("and", "or"):
        return (kind, draw(bool_expr(sub, mode)), draw(bool_expr(sub, mode)))
    if kind == "lag":
        return ("lag", draw(bool_expr(sub, pure)), draw(st.integers(0, 3)))
    if kind == "crosses":
        fn = draw(st.sampled_from(["crosses_above", "crosses_below"]))
        args = (draw(number_expr(sub, pure)), draw(number_expr(sub, pure)))
        return ("call", fn, args, (draw(st.integers(1, 3)),))
    return ("paren", draw(bool_expr(sub, mode)))


# ---------------------------------------------------------------- rendering
def prec(e: tuple) -> int:
    tag = e[0]
    if tag == "num":
        return 7 if repr(e[1]).startswith("-") else 8
    if tag in ("and", "or", "not", "cmp", "between", "in", "textcmp", "neg"):
        return PREC[tag]
    if tag == "arith":
        return PREC[e[1]]
    return 8


def render(e: tuple) -> str:
    def wrap(child: tuple, at_least: int) -> str:
        text = render(child)
        return text if prec(child) >= at_least else f"({text})"

    tag = e[0]
    if tag == "num":
        return repr(e[1])
    if tag == "bool":
        return "true" if e[1] else "false"
    if tag == "col":
        return e[1]
    if tag == "wcol":
        return "W." + e[1]
    if tag == "paren":
        return f"({render(e[1])})"
    if tag == "neg":
        return "-" + wrap(e[1], 7)
    if tag == "arith":
        p = PREC[e[1]]
        return f"{wrap(e[2], p)} {e[1]} {wrap(e[3], p + 1)}"
    if tag == "cmp":
        return f"{wrap(e[2], 5)} {e[1]} {wrap(e[3], 5)}"
    if tag == "between":
        return f"{wrap(e[1], 5)} between {wrap(e[2], 5)} and {wrap(e[3], 5)}"
    if tag == "in":
        items = ", ".join(f'"{s}"' for s in e[2])
        return f"{e[1]} {'not in' if e[3] else 'in'} ({items})"
    if tag == "textcmp":
        _, op, col, value, flipped = e
        return f"'{value}' {op} {col}" if flipped else f'{col} {op} "{value}"'
    if tag == "not":
        return "not " + wrap(e[1], 3)
    if tag in ("and", "or"):
        p = PREC[tag]
        return f"{wrap(e[1], p)} {tag} {wrap(e[2], p + 1)}"
    if tag == "lag":
        return f"{wrap(e[1], 8)}[{e[2]}]"
    if tag == "call":
        _, fn, args, ints = e
        parts = [render(a) for a in args]
        if fn.startswith("crosses"):
            parts.append(f"within={ints[0]}")
        else:
            parts += [str(n) for n in ints]
        return f"{fn}({', '.join(parts)})"
    raise AssertionError(tag)


# ---------------------------------------------------------------- the reference interpreter
def axis(e: tuple) -> str | None:
    tag = e[0]
    if tag == "col":
        return "D"
    if tag == "wcol":
        return "W"
    if tag in ("num", "bool", "in", "textcmp"):
        return None
    kids = [c for c in e[1:] if isinstance(c, tuple) and c and isinstance(c[0], str)]
    if tag == "call":
        kids = list(e[2])
    axes = {axis(c) for c in kids} - {None}
    return "D" if "D" in axes else ("W" if axes else None)


def is_bool(e: tuple) -> bool:
    tag = e[0]
    if tag in ("paren", "lag"):
        return is_bool(e[1])
    if tag == "call":
        return e[1].startswith("crosses")
    return tag in ("bool", "cmp", "between", "in", "textcmp", "not", "and", "or")


@dataclass
class Data:
    """Packed arrays as an ArrayEnv takes them (tests build both from this)."""

    daily: dict[str, np.ndarray]
    weekly: dict[str, np.ndarray]
    week_of: np.ndarray
    text: dict[str, np.ndarray]
    groups: dict[str, np.ndarray]
    universe: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.daily.values())).shape


def _fix(x: float) -> float:
    return x if math.isfinite(x) else math.nan


@dataclass
class Reference:
    data: Data
    memo: dict = field(default_factory=dict)

    def run(self, e: tuple, width: int) -> np.ndarray:
        n, t = self.data.shape
        out = [[self.at(e, i, "D", t - width + j) for j in range(width)] for i in range(n)]
        return np.array(out, dtype=bool if is_bool(e) else np.float64)

    def at(self, e: tuple, i: int, ax: str, b: int):
        """The value of e for row i at bar b of axis ax (a daily index, or a weekly one)."""
        if ax == "D" and axis(e) == "W":  # the weekly value in effect that day
            week = int(self.data.week_of[b]) if 0 <= b < self.data.shape[1] else -1
            if week < 0:
                return False if is_bool(e) else math.nan
            return self.at(e, i, "W", week)
        key = (id(e), i, ax, b)
        if key not in self.memo:
            self.memo[key] = self._at(e, i, ax, b)
        return self.memo[key]

    def _at(self, e: tuple, i: int, ax: str, b: int):
        tag, d = e[0], self.data
        if tag in ("num", "bool"):
            return e[1]
        if tag in ("col", "wcol"):
            arr, last = (
                (d.daily[e[1]], d.shape[1] - 1)
                if tag == "col"
                else (d.weekly[e[1]], int(d.week_of[-1]))
            )
            return _fix(float(arr[i, b])) if 0 <= b <= last else math.nan
        if tag == "paren":
            return self.at(e[1], i, ax, b)
        if tag == "neg":
            return -self.at(e[1], i, ax, b)
        if tag == "arith":
            x, y = self.at(e[2], i, ax, b), self.at(e[3], i, ax, b)
            try:
                r = {"+": x + y, "-": x - y, "*": x * y}[e[1]] if e[1] != "/" else x / y
            except ZeroDivisionError:
                return math.nan
            return _fix(r)
        if tag == "cmp":
            x, y = self.at(e[2], i, ax, b), self.at(e[3], i, ax, b)
            if math.isnan(x) or math.isnan(y):
                return False
            return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "==": x == y, "!=": x != y}[
                e[1]
            ]
        if tag == "between":
            x, lo, hi = (self.at(c, i, ax, b) for c in e[1:])
            return lo <= x <= hi  # False when any is NaN
        if tag == "in":
            v = d.text[e[1]][i]
            return isinstance(v, str) and ((v in e[2]) != e[3])
        if tag == "textcmp":
            v = d.text[e[2]][i]
            return isinstance(v, str) and ((v == e[3]) == (e[1] == "=="))
        if tag == "not":
            return not self.at(e[1], i, ax, b)
        if tag == "and":
            return self.at(e[1], i, ax, b) and self.at(e[2], i, ax, b)
        if tag == "or":
            return self.at(e[1], i, ax, b) or self.at(e[2], i, ax, b)
        if tag == "lag":
            return self.at(e[1], i, ax, b - e[2])
        return self._call(e, i, ax, b)

    def _call(self, e: tuple, i: int, ax: str, b: int):
        _, fn, args, ints = e
        if fn in ("abs", "min", "max"):
            vals = [self.at(a, i, ax, b) for a in args]
            if any(math.isnan(v) for v in vals):
                return math.nan
            return abs(vals[0]) if fn == "abs" else (min if fn == "min" else max)(vals)
        if fn in CROSS:
            return self._rank(e, i, ax, b)
        if fn.startswith("crosses"):
            w = ints[0]
            for m in range(w):
                c = b - m
                a0, b0 = self.at(args[0], i, ax, c), self.at(args[1], i, ax, c)
                a1, b1 = self.at(args[0], i, ax, c - 1), self.at(args[1], i, ax, c - 1)
                hit = (a0 > b0 and a1 <= b1) if fn == "crosses_above" else (a0 < b0 and a1 >= b1)
                if hit:
                    return True
            return False
        n = ints[0]
        if fn == "change":
            x, x0 = self.at(args[0], i, ax, b), self.at(args[0], i, ax, b - n)
            if x0 == 0:
                return math.nan
            return _fix(x / x0 - 1.0)
        span = 4 * n if fn == "ema" else n
        window = [self.at(args[0], i, ax, b - span + 1 + m) for m in range(span)]
        if any(math.isnan(v) for v in window):
            return math.nan
        if fn == "highest":
            return max(window)
        if fn == "lowest":
            return min(window)
        s = 0.0
        for v in window[:n]:
            s += v
        if fn == "sma":
            return _fix(s / n)
        k, ema = 2.0 / (n + 1), s / n
        for v in window[n:]:
            ema = (v - ema) * k + ema
        return _fix(ema)

    def _rank(self, e: tuple, i: int, ax: str, b: int) -> float:
        _, fn, args, _ = e
        d, rows = self.data, range(self.data.shape[0])
        group = CROSS[fn]
        codes = d.groups.get(group) if group else None
        values = [self.at(args[0], r, ax, b) for r in rows]

        def counts(r: int) -> bool:
            ok = bool(d.universe[r]) and not math.isnan(values[r])
            return ok and (codes is None or codes[r] >= 0)

        if not counts(i):
            return math.nan
        peers = [r for r in rows if counts(r) and (codes is None or codes[r] == codes[i])]
        v = values[i]
        if group is None:
            less = sum(values[r] < v for r in peers)
            equal = sum(values[r] == v for r in peers)
            return (1 + less + (equal - 1) / 2) / len(peers)
        return float(1 + sum(values[r] > v for r in peers))


# ---------------------------------------------------------------- random packed data
_ties = st.sampled_from([0.0, 1.0, 2.0, 3.0, 30.0, -1.0, 0.5, math.nan, math.inf])
pool = st.one_of(_ties, _ties, st.floats(-60, 60, allow_nan=False, width=32).map(float))


@st.composite
def packed_data(draw) -> Data:
    n = draw(st.integers(1, 5))
    t = draw(st.integers(1, 14))

    def packed(cols: int) -> np.ndarray:
        arr = np.array(
            draw(st.lists(st.lists(pool, min_size=cols, max_size=cols), min_size=n, max_size=n)),
            dtype=np.float64,
        ).reshape(n, cols)
        for r in range(n):  # NaN before each symbol's first bar
            arr[r, : draw(st.integers(0, cols))] = np.nan
        return arr

    steps = draw(st.lists(st.booleans(), min_size=t, max_size=t))
    week_of = np.cumsum(steps).astype(np.int64) - 1 - draw(st.integers(0, 2))
    week_of = np.maximum(week_of, -1)
    n_weeks = int(week_of[-1]) + 1 + draw(st.integers(0, 2))  # weeks after t: never read
    texts = st.sampled_from(list(TEXT_VALUES) + [None, math.nan])
    return Data(
        daily={c: packed(t) for c in NUMBER_COLS},
        weekly={c: packed(n_weeks) for c in NUMBER_COLS},
        week_of=week_of,
        text={
            c: np.array(draw(st.lists(texts, min_size=n, max_size=n)), dtype=object)
            for c in TEXT_COLS
        },
        groups={
            c: np.array(draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)))
            for c in TEXT_COLS
        },
        universe=np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
    )


def env_of(data: Data):
    """The ArrayEnv over the same arrays (imported late: this module stays independent)."""
    from technic_v4.screens import ArrayEnv

    return ArrayEnv(
        data.daily,
        text=data.text,
        groups=data.groups,
        weekly=data.weekly,
        week_of=data.week_of,
        universe=data.universe,
    )
