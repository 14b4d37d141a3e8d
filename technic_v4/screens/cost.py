"""What a compiled screen will cost, known before it runs: bar reads and bytes, and a budget.

Walk-through of `estimate(root, width)`:
  1. The tree is walked as `Node.evaluate` would run it, each node at the width it would be
     asked for: a lag of n asks its child for width + n, a window of n for width + n - 1 (an
     ema for width + 4n - 1), a weekly subtree seen from daily bars for about width / 5 weeks.
     So windows of windows widen what the inner ones read: in sma(sma(Close, 1260), 1260) the
     inner sma runs over 2,520 bars to give the outer one its 1,261. A sub-expression repeated
     at the same width is counted once, as the evaluation's memo computes it once.
  2. Each node's `work` is the bar reads it makes per symbol: a window of n reads n bars per
     output bar (the kernels compute every window directly, kernels.py), an ema 4n, a cross
     its `within` twice, an elementwise operation one per argument, a cross-sectional rank
     RANK_READS (a sort), a column one per bar read; a weekly column's bar is built from five
     daily ones, an intraday bar from its minutes (an M5 bar reads five). A coarser subtree
     seen from a finer timeframe runs over width / (bars per coarser bar) of its own bars.
  3. `bytes` per symbol: every node's output (8 bytes a number, 1 a condition; the memo keeps
     them all until the evaluation ends), the float64 copies a window kernel makes of its
     arguments, and the bars loaded for the deepest read (BAR_FIELDS float64 columns: open,
     high, low, close, volume).
`Cost.total(symbols, sessions)` scales both: work by symbols x sessions evaluated (1 for a
scan or a watch, every replayed session for a validation), memory by symbols (one session's
evaluation is released before the next). `Budget.check` refuses a total over the budget with
a `CostError` that names the costliest part (its text, line:column and the bars it runs
over) and the budget; the scan engine checks before it loads a price (scan/plan.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from technic_v4.screens.errors import ScreenError
from technic_v4.screens.functions import EMA_ALLOWANCE, Call
from technic_v4.screens.nodes import BAR_MINUTES, INTRADAY, Align, Column, Combine, Lag, Node

RANK_READS = 24  # a cross-sectional rank: a sort of the column, ~log2(N) reads per value
BAR_FIELDS = 5  # open, high, low, close, volume: loaded for every bar a screen reaches back
WEEK_BARS = 5  # daily bars behind one weekly bar
# Defaults of Settings.screen_max_reads / screen_max_memory_mb (README "Screens: cost").
MAX_READS = 6e9
MAX_MEMORY_MB = 1_536


@dataclass(frozen=True)
class Part:
    """One node's share: its text, where it starts, the bars it runs over, its reads."""

    text: str
    line: int
    column: int
    bars: int
    work: float


@dataclass(frozen=True)
class Cost:
    """Per symbol and evaluated session: bar reads and bytes, and the costliest node."""

    work: float
    bytes: float
    costliest: Part

    def total(self, symbols: int, sessions: int = 1) -> tuple[float, float]:
        """(bar reads, bytes) of evaluating over `symbols` at `sessions` sessions."""
        return self.work * symbols * sessions, self.bytes * symbols


class CostError(ScreenError):
    """An expression over the cost budget; `details()` holds the figures for a 422 body."""

    def __init__(self, message: str, part: Part, hint: str, figures: dict[str, float]) -> None:
        super().__init__(message, part.line, part.column, hint)
        self.part, self.figures = part, figures

    def __reduce__(self):  # the figures travel too (Ray, multiprocessing)
        return (type(self), (self.message, self.part, self.hint, self.figures))

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "costliest": self.part.text, **self.figures}


@dataclass(frozen=True)
class Budget:
    """The most a request may cost: bar reads (~ CPU) and bytes of memory."""

    max_reads: float = MAX_READS
    max_memory_mb: float = MAX_MEMORY_MB

    def check(self, cost: Cost, symbols: int, sessions: int = 1) -> None:
        """CostError when evaluating at `symbols` x `sessions` exceeds the budget."""
        reads, size = cost.total(symbols, sessions)
        mb = size / 2**20
        if reads <= self.max_reads and mb <= self.max_memory_mb:
            return
        part = cost.costliest
        scale = f"{symbols:,} symbols x {sessions:,} session{'s' if sessions != 1 else ''}"
        if reads > self.max_reads:
            message = (f"too costly: {_num(reads)} bar reads over {scale}, budget "
                       f"{_num(self.max_reads)}")
        else:
            message = (f"too much memory: about {mb:,.0f} MB over {scale}, budget "
                       f"{self.max_memory_mb:,.0f} MB")
        share = 100 * part.work / cost.work if cost.work else 100.0
        hint = (f"the costliest part is {part.text}, computed for {part.bars:,} bars "
                f"({share:.0f}% of the reads; windows of windows widen what the inner one "
                "reads): use shorter windows, fewer symbols or fewer sessions")
        raise CostError(message, part, hint, {
            "reads": reads, "max_reads": self.max_reads, "memory_mb": round(mb, 1),
            "max_memory_mb": self.max_memory_mb, "symbols": symbols, "sessions": sessions})


def _num(value: float) -> str:
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if value >= size:
            return f"{value / size:,.1f} {word}"
    return f"{value:,.0f}"


def estimate(root: Node, width: int = 1) -> Cost:
    """The cost of `root.evaluate(env, width)` per symbol (module docstring)."""
    walk = _Walk()
    walk.visit(root, width)
    deepest = max(walk.bars_read, default=width)
    size = walk.bytes + 8.0 * BAR_FIELDS * deepest
    best = max(walk.parts, key=lambda p: p.work)
    return Cost(float(sum(p.work for p in walk.parts)), size, best)


class _Walk:
    def __init__(self) -> None:
        self.seen: set[tuple[str, int]] = set()
        self.parts: list[Part] = []
        self.bytes = 0.0
        self.bars_read: list[int] = []

    def visit(self, node: Node, width: int) -> None:
        key = (type(node).__name__ + ":" + node.key, width)
        if key in self.seen:
            return
        self.seen.add(key)
        work, out, copied = float(width), float(width), 0.0  # reads, output cells, copies
        if isinstance(node, Column):
            if node.axis == "W":
                work = float(width * WEEK_BARS)
            elif node.axis in INTRADAY:  # built from one-minute bars
                work = float(width * BAR_MINUTES[str(node.axis)])
            self.bars_read.append(int(work))
        elif isinstance(node, Lag):
            self.visit(node.children[0], width + node.n)
            work, out = 0.0, 0.0  # a slice of the child's values
        elif isinstance(node, Align):
            ratio = BAR_MINUTES[str(node.children[0].axis)] // BAR_MINUTES[str(node.axis)]
            self.visit(node.children[0], max(1, (width + ratio - 1) // ratio + 1))
        elif isinstance(node, Call):
            work, copied = self._call(node, width)
        elif isinstance(node, Combine):
            for child in node.children:
                self.visit(child, width)
            work = float(width * max(1, len(node.children)))
        line, column = node.pos
        self.parts.append(Part(node.text, line, column, width, work))
        self.bytes += out * (1 if node.kind == "bool" else 8) + 8 * copied

    def _call(self, node: Call, width: int) -> tuple[float, float]:
        """(reads, float64 cells copied) of a call at `width`, its arguments visited."""
        fn = node.fn
        if fn.family != "rolling":
            for child in node.children:
                self.visit(child, width)
            per = RANK_READS if fn.family == "cross" else max(1, len(node.children))
            return float(width * per), 0.0
        reach = width + node.adds
        for child in node.children:
            self.visit(child, reach)
        n = node.windows[0]
        per = {"ema": (EMA_ALLOWANCE + 1) * n, "change": 2, "crosses_above": 2 * n,
               "crosses_below": 2 * n}.get(fn.name, n)
        return float(width * per), float(reach * len(node.children))  # contiguous copies
