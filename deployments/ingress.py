"""The ingress deployment: the FastAPI app of `api.main`, over DeploymentHandles.

The handles to the indicator and alpha deployments are injected through `__init__` (the app
builder binds them); `__serve_build_asgi_app__` then builds the app around a `ServeBackend`,
so the routes are exactly the ones tests run in-process. The ingress reads only the store's
manifest and universe table; prices stay on the indicator replicas.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.api.backend import ChunkedBackend, model_metadata
from deployments.api.main import create_app
from deployments.pipeline import Features, UnknownSymbolError
from technic_v4.scanner_core import RowBlock

READY_TIMEOUT_S = 3.0


class ServeBackend(ChunkedBackend):
    """ScanBackend whose chunks run on the indicator replicas and the alpha replica."""

    def __init__(self, indicators: DeploymentHandle, alpha: DeploymentHandle, data_dir: str,
                 models_dir: str | None, chunk_size: int):
        super().__init__(data_dir, models_dir, chunk_size)
        self.indicators, self.alpha = indicators, alpha

    async def _evaluate(self, symbols: list[str], config: dict[str, Any]) -> RowBlock:
        return await self.indicators.evaluate.remote(symbols, config)

    async def _predict(self, features: Features) -> dict[str, Any]:
        return await self.alpha.predict.remote(features)

    async def symbol(self, symbol: str, days: int) -> dict[str, Any]:
        out = await self.indicators.history.remote(symbol, days)
        if "unknown" in out:
            raise UnknownSymbolError(out["unknown"])
        return out

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        for name, handle in (("panel", self.indicators), ("models", self.alpha)):
            try:
                checks[name] = await asyncio.wait_for(handle.ready.remote(), READY_TIMEOUT_S)
            except Exception as exc:  # no replica up yet, or it failed: not ready, say why
                why = str(exc)[:500] or f"no answer within {READY_TIMEOUT_S} s (still loading?)"
                checks[name] = {"error": f"{type(exc).__name__}: {why}"}
        ready = bool(checks["panel"].get("loaded")) and bool(checks["models"].get("checked"))
        return {"ready": ready, "checks": checks}

    async def models(self) -> dict[str, Any]:
        state = await self.alpha.describe.remote()
        return {"state": state, "metadata": model_metadata(self.models_dir)}

    async def stats(self) -> dict[str, Any]:
        return {"alpha": await self.alpha.stats.remote(), "chunk_size": self.chunk_size}


@serve.deployment(max_ongoing_requests=100, ray_actor_options={"num_cpus": 0.25})
@serve.ingress()
class Ingress:
    def __init__(self, indicators: DeploymentHandle, alpha: DeploymentHandle, data_dir: str,
                 models_dir: str | None, chunk_size: int):
        self.backend = ServeBackend(indicators, alpha, data_dir, models_dir, chunk_size)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.backend)
