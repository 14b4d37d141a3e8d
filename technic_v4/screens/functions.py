"""The function table: every call a screen may make, in one place.

Each entry gives the name, the parameters (an expression of numbers, or an integer literal
window / count, with keyword defaults), the result kind, the family (elementwise, rolling over
the argument's own bars, or cross-sectional down each session), the bars of history it adds,
a one-line doc, and the implementation. `compile.py` checks calls against the table; `describe()`
lists it for `technic screen --help` and `GET /v1/screen/columns`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from technic_v4 import cancel
from technic_v4.screens import kernels
from technic_v4.screens.nodes import ATOM, Combine, Context, Kind, Node, finite, merge

MAX_WINDOW = 1_260  # five years of daily bars; also the largest lag
EMA_ALLOWANCE = 3  # ema(x, n) runs over n seed bars + 3n steps: the seed weighs (1-k)^3n ~ e^-6
BLOCK_STEPS = 20_000_000  # inner steps of a rolling kernel between cancellation checks (~20 ms)

Family = Literal["elementwise", "rolling", "cross"]
ParamKind = Literal["number", "window"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind  # "number": any number expression; "window": an integer literal 1..1260
    default: int | None = None


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[Param, ...]
    result: Kind
    family: Family
    doc: str
    adds: Callable[[Sequence[int]], int]  # bars of history it needs, from its window values
    impl: Callable[..., np.ndarray]  # elementwise: (*arrays); rolling: (arrays, windows, width)
    group: str | None = None  # cross-sectional rank within this grouping (Env.groups name)

    @property
    def signature(self) -> str:
        parts = [p.name if p.default is None else f"{p.name}={p.default}" for p in self.params]
        return f"{self.name}({', '.join(parts)})"


def _contig(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


def _change(arrays: Sequence[np.ndarray], ints: Sequence[int], width: int) -> np.ndarray:
    (x,), (n,) = arrays, ints
    with np.errstate(all="ignore"):
        return finite(x[:, n:] / x[:, :width] - 1.0)


def by_rows(kernel: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], window: int,
            *args: object) -> np.ndarray:
    """`kernel(*arrays, *args)` over blocks of rows of about BLOCK_STEPS inner steps
    (columns x window), checking for cancellation between blocks: a rolling window over
    thousands of bars can take seconds, and a cancelled request must stop within one. The
    kernels release the GIL, so the event loop keeps running meanwhile. Rows are
    independent in every rolling kernel: the blocks give the same values as one call."""
    arrays = _contig(arrays)
    rows = arrays[0].shape[0]
    step = max(1, BLOCK_STEPS // max(1, arrays[0].shape[1] * window))
    if step >= rows:
        return kernel(*arrays, *args)
    parts = []
    for lo in range(0, rows, step):
        cancel.check()
        parts.append(kernel(*(a[lo:lo + step] for a in arrays), *args))
    return np.concatenate(parts)


def _rolling(kernel: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(arrays: Sequence[np.ndarray], ints: Sequence[int], width: int) -> np.ndarray:
        return finite(by_rows(kernel, arrays, ints[0], ints[0]))

    return run


def _ema(arrays: Sequence[np.ndarray], ints: Sequence[int], width: int) -> np.ndarray:
    n = ints[0]
    steps = (EMA_ALLOWANCE + 1) * n
    return finite(by_rows(kernels.window_ema, arrays, steps, n, steps))


def _crosses(above: bool) -> Callable[..., np.ndarray]:
    def run(arrays: Sequence[np.ndarray], ints: Sequence[int], width: int) -> np.ndarray:
        return by_rows(kernels.crosses, arrays, ints[0], ints[0], above)

    return run


X, A, B = Param("x", "number"), Param("a", "number"), Param("b", "number")
N, WITHIN = Param("n", "window"), Param("within", "window", 1)

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("abs", (X,), "number", "elementwise", "absolute value", lambda w: 0, np.abs),
        Function("min", (A, B), "number", "elementwise", "the smaller of a and b (NaN if either "
                 "is NaN)", lambda w: 0, np.minimum),
        Function("max", (A, B), "number", "elementwise", "the larger of a and b (NaN if either "
                 "is NaN)", lambda w: 0, np.maximum),
        Function("highest", (X, N), "number", "rolling", "highest x over the last n bars, this "
                 "one included", lambda w: w[0] - 1, _rolling(kernels.rolling_max)),
        Function("lowest", (X, N), "number", "rolling", "lowest x over the last n bars, this one "
                 "included", lambda w: w[0] - 1, _rolling(kernels.rolling_min)),
        Function("sma", (X, N), "number", "rolling", "simple moving average of x over the last "
                 "n bars", lambda w: w[0] - 1, _rolling(kernels.rolling_mean)),
        Function("ema", (X, N), "number", "rolling", "exponential moving average, k = 2/(n+1), "
                 "TA-Lib's SMA seed, run over the last 4n bars", lambda w: 4 * w[0] - 1, _ema),
        Function("change", (X, N), "number", "rolling", "x / x[n] - 1: the fractional change "
                 "over n bars", lambda w: w[0], _change),
        Function("crosses_above", (A, B, WITHIN), "bool", "rolling", "a crossed above b on one "
                 "of the last `within` bars", lambda w: w[0], _crosses(True)),
        Function("crosses_below", (A, B, WITHIN), "bool", "rolling", "a crossed below b on one "
                 "of the last `within` bars", lambda w: w[0], _crosses(False)),
        Function("pct_rank", (X,), "number", "cross", "percentile rank of x among the "
                 "universe's symbols, in (0, 1]; 1 = highest", lambda w: 0, kernels.pct_rank),
        Function("sector_rank", (X,), "number", "cross", "rank of x within the symbol's sector; "
                 "1 = highest", lambda w: 0, kernels.group_rank, "Sector"),
        Function("industry_rank", (X,), "number", "cross", "rank of x within the symbol's "
                 "industry; 1 = highest", lambda w: 0, kernels.group_rank, "Industry"),
    )
}  # fmt: skip


class Call(Combine):
    """A call of a table function: `fn.impl` over the arguments' arrays."""

    prec = ATOM

    def __init__(self, fn: Function, args: Sequence[Node], windows: Sequence[int]) -> None:
        super().__init__(args)
        self.fn, self.windows = fn, tuple(windows)
        self.kind = fn.result
        self.adds = fn.adds(self.windows)
        shown = [c.text for c in self.children]
        for param, value in zip(
            [p for p in fn.params if p.kind == "window"], self.windows, strict=True
        ):
            if param.default is None:
                shown.append(str(value))
            elif value != param.default:
                shown.append(f"{param.name}={value}")
        lookback = {a: b + self.adds for a, b in merge(self.children).items()}
        self._finish(f"{fn.name}({', '.join(shown)})", lookback)

    def _eval(self, ctx: Context, width: int) -> np.ndarray:
        fn = self.fn
        if fn.family == "elementwise":
            return fn.impl(*self.values(ctx, width))
        if fn.family == "cross":
            (x,) = self.values(ctx, width)
            universe = np.asarray(ctx.env.universe, dtype=bool)
            if fn.group is None:  # an env that knows x's sort order (a replay's) saves a sort
                sorted_by = getattr(ctx.env, "session_order", None)
                return fn.impl(x, universe, sorted_by(x) if sorted_by else None)
            groups = np.asarray(ctx.env.groups(fn.group), dtype=np.int64)
            return fn.impl(x, groups, universe)
        return fn.impl(self.values(ctx, width + self.adds), self.windows, width)


def describe() -> list[dict[str, str]]:
    """The functions, one JSON-ready row each: name, signature, result kind, family, doc."""
    return [
        {
            "name": f.name,
            "signature": f.signature,
            "returns": "condition" if f.result == "bool" else "number",
            "family": f.family,
            "doc": f.doc,
        }
        for f in FUNCTIONS.values()
    ]
