"""The engine's Executor on Ray Serve: evaluate on the Indicators replicas, predict and the
models version on the AlphaModel replicas (technic_v4/scan/executor.py has the protocol).

Faults: `evaluate` and `predict` are pure functions of their arguments (idempotent), so a call
that fails because its replica died (`RayActorError` and subclasses, Serve's
`ReplicaUnavailableError`) is sent again, up to RETRIES more times with a short backoff; the
handle routes the retry to a live replica, or waits for Serve's replacement (tests/test_faults.py).
Any other error is the request's own and goes straight to the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import numpy as np
from ray.exceptions import RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from technic_v4.alpha.inference import Forecast
from technic_v4.scan import Block, WindowSpec

RETRIES = 3               # extra attempts of an idempotent call whose replica died
BACKOFF_S = 0.2           # first wait before a retry; doubled each time (0.2, 0.4, 0.8 s)
REPLICA_DIED = (RayActorError, ReplicaUnavailableError)
T = TypeVar("T")
log = logging.getLogger("ray.serve")


async def retrying(call: Callable[[], Awaitable[T]], what: str, retries: int = RETRIES,
                   backoff_s: float = BACKOFF_S) -> T:
    """`await call()`, again after a replica death, at most `retries` more times."""
    for attempt in range(retries + 1):
        try:
            return await call()
        except REPLICA_DIED as exc:
            if attempt == retries:
                raise
            log.warning("technic: %s failed (%s: replica died); retry %d of %d", what,
                        type(exc).__name__, attempt + 1, retries)
            await asyncio.sleep(backoff_s * 2 ** attempt)
    raise AssertionError("unreachable")


class ServeExecutor:
    """The Executor over the Indicators and AlphaModel deployments' handles (module
    docstring); used by the ingress's backend and by the Watcher deployment."""

    def __init__(self, indicators: DeploymentHandle, alpha: DeploymentHandle):
        self.indicators, self.alpha = indicators, alpha

    async def evaluate(self, symbols: list[str], spec: WindowSpec, data_version: str
                       ) -> Block:
        return await retrying(
            lambda: self.indicators.evaluate.remote(symbols, spec, data_version),
            "Indicators.evaluate")

    async def predict(self, features: Mapping[str, np.ndarray]) -> Forecast:
        return await retrying(lambda: self.alpha.predict.remote(features), "AlphaModel.predict")

    async def models_version(self) -> str:
        return await retrying(lambda: self.alpha.version.remote(), "AlphaModel.version")
