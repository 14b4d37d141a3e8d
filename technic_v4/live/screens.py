"""A live screen: a compiled `where` (and `rank` / top-N) evaluated at every bar close of the
timeframes it reads, over the live state, emitting `entered` / `left` events.

1. `LiveScreen.start(session)` builds a `LiveState` over the store's universe on the
   timeframes the screen reads (plus "D"), seeded warm: "D" from the daily store's sessions
   before `session`, each intraday timeframe from the intraday store's previous sessions
   (resampled as the intraday scan resamples them), then opens `session`.
2. Each BarBatch is folded; when it closes a bar of a timeframe the screen reads, the
   screen runs through the engine's one `select` on a `LiveEnv` (the same planner as the
   daily and intraday scans: timeframes are terms, never a second engine).
3. The passing set (top `top` by rank when given) is diffed with the last one: an event per
   symbol that entered or left, shaped like a watch event (technic_v4/watch) plus
   `timeframe` and `bar_time`; its id comes from watch.model.event_id over (watch, bar
   time, symbol, kind), so replaying a session gives the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.data.intraday import load_intraday, stored_sessions
from technic_v4.data.panel import FIELDS
from technic_v4.data.resample import TIMEFRAME_MINUTES, resample
from technic_v4.data.store import load_panel, read_universe
from technic_v4.data.store_fs import DataDir
from technic_v4.errors import ConfigError
from technic_v4.live.aggregate import ClosedBars, session_bounds, session_number
from technic_v4.live.bars import BarBatch
from technic_v4.live.env import LiveEnv
from technic_v4.live.state import LiveState
from technic_v4.live.steps import OUT, OUTPUTS
from technic_v4.scan.expressions import Expressions, compile_expressions, series_needed
from technic_v4.scan.intraday import MAX_SESSIONS
from technic_v4.scan.select import Selected, select
from technic_v4.watch.model import event_id

LIVE_WATCH = "(live)"  # the watch name events of `technic live --where` carry


@dataclass
class LiveScreen:
    """One screen kept live over the store's universe (module docstring)."""

    data_dir: DataDir
    where: str
    rank: str | None = None
    top: int | None = None
    watch: str = LIVE_WATCH
    screen_version: str | None = None
    symbols: Sequence[str] | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None
    exprs: Expressions = field(init=False)
    reads: dict[tuple[str, str], int] = field(init=False)
    timeframes: tuple[str, ...] = field(init=False)
    state: LiveState | None = field(init=False, default=None)
    passing: list[str] = field(init=False, default_factory=list)
    session: str = field(init=False, default="")
    evaluations: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.exprs = compile_expressions(self.where, self.rank, intraday=True)
        self.reads = {}
        for screen in (self.exprs.where, self.exprs.rank):
            if screen is not None:
                self.reads |= series_needed(screen)
        for name, tf in self.reads:
            if tf == "W":
                raise ConfigError("where", f"where: W.{name}: weekly bars are not kept live")
            if tf != "text" and name not in OUT:
                raise ConfigError("where", f"where: {name} is not kept live; live screens "
                                  f"read: {', '.join(OUTPUTS)}")
        read = {tf for _, tf in self.reads if tf in TIMEFRAME_MINUTES}
        self.timeframes = (*[tf for tf in TIMEFRAME_MINUTES if tf in read], "D")
        if self.top is not None and self.top < 1:
            raise ConfigError("top", f"top must be at least 1, got {self.top}")

    def start(self, session: str | pd.Timestamp) -> None:
        """Build the state seeded from history before `session` and open `session`."""
        day = pd.Timestamp(session).normalize().tz_localize(None)
        names = (list(self.symbols) if self.symbols is not None
                 else list(read_universe(self.data_dir)["symbol"]))
        state = LiveState(names, self.timeframes)
        self._seed_daily(state, day)
        for tf in self.timeframes[:-1]:
            self._seed_intraday(state, tf, day)
        state.open_session(*session_bounds(day))
        self.state, self.session, self.passing = state, str(day.date()), []
        self.evaluations = 0

    def _seed_daily(self, state: LiveState, day: pd.Timestamp) -> None:
        panel = load_panel(self.data_dir)
        cols = np.flatnonzero(panel.sessions.tz_localize(None) < day
                              if panel.sessions.tz is not None else panel.sessions < day)
        where = {s: i for i, s in enumerate(panel.symbols.tolist())}
        rows = np.array([where.get(s, -1) for s in state.symbols.tolist()], dtype=np.int64)
        have = rows >= 0
        bars = {}
        for f in FIELDS:
            values = np.full((state.n_rows, len(cols)), np.nan)
            values[have] = getattr(panel, f)[rows[have]][:, cols]
            bars[f] = values
        state.seed("D", bars, [session_number(d) for d in panel.sessions[cols]])

    def _seed_intraday(self, state: LiveState, tf: str, day: pd.Timestamp) -> None:
        before = stored_sessions(self.data_dir)
        before = before[before < day]
        if not len(before):
            return
        minutes = load_intraday(self.data_dir, symbols=state.symbols.tolist(), end=before[-1],
                                sessions=min(len(before), MAX_SESSIONS))
        bars = resample(minutes, tf)
        typical = (minutes.high + minutes.low + minutes.close) / 3.0
        pv = resample(replace(minutes, volume=typical * minutes.volume), tf).volume
        sessions = [session_number(minutes.sessions[k]) for k in bars.session_of]
        state.seed(tf, {**{f: getattr(bars, f) for f in FIELDS}, "pv": pv}, sessions)

    def __call__(self, batch: BarBatch, status: Any = None) -> list[dict[str, Any]]:
        """Fold one minute batch; the events of the bar closes it made (also to `on_event`)."""
        if self.state is None:
            self.start(batch.start.tz_convert("America/New_York").date().isoformat())
        assert self.state is not None
        closed = self.state.fold(batch)
        source = getattr(status, "source", "live")
        return self._after(closed, source)

    def finish(self, source: str = "live") -> list[dict[str, Any]]:
        """Close the session's remaining bars (its close); the events they make."""
        if self.state is None:
            return []
        _, close = session_bounds(self.session)
        return self._after(self.state.close_through(close), source)

    def _after(self, closed: list[ClosedBars], source: str) -> list[dict[str, Any]]:
        ends: dict[str, pd.Timestamp] = {}
        for ev in closed:
            if ev.timeframe in self.timeframes[:-1] or (ev.timeframe == "D" and
                                                        len(self.timeframes) == 1):
                ends[ev.timeframe] = max(ev.end, ends.get(ev.timeframe, ev.end))
        if not ends:
            return []
        timeframe = min(ends, key=lambda tf: TIMEFRAME_MINUTES.get(tf, 10**6))
        return self.evaluate(timeframe, max(ends.values()), source)

    def selection(self) -> Selected:
        """The screen's verdict on the state now (the engine's `select` over a LiveEnv)."""
        assert self.state is not None
        state = self.state
        n = state.n_rows
        ones = np.ones(n, dtype=bool)
        text = {"Symbol": state.symbols}
        return select(self.exprs, ones, ones,
                      lambda mask, _: LiveEnv(state, universe=mask, text=text),
                      lambda mask: np.where(mask, 0.0, np.nan))

    def evaluate(self, timeframe: str, bar_time: pd.Timestamp, source: str = "live"
                 ) -> list[dict[str, Any]]:
        """Run the screen now and diff with the last passing set: the events."""
        assert self.state is not None
        chosen = self.selection()
        self.evaluations += 1
        order = np.flatnonzero(chosen.passing)
        if self.exprs.rank is not None:
            order = order[np.argsort(-chosen.rank[order], kind="stable")]
        if self.top is not None:
            order = order[:self.top]
        symbols = self.state.symbols[order].tolist()
        before, now = set(self.passing), set(symbols)
        stamp = bar_time.isoformat()
        events = [self._event("entered", s, timeframe, bar_time, stamp, source)
                  for s in symbols if s not in before]
        events += [self._event("left", s, timeframe, bar_time, stamp, source)
                   for s in self.passing if s not in now]
        self.passing = symbols
        if self.on_event is not None:
            for ev in events:
                self.on_event(ev)
        return events

    def row(self, symbol: str) -> dict[str, float | None]:
        """The values the screen reads for `symbol` now, named as in the screen."""
        assert self.state is not None
        k = int(np.flatnonzero(self.state.symbols == symbol)[0])
        out: dict[str, float | None] = {}
        for name, tf in sorted(self.reads):
            if tf == "text":
                continue
            value = float(self.state.number(name, 1, tf)[k, -1])
            out[name if tf == "D" else f"{tf}.{name}"] = value if np.isfinite(value) else None
        return out

    def _event(self, kind: str, symbol: str, timeframe: str, bar_time: pd.Timestamp,
               stamp: str, source: str) -> dict[str, Any]:
        return {"id": event_id(self.watch, stamp, symbol, kind), "watch": self.watch,
                "screen_version": self.screen_version, "kind": kind, "symbol": symbol,
                "session": self.session, "data_version": source, "timeframe": timeframe,
                "bar_time": stamp, "row": self.row(symbol)}
