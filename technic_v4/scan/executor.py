"""Executor: where the engine's two heavy steps run, behind one protocol.

`execute` (run.py), `execute_many` (many.py), the watch service and the HTTP backends need
three things placed somewhere: `evaluate` (the indicators of some symbols, evaluate.py),
`predict` (the alpha forecasts of feature rows) and `models_version` (which models would
answer, for cache keys). `LocalExecutor` runs them in worker threads of this process over a
reader and a ModelSet; the Serve deployment supplies its own (`deployments/executor.py`:
handles to the replicas, a call retried when its replica died) with the same three methods.

A store the reader opens but cannot parse is a StoreError here (`store_read`), as on a replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import numpy as np

from technic_v4.alpha.inference import Forecast, ModelSet
from technic_v4.data.storeio import store_read
from technic_v4.scan.evaluate import Block, WindowSpec, evaluate_chunk


class Executor(Protocol):
    """The engine's placement of its evaluate and predict steps (module docstring)."""

    async def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str
                       ) -> Block: ...

    async def predict(self, features: Mapping[str, np.ndarray]) -> Forecast: ...

    async def models_version(self) -> str: ...


class LocalExecutor:
    """Evaluate and predict in threads of this process: `reader` a StoreReader or PanelSource.

    `ready`, when given, is awaited before each evaluation (a service still loading its
    window); `on_predict(requests, rows)` counts each model call (the service's stats)."""

    def __init__(self, reader: Any, models: ModelSet, *,
                 ready: Callable[[], Awaitable[None]] | None = None,
                 on_predict: Callable[[int, int], None] | None = None):
        self.reader, self.models = reader, models
        self.ready, self.on_predict = ready, on_predict

    async def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str
                       ) -> Block:
        if self.ready is not None:
            await self.ready()
        return await asyncio.to_thread(store_read, "loading the scan window",
                                       lambda: evaluate_chunk(self.reader, symbols, spec,
                                                              data_version))

    async def predict(self, features: Mapping[str, np.ndarray]) -> Forecast:
        out = await asyncio.to_thread(self.models.predict, features)
        if self.on_predict is not None:
            self.on_predict(1, len(next(iter(features.values()), [])))
        return out

    async def models_version(self) -> str:
        return str((await asyncio.to_thread(self.models.state)).get("models_version", ""))
