"""The one interface every live bar source implements, and the batching they share.

A source (Alpaca's stream, a replay of a stored session) is an async iterator of `BarBatch`
with a `status`: the live counterpart of the daily providers' `fetch` (data/providers/base.py).
Consumers (the incremental state, the bar store, the CLI's printer) read only this, so none
of them knows which source ran.

How bars become batches (`Batcher`, fed one bar or one whole minute at a time):
  1. A bar is keyed by (symbol, start). The same bar twice (equal open, high, low, close,
     volume, trades, vwap) is dropped and counted in `duplicates`; a different bar for a key
     still pending replaces it (`replaced`: a provider's updated bar before delivery).
  2. Bars of one start wait in a pending minute. A pending minute is emitted, as one batch,
     when a bar of a later minute arrives, or once no bar of it has arrived for `delay`
     seconds (default 0.05 s, TECHNIC_LIVE_BATCH_DELAY_S: the provider's burst of that
     minute is over), or `max_wait` seconds (0.5 s) after its first bar, whichever is first
     (`due`); a source that knows a minute is complete (a replay, a REST backfill) emits it
     at once (`add_minute`, `flush`). The quiet gap is measured as bars are read, so a
     client that is behind the wire keeps reading the burst before the batch leaves. A bar
     arriving after its minute left is not lost: it goes out in a correction batch.
  3. Batches that are not corrections leave in strictly increasing `start` (an earlier
     pending minute is emitted before a later one). A bar for a minute already emitted (a
     late bar, an updated bar, a backfilled bar after a reconnect) goes out in a
     `correction=True` batch of that start, counted in `corrections`; a consumer folds it as
     a replacement of what it holds for (symbol, start). Emitted minutes are remembered for
     `retain_minutes` so a repeat of a delivered bar is recognised as a duplicate; a bar for
     an older minute is passed on as a correction (a consumer treats it idempotently).
Every count, the connection state and the last error are in `FeedStatus`, which a source
updates as it runs and the CLI prints.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from technic_v4.live.bars import BarBatch

MINUTE_NS = 60 * 1_000_000_000
DEFAULT_DELAY_S = 0.05
DEFAULT_MAX_WAIT_S = 0.5
DEFAULT_RETAIN_MINUTES = 60
# one bar's values: open, high, low, close, volume, trades, vwap (NaN: not given)
Values = tuple[float, float, float, float, float, float, float]
Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]  # asyncio.sleep, or a test's stand-in
Consumer = Callable[[BarBatch, "FeedStatus"], Awaitable[None] | None]


@dataclass
class FeedStatus:
    """What a source has done so far (module docstring); `as_dict` for printing and JSON."""

    source: str
    state: str = "idle"  # idle, connecting, streaming, backfilling, reconnecting, done, failed
    connected: bool = False
    last_bar: pd.Timestamp | None = None  # newest bar start received
    bars: int = 0          # bars accepted (received, not duplicates)
    batches: int = 0       # batches emitted, corrections included
    duplicates: int = 0    # the same bar again: dropped
    replaced: int = 0      # a different bar for a pending (symbol, start): the newer kept
    corrections: int = 0   # bars emitted in correction batches
    reconnects: int = 0    # connections lost and attempted again
    backfilled: int = 0    # bars accepted from a REST backfill
    malformed: int = 0     # messages or bars that did not parse: counted, skipped
    rate_limited: int = 0  # HTTP 429 answers (retried after Retry-After)
    errors: int = 0        # failures: a lost connection, a failed backfill, a fatal error
    last_error: str | None = None
    max_wait_s: float = 0.0  # the longest a minute's first bar waited for its batch

    def error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["last_bar"] = None if self.last_bar is None else self.last_bar.isoformat()
        return out


class BarSource(Protocol):
    """A live source: iterate for batches; read `status` at any time; `aclose` to stop."""

    status: FeedStatus

    def __aiter__(self) -> AsyncIterator[BarBatch]:
        ...

    async def aclose(self) -> None:
        ...


class Batcher:
    """Groups bars by start, drops duplicates and turns late bars into corrections (module
    docstring). Not thread-safe: one source's task feeds it."""

    def __init__(self, status: FeedStatus, *, delay: float = DEFAULT_DELAY_S,
                 max_wait: float = DEFAULT_MAX_WAIT_S,
                 retain_minutes: int = DEFAULT_RETAIN_MINUTES, clock: Clock = time.monotonic):
        if delay < 0 or max_wait < delay:
            raise ValueError(f"batch delay {delay} must be >= 0 seconds and at most the "
                             f"longest wait {max_wait}")
        self.status, self.delay, self.max_wait, self.clock = status, delay, max_wait, clock
        self.retain_ns = max(1, retain_minutes) * MINUTE_NS
        self.watermark: int | None = None                 # newest start emitted (not a fix)
        self._newest = -1                                 # newest start received
        self._pending: dict[int, dict[str, Values]] = {}
        self._fixes: dict[int, dict[str, Values]] = {}    # bars for emitted minutes
        self._first: dict[tuple[bool, int], float] = {}   # (is_fix, start) -> first arrival
        self._last: dict[tuple[bool, int], float] = {}    # (is_fix, start) -> last arrival
        self._emitted: dict[int, dict[str, Values] | BarBatch] = {}

    # ------------------------------------------------------------------ feeding

    def add(self, symbol: str, start_ns: int, values: Values) -> list[BarBatch]:
        """One bar; returns the batches it made ready (earlier pending minutes)."""
        if start_ns > self._newest:
            self._newest = start_ns
            self.status.last_bar = pd.Timestamp(start_ns, tz="UTC")
        if self.watermark is not None and start_ns <= self.watermark:
            self._add_fix(symbol, start_ns, values)
            return []
        minute = self._pending.get(start_ns)
        now = self._last[(False, start_ns)] = self.clock()
        if minute is None:
            minute = self._pending[start_ns] = {}
            self._first[(False, start_ns)] = now
        old = minute.get(symbol)
        if old is not None and _same(old, values):
            self.status.duplicates += 1
            return []
        if old is not None:
            self.status.replaced += 1
        else:
            self.status.bars += 1
        minute[symbol] = values
        if len(self._pending) == 1:  # the common case: nothing earlier waits
            return []
        return [self._emit(s) for s in sorted(s for s in self._pending if s < start_ns)]

    def add_minute(self, batch: BarBatch) -> list[BarBatch]:
        """Every bar of `batch.start` this source will give (a replay's minute, a backfilled
        minute): returns the batches ready now, this minute's included."""
        start_ns = batch.start.value
        fresh = ((self.watermark is None or start_ns > self.watermark)
                 and not any(s >= start_ns for s in self._pending))
        if fresh:  # nothing known of this minute: it leaves as given, without a bar loop
            out = [self._emit(s) for s in sorted(self._pending)]
            if start_ns > self._newest:
                self._newest = start_ns
                self.status.last_bar = batch.start
            self.status.bars += len(batch)
            out.append(self._deliver(start_ns, batch, fix=False))
            return out
        out = []
        for row in zip(batch.symbols.tolist(), *_columns(batch), strict=True):
            out += self.add(row[0], start_ns, row[1:])
        return out + self.flush(through_ns=start_ns)

    def due(self) -> list[BarBatch]:
        """Batches whose delay has passed (and every earlier pending minute)."""
        now = self.clock()
        ready = [s for s in self._pending if now >= self._deadline(False, s)]
        out = [self._emit(s) for s in sorted(s for s in self._pending
                                             if ready and s <= max(ready))]
        fixes = [s for s in self._fixes if now >= self._deadline(True, s)]
        return out + [self._emit_fix(s) for s in sorted(fixes)]

    def _deadline(self, fix: bool, start_ns: int) -> float:
        key = (fix, start_ns)
        return min(self._last[key] + self.delay, self._first[key] + self.max_wait)

    def next_due(self) -> float | None:
        """Seconds until `due` has something (0: now), None when nothing waits."""
        if not self._first:
            return None
        return max(0.0, min(self._deadline(*key) for key in self._first) - self.clock())

    def flush(self, through_ns: int | None = None) -> list[BarBatch]:
        """Every pending minute (up to `through_ns`) and correction, now."""
        keep = (lambda s: True) if through_ns is None else (lambda s: s <= through_ns)
        out = [self._emit(s) for s in sorted(s for s in self._pending if keep(s))]
        return out + [self._emit_fix(s) for s in sorted(s for s in self._fixes if keep(s))]

    # ------------------------------------------------------------------ plumbing

    def _add_fix(self, symbol: str, start_ns: int, values: Values) -> None:
        fixes = self._fixes.get(start_ns)
        old = fixes.get(symbol) if fixes is not None else None
        if old is None:
            old = self._delivered(start_ns, symbol)
            if old is not None and _same(old, values):
                self.status.duplicates += 1
                return
        elif _same(old, values):
            self.status.duplicates += 1
            return
        else:
            self.status.replaced += 1
        now = self._last[(True, start_ns)] = self.clock()
        if fixes is None:
            fixes = self._fixes[start_ns] = {}
            self._first[(True, start_ns)] = now
        if symbol not in fixes:
            self.status.bars += 1
        fixes[symbol] = values

    def _delivered(self, start_ns: int, symbol: str) -> Values | None:
        held = self._emitted.get(start_ns)
        if isinstance(held, BarBatch):  # indexed on first look-up only
            held = self._emitted[start_ns] = _index(held)
        return None if held is None else held.get(symbol)

    def _emit(self, start_ns: int) -> BarBatch:
        bars = self._pending.pop(start_ns)
        return self._deliver(start_ns, _batch(start_ns, bars, fix=False), fix=False)

    def _emit_fix(self, start_ns: int) -> BarBatch:
        bars = self._fixes.pop(start_ns)
        self.status.corrections += len(bars)
        return self._deliver(start_ns, _batch(start_ns, bars, fix=True), fix=True)

    def _deliver(self, start_ns: int, batch: BarBatch, *, fix: bool) -> BarBatch:
        first = self._first.pop((fix, start_ns), None)
        self._last.pop((fix, start_ns), None)
        if first is not None:
            self.status.max_wait_s = max(self.status.max_wait_s, self.clock() - first)
        self.status.batches += 1
        if fix:
            held = self._emitted.get(start_ns)
            if held is not None:
                if isinstance(held, BarBatch):
                    held = self._emitted[start_ns] = _index(held)
                held.update(_index(batch))
            return batch
        self._emitted[start_ns] = batch
        self.watermark = start_ns
        for old in [s for s in self._emitted if s <= start_ns - self.retain_ns]:
            del self._emitted[old]
        return batch


def _same(a: Values, b: Values) -> bool:
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def _columns(batch: BarBatch) -> list[Iterable[float]]:
    n = len(batch)
    extra = [[np.nan] * n if a is None else a.tolist() for a in (batch.trades, batch.vwap)]
    return [batch.open.tolist(), batch.high.tolist(), batch.low.tolist(),
            batch.close.tolist(), batch.volume.tolist(), *extra]


def _index(batch: BarBatch) -> dict[str, Values]:
    rows = zip(*_columns(batch), strict=True)
    return dict(zip(batch.symbols.tolist(), rows, strict=True))


def _batch(start_ns: int, bars: dict[str, Values], *, fix: bool) -> BarBatch:
    values = np.array(list(bars.values()), dtype=np.float64).reshape(len(bars), 7)
    trades = values[:, 5] if not np.isnan(values[:, 5]).all() else None
    vwap = values[:, 6] if not np.isnan(values[:, 6]).all() else None
    return BarBatch(start=pd.Timestamp(start_ns, tz="UTC"),
                    symbols=np.array(list(bars), dtype=object), open=values[:, 0],
                    high=values[:, 1], low=values[:, 2],
                    close=values[:, 3], volume=values[:, 4], correction=fix,
                    trades=trades, vwap=vwap)


async def run(source: BarSource, consumers: Iterable[Consumer], *,
              max_batches: int | None = None) -> FeedStatus:
    """Feed every batch of `source` to each consumer in turn (a consumer may be async), until
    the source ends or `max_batches` were delivered; the source is closed either way."""
    consumers = list(consumers)
    delivered = 0
    try:
        async for batch in source:
            for consume in consumers:
                result = consume(batch, source.status)
                if result is not None:
                    await result
            delivered += 1
            if max_batches is not None and delivered >= max_batches:
                break
    finally:
        await source.aclose()
    return source.status
