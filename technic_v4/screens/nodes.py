"""The compiled tree: small operator classes that evaluate over whole (N, width) arrays.

Each node knows its result kind ("number", "bool", "text"), its axis (a timeframe: "M1", "M5",
"M15", "M30", "H1" intraday, "D" daily, "W" weekly; or None for a value that does not move with
time: a literal, a text column), whether it mixes timeframes, its normalised text, and how
many bars of history beyond the current one it needs on each axis (`lookback`).
`evaluate(ctx, width)` returns its values at the last `width` bars of its own axis, asking each
child for exactly the width it needs (a lag of n asks for width + n, a 50-bar window for width
+ 49), so a scan (width 1) touches only the last few columns of each series. Results are
memoised per evaluation by (normalised text, width), so a
repeated sub-expression is computed once.

Nodes are built by `compile.py`, which has already checked kinds, axes and limits; they do no
checking of their own. Numbers are kept finite-or-NaN everywhere: inputs that are +-inf and
results that overflow or divide by zero become NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from technic_v4 import cancel

Kind = Literal["number", "bool", "text"]
Axis = str | None  # a timeframe of TIMEFRAMES, or None
# Timeframes, finest first, and the minutes of a regular session in one bar of each: a subtree
# on a coarser timeframe is read on a finer one (Align) as the value in effect at each bar.
TIMEFRAMES = ("M1", "M5", "M15", "M30", "H1", "D", "W")
INTRADAY = TIMEFRAMES[:5]
# Number columns that exist on intraday timeframes only (indicators/intraday.py defines them)
INTRADAY_NUMBERS = ("VWAP", "OR_high", "OR_low", "Gap", "Premarket_gap", "RVOL")
BAR_MINUTES = {"M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 60, "D": 390, "W": 1950}
# Precedence for rendering (higher binds tighter): or, and, not, comparisons, + -, * /, unary -,
# then atoms, calls and lags.
OR, AND, NOT, CMP, SUM, PRODUCT, UNARY, ATOM = range(1, 9)


@dataclass
class Context:
    """One evaluation: the environment and the memo of results by (node key, width)."""

    env: Any
    memo: dict[tuple[str, int], Any] = field(default_factory=dict)


class Node:
    kind: Kind = "number"
    axis: Axis = None
    mixed: bool = False
    prec: int = ATOM
    text: str = ""
    key: str = ""
    lookback: dict[str, int]
    children: tuple[Node, ...] = ()
    pos: tuple[int, int] = (1, 1)  # (line, column) where its text starts in the screen

    def _finish(self, text: str, lookback: dict[str, int] | None = None) -> None:
        self.text = text
        self.key = text
        self.lookback = lookback if lookback is not None else merge(self.children)

    def evaluate(self, ctx: Context, width: int) -> np.ndarray:
        """Values at the last `width` bars of this node's axis: (N, width), or (N,) for text."""
        memo_key = (self.key, width)
        out = ctx.memo.get(memo_key)
        if out is None:
            cancel.check()  # between nodes: a cancelled request stops here (cancel.py)
            out = ctx.memo[memo_key] = self._eval(ctx, width)
        return out

    def _eval(self, ctx: Context, width: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def merge(children: Sequence[Node]) -> dict[str, int]:
    out: dict[str, int] = {}
    for child in children:
        for axis, bars in child.lookback.items():
            out[axis] = max(out.get(axis, 0), bars)
    return out


def wrap(node: Node, prec: int) -> str:
    """The node's text, in parentheses when it binds looser than `prec`."""
    return node.text if node.prec >= prec else f"({node.text})"


def finite(values: np.ndarray) -> np.ndarray:
    """+-inf -> NaN (the one rule that keeps every number finite or NaN)."""
    bad = np.isinf(values)
    if bad.any():
        values = np.where(bad, np.nan, values)
    return values


def full(ctx: Context, value: object, width: int) -> np.ndarray:
    dtype = np.bool_ if isinstance(value, bool) else np.float64
    return np.full((ctx.env.n_rows, width), value, dtype=dtype)


# ---------------------------------------------------------------- leaves
class Const(Node):
    """A number or true/false."""

    def __init__(self, value: float | bool) -> None:
        self.value = value
        self.kind = "bool" if isinstance(value, bool) else "number"
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value == int(value) and abs(value) < 1e15:
            text = str(int(value))
        else:
            text = repr(float(value))
        self.prec = UNARY if text.startswith("-") else ATOM
        self._finish(text, {})

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        return full(ctx, self.value, width)


class String(Node):
    kind: Kind = "text"

    def __init__(self, value: str) -> None:
        self.value = value
        self._finish('"' + value + '"' if '"' not in value else "'" + value + "'", {})

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        return np.full(ctx.env.n_rows, self.value, dtype=object)


class Column(Node):
    """A number column on a timeframe's axis, or a text column (current value)."""

    def __init__(self, name: str, kind: Kind, axis: Axis) -> None:
        self.name, self.kind, self.axis = name, kind, axis
        text = f"{axis}.{name}" if axis not in ("D", None) else name
        self._finish(text, {axis: 0} if axis else {})

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        env = ctx.env
        if self.kind == "text":
            values = np.asarray(env.text(self.name), dtype=object)
            _check_shape(self.name, values, (env.n_rows,))
            return values
        values = np.asarray(env.number(self.name, width, self.axis or "D"), dtype=np.float64)
        _check_shape(self.text, values, (env.n_rows, width))
        return finite(values)


def _check_shape(name: str, values: np.ndarray, shape: tuple[int, ...]) -> None:
    if values.shape != shape:  # an environment bug, not a user error
        raise ValueError(f"environment gave {name} shaped {values.shape}, expected {shape}")


# ---------------------------------------------------------------- timeframes
class Align(Node):
    """A subtree on a coarser timeframe seen from a finer one (`target`, daily by default):
    the coarser value in effect at each bar (the last coarser bar closed by then)."""

    def __init__(self, child: Node, target: str = "D") -> None:
        self.children = (child,)
        self.kind, self.axis, self.mixed, self.prec = child.kind, target, True, child.prec
        self.pos = child.pos
        self._finish(child.text)
        self.key = f"@{target}:" + child.text

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        (child,) = self.children
        env, source = ctx.env, str(child.axis)
        if (source, self.axis) == ("W", "D"):
            spanned, to = env.weeks_spanned(width), env.align_weekly
        else:
            spanned = env.spanned(source, self.axis, width)

            def to(values: np.ndarray, width: int) -> np.ndarray:
                return env.align(values, source, self.axis, width)
        coarse = child.evaluate(ctx, int(spanned))
        if child.kind == "bool":
            return np.asarray(to(coarse.astype(np.float64), width)) == 1.0
        fine = np.asarray(to(coarse, width), dtype=np.float64)
        _check_shape("align()", fine, (env.n_rows, width))
        return fine


def align(children: Sequence[Node]) -> tuple[tuple[Node, ...], Axis]:
    """Children brought onto one axis, the finest among them: the others wrapped in Align."""
    axes = {str(c.axis) for c in children if c.axis is not None}
    if len(axes) > 1:
        target = min(axes, key=TIMEFRAMES.index)
        return tuple(Align(c, target) if c.axis not in (target, None) else c
                     for c in children), target
    return tuple(children), (axes.pop() if axes else None)


class Combine(Node):
    """Base for nodes whose children are evaluated at the same width on one axis."""

    def __init__(self, children: Sequence[Node]) -> None:
        self.children, self.axis = align(children)
        self.mixed = any(c.mixed for c in self.children)

    def values(self, ctx: Context, width: int) -> list[np.ndarray]:
        out = []
        for child in self.children:
            v = child.evaluate(ctx, width)
            if v.ndim == 1:  # a text column or string: the same at every bar
                v = np.broadcast_to(v[:, None], (ctx.env.n_rows, width))
            out.append(v)
        return out


# ---------------------------------------------------------------- arithmetic and logic
_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
}


class Arith(Combine):
    """A left-to-right chain `a op b op c ...` of + - (one level) or * / (the other)."""

    def __init__(self, first: Node, rest: Sequence[tuple[str, Node]]) -> None:
        super().__init__([first, *(node for _, node in rest)])
        self.ops = tuple(op for op, _ in rest)
        self.prec = SUM if self.ops[0] in "+-" else PRODUCT
        parts = [wrap(self.children[0], self.prec)]
        for op, child in zip(self.ops, self.children[1:], strict=True):
            parts.append(f"{op} {wrap(child, self.prec + 1)}")
        self._finish(" ".join(parts))

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        values = self.values(ctx, width)
        acc = values[0]
        with np.errstate(all="ignore"):
            for op, v in zip(self.ops, values[1:], strict=True):
                acc = finite(_ARITH[op](acc, v))
        return acc


class Neg(Combine):
    prec = UNARY

    def __init__(self, child: Node) -> None:
        super().__init__([child])
        self._finish("-" + wrap(child, UNARY))

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        return -self.values(ctx, width)[0]


_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


class Compare(Combine):
    """a op b on numbers, or == / != on text; false wherever either side is missing."""

    kind: Kind = "bool"
    prec = CMP

    def __init__(self, op: str, left: Node, right: Node) -> None:
        super().__init__([left, right])
        self.op = op
        self._finish(f"{wrap(left, SUM)} {op} {wrap(right, SUM)}")

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        if self.children[0].kind == "text":  # (N,) current values: compare once, then broadcast
            a, b = (c.evaluate(ctx, width) for c in self.children)
            hit = _is_text(a) & _is_text(b) & _COMPARE[self.op](a, b).astype(bool)
            return np.broadcast_to(hit[:, None], (hit.shape[0], width))
        a, b = self.values(ctx, width)
        out = _COMPARE[self.op](a, b)
        if self.op == "!=":
            out &= ~(np.isnan(a) | np.isnan(b))
        return out


def _is_text(values: np.ndarray) -> np.ndarray:
    return np.fromiter((isinstance(v, str) for v in values), bool, values.shape[0])


class Between(Combine):
    """lo <= x <= hi, inclusive; false when any of the three is NaN."""

    kind: Kind = "bool"
    prec = CMP

    def __init__(self, x: Node, lo: Node, hi: Node) -> None:
        super().__init__([x, lo, hi])
        self._finish(f"{wrap(x, SUM)} between {wrap(lo, SUM)} and {wrap(hi, SUM)}")

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        x, lo, hi = self.values(ctx, width)
        return (x >= lo) & (x <= hi)


class In(Combine):
    """A text column's current value in (or, with `negate`, not in) a list of strings;
    false for a missing value either way. `split`: the value is a set of ids joined by ","
    (Indexes), in the list when any of its ids is ("" is the empty set)."""

    kind: Kind = "bool"
    prec = CMP

    def __init__(self, x: Node, options: Sequence[str], negate: bool,
                 split: bool = False) -> None:
        super().__init__([x])
        self.options, self.negate, self.split = frozenset(options), negate, split
        shown = ", ".join(String(s).text for s in options)
        self._finish(f"{wrap(x, SUM)} {'not in' if negate else 'in'} ({shown})")

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        x = self.children[0].evaluate(ctx, width)
        opts, neg = self.options, self.negate
        if self.split:
            hit = np.fromiter((isinstance(v, str) and (not opts.isdisjoint(v.split(","))) != neg
                               for v in x), bool, x.shape[0])
        else:
            hit = np.fromiter(
                (isinstance(v, str) and ((v in opts) != neg) for v in x), bool, x.shape[0]
            )
        return np.broadcast_to(hit[:, None], (x.shape[0], width))


class Not(Combine):
    kind: Kind = "bool"
    prec = NOT

    def __init__(self, child: Node) -> None:
        super().__init__([child])
        self._finish("not " + wrap(child, NOT))

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        return ~self.values(ctx, width)[0]


class Logic(Combine):
    """`a and b and ...` or `a or b or ...` (n-ary: a long chain adds one level, not n)."""

    kind: Kind = "bool"
    op: str

    def __init__(self, op: str, children: Sequence[Node]) -> None:
        flat: list[Node] = []
        for child in children:  # (a and b) and c == a and b and c
            flat.extend(child.children if isinstance(child, Logic) and child.op == op else [child])
        super().__init__(flat)
        self.op = op
        self.prec = AND if op == "and" else OR
        self._finish(f" {op} ".join(wrap(c, self.prec + 1) for c in self.children))

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        values = self.values(ctx, width)
        acc = values[0].copy()
        for v in values[1:]:
            if self.op == "and":
                acc &= v
            else:
                acc |= v
        return acc


class Lag(Node):
    """x[n]: the value n bars ago on the child's own axis (NaN / false before the first bar)."""

    def __init__(self, child: Node, n: int) -> None:
        self.children, self.n = (child,), n
        self.kind, self.axis = child.kind, child.axis
        self._finish(f"{wrap(child, ATOM)}[{n}]", {a: b + n for a, b in child.lookback.items()})

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        child = self.children[0]
        if child.axis is None:
            return child.evaluate(ctx, width)
        return child.evaluate(ctx, width + self.n)[:, :width]
