"""The scan split into chunks, as the Serve app runs it: the stages `run_scan` is made of.

Ray-free on purpose: the in-process backend, the Serve deployments and the tests run this code.
Walk-through of `run_chunked`:
 1. `plan_scan` selects universe rows (symbols / sectors / industries) from the universe table
    alone; the ingress never reads prices.
 2. The selected symbols are cut, in universe order, into chunks of `chunk_size`.
 3. `evaluate(symbols, config_dict)` runs for every chunk at once: an indicator replica looks
    the symbols up in the Panel window it holds (`evaluate_chunk`) and returns a RowBlock.
 4. `predict(features)` runs for every block's surviving rows at once; the alpha replica
    batches them, across chunks and concurrent scans, into one XGBoost call (`predict_batch`).
 5. AlphaScore is computed over all surviving rows together (`combine_alpha`), exactly as
    `predict_alpha` does in one call, so chunking and batching cannot change it; chunks
    forecast by different model versions are refused (StaleDataError), never combined.
 6. `finish_scan` merges the blocks in plan order, ranks, cuts and counts.
Every indicator, check and score is per symbol, so chunks give row for row what one
`evaluate_symbols` call gives, and the result equals `run_scan`'s (tests/test_serve.py).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from technic_v4 import scoring
from technic_v4.alpha.inference import AlphaPredictions, alpha_score, predict_alpha
from technic_v4.data import store
from technic_v4.data.panel import FIELDS, Panel
from technic_v4.data.store_fs import data_root
from technic_v4.indicators import compute_indicators, required_bars
from technic_v4.scanner_core import (
    SHOWN_INDICATORS,
    RowBlock,
    ScanConfig,
    ScanStatus,
    add_alpha,
    alpha_inputs,
    evaluate_symbols,
    finish_scan,
    plan_scan,
    scan_window,
)

Features = dict[str, np.ndarray]
Evaluate = Callable[[list[str], dict[str, Any]], Awaitable[RowBlock]]
Predict = Callable[[Features], Awaitable[dict[str, Any]]]
Report = Callable[[str, int, int], None]

HISTORY_MAX_DAYS = 1260   # bound of `days` for a symbol's chart history (5 years)
HISTORY_WARMUP = 250      # extra bars so EMA-type indicators have converged (registry doc)


class StaleDataError(RuntimeError):
    """The store or the models changed under a scan: its chunks come from different versions."""


class UnknownSymbolError(LookupError):
    """A well-formed symbol that is not in the universe (HTTP 404)."""


def config_to_dict(cfg: ScanConfig) -> dict[str, Any]:
    """A ScanConfig as plain data: what travels to the replicas (never price frames)."""
    d = asdict(cfg)
    if d["as_of_date"] is not None:
        d["as_of_date"] = str(d["as_of_date"])
    return d


def config_from_dict(d: Mapping[str, Any]) -> ScanConfig:
    d = dict(d)
    d["scoring"] = scoring.ScoringConfig(**d.get("scoring", {}))
    return ScanConfig(**d)


class PanelWindows:
    """A process's Panel windows of the store, LRU by (data_version, end, bars).

    Each replica loads a window once and keeps it; a new store (another data_version in the
    manifest, noticed by a stat of manifest.json per call) makes the next call load afresh.
    `data_dir` may be an object-store URI: there is no cheap stamp there, so the (~1 KB)
    manifest is read on every call instead (store_fs.py).
    """

    def __init__(self, data_dir: str | os.PathLike[str], size: int = 3):
        self.data_dir = data_root(data_dir)
        self.size = size
        self._lock = threading.Lock()
        self._panels: OrderedDict[tuple, Panel] = OrderedDict()
        self._index: dict[str, pd.Index] = {}
        self._manifest: tuple[tuple, store.StoreManifest] | None = None

    def manifest(self) -> store.StoreManifest:
        stamp = store.manifest_stamp(self.data_dir)
        cached = self._manifest
        if stamp and cached is not None and cached[0] == stamp:
            return cached[1]
        manifest = store.read_manifest(self.data_dir)
        self._manifest = (stamp, manifest)
        return manifest

    def load(self, end: object, bars: int) -> Panel:
        version = self.manifest().data_version
        key = (version, None if end is None else pd.Timestamp(str(end)), int(bars))
        with self._lock:
            if key in self._panels:
                self._panels.move_to_end(key)
                return self._panels[key]
            for old in [k for k in self._panels if k[0] != version]:  # a replaced store
                del self._panels[old]
            panel = store.load_panel(self.data_dir, end=key[1], bars=bars)
            self._panels[key] = panel
            while len(self._panels) > self.size:
                self._panels.popitem(last=False)
            if panel.data_version not in self._index:
                self._index = {panel.data_version: pd.Index(panel.symbols)}
            return panel

    def rows(self, panel: Panel, symbols: Sequence[str]) -> np.ndarray:
        """Row positions of `symbols` in `panel` (all windows share the universe order)."""
        index = self._index.get(panel.data_version)
        if index is None:
            index = self._index[panel.data_version] = pd.Index(panel.symbols)
        return index.get_indexer(list(symbols))


def evaluate_chunk(windows: PanelWindows, symbols: Sequence[str],
                   config: Mapping[str, Any]) -> RowBlock:
    """`evaluate_symbols` for `symbols`, from the window this process already holds."""
    cfg = config_from_dict(config)
    panel = windows.load(cfg.as_of_date, scan_window(cfg))
    rows = windows.rows(panel, symbols)
    if (rows < 0).any():
        missing = [s for s, r in zip(symbols, rows, strict=True) if r < 0][:5]
        raise StaleDataError(f"symbols {missing} are not in store version {panel.data_version}")
    return evaluate_symbols(_rows_of(panel, rows), cfg)


def _rows_of(panel: Panel, rows: np.ndarray) -> Panel:
    """`panel.take(rows)`, as views when the rows are one consecutive run (the usual chunk of
    a full or sector-free scan): a copy of 1,250 x 200 x 5 floats costs ~5 ms, a view nothing."""
    n = len(rows)
    if n == 0 or rows[-1] - rows[0] + 1 != n or not bool((np.diff(rows) == 1).all()):
        return panel.take(rows)
    if n == panel.n_symbols:
        return panel
    sl = slice(int(rows[0]), int(rows[-1]) + 1)
    return replace(panel, symbols=panel.symbols[sl],
                   universe=panel.universe.iloc[sl].reset_index(drop=True),
                   **{f: getattr(panel, f)[sl] for f in FIELDS})


def symbol_history(windows: PanelWindows, symbol: str, days: int) -> dict[str, Any]:
    """Bars and every indicator's history for one symbol over the last `days` sessions."""
    panel = windows.load(None, HISTORY_MAX_DAYS + HISTORY_WARMUP)
    row = windows.rows(panel, [symbol])[0]
    if row < 0:
        raise UnknownSymbolError(f"unknown symbol {symbol!r}: not in the universe "
                                 f"(data_version {panel.data_version})")
    one = panel.take(np.array([row]))
    one = one.window(one.n_sessions - 1, days + max(HISTORY_WARMUP, required_bars()))
    table = compute_indicators(one, history=True)
    cut = slice(max(0, one.n_sessions - days), None)
    info = one.universe.iloc[0]
    return {
        "symbol": symbol, "name": str(info["name"]), "sector": str(info["sector"]),
        "industry": str(info["industry"]),
        "sessions": [str(s.date()) for s in one.sessions[cut]],
        "bars": {f: getattr(one, f)[0, cut].tolist()
                 for f in ("open", "high", "low", "close", "volume")},
        "indicators": {name: table.history[name][0, cut].tolist() for name in table.outputs},
        "data_version": panel.data_version, "source": panel.source,
        "as_of": str(panel.sessions[-1].date()),
    }


def predict_batch(items: Sequence[Mapping[str, np.ndarray]],
                  models_dir: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    """One `predict_alpha` call for the rows of many requests; each gets its own slice back.

    A row's forecast depends on its own features only, so slicing a batch equals predicting
    each request alone. AlphaScore is not returned: it is relative to a whole scan.
    """
    sizes = [len(next(iter(f.values()))) if f else 0 for f in items]
    keys = [k for k in items[0]] if items else []
    features = {k: np.concatenate([np.asarray(f[k], dtype=float) for f in items]) for k in keys}
    pred = predict_alpha(features, np.ones(sum(sizes), dtype=bool), models_dir)
    out, start = [], 0
    for n in sizes:
        out.append({"alpha5d": pred.alpha5d[start:start + n],
                    "alpha10d": pred.alpha10d[start:start + n], "state": pred.state})
        start += n
    return out


def empty_features() -> Features:
    """Zero rows of every column the models may read: enough to load and check them."""
    return {name: np.empty(0) for name in SHOWN_INDICATORS}


def combine_alpha(parts: Sequence[Mapping[str, Any]]) -> AlphaPredictions:
    """The chunks' forecasts as one scan's AlphaPredictions, AlphaScore as `predict_alpha`
    computes it over all rows (inference.py step 4); NaN unless the models are available.
    Chunks predicted by different model versions (a model swapped between two batches, or
    replicas that swapped at different moments) are refused, never mixed: StaleDataError,
    which the backend answers by scanning once more."""
    versions = {str(p["state"].get("models_version")) for p in parts}
    if len(versions) > 1:
        raise StaleDataError(f"alpha models changed during the scan: chunks were predicted by "
                             f"{sorted(versions)}")
    a5 = np.concatenate([np.asarray(p["alpha5d"], dtype=float) for p in parts])
    a10 = np.concatenate([np.asarray(p["alpha10d"], dtype=float) for p in parts])
    state = dict(parts[0]["state"])
    score = np.full(len(a5), np.nan)
    if state.get("available"):
        score = alpha_score(a5, a10)
    return AlphaPredictions(a5, a10, score, state)


async def run_chunked(cfg: ScanConfig, universe: pd.DataFrame, data_version: str,
                      evaluate: Evaluate, predict: Predict, chunk_size: int,
                      report: Report | None = None) -> tuple[pd.DataFrame, ScanStatus]:
    """The scan of the module docstring; `report(stage, done, total)` as `run_scan` calls it."""
    report = report or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    t0 = last = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal last
        now = time.perf_counter()
        timings[stage] = round((now - last) * 1000, 3)
        last = now

    report("load", 0, 1)
    plan = plan_scan(cfg, universe)
    symbols = plan.symbols[plan.rows].tolist()
    chunks = [symbols[i:i + chunk_size] for i in range(0, len(symbols), chunk_size)] or [[]]
    lap("plan")
    report("load", 1, 1)

    total, done = len(symbols), 0
    config = config_to_dict(cfg)
    report("indicators", 0, total)

    async def one(chunk: list[str]) -> RowBlock:
        nonlocal done
        block = await evaluate(chunk, config)
        done += len(chunk)
        report("indicators", done, total)
        return block

    blocks = list(await asyncio.gather(*(one(c) for c in chunks)))
    stale = {b.data_version for b in blocks} - {data_version}
    if stale:
        raise StaleDataError(f"scan planned on data_version {data_version}, evaluated on "
                             f"{sorted(stale)}")
    lap("indicators")
    report("score", total, total)

    kept = sum(len(b.frame) for b in blocks)
    report("alpha", 0, kept)
    live = [b for b in blocks if len(b.frame)] or blocks[:1]
    parts = await asyncio.gather(*(predict(alpha_inputs(b.frame)) for b in live))
    alpha = combine_alpha(parts)
    start, scored = 0, []
    for b in blocks:
        n = len(b.frame)
        sl = slice(start, start + n)
        scored.append(add_alpha(b, replace(alpha, alpha5d=alpha.alpha5d[sl],
                                           alpha10d=alpha.alpha10d[sl], score=alpha.score[sl])))
        start += n
    lap("alpha")
    report("alpha", kept, kept)

    frame, status = finish_scan(cfg, plan, scored, alpha.state)
    lap("rank")
    timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
    status.timings_ms = timings
    report("rank", len(frame), len(frame))
    return frame, status


class BatchStats:
    """Counters of the alpha model's calls: how many requests and rows each batch carried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches = self.requests = self.rows = 0
        self.sizes: dict[int, int] = {}

    def record(self, requests: int, rows: int) -> None:
        with self._lock:
            self.batches += 1
            self.requests += requests
            self.rows += rows
            self.sizes[requests] = self.sizes.get(requests, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"batches": self.batches, "requests": self.requests, "rows": self.rows,
                    "max_batch_requests": max(self.sizes, default=0),
                    "batch_size_histogram": dict(sorted(self.sizes.items()))}
