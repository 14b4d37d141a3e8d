"""A stored session played as a live source: the same batches, at any speed.

`ReplaySource(frame, speed=60)` plays a session frame (the intraday store's long form: ts,
symbol, open, high, low, close, volume, optionally trades and vwap; see
technic_v4/data/intraday.py) minute by minute through the `Batcher` every live source uses
(feed.py), so consumers cannot tell it from the stream. Minute k of the session (k = 0 at
the first bar) is released `k * 60 / speed` seconds after the replay starts, on an injected
clock and sleep; `speed=None` ("max") releases each minute as soon as the consumer asks for
the next. A replayed minute is complete, so its batch leaves at once (no grouping delay).

The frame is checked before anything plays: the columns present, `ts` in UTC on whole
minutes, prices and volumes numeric, every symbol valid (the first bad ones are named).
A (ts, symbol) that appears twice keeps its last row; the others are counted as duplicates.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.data import intraday
from technic_v4.data.universe import valid_symbols
from technic_v4.live.bars import FIELDS, BarBatch
from technic_v4.live.feed import MINUTE_NS, Batcher, Clock, FeedStatus, Sleep

_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x?\s*$", re.I)
MAX_SPEED = 1_000_000.0


class ReplayError(ValueError):
    """A session frame or a speed the replay cannot play; says what is wrong."""


def parse_speed(text: str) -> float | None:
    """`"60x"` or `"60"` -> 60.0 (60 session minutes a minute); `"max"` -> None (no waits)."""
    if text.strip().lower() == "max":
        return None
    m = _SPEED.match(text)
    speed = float(m.group(1)) if m else 0.0
    if not 0 < speed <= MAX_SPEED:
        raise ReplayError(f"speed {text!r} is not a positive rate like 1x, 60x, 390x or max")
    return speed


class ReplaySource:
    """A session frame played as a `BarSource` (module docstring)."""

    def __init__(self, frame: pd.DataFrame, *, speed: float | None = None,
                 name: str = "replay", clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if speed is not None and not 0 < speed <= MAX_SPEED:
            raise ReplayError(f"speed {speed} must be in (0, {MAX_SPEED:g}] or None (max)")
        self.speed, self.clock, self.sleep = speed, clock, sleep
        self.status = FeedStatus(source=name)
        self.batcher = Batcher(self.status, clock=clock)
        self._stamps, self._cols = self._checked(frame)
        self._closed = False
        self._gen: AsyncIterator[BarBatch] | None = None

    def _checked(self, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The frame as arrays in (ts, symbol) order, one row per (ts, symbol), checked."""
        missing = [c for c in ("ts", "symbol", *FIELDS) if c not in frame.columns]
        if missing:
            raise ReplayError(f"session frame lacks columns {missing}")
        if frame.empty:
            raise ReplayError("the session frame holds no bars")
        ts = frame["ts"]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            raise ReplayError(f"ts must be UTC timestamps, got {ts.dtype}")
        stamps = ts.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").view(np.int64)
        if (stamps % MINUTE_NS).any():
            first = ts[stamps % MINUTE_NS != 0].iloc[0]
            raise ReplayError(f"bar start {first} is not on a whole minute")
        # symbols checked once each: a session repeats every symbol hundreds of times
        codes, names = pd.factorize(frame["symbol"], sort=True)
        if (codes < 0).any():
            raise ReplayError("session frame holds a bar without a symbol")
        names = pd.Index(names.astype(str)).str.strip()
        good = valid_symbols(names)
        if not good.all():
            raise ReplayError(f"session frame holds invalid symbols {sorted(names[~good])[:5]}")
        cols: dict[str, np.ndarray] = {}
        for c in (*FIELDS, *(c for c in ("trades", "vwap") if c in frame.columns)):
            try:
                cols[c] = frame[c].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ReplayError(f"session frame column {c} holds a value that is not a "
                                  f"number: {exc}") from exc
        upper = np.asarray(names.str.upper(), dtype=object)
        dt, dc = np.diff(stamps), np.diff(codes)
        if ((dt > 0) | ((dt == 0) & (dc > 0))).all():  # the store's order, no repeats
            cols["symbol"] = upper[codes]
            return stamps, cols
        order = np.lexsort((codes, stamps))  # stable: of a (ts, symbol) twice, the last wins
        stamps, codes = stamps[order], codes[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (stamps[1:] != stamps[:-1]) | (codes[1:] != codes[:-1])
        self.status.duplicates += int((~last).sum())
        keep = order[last]
        cols = {c: v[keep] for c, v in cols.items()}
        cols["symbol"] = upper[codes[last]]
        return stamps[last], cols

    def __aiter__(self) -> AsyncIterator[BarBatch]:
        self._gen = self._batches()
        return self._gen

    async def aclose(self) -> None:
        """Stop: the iteration ends (a minute not yet played is not played)."""
        self._closed = True
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]
        self.status.state, self.status.connected = "done", False

    async def _batches(self) -> AsyncIterator[BarBatch]:
        stamps, cols = self._stamps, self._cols
        floats: dict[str, Any] = {c: v for c, v in cols.items() if c != "symbol"}
        cuts = np.flatnonzero(np.diff(stamps)) + 1
        bounds = zip(np.r_[0, cuts], np.r_[cuts, len(stamps)], strict=True)
        self.status.state, self.status.connected = "streaming", True
        began = self.clock()
        first = int(stamps[0]) if len(stamps) else 0
        for lo, hi in bounds:
            if self._closed:
                return
            start = int(stamps[lo])
            if self.speed is not None:
                wait = began + (start - first) / MINUTE_NS * 60.0 / self.speed - self.clock()
                if wait > 0:
                    await self.sleep(wait)
            batch = BarBatch(start=pd.Timestamp(start, tz="UTC"), symbols=cols["symbol"][lo:hi],
                             **{c: v[lo:hi] for c, v in floats.items()})
            for out in self.batcher.add_minute(batch):
                yield out
        for out in self.batcher.flush():
            yield out
        self.status.state, self.status.connected = "done", False


def load_session(data_dir: Any, day: str) -> pd.DataFrame:
    """The intraday store's bars of session `day` (YYYY-MM-DD) as a session frame."""
    return intraday.read_session(data_dir, day)
