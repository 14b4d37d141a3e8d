"""Executor: where the engine's two heavy steps run, behind one protocol.

`execute` (run.py), `execute_many` (many.py) and the watch service need three things placed
somewhere: `evaluate` (the indicators of some symbols, evaluate.py), `predict` (the alpha
forecasts of feature rows) and `models_version` (which models would answer, for cache keys).
`LocalExecutor` runs them in this process over a reader and a ModelSet; a deployment supplies
its own (handles to replicas, retries) with the same three methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from technic_v4.alpha.inference import Forecast, ModelSet
from technic_v4.scan.evaluate import Block, WindowSpec, evaluate_chunk


class Executor(Protocol):
    """The engine's placement of its evaluate and predict steps (module docstring)."""

    async def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str
                       ) -> Block: ...

    async def predict(self, features: Mapping[str, np.ndarray]) -> Forecast: ...

    async def models_version(self) -> str: ...


class LocalExecutor:
    """Evaluate and predict in this process: `reader` a StoreReader or PanelSource."""

    def __init__(self, reader: Any, models: ModelSet):
        self.reader, self.models = reader, models

    async def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str
                       ) -> Block:
        return evaluate_chunk(self.reader, symbols, spec, data_version)

    async def predict(self, features: Mapping[str, np.ndarray]) -> Forecast:
        return self.models.predict(features)

    async def models_version(self) -> str:
        return str(self.models.state().get("models_version", ""))
