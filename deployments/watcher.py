"""The Watcher deployment: one replica that owns the watch outbox (technic_v4/watch/).

Why one: evaluation and delivery are idempotent (evaluations and event ids are unique in the
store, deliveries are leased), so two replicas would be safe, but one replica keeps a single
deliverer per target (one circuit breaker's view, no lease contention) and one poll of the
store. Its loop (`WatchService.run`, started as a task on the replica's event loop) notices a
new data version (the store's manifest, `StoreReader.snapshot()`), evaluates every watch on
each new session through the Indicators and AlphaModel replicas (handles injected by the app
builder: `ServeExecutor`, deployments/executor.py, as the ingress's), and delivers. The ingress
reads and changes watches through this deployment's handle (`RemoteWatches` in ingress.py);
the store is technic.sqlite beside the data, so `technic watch ...` on the same machine sees
the same watches (the routes pass each caller's `scope`, technic_v4/tenancy.py: a key sees
its own watches and events). If the replica dies, Serve starts another: leases its
predecessor held are freed at once (same host, process gone) and what was not acknowledged
is sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.executor import ServeExecutor
from technic_v4.data.reader import StoreReader
from technic_v4.scan.run import Evaluations
from technic_v4.screens.saved import ScreenStore
from technic_v4.settings import Settings
from technic_v4.tenancy import OPEN, Scope
from technic_v4.watch.deliver import Policy
from technic_v4.watch.evaluate import Engine
from technic_v4.watch.model import WatchSpec
from technic_v4.watch.service import WatchService
from technic_v4.watch.store import SqliteWatchStore

log = logging.getLogger("ray.serve")


@serve.deployment(num_replicas=1, max_ongoing_requests=32, ray_actor_options={"num_cpus": 0.25})
class Watcher:
    async def __init__(self, indicators: DeploymentHandle, alpha: DeploymentHandle,
                       data_dir: str, models_dir: str | None, chunk_size: int,
                       poll_s: float | None = None):
        settings = Settings()
        reader = StoreReader(data_dir, auto_demo=False)
        screens = ScreenStore.for_data_dir(reader.data_dir, settings.state_dir)
        engine = Engine(ServeExecutor(indicators, alpha), screens, chunk_size, Evaluations(2),
                        settings.screen_budget())
        self.service = WatchService(SqliteWatchStore.for_data_dir(reader.data_dir,
                                                                  settings.state_dir),
                                    reader.snapshot, engine, Policy.from_settings(settings))
        from technic_v4.data.providers.schedule import attach_updater
        from technic_v4.watch.clock import SYSTEM

        attach_updater(self.service, reader.data_dir, settings, SYSTEM)  # TECHNIC_UPDATE_AT
        self.poll_s = poll_s or settings.watch_poll_s
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop().create_task(
            self.service.run(self.poll_s, self._stop))
        log.info("technic watcher: polling %s every %.1f s", reader.data_dir, self.poll_s)

    async def create(self, spec: WatchSpec, scope: Scope = OPEN) -> dict[str, Any]:
        return await self.service.create(spec, scope)

    async def list(self, scope: Scope = OPEN) -> list[dict[str, Any]]:
        return await self.service.list(scope)

    async def get(self, name: str, scope: Scope = OPEN) -> dict[str, Any]:
        return await self.service.get(name, scope)

    async def remove(self, name: str, scope: Scope = OPEN) -> None:
        await self.service.remove(name, scope)

    async def test(self, name: str, scope: Scope = OPEN) -> list[dict[str, Any]]:
        return await self.service.test(name, scope)

    async def redeliver(self, name: str, ids: Sequence[int] | None = None,
                        scope: Scope = OPEN) -> int:
        n = await self.service.redeliver(name, ids, scope)
        self._wake()
        return n

    async def events(self, after: int = 0, limit: int = 100, watch: str | None = None,
                     scope: Scope = OPEN) -> list[tuple[int, dict[str, Any]]]:
        return await self.service.events(after, limit, watch, scope)

    async def last_seq(self, scope: Scope = OPEN) -> int:
        return await self.service.last_seq(scope)

    async def status(self, name: str | None = None, scope: Scope = OPEN) -> dict[str, Any]:
        return await self.service.status(name, scope)

    async def stats(self) -> dict[str, Any]:
        return {**self.service.stats(), "running": not self._loop.done(),
                "poll_s": self.poll_s}

    def _wake(self) -> None:
        """Deliver what was just made due without waiting for the next poll."""
        asyncio.get_running_loop().create_task(self.service.deliverer.run_until_idle())
