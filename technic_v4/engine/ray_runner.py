"""`run_ray_scans_optimized`: the origin design's Ray scan, kept because users' scripts call
it; the one scan orchestrator (`technic_v4.scan.execute`, as `run_scan` runs it) with its
indicator chunks and its forecasts on `BatchWorker` actors of a local (or joined) Ray.

Each BatchWorker (`ray.remote` over `Worker`) holds a StoreReader of the data dir and a
ModelSet of the models dir, loaded once, and answers `evaluate` (a chunk's measured rows,
`technic_v4.scan.evaluate_chunk`) and `predict` (`ModelSet.predict`), the two steps
`execute` leaves to its caller. Chunks go to the actors in turn; planning, screening and
ranking run here. The result is `run_scan`'s for the same config, store and models: chunks
measure row for row what one call over all rows measures (scan/evaluate.py).
Ray is imported only when a scan runs or `BatchWorker` is asked for: technic_v4 imports
without it. For a service that keeps workers warm between scans, see `deployments/`.
"""

from __future__ import annotations

import functools
import itertools
import logging
from typing import Any

import pandas as pd

from technic_v4 import data_engine
from technic_v4.alpha.inference import Forecast, ModelSet
from technic_v4.data.reader import StoreReader
from technic_v4.data.store_fs import DataDir
from technic_v4.engine.alpha_inference import ModelsDir, model_set
from technic_v4.scan import Block, ScanConfig, ScanStatus, WindowSpec, evaluate_chunk, execute
from technic_v4.scan.run import Features, Report, run_sync

DEFAULT_WORKERS = 2
DEFAULT_CHUNK = 250  # symbols per evaluate call


class Worker:
    """A BatchWorker's state and methods (module docstring)."""

    def __init__(self, data_dir: str, models_dir: str):
        self.reader = StoreReader(data_dir, auto_demo=False)
        self.models = ModelSet(models_dir)

    def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str) -> Block:
        return evaluate_chunk(self.reader, symbols, spec, data_version)

    def predict(self, features: Features) -> Forecast:
        return self.models.predict(features)

    def models_version(self) -> str:
        return str(self.models.state().get("models_version", ""))


@functools.cache
def _batch_worker() -> Any:
    import ray

    return ray.remote(Worker)


def __getattr__(name: str) -> Any:
    """`BatchWorker`, the Ray actor class, made when first asked for (Ray imported then)."""
    if name == "BatchWorker":
        return _batch_worker()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ActorExecutor:
    """The engine's Executor (technic_v4/scan/executor.py) over BatchWorker actors: chunks
    round-robin, forecasts on the first."""

    def __init__(self, actors: list[Any]):
        self.actors, self._turn = actors, itertools.count()

    async def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str
                       ) -> Block:
        actor = self.actors[next(self._turn) % len(self.actors)]
        return await actor.evaluate.remote(symbols, spec, data_version)

    async def predict(self, features: Features) -> Forecast:
        return await self.actors[0].predict.remote(features)

    async def models_version(self) -> str:
        return str(await self.actors[0].models_version.remote())


def run_ray_scans_optimized(config: ScanConfig | None = None, progress_cb: Report | None = None,
                            *, data_dir: DataDir | None = None, models_dir: ModelsDir = None,
                            workers: int = DEFAULT_WORKERS, chunk_size: int = DEFAULT_CHUNK
                            ) -> tuple[pd.DataFrame, ScanStatus]:
    """`run_scan(config, progress_cb)` with its chunks on `workers` BatchWorker actors;
    returns (results, status) as run_scan does. Starts a local Ray (no dashboard) unless this
    process has joined one. The origin's `(symbols, config, regime_tags, price_cache)` is
    `ScanConfig(symbols=...)` here: the actors read the store, no prices cross the wire."""
    import ray

    if workers < 1 or chunk_size < 1:
        raise ValueError(f"workers and chunk_size must be >= 1, got {workers}, {chunk_size}")
    cfg = config or ScanConfig()
    reader = data_engine.reader(data_dir)
    reader.snapshot()  # a local data dir without a store gets the demo market before the actors
    models = model_set(models_dir).root
    screens = None
    if cfg.screen is not None:
        from technic_v4.screens.saved import ScreenStore
        from technic_v4.settings import Settings

        screens = ScreenStore.for_data_dir(reader.data_dir, Settings().state_dir)
    if not ray.is_initialized():
        ray.init(include_dashboard=False, logging_level=logging.ERROR)
    actors = [_batch_worker().remote(str(reader.data_dir), str(models)) for _ in range(workers)]
    on = ActorExecutor(actors)
    try:
        return run_sync(execute(cfg, reader.snapshot, on.evaluate, on.predict,
                                chunk_size=chunk_size, report=progress_cb, screens=screens))
    finally:
        for actor in actors:
            ray.kill(actor)
