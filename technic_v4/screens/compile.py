"""Parse tree -> checked node tree -> `CompiledScreen`: kinds, axes, windows and limits.

`compile_screen(text, schema, kind)` parses (grammar.py), then builds the node tree bottom-up,
checking as it goes and pointing every complaint at its place in the text:
  - names against the schema (case-sensitive, with suggestions), `W.` on number columns only;
  - kinds: arithmetic, comparisons (other than text ==, != and in), `between` and function
    arguments take numbers; `and`, `or`, `not` take conditions; strings meet text columns only;
  - lags and windows are integer literals, 0..1260 and 1..1260, never negative (no look-ahead);
  - a lag or rolling function over a subtree that mixes daily and weekly values is refused;
  - the history a screen needs stays within MAX_LOOKBACK bars per timeframe.
The compiled screen carries its `cost` (cost.py: bar reads and bytes per symbol), which the
scan engine checks against a budget before it loads a price.
The depth was bounded by the parser (<= 32 levels), so this recursive build cannot hit
Python's recursion limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn

import numpy as np
from lark import Token, Tree

from technic_v4.screens.cost import Cost, estimate
from technic_v4.screens.errors import ScreenError, did_you_mean, suggest
from technic_v4.screens.functions import FUNCTIONS, MAX_WINDOW, Call
from technic_v4.screens.grammar import parse, position
from technic_v4.screens.nodes import (
    INTRADAY,
    INTRADAY_NUMBERS,
    PRODUCT,
    SUM,
    TIMEFRAMES,
    Align,
    Arith,
    Between,
    Column,
    Compare,
    Const,
    Context,
    In,
    Lag,
    Logic,
    Neg,
    Node,
    Not,
    String,
)

MAX_LOOKBACK = 5_040  # bars of history per timeframe (20 years of daily bars)
MAX_NUMBER_CHARS = 40
ColumnKind = Literal["number", "text"]
ScreenKind = Literal["bool", "number"]
_KIND_WORDS = {"number": "a number", "bool": "a condition", "text": "text"}


@dataclass(frozen=True, eq=False)
class CompiledScreen:
    """A screen ready to evaluate. `evaluate(env, width)` -> (N, width): bool for a `where`
    (kind "bool"), float64 for a rank (kind "number"); column j is the value at the bar
    width-1-j before the current one (the last column is the current bar)."""

    text: str  # normalised: re-compiles to the same screen
    kind: ScreenKind
    columns: frozenset[str]  # daily number columns and text columns
    weekly_columns: frozenset[str]  # number columns read on the weekly axis (W.name)
    groups: frozenset[str]  # groupings ranked within ("Sector", "Industry"): Env.groups()
    lookback: Mapping[str, int]  # bars beyond the current one, per timeframe ("D", "W", "M5")
    cross_sectional: bool  # ranks across symbols: the result depends on Env.universe
    cost: Cost  # bar reads and bytes per symbol at one session (cost.py)
    root: Node = field(repr=False)
    schema: Mapping[str, ColumnKind] = field(repr=False, default_factory=dict)
    # number columns read on each intraday timeframe ({"M5": {"Close", "VWAP"}}; M5.name)
    intraday_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __reduce__(self):  # pickled as its text: recompiling takes well under a millisecond
        return (compile_screen, (self.text, dict(self.schema), self.kind))

    def cost_at(self, width: int) -> Cost:
        """The cost per symbol of `evaluate(env, width)`: all `width` sessions at once."""
        return estimate(self.root, width)

    def evaluate(self, env: object, width: int = 1) -> np.ndarray:
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        out = self.root.evaluate(Context(env), int(width))
        if out.ndim == 1:  # pragma: no cover - text roots are refused at compile time
            raise ValueError("a text expression has no value per bar")
        dtype = np.bool_ if self.kind == "bool" else np.float64
        return np.array(out, dtype=dtype, copy=True)


def compile_screen(
    text: str, schema: Mapping[str, ColumnKind], kind: ScreenKind = "bool",
    resolve: Mapping[str, Callable[[str], str | Sequence[str]]] | None = None,
    sets: Collection[str] = (),
) -> CompiledScreen:
    """Compile a screen over `schema` (column name -> "number" | "text").

    kind="bool" for a `where` (a condition per symbol), "number" for a rank expression.
    `resolve` {text column: function}: each string compared with that column (==, !=, in)
    becomes function(string), the canonical value (an alias resolved), or the list of values
    it stands for (then `==` is `in` those, `!=` is `not in`); a ValueError from it
    (a value the column never holds) is a ScreenError pointing at the string.
    `sets`: text columns whose value is a set of ids joined by "," (Indexes: "sp500,dow");
    `x in ("a", "b")` is true when the set holds any of them, and == / != do not apply.
    Raises ScreenError, and nothing else, for any text that is not a valid screen.
    """
    if kind not in ("bool", "number"):
        raise ValueError(f"kind must be 'bool' or 'number', got {kind!r}")
    for name, col_kind in schema.items():
        if col_kind not in ("number", "text"):
            raise ValueError(f"schema: column {name!r} has kind {col_kind!r}")
    tree = parse(text)
    builder = _Builder(schema, resolve, sets)
    try:
        root = builder.build(tree)
    except RecursionError:  # pragma: no cover - the depth limit makes this unreachable
        raise ScreenError("screen nested too deeply", hint="simplify the screen") from None
    if root.kind != kind:
        line, column = position(tree)
        want = "a condition (true or false per symbol)" if kind == "bool" else "a number"
        hint = {
            ("bool", "number"): "compare it, e.g. RSI < 30",
            ("number", "bool"): "a rank expression computes a number, e.g. mom_63 / ATR_pct",
        }.get((kind, root.kind), "")
        raise ScreenError(
            f"the screen must be {want}, but it is {_KIND_WORDS[root.kind]}", line, column, hint
        )
    if root.axis == "W":
        root = Align(root)
    lookback = {"D": root.lookback.get("D", 0)}
    if builder.weekly:
        lookback["W"] = root.lookback.get("W", 0)
    for tf in builder.intraday:
        lookback[tf] = root.lookback.get(tf, 0)
    return CompiledScreen(
        text=root.text,
        kind=kind,
        columns=frozenset(builder.daily),
        weekly_columns=frozenset(builder.weekly),
        groups=frozenset(builder.groups),
        lookback=lookback,
        cross_sectional=builder.cross,
        cost=estimate(root),
        root=root,
        schema=dict(schema),
        intraday_columns={tf: frozenset(c) for tf, c in builder.intraday.items()},
    )


class _Builder:
    def __init__(self, schema: Mapping[str, ColumnKind],
                 resolve: Mapping[str, Callable[[str], str | Sequence[str]]] | None = None,
                 sets: Collection[str] = ()) -> None:
        self.schema = dict(schema)
        self.resolve = dict(resolve or {})
        self.sets = frozenset(sets)
        self.daily: set[str] = set()
        self.weekly: set[str] = set()
        self.intraday: dict[str, set[str]] = {}
        self.groups: set[str] = set()
        self.cross = False

    # ------------------------------------------------------------ helpers
    def fail(self, item: Tree | Token, message: str, hint: str = "", suggestions=()) -> NoReturn:
        line, column = position(item)
        raise ScreenError(message, line, column, hint, suggestions)

    def expect(self, item: Tree | Token, node: Node, want: str, role: str) -> Node:
        if node.kind != want:
            got = _KIND_WORDS[node.kind]
            hint = ""
            if want == "bool" and node.kind == "number":
                hint = f"compare it, e.g. {node.text} > 0"
            elif node.kind == "bool":
                hint = "conditions combine with and / or / not"
            if isinstance(node, String):
                hint = "a string can only be compared with a text column (==, != or in)"
            self.fail(item, f"{role} needs {_KIND_WORDS[want]}, but {node.text} is {got}", hint)
        return node

    def build_number(self, item: Tree, role: str) -> Node:
        return self.expect(item, self.build(item), "number", role)

    def integer(self, item: Tree | Token, role: str, lo: int, hi: int) -> int:
        """An integer literal lo..hi (lags, windows): refused otherwise, with why."""
        negative = isinstance(item, Tree) and item.data == "neg"
        inner = item.children[0] if negative and isinstance(item, Tree) else item
        if isinstance(inner, Tree) and inner.data == "number":
            digits = str(inner.children[0])
            if digits.isdigit():
                if negative and digits.strip("0"):
                    self.fail(
                        item,
                        f"{role} cannot be negative",
                        "a screen cannot look ahead: "
                        "x[1] is the previous bar, x[-1] would be a future one",
                    )
                value = int(digits[-8:]) if len(digits.lstrip("0")) <= 8 else hi + 1
                if not lo <= value <= hi:
                    self.fail(item, f"{role} must be between {lo} and {hi}, got {digits[:12]}")
                return value
        self.fail(item, f"{role} must be a whole number written out, such as 1 or 20")
        raise AssertionError  # unreachable: fail() raises

    def check_lookback(self, item: Tree, node: Node) -> Node:
        for axis, bars in node.lookback.items():
            if bars > MAX_LOOKBACK:
                unit = "weeks" if axis == "W" else "bars" if axis == "D" else f"{axis} bars"
                self.fail(
                    item,
                    f"the screen needs {bars:,} {unit} of history",
                    f"at most {MAX_LOOKBACK:,}",
                )
        return node

    def unmixed(self, item: Tree, nodes: list[Node], what: str) -> None:
        axes = {n.axis for n in nodes} - {None}
        if len(axes) > 1 or any(n.mixed for n in nodes):
            used = sorted({a for n in nodes for a in n.lookback}, key=TIMEFRAMES.index)
            words = " and ".join({"D": "daily", "W": "weekly"}.get(a, a) for a in used)
            self.fail(
                item,
                f"{what} over {words} values mixed together",
                "apply it to each timeframe's part separately",
            )

    # ------------------------------------------------------------ the tree
    def build(self, tree: Tree) -> Node:
        method = getattr(self, "_" + str(tree.data), None)
        if method is None:  # pragma: no cover - every grammar rule has a method
            self.fail(tree, f"unsupported construct {tree.data}")
        node: Node = method(tree)
        if "pos" not in vars(node):
            node.pos = position(tree)
        return node

    def _number(self, tree: Tree) -> Node:
        token = str(tree.children[0])
        if len(token) > MAX_NUMBER_CHARS:
            self.fail(tree, "number too long", f"at most {MAX_NUMBER_CHARS} characters")
        value = float(token)
        if not math.isfinite(value):
            self.fail(tree, f"number out of range: {token}", "numbers must be below 1.8e308")
        return Const(value)

    def _string(self, tree: Tree) -> Node:
        return String(str(tree.children[0])[1:-1])

    def _true(self, tree: Tree) -> Node:
        return Const(True)

    def _false(self, tree: Tree) -> Node:
        return Const(False)

    def _column(self, tree: Tree) -> Node:
        name = str(tree.children[0])
        kind = self.schema.get(name)
        if kind is None:
            if name in INTRADAY_NUMBERS:
                self.fail(tree, f"{name} is an intraday column",
                          f"read it on an intraday timeframe, e.g. M5.{name}")
            if name in FUNCTIONS:
                self.fail(tree, f"{name} is a function", f"call it: {FUNCTIONS[name].signature}")
            close = suggest(name, self.schema)
            self.fail(tree, f"unknown column {name!r}", did_you_mean(close), close)
        self.daily.add(name)
        return Column(name, kind, "D" if kind == "number" else None)

    def _timeframe(self, tree: Tree) -> Node:
        prefix, name = str(tree.children[0]).split(".", 1)
        intraday = prefix in INTRADAY
        kind = "number" if intraday and name in INTRADAY_NUMBERS else self.schema.get(name)
        if kind is None:
            known = [n for n, k in self.schema.items() if k == "number"]
            close = suggest(name, [*known, *INTRADAY_NUMBERS] if intraday else known)
            self.fail(
                tree,
                f"unknown column {name!r}",
                did_you_mean([f"{prefix}.{c}" for c in close]),
                [f"{prefix}.{c}" for c in close],
            )
        if kind != "number":
            self.fail(tree, f"{prefix}. applies to number columns; {name} is text")
        if prefix == "D":  # D.name is the daily column name
            self.daily.add(name)
            return Column(name, "number", "D")
        if prefix == "W":
            self.weekly.add(name)
        else:
            self.intraday.setdefault(prefix, set()).add(name)
        return Column(name, "number", prefix)

    def _neg(self, tree: Tree) -> Node:
        child = self.build_number(tree.children[0], "'-'")
        if isinstance(child, Const):
            return Const(-child.value)
        return Neg(child)

    def _sum(self, tree: Tree) -> Node:
        items = tree.children
        first = self.build_number(items[0], f"'{items[1]}'")
        rest = [
            (str(op), self.build_number(arg, f"'{op}'"))
            for op, arg in zip(items[1::2], items[2::2], strict=True)
        ]
        if isinstance(first, Arith) and first.prec == (SUM if str(items[1]) in "+-" else PRODUCT):
            rest = list(zip(first.ops, first.children[1:], strict=True)) + rest
            first = first.children[0]
        return Arith(first, rest)

    _product = _sum

    def _compare(self, tree: Tree) -> Node:
        left_t, op, right_t = tree.children
        left, right = self.build(left_t), self.build(right_t)
        kinds = {left.kind, right.kind}
        if kinds == {"number"}:
            return Compare(str(op), left, right)
        if "bool" in kinds:
            self.fail(
                op, f"'{op}' cannot compare conditions", "combine conditions with and / or / not"
            )
        if kinds != {"text"}:
            self.fail(op, f"'{op}' cannot compare a number with text")
        if str(op) not in ("==", "!="):
            self.fail(op, f"'{op}' does not apply to text", "text compares with ==, != or in")
        if isinstance(left, String) and isinstance(right, String):
            self.fail(tree, "two strings compared", "compare a text column with a string")
        column = left if isinstance(left, Column) else right
        name = getattr(column, "name", "")
        if name in self.sets:
            self.fail(op, f"'{op}' does not apply to {name}, a set of ids",
                      f'test membership with in: {name} in ("sp500", "dow")')
        sides = [self.text_value(column, n, t) for n, t in ((left, left_t), (right, right_t))]
        nodes = [side for side in sides if isinstance(side, Node)]
        for side in sides:
            if isinstance(side, tuple):  # a string standing for several values: in (...)
                return In(column, list(side), negate=str(op) == "!=")
        return Compare(str(op), nodes[0], nodes[1])

    def text_value(self, column: Node, node: Node, item: Tree | Token
                   ) -> Node | tuple[str, ...]:
        """`node`, or the canonical value of a string compared with `column` (`resolve`):
        a String, or the values it stands for when `resolve` gives a list of them."""
        fix = self.resolve.get(getattr(column, "name", ""))
        if fix is None or not isinstance(node, String):
            return node
        try:
            value = fix(node.value)
        except ValueError as exc:
            self.fail(item, str(exc))
        if isinstance(value, str):
            return String(value)
        return tuple(value) if len(value) != 1 else String(str(value[0]))

    def _between(self, tree: Tree) -> Node:
        x, lo, hi = (self.build_number(c, "'between'") for c in tree.children)
        return Between(x, lo, hi)

    def _isin(self, tree: Tree, negate: bool = False) -> Node:
        x_t, strings = tree.children
        x = self.build(x_t)
        word = "not in" if negate else "in"
        if x.kind != "text" or isinstance(x, String):
            self.fail(
                x_t,
                f"'{word}' needs a text column on its left, but {x.text} is "
                f"{_KIND_WORDS[x.kind] if not isinstance(x, String) else 'a string'}",
                'e.g. Sector in ("Energy", "Utilities")',
            )
        values: list[str] = []
        for s in strings.children:
            v = self.text_value(x, String(str(s)[1:-1]), s)
            values.extend(v if isinstance(v, tuple) else [v.value] if isinstance(v, String)
                          else [])
        return In(x, list(dict.fromkeys(values)), negate,
                  split=getattr(x, "name", "") in self.sets)

    def _notin(self, tree: Tree) -> Node:
        return self._isin(tree, negate=True)

    def _not_(self, tree: Tree) -> Node:
        return Not(self.expect(tree.children[0], self.build(tree.children[0]), "bool", "'not'"))

    def _logic(self, tree: Tree, op: str) -> Node:
        return Logic(op, [self.expect(c, self.build(c), "bool", f"'{op}'") for c in tree.children])

    def _and_expr(self, tree: Tree) -> Node:
        return self._logic(tree, "and")

    def _or_expr(self, tree: Tree) -> Node:
        return self._logic(tree, "or")

    def _lag(self, tree: Tree) -> Node:
        child_t, index_t = tree.children
        child = self.build(child_t)
        if child.kind == "text":
            self.fail(
                child_t, "a lag needs a number or a condition; text has only its current value"
            )
        n = self.integer(index_t, "a lag", 0, MAX_WINDOW)
        self.unmixed(tree, [child], "a lag")
        return self.check_lookback(tree, Lag(child, n))

    def _call(self, tree: Tree) -> Node:
        name_t, *arg_ts = tree.children
        name = str(name_t)
        fn = FUNCTIONS.get(name)
        if fn is None:
            close = suggest(name, FUNCTIONS)
            hint = did_you_mean(close) or "functions: " + ", ".join(FUNCTIONS)
            if name in self.schema:
                hint = f"{name} is a column, not a function"
            self.fail(name_t, f"unknown function {name!r}", hint, close)
        given: dict[str, Tree] = {}
        positional = [p.name for p in fn.params]
        for i, arg in enumerate(arg_ts):
            if isinstance(arg, Tree) and arg.data == "keyword":
                key_t, value = arg.children
                key = str(key_t)
                if key not in positional:
                    close = suggest(key, positional)
                    self.fail(
                        key_t,
                        f"{name}() has no parameter {key!r}",
                        did_you_mean(close) or f"usage: {fn.signature}",
                        close,
                    )
                if key in given:
                    self.fail(key_t, f"{name}() got {key} twice")
                given[key] = value
            else:
                if any(isinstance(a, Tree) and a.data == "keyword" for a in arg_ts[:i]):
                    self.fail(arg, f"{name}(): a positional argument after a keyword one")
                if i >= len(positional):
                    self.fail(
                        arg, f"{name}() takes {len(positional)} arguments", f"usage: {fn.signature}"
                    )
                given[positional[i]] = arg
        args: list[Node] = []
        windows: list[int] = []
        for param in fn.params:
            item = given.get(param.name)
            if item is None:
                if param.default is None:
                    self.fail(tree, f"{name}() needs {param.name}", f"usage: {fn.signature}")
                windows.append(param.default)
            elif param.kind == "window":
                windows.append(self.integer(item, f"{name}()'s {param.name}", 1, MAX_WINDOW))
            else:
                args.append(self.build_number(item, f"{name}()'s {param.name}"))
        if fn.family == "rolling":
            self.unmixed(tree, args, f"{name}()")
        if fn.family == "cross":
            self.cross = True
            if fn.group:
                self.groups.add(fn.group)
        return self.check_lookback(tree, Call(fn, args, windows))
