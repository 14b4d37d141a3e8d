"""The ingress deployment: the FastAPI app of `api.main`, over DeploymentHandles.

The handles to the indicator, alpha and watcher deployments are injected through `__init__` (the app
builder binds them); `__serve_build_asgi_app__` then builds the app around a `ServeBackend`,
so the routes are exactly the ones tests run in-process. The ingress reads only the store's
manifest and universe table; prices stay on the indicator replicas.

Scans and watches run their evaluate and predict steps through `ServeExecutor`
(deployments/executor.py): a call whose replica died is sent again (`retrying`), as are the
idempotent explain calls here; any other error is the request's own and goes to the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from deployments.api.main import create_app
from deployments.api.work import wait_cancellable
from deployments.executor import ServeExecutor, retrying
from technic_v4.cancel import CancelToken
from technic_v4.data.reader import StoreReader
from technic_v4.data.store_fs import data_root
from technic_v4.scan import ScanConfig
from technic_v4.scan.run import Report
from technic_v4.screens.cost import Budget
from technic_v4.screens.saved import ScreenStore
from technic_v4.service.backend import ScanBackend
from technic_v4.settings import Settings
from technic_v4.validate import ValidateOptions, ValidationReport

READY_TIMEOUT_S = 3.0


class RemoteWatches:
    """The Watcher deployment's methods as the routes call them (WatchService's shape); an
    error raised there is raised here as itself (a ConfigError stays a 422)."""

    def __init__(self, handle: DeploymentHandle):
        self.handle = handle

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await getattr(self.handle, name).remote(*args, **kwargs)
            except RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, Exception) else exc) from None

        return call


class ServeBackend(ScanBackend):
    """ScanBackend whose chunks run on the indicator replicas and the alpha replica; this
    process reads only the store's manifest, universe and sessions (snapshots)."""

    def __init__(self, indicators: DeploymentHandle, alpha: DeploymentHandle, data_dir: str,
                 models_dir: str | None, chunk_size: int,
                 watcher: DeploymentHandle | None = None, budget: Budget | None = None,
                 screens: ScreenStore | None = None):
        super().__init__(StoreReader(data_dir, auto_demo=False),
                         ServeExecutor(indicators, alpha), models_dir, chunk_size,
                         screens=screens, budget=budget)
        self.indicators, self.alpha = indicators, alpha
        self.watches = RemoteWatches(watcher) if watcher is not None else None

    async def symbol(self, symbol: str, days: int) -> dict[str, Any]:
        return await self.indicators.history.remote(symbol, days)

    async def _explain_indicators(self, symbol: str, as_of: str | None) -> dict[str, Any]:
        return await retrying(lambda: self.indicators.explain.remote(symbol, as_of),
                              "Indicators.explain")

    async def _explain_alpha(self, features: dict[str, float]) -> dict[str, Any]:
        return await retrying(lambda: self.alpha.explain.remote(features), "AlphaModel.explain")

    async def _regimes(self, benchmark: str | None, start: str | None, end: str | None
                       ) -> dict[str, Any]:
        return await retrying(lambda: self.indicators.regimes.remote(benchmark, start, end),
                              "Indicators.regimes")

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

    async def model_state(self) -> dict[str, Any]:
        return await self.alpha.describe.remote()

    async def stats(self) -> dict[str, Any]:
        out = {"alpha": await self.alpha.stats.remote(), "chunk_size": self.chunk_size}
        if self.watches is not None:
            out["watches"] = await self.watches.stats()
        return out

    async def _validate(self, cfg: ScanConfig, options: ValidateOptions,
                        report: Report | None = None, cancel_token: CancelToken | None = None
                        ) -> ValidationReport:
        """On an Indicators replica: it holds the store's history (the chart window). A
        cancelled token cancels the remote call, which sets the replica's own token."""
        if report is not None:
            report("replay", 0, 1)
        call = self.indicators.validate.remote(cfg, options, self.budget)
        out = await wait_cancellable(call, call.cancel, cancel_token)
        if report is not None:
            report("replay", 1, 1)
        return out


@serve.deployment(max_ongoing_requests=372, ray_actor_options={"num_cpus": 0.25})
@serve.ingress()
class Ingress:
    def __init__(self, indicators: DeploymentHandle, alpha: DeploymentHandle, data_dir: str,
                 models_dir: str | None, chunk_size: int,
                 watcher: DeploymentHandle | None = None):
        self.settings = Settings()
        screens = ScreenStore.for_data_dir(data_root(data_dir), self.settings.state_dir)
        self.backend = ServeBackend(indicators, alpha, data_dir, models_dir, chunk_size,
                                    watcher, self.settings.screen_budget(), screens)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.backend, settings=self.settings)
