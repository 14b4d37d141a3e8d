"""The one scan orchestrator: `execute`, and `run_scan`, which runs it in this process.

Walk-through of `execute(cfg, snapshot, evaluate, predict)`; every caller (CLI, HTTP scan and
stream, validation, watches) comes through here, and only says where two steps run:
  0. screen     `cfg.screen` names a saved screen or preset: its definition, from the
                `screens` store (technic_v4/screens/saved.py; `run_scan` opens the one of its
                reader's data dir), with the fields the request sets on top; the status says
                which screen and version ran. Unknown name: ConfigError listing the valid ones.
  1. load       `cfg.validate()`, a Snapshot of the data (universe + sessions of one data
                version), `plan_scan`: as-of, industries and the expressions' cost (the
                budget) checked against it, rows selected by symbols / sectors / industries.
                No prices are read.
  2. indicators `evaluate(symbols, spec, data_version)` for the selected symbols, in chunks
                of `chunk_size` run concurrently: in-process a local call, under Serve the
                Indicators replicas (each holds the Panel). A chunk from another data version
                than the plan's (the store was replaced meanwhile) is StaleDataError: the scan
                is planned again on a fresh snapshot, once. A service passes `evaluations` to
                keep a data version's full-universe evaluation and answer later scans with the
                same WindowSpec from it (evaluate.py says why that is exact).
  3. score      `screen`: the request's checks over the measured rows (masks), rejections with
                their reasons.
  4. alpha      `predict(features)` once, for the rows kept, with the model features only:
                in-process a ModelSet, under Serve the AlphaModel replica (which batches
                concurrent scans into one XGBoost call). A horizon whose model learned other
                data than the store's (synthetic vs real, another calendar:
                `inference.matching`) or whose forecasts cannot tell the kept rows apart
                (`inference.distinguishing`) is then withheld (judged per scan, here, since a
                Serve batch mixes scans); a where / rank / sort_by reading a withheld column
                is a ConfigError (`unfillable_alpha`). AlphaScore over the rows kept.
  5. rank       `select` (select.py, the one shared with execute_many and validation):
                where -> rank -> order; `finish_scan`: cut to max_symbols, count every symbol.
`report(stage, done, total)` follows the same stages (STAGES), and `status.timings_ms` holds
one lap per stage plus `total`, from one StageTimer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from cachetools import LRUCache

from technic_v4 import cancel
from technic_v4.alpha.inference import (
    HORIZONS,
    MODEL_FEATURES,
    Forecast,
    ModelSet,
    alpha_score,
    distinguishing,
    matching,
)
from technic_v4.alpha.registry import model_id
from technic_v4.data.calendar import DEFAULT_CALENDAR
from technic_v4.data.reader import Snapshot, StoreReader
from technic_v4.data.store_fs import DataRoot
from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.regimes import market_columns
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import Block, WindowSpec
from technic_v4.scan.executor import LocalExecutor
from technic_v4.scan.expressions import BlockEnv, compile_expressions
from technic_v4.scan.plan import ScanPlan, plan_scan
from technic_v4.scan.result import RANK_COLUMN, ScanStatus, finish_scan, shown_columns
from technic_v4.scan.screen import reject_rows, screen
from technic_v4.scan.select import select, with_alpha_score
from technic_v4.screens.cost import Budget
from technic_v4.settings import Settings

if TYPE_CHECKING:
    from technic_v4.screens.saved import ScreenStore

Features = dict[str, np.ndarray]
Evaluate = Callable[[list[str], WindowSpec, str], Awaitable[Block]]
Predict = Callable[[Features], Awaitable[Forecast]]
Report = Callable[[str, int, int], None]
T = TypeVar("T")


class StageTimer:
    """Milliseconds per stage (laps in STAGES order) and the total."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round((now - self.last) * 1000, 3)
        self.last = now

    def done(self) -> dict[str, float]:
        return {**self.laps, "total": round((self.last - self.start) * 1000, 3)}


class Evaluations:
    """Full-universe evaluations by (data_version, WindowSpec), least recently used out."""

    def __init__(self, size: int = 4):
        self.size = size
        self._lock = threading.Lock()
        self._blocks: LRUCache[tuple[str, bytes], Block] = LRUCache(max(1, size))

    def get(self, key: tuple[str, bytes]) -> Block | None:
        with self._lock:
            return self._blocks.get(key)

    def put(self, key: tuple[str, bytes], block: Block) -> None:
        with self._lock:
            self._blocks[key] = block

    def release(self) -> int:
        """Drop the evaluations that kept expression series (a where / rank scan's windows
        of bars: up to gigabytes), keep the plain scans' rows; how many were dropped."""
        with self._lock:
            gone = [k for k, b in self._blocks.items() if b.series]
            for key in gone:
                del self._blocks[key]
        return len(gone)

    def __len__(self) -> int:
        return len(self._blocks)


async def execute(cfg: ScanConfig, snapshot: Callable[[], Snapshot], evaluate: Evaluate,
                  predict: Predict, *, chunk_size: int | None = None,
                  report: Report | None = None, evaluations: Evaluations | None = None,
                  screens: ScreenStore | None = None, budget: Budget | None = None,
                  cancel_token: cancel.CancelToken | None = None
                  ) -> tuple[pd.DataFrame, ScanStatus]:
    """The scan of the module docstring; StaleDataError when the data changed twice.
    `screens`: where `cfg.screen` is looked up (None: the presets only); `budget`: what the
    expressions may cost (default Budget(); checked in step 1, before any price is read).
    `cancel_token`: checked between stages, chunks and expression nodes
    (technic_v4/cancel.py); Cancelled once it is set."""
    with cancel.active(cancel_token):
        return await _execute_checked(cfg, snapshot, evaluate, predict, chunk_size, report,
                                      evaluations, screens, budget)


async def _execute_checked(cfg: ScanConfig, snapshot: Callable[[], Snapshot],
                           evaluate: Evaluate, predict: Predict, chunk_size: int | None,
                           report: Report | None, evaluations: Evaluations | None,
                           screens: ScreenStore | None, budget: Budget | None
                           ) -> tuple[pd.DataFrame, ScanStatus]:
    ref = None
    if cfg.screen is not None:
        from technic_v4.screens.saved import resolve_screen

        cfg, ref = await asyncio.to_thread(resolve_screen, cfg, screens)
    cfg.validate()
    for attempt in (0, 1):
        try:
            frame, status = await _execute(cfg, snapshot(), evaluate, predict, chunk_size,
                                           report or _no_report, evaluations, budget)
        except StaleDataError:
            if attempt:
                raise
        else:
            status.screen = ref
            return frame, status
    raise AssertionError("unreachable")


async def _execute(cfg: ScanConfig, snap: Snapshot, evaluate: Evaluate, predict: Predict,
                   chunk_size: int | None, report: Report, evaluations: Evaluations | None,
                   budget: Budget | None) -> tuple[pd.DataFrame, ScanStatus]:
    timer = StageTimer()
    report("load", 0, 1)
    plan = plan_scan(cfg, snap, budget=budget)
    latest = plan.as_of == snap.sessions[-1]
    spec = replace(WindowSpec.of(cfg), as_of=None if latest else str(plan.as_of.date()))
    timer.lap("load")
    report("load", 1, 1)

    block = await _evaluate(plan, spec, snap, evaluate, chunk_size, report, evaluations)
    cancel.check()
    timer.lap("indicators")
    valid, alive, rejections = screen(cfg, block.frame, plan.as_of)
    timer.lap("score")
    report("score", len(plan.rows), len(plan.rows))

    rows = np.flatnonzero(alive)
    report("alpha", 0, len(rows))
    kept = block.frame.iloc[rows]
    forecast = distinguishing(matching(await predict(
        {name: kept[name].to_numpy(dtype=float) for name in MODEL_FEATURES}),
        snap.source, snapshot_calendar(snap)))
    cancel.check()
    timer.lap("alpha")
    report("alpha", len(rows), len(rows))

    refused = unfillable_alpha(cfg, forecast.state)
    if refused is not None:
        raise refused
    exprs = compile_expressions(cfg.where, cfg.rank)
    n = len(block.frame)
    market = market_columns(block.regime, n)  # the regime's columns, the same in every row
    alpha = {f"Alpha{h}d": _scatter(forecast.values[h], rows, n) for h in forecast.values}
    scored: dict[bytes, dict[str, np.ndarray]] = {}

    def values(passing: np.ndarray) -> dict[str, np.ndarray]:  # AlphaScore over `passing`
        key = np.packbits(passing).tobytes()
        if key not in scored:
            scored[key] = with_alpha_score(alpha, passing, forecast.available)
        return scored[key]

    def env(universe: np.ndarray, stage: str) -> BlockEnv:
        return BlockEnv(block.frame, block.series, universe,
                        {**(alpha if stage == "where" else values(universe)), **market})

    def sort(passing: np.ndarray) -> np.ndarray:
        found = values(passing).get(cfg.sort_by)
        return block.frame[cfg.sort_by].to_numpy(dtype=float) if found is None else found

    # off the event loop (a where can cost seconds); the thread sees the cancel token
    chosen = await asyncio.to_thread(select, exprs, valid, alive, env, sort)
    if exprs.where is not None:  # over every row: ranks inside it see the whole universe
        detail = "not " + exprs.where.text[:120]
        reject_rows(block.frame["Symbol"].to_numpy(dtype=object), alive, ~chosen.passing,
                    "where", lambda i: [detail] * len(i), rejections)
        keep = chosen.passing[rows]
        rows, forecast = rows[keep], Forecast({h: v[keep] for h, v in forecast.values.items()},
                                              forecast.state)
        kept = block.frame.iloc[rows]
    kept = with_alpha(kept, forecast)
    missing = [c for c in shown_columns(cfg) if c not in kept.columns and c != RANK_COLUMN]
    for name in [c for c in missing if c in market]:
        kept[name] = market[name][rows]
        missing.remove(name)
    if missing:  # chosen or read columns the frame lacks: their value at the as-of session
        read = BlockEnv(block.frame, block.series, valid)
        for name in missing:
            kept[name] = read.number(name, 1)[rows, -1]
    if exprs.rank is not None:
        kept[RANK_COLUMN] = chosen.rank[rows]
    frame, status = finish_scan(cfg, plan, block, kept, chosen.order(cfg.ascending), rejections,
                                forecast.state)
    timer.lap("rank")
    status.regime_tags = block.regime
    status.timings_ms = timer.done()
    report("rank", len(frame), len(frame))
    return frame, status


async def _evaluate(plan: ScanPlan, spec: WindowSpec, snap: Snapshot, evaluate: Evaluate,
                    chunk_size: int | None, report: Report, evaluations: Evaluations | None
                    ) -> Block:
    """The measured rows of the plan (step 2): from `evaluations`, or evaluated in chunks."""
    symbols = plan.selected
    total = len(symbols)
    report("indicators", 0, total)
    key = (snap.data_version, spec.key())
    full = evaluations.get(key) if evaluations is not None else None
    if full is not None:
        report("indicators", total, total)
        if total == len(plan.symbols):
            return full
        return replace(full, frame=full.frame.iloc[plan.rows].reset_index(drop=True),
                       series={k: v[plan.rows] for k, v in full.series.items()})
    size = chunk_size or max(total, 1)
    chunks = [symbols[i:i + size] for i in range(0, total, size)] or [[]]
    done = 0

    async def one(chunk: list[str]) -> Block:
        nonlocal done
        cancel.check()
        block = await evaluate(chunk, spec, snap.data_version)
        done += len(chunk)
        report("indicators", done, total)
        return block

    blocks = list(await asyncio.gather(*(one(c) for c in chunks)))
    versions = {(b.data_version, b.as_of, b.window_bars) for b in blocks}
    if {b.data_version for b in blocks} != {snap.data_version} or len(versions) > 1:
        raise StaleDataError(f"scan planned on data_version {snap.data_version}, evaluated on "
                             f"{sorted(versions)}")
    frame = (blocks[0].frame if len(blocks) == 1
             else pd.concat([b.frame for b in blocks], ignore_index=True))
    series = (blocks[0].series if len(blocks) == 1 else  # the expressions' series, all rows
              {k: np.concatenate([b.series[k] for b in blocks]) for k in blocks[0].series})
    block = replace(blocks[0], frame=frame, series=series, timings_ms={
        k: max(b.timings_ms.get(k, 0.0) for b in blocks) for k in blocks[0].timings_ms},
        computed=tuple(dict.fromkeys(n for b in blocks for n in b.computed)))
    if evaluations is not None and total == len(plan.symbols):
        evaluations.put(key, block)
    return block


def snapshot_calendar(snap: Snapshot) -> str:
    """The exchange calendar of the snapshot's sessions (a Panel in memory: XNYS)."""
    return snap.manifest.calendar if snap.manifest is not None else DEFAULT_CALENDAR


def unfillable_alpha(cfg: ScanConfig, state: Mapping[str, object]) -> ConfigError | None:
    """The ConfigError for a `where`, `rank` or `sort_by` of `cfg` that reads a forecast
    column the alpha `state` cannot fill (its model missing, mismatched or withheld), or None:
    an empty or arbitrary answer would pass for the screen's verdict."""
    held = state.get("models")
    models = held if isinstance(held, dict) else {}
    missing = {f"Alpha{h}d" for h in HORIZONS
               if not (models.get(model_id(h)) or {}).get("available")}
    if not state.get("available"):
        missing.add("AlphaScore")
    if not missing:
        return None
    reason = str(state.get("reason") or "alpha unavailable")
    exprs = compile_expressions(cfg.where, cfg.rank)
    for field, compiled in (("where", exprs.where), ("rank", exprs.rank)):
        used = sorted(missing & compiled.columns) if compiled is not None else []
        if used:
            return ConfigError(field, f"{field} reads {', '.join(used)}, which this scan "
                               f"cannot fill: {reason}")
    if cfg.sort_by in missing:
        return ConfigError("sort_by", f"sort_by {cfg.sort_by} cannot rank this scan: {reason}")
    return None


def with_alpha(kept: pd.DataFrame, forecast: Forecast) -> pd.DataFrame:
    """`kept` with Alpha5d, Alpha10d and AlphaScore (over these rows) from `forecast`."""
    out = kept  # a frame of its own (boolean selection of the evaluation)
    a5, a10 = forecast.values[5], forecast.values[10]
    out["Alpha5d"], out["Alpha10d"] = a5, a10
    out["AlphaScore"] = alpha_score(a5, a10) if forecast.available else np.nan
    return out


def _scatter(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[rows] = values
    return out


def run_scan(config: ScanConfig | None = None, progress_cb: Report | None = None, *,
             loader: Any = None, models_dir: str | Path | None = None,
             screens: ScreenStore | None = None, budget: Budget | None = None,
             settings: Settings | None = None) -> tuple[pd.DataFrame, ScanStatus]:
    """Scan, score and rank in this process; returns (results, status).

    `loader`: a StoreReader or PanelSource (default: the data dir of the environment);
    `models_dir`: the alpha models (default: $TECHNIC_MODELS_DIR, else the shipped ones);
    `screens`: where `config.screen` is looked up (default: the saved screens of the
    loader's data dir, technic_v4/screens/saved.py; a loader without one: the presets);
    `budget`: what `where` / `rank` may cost (default Budget(); over it, a ConfigError before
    any price is read). `settings` give those defaults (data, models and state dirs); a
    script that passes none is a process starting here: its environment is read once, now.
    """
    env = settings if settings is not None else Settings()
    cfg = config or ScanConfig()
    reader = loader if loader is not None else _default_reader(env.data_root())
    models = _model_set(models_dir if models_dir is not None else env.models_root())
    if cfg.screen is not None and screens is None and getattr(reader, "data_dir", None):
        from technic_v4.screens.saved import ScreenStore

        screens = ScreenStore.for_data_dir(reader.data_dir, env.state_dir)

    local = LocalExecutor(reader, models)
    return run_sync(execute(cfg, reader.snapshot, local.evaluate, local.predict,
                            report=progress_cb, screens=screens, budget=budget))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from sync code, also when this thread already runs a loop
    (a notebook): then in a worker thread. The result is handed over outside the main task:
    on Python 3.11 `asyncio.run` formats the finished task's repr (its result: the result
    and rejection DataFrames) while restoring the SIGINT handler, twice per run: ~10-20 ms
    of a 5,000-symbol scan spent printing tables nobody reads."""
    out: list[T] = []

    async def main() -> None:
        out.append(await coro)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:
        asyncio.run(main())
    else:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, main()).result()
    return out[0]


def _no_report(stage: str, done: int, total: int) -> None:
    return None


_DEFAULTS: dict[str, Any] = {}
_DEFAULTS_LOCK = threading.Lock()


def _default_reader(data_dir: DataRoot) -> StoreReader:
    """The settings' data dir, read by one StoreReader per process and dir (warm scans)."""
    reader = StoreReader(data_dir)
    with _DEFAULTS_LOCK:
        return _DEFAULTS.setdefault(f"reader:{reader.data_dir}", reader)


def _model_set(models_dir: str | Path | None) -> ModelSet:
    """One ModelSet per models dir for `run_scan` callers that pass none of their own."""
    models = ModelSet(models_dir)
    with _DEFAULTS_LOCK:
        return _DEFAULTS.setdefault(f"models:{models.root}", models)
