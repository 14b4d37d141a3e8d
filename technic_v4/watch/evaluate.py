"""Evaluating watches: every watch at a new session in one pass, compared with the last.

`catch_up(store, snapshot, engine)` is what every trigger calls (`technic data append /
update / ingest`, the Watcher deployment and the in-process loop when the data version
changes, `watch add` for the baseline):
  1. for each watch, the sessions it has not seen: those after its last evaluation (a new
     watch: only the store's newest session, its baseline); a watch more than MAX_CATCH_UP
     sessions behind is baselined again at the newest session instead of replayed;
  2. session by session, oldest first (so no enter/leave between two appends is skipped),
     the watches due at it evaluated together: `execute_many` (technic_v4/scan/many.py)
     runs each group of screens over ONE evaluation of the universe and one forecast, and
     each Selection lists exactly the symbols `run_scan` as of that session keeps, ranked;
     when that pass fails because of one screen (trial.screen_fault: not the store, memory
     or the OS), each screen is evaluated alone, and those that fail alone are FAILED: the
     reason recorded (store.record_failures; `watch show`, `watch status` exit 1), the watch
     skipped for the rest of this catch-up, while every other watch advances; it is tried
     again at the next trigger, and its next recorded evaluation clears the failure;
  3. `diff` against the watch's previous evaluation: `entered` (kept now, not before; in
     rank order), `left` (kept before, not now), `rank_moved` (kept both times, rank moved by
     at least the watch's `rank_moved`). The first evaluation is a baseline: no events unless
     the watch asked for `initial` (then the first set is `entered`). So is an evaluation
     whose screen (name, version) differs from the previous one's — a re-saved screen is a
     new question, and its answer is not a change in the market;
     A watch with `regime_changed` also gets one `regime_changed` event (symbol "", no row;
     `regime`, `previous_regime`, `regime_tags`) when the market regime at the session
     differs from the one at its previous evaluation, the session before.
     At most `max_events` events per watch and session are written (entered first, in rank
     order, then left, then rank_moved); the rest are summarised in one `truncated` event
     (`count`, `kinds`: how many of each kind were left out);
  4. every event carries the watch, the screen's name and version, the data version, the
     session, the symbol's rank (and previous rank) and its row: the result columns as the
     scan shows them. A `left` symbol's row is its row at the new session from the evaluation
     (kept by no screen, so its AlphaScore is null), or null with `row_state: "no data"` when
     the symbol has no bar there (delisted, halted);
  5. all watches of the session recorded in one transaction with their events and
     deliveries (store.record): the outbox never holds an event whose evaluation is not
     recorded, nor the reverse.
A watch whose screen cannot be resolved (a saved screen deleted), or is over the expression
budget, is failed the same way; so is one that reads a forecast column the session's alpha
state cannot fill (`run.unfillable_alpha`: models missing, or trained on other data than the
store's), which `execute_many` refuses as the scan does: no evaluation, no `left` events for a
verdict it never gave; it is evaluated again at the next trigger.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.alpha.inference import HORIZONS
from technic_v4.alpha.registry import model_id
from technic_v4.data.reader import Snapshot
from technic_v4.errors import ConfigError
from technic_v4.scan.columns import EXTRA_COLUMNS, RESULT_COLUMNS
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.executor import Executor
from technic_v4.scan.many import Selection, execute_many
from technic_v4.scan.plan import check_cost
from technic_v4.scan.result import RANK_COLUMN
from technic_v4.scan.run import Evaluate, Evaluations, Predict
from technic_v4.screens.cost import Budget
from technic_v4.screens.trial import screen_fault
from technic_v4.watch.model import Watch, event_id
from technic_v4.watch.store import Evaluation, WatchStore

log = logging.getLogger("technic.watch")
MAX_CATCH_UP = 250
ROW_COLUMNS = [*RESULT_COLUMNS, *EXTRA_COLUMNS]


@dataclass(frozen=True)
class Engine:
    """Where a watch evaluation runs: the scan's Executor (in-process or the Serve replicas),
    the screens it resolves names in, and the scan's chunking, evaluation memo and budget."""

    executor: Executor
    screens: Any = None  # ScreenStore: named screens (None: presets only)
    chunk_size: int | None = None
    evaluations: Evaluations | None = None
    budget: Budget | None = None  # what a watch's expressions may cost (screens/cost.py)

    @property
    def evaluate(self) -> Evaluate:
        return self.executor.evaluate

    @property
    def predict(self) -> Predict:
        return self.executor.predict


@dataclass
class SessionRun:
    """What one session's evaluation did."""

    session: str
    data_version: str
    evaluated: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    events: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # watch name: why it failed
    ms: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)  # watch id: why (store)

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.session, "data_version": self.data_version,
                "evaluated": len(self.evaluated), "baselines": len(self.baselines),
                "events": self.events, "errors": dict(self.errors), "ms": round(self.ms, 1)}


def due_sessions(store: WatchStore, watches: Sequence[Watch], snap: Snapshot
                 ) -> dict[str, list[Watch]]:
    """{session: watches to evaluate at it}, sessions oldest first (module docstring, 1)."""
    sessions = [str(s.date()) for s in snap.sessions]
    newest = sessions[-1]
    due: dict[str, list[Watch]] = {}
    for watch in watches:
        last = store.last_evaluation(watch.id)
        if last is None:
            todo = [newest]
        else:
            start = int(np.searchsorted(np.asarray(sessions), last.session, side="right"))
            todo = sessions[start:]
            if len(todo) > MAX_CATCH_UP:
                todo = [newest]
        for session in todo:
            due.setdefault(session, []).append(watch)
    return dict(sorted(due.items()))


async def catch_up(store: WatchStore, snap: Snapshot, engine: Engine,
                   watches: Sequence[Watch] | None = None,
                   clock: Callable[[], float] | None = None, *,
                   max_events: int | None = None) -> list[SessionRun]:
    """Every watch (or `watches`) evaluated at each session it has not seen (docstring)."""
    import asyncio
    import time

    clock = clock or time.perf_counter
    chosen = list(watches) if watches is not None else await asyncio.to_thread(store.list)
    if not chosen or not len(snap.sessions):
        return []
    due = await asyncio.to_thread(due_sessions, store, chosen, snap)
    runs = []
    failed: set[str] = set()
    for session, due_now in due.items():
        members = [w for w in due_now if w.id not in failed]
        if not members:
            continue
        t0 = clock()
        run, batch = await evaluate_session(store, members, snap, session, engine,
                                            max_events)
        run.events = await asyncio.to_thread(store.record, batch) if batch else 0
        if run.failed:
            await asyncio.to_thread(store.record_failures,
                                    {wid: (session, why) for wid, why in run.failed.items()})
            failed |= set(run.failed)
            for name, why in run.errors.items():
                log.warning("technic watch %s failed at %s: %s", name, session, why)
        run.ms = (clock() - t0) * 1000
        runs.append(run)
    return runs


Batch = list[tuple[Watch, Evaluation, list[dict[str, Any]]]]


async def evaluate_session(store: WatchStore, watches: Sequence[Watch], snap: Snapshot,
                           session: str, engine: Engine, max_events: int | None = None
                           ) -> tuple[SessionRun, Batch]:
    """Steps 2-4 of the module docstring for one session: (the run, what to record)."""
    import asyncio

    run = SessionRun(session, snap.data_version)
    configs: list[ScanConfig] = []
    chosen: list[tuple[Watch, dict[str, Any]]] = []
    for watch, resolved in zip(watches, await asyncio.to_thread(_resolve, watches,
                                                                  engine.screens), strict=True):
        if isinstance(resolved, ConfigError):
            run.errors[watch.name] = run.failed[watch.id] = str(resolved)
            continue
        try:  # one watch over the budget is its own failure, not every watch's
            check_cost(resolved[0], snap, engine.budget)
        except ConfigError as exc:
            run.errors[watch.name] = run.failed[watch.id] = str(exc)
            continue
        configs.append(replace(resolved[0], as_of_date=session))
        chosen.append((watch, resolved[1]))
    if not configs:
        return run, []
    selections = await _selections(configs, snap, engine)
    kept: list[tuple[tuple[Watch, dict[str, Any]], Selection]] = []
    for (watch, ref), selection in zip(chosen, selections, strict=True):
        if isinstance(selection, ConfigError):
            run.errors[watch.name] = run.failed[watch.id] = str(selection)
            continue
        kept.append(((watch, ref), selection))
    lasts = await asyncio.to_thread(lambda: [store.last_evaluation(w.id)
                                             for (w, _), _s in kept])
    rows = RowSource()
    batch: Batch = []
    for ((watch, ref), selection), last in zip(kept, lasts, strict=True):
        evaluation, events = diff(watch, ref, selection, last, rows, max_events)
        batch.append((watch, evaluation, events))
        run.evaluated.append(watch.name)
        if evaluation.baseline:
            run.baselines.append(watch.name)
    return run, batch


async def _selections(configs: list[ScanConfig], snap: Snapshot, engine: Engine
                      ) -> list[Selection | ConfigError]:
    """`execute_many` of the configs together; when that fails for a screen's fault, each
    alone, its failure (a ConfigError) in its place (module docstring, step 2). A failure that
    is not a screen's (trial.INFRASTRUCTURE) is raised: the whole tick is tried again."""
    async def many(chosen: list[ScanConfig]) -> list[Selection]:
        selections, _ = await execute_many(chosen, snap, engine.evaluate, engine.predict,
                                           chunk_size=engine.chunk_size,
                                           evaluations=engine.evaluations,
                                           budget=engine.budget)
        return selections

    try:
        return list(await many(configs))
    except Exception as exc:  # one screen's fault must not stop the others: each alone
        fault = screen_fault(exc, "screen")
        if fault is None:
            raise
        if len(configs) == 1:
            return [fault]
    out: list[Selection | ConfigError] = []
    for cfg in configs:
        try:
            out.extend(await many([cfg]))
        except Exception as exc:
            fault = screen_fault(exc, "screen")
            if fault is None:
                raise
            out.append(fault)
    return out


def _resolve(watches: Sequence[Watch], screens: Any
             ) -> list[tuple[ScanConfig, dict[str, Any]] | ConfigError]:
    """Each watch's config and screen ref, or the ConfigError saying why it has none."""
    out: list[tuple[ScanConfig, dict[str, Any]] | ConfigError] = []
    for watch in watches:
        try:
            out.append(watch.config(screens))
        except ConfigError as exc:
            out.append(exc)
    return out


def diff(watch: Watch, screen: dict[str, Any], selection: Selection,
         last: Evaluation | None, rows: RowSource, max_events: int | None = None
         ) -> tuple[Evaluation, list[dict[str, Any]]]:
    """This session's Evaluation and its events against `last` (module docstring, 3-4)."""
    symbols = selection.symbols
    evaluation = Evaluation(watch.id, selection.session, selection.data_version, screen,
                            symbols)
    same_screen = last is not None and (last.screen.get("name"), last.screen.get("version")) \
        == (screen.get("name"), screen.get("version"))
    if not same_screen:
        evaluation = replace(evaluation, baseline=True)
        if last is not None or not watch.options.get("initial"):
            return evaluation, []
        before: list[str] = []
    else:
        assert last is not None
        before = last.symbols
    now_rank = {s: i + 1 for i, s in enumerate(symbols)}
    old_rank = {s: i + 1 for i, s in enumerate(before)}
    base = {"watch": watch.name, "screen": screen, "screen_version": screen.get("version"),
            "session": selection.session, "data_version": selection.data_version}
    kept = rows.kept_rows(selection)  # row of the k-th kept symbol, built on first use
    wid, session = watch.id, selection.session

    def event(kind: str, symbol: str, row: dict[str, Any] | None,
              more: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {"id": event_id(wid, session, symbol, kind), "kind": kind, "symbol": symbol,
               **base, "rank": now_rank.get(symbol), "previous_rank": old_rank.get(symbol)}
        if more:
            out.update(more)
        out["row"] = row
        return out

    # (kind, symbol, position among the kept): entered in rank order, left, rank_moved;
    # rows are built only for the first `max_events` of them
    changes: list[tuple[str, str, int]] = [("entered", s, k) for k, s in enumerate(symbols)
                                           if s not in old_rank]
    changes += [("left", s, -1) for s in before if s not in now_rank]
    threshold = watch.options.get("rank_moved")
    if threshold:
        changes += [("rank_moved", s, k) for k, s in enumerate(symbols) if s in old_rank
                    and abs(old_rank[s] - k - 1) >= threshold]
    cut = changes[max_events:] if max_events is not None else []
    events = []
    for kind, s, k in changes[:len(changes) - len(cut)]:
        if kind == "left":
            row = rows.any(selection, s)
            events.append(event("left", s, row, None if row else {"row_state": "no data"}))
        else:
            events.append(event(kind, s, kept(k), {"moved": old_rank[s] - k - 1}
                                if kind == "rank_moved" else None))
    regime = selection.regime
    previous = regime.get("previous") or {}
    if watch.options.get("regime_changed") and previous.get("session") == (
            last.session if last is not None else None) and previous.get("regime") != \
            regime.get("regime"):
        events.append({**event("regime_changed", "", None),
                       "regime": regime.get("regime"), "previous_regime": previous["regime"],
                       "regime_tags": regime})
    if cut:
        kinds = {k: sum(c[0] == k for c in cut) for k in ("entered", "left", "rank_moved")}
        events.append({
            "id": event_id(wid, session, "", "truncated"), "kind": "truncated", "symbol": "",
            **base, "rank": None, "previous_rank": None, "count": len(cut),
            "kinds": {k: n for k, n in kinds.items() if n}, "row": None})
    return evaluation, events


class RowSource:
    """Result rows of single symbols as JSON data, from the evaluation frames: each frame's
    columns turned into clean Python values (NaN/inf None, dates as text) once, column by
    column, and each symbol's row built once, whatever the number of watches and events
    reading it; an event's row is that row plus its watch's AlphaScore (and RankValue)."""

    def __init__(self) -> None:
        self._frames: dict[int, _FrameRows] = {}

    def _of(self, frame: pd.DataFrame) -> _FrameRows:
        found = self._frames.get(id(frame))
        if found is None:
            found = self._frames[id(frame)] = _FrameRows(frame)
        return found

    def kept(self, selection: Selection, k: int) -> dict[str, Any]:
        """The k-th kept row of `selection` (as `Selection.rows()` shows it)."""
        return self.kept_rows(selection)(k)

    def kept_rows(self, selection: Selection) -> Callable[[int], dict[str, Any]]:
        """`kept` for one selection: its positions and values read once, not per row."""
        frame_rows = self._of(selection.frame)
        positions = selection.positions.tolist()
        scores = [_plain(v) for v in selection.alpha_scores.tolist()]
        ranks = ([_plain(v) for v in selection.rank_values.tolist()]
                 if selection.config.rank else None)
        # the forecasts as this screen judged them over its own rows (a horizon that cannot
        # tell them apart is withheld: null), not the shared frame's
        alphas = {c: [_plain(v) for v in values.tolist()]
                  for c, values in selection.alpha.items()}

        def kept(k: int) -> dict[str, Any]:
            row = frame_rows.row(positions[k]).copy()
            for column, values in alphas.items():
                row[column] = values[k]
            row["AlphaScore"] = scores[k]
            if ranks is not None:
                row[RANK_COLUMN] = ranks[k]
            return row
        return kept

    def any(self, selection: Selection, symbol: str) -> dict[str, Any] | None:
        """`symbol`'s row at the session whether kept or not; None without a bar there."""
        rows = self._of(selection.frame)
        pos = rows.index.get(symbol, -1)
        if pos < 0 or rows.cols["Close"][pos] is None or rows.cols["LastDate"][pos] \
                != selection.session:
            return None
        # AlphaScore is relative to the rows a screen keeps; this one was not. A horizon the
        # screen withheld is withheld for it too.
        return {**rows.row(pos), **dict.fromkeys(_withheld(selection)), "AlphaScore": None}


def _withheld(selection: Selection) -> list[str]:
    """The alpha columns this screen's forecast withheld (`inference.distinguishing`)."""
    models = selection.alpha_state.get("models") or {}
    return [f"Alpha{h}d" for h in HORIZONS
            if isinstance(models.get(model_id(h)), dict) and models[model_id(h)].get("degenerate")]


class _FrameRows:
    """One frame's ROW_COLUMNS as lists of clean values, and its rows as dicts, built once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.cols = {c: _clean_list(frame[c]) for c in ROW_COLUMNS if c in frame}
        self.names = list(self.cols)
        self.index = {s: i for i, s in enumerate(self.cols["Symbol"])}
        self._table: list[tuple[Any, ...]] | None = None
        self._rows: dict[int, dict[str, Any]] = {}

    def row(self, pos: int) -> dict[str, Any]:
        """The row at `pos` (shared: callers copy it before adding to it)."""
        found = self._rows.get(pos)
        if found is None:
            if self._table is None:
                self._table = list(zip(*self.cols.values(), strict=True))
            found = self._rows[pos] = dict(zip(self.names, self._table[pos], strict=True))
        return found


def _clean_list(column: pd.Series) -> list[Any]:
    """A column as clean JSON values (`_clean` of each), converted column-wise: floats with
    NaN/inf as None, dates as YYYY-MM-DD text, text as it is."""
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.datetime64):
        return _as_list(column)
    if values.dtype.kind == "f":
        out = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            out[i] = None
        return out
    if values.dtype.kind in "iub":
        return values.tolist()
    return [v if type(v) is str else _clean(v) for v in values.tolist()]


def _as_list(column: pd.Series) -> list[Any]:
    """A column as Python values (dates as YYYY-MM-DD text), converted in one go."""
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.datetime64):
        text = np.datetime_as_string(values, unit="D").astype(object)
        text[np.isnat(values)] = None
        return text.tolist()
    return values.tolist()


def _clean(value: Any) -> Any:
    """NaN and inf to None; anything not plain JSON data through _plain."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return _plain(value)


def _plain(value: Any) -> Any:
    """JSON data: numpy scalars to Python, NaN/inf to None, dates to text."""
    if isinstance(value, np.datetime64 | pd.Timestamp):
        return None if pd.isna(value) else str(pd.Timestamp(value).date())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if value is pd.NaT:
        return None
    return str(value)
