"""`create_app(scanner)`: the technic HTTP API over any ScanBackend, with or without Ray.

The Serve ingress calls it with a backend over DeploymentHandles; tests and a laptop call it
with `InProcessBackend` and run it under TestClient or uvicorn
(`uvicorn --factory deployments.api.main:local_app`).
"""

from __future__ import annotations

from fastapi import FastAPI

from deployments import metrics
from deployments.api import errors
from deployments.api.cache import ResultCache
from deployments.api.dependencies import install_auth
from deployments.api.limits import BodyLimit, document
from deployments.api.responses import MetaHeaders
from deployments.api.routers import (
    explain,
    health,
    models,
    page,
    regimes,
    scan,
    screens,
    symbols,
    universe,
    validate,
    watches,
)
from deployments.api.work import Slots
from technic_v4 import __version__
from technic_v4.data.providers.schedule import attach_updater
from technic_v4.errors import ConfigError
from technic_v4.screens.saved import ScreenStore
from technic_v4.service.backend import ScanBackend
from technic_v4.service.inprocess import InProcessBackend
from technic_v4.settings import Settings
from technic_v4.watch.clock import SYSTEM
from technic_v4.watch.deliver import Policy

DESCRIPTION = """\
Scan a universe of US equities by technical state and ML forecasts.

Every response carries `X-Technic-Data-Version`, `X-Technic-Source` (`synthetic` for the demo
market), `X-Technic-As-Of` and `X-Technic-Elapsed-Ms`; JSON bodies repeat them under `meta`.
When the server has API keys configured, /v1 routes need an `X-API-Key` header (401 without
it; 429 with `Retry-After` over the key's rate limit); otherwise the API is open. Request
bodies are limited to 64 KiB (413). Invalid input is a 422 naming the field and, where it is
an enumeration, the valid values.
"""


def create_app(scanner: ScanBackend, *, api_keys: tuple[str, ...] | None = None,
               admin_keys: tuple[str, ...] = (), cache: ResultCache | None = None,
               settings: Settings | None = None) -> FastAPI:
    """The app over `scanner`. `settings` (default: read from the environment, once, here)
    give the API keys (unless `api_keys`, plain, are passed, with `admin_keys`), the rate
    limit, the body limit and the shared cache (technic_v4/settings.py)."""
    settings = settings or Settings()
    app = FastAPI(title="technic", version=__version__, description=DESCRIPTION,
                  openapi_tags=[{"name": "scan"}, {"name": "screens"}, {"name": "validate"},
                                {"name": "watches"}, {"name": "universe"}, {"name": "symbols"},
                                {"name": "models"},
                                {"name": "health"}])
    app.state.backend = scanner
    scanner.observe(metrics.observe_scan, metrics.observe_batch)
    app.state.cache = cache or ResultCache.from_settings(settings)  # REDIS_URL: cache.py
    install_auth(app, settings, api_keys, admin_keys)
    app.state.heavy = Slots.heavy(settings, scanner.release_idle)  # heavy requests: work.py
    app.state.streams = Slots.streams(settings)  # /v1/events, apart from the API's
    for router in (scan.router, validate.router, universe.router, symbols.router,
                   explain.router, models.router, health.router, regimes.router):
        app.include_router(router)
    app.include_router(screens.router)  # /v1/screens, /v1/screen/columns: saved screens
    app.include_router(watches.router)  # /v1/watches, /v1/events: watches and their stream
    app.include_router(page.router)  # GET /: the scan page (deployments/web/)
    errors.install(app)
    document(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetaHeaders, backend=scanner)
    return app


def local_app() -> FastAPI:
    """The API without Ray, on $TECHNIC_DATA_DIR and the default models (uvicorn --factory),
    with the watcher loop running (watches evaluated and delivered as under Serve)."""
    settings = Settings()
    data = settings.data_root()
    backend = InProcessBackend(data, settings.models_root(), budget=settings.screen_budget(),
                               screens=ScreenStore.for_data_dir(data, settings.state_dir),
                               policy=Policy.from_settings(settings),
                               block_sessions=settings.validate_block_sessions,
                               memory_mb=settings.validate_memory_mb)
    try:  # TECHNIC_UPDATE_AT: the data update after each close, before the watches' tick
        attach_updater(backend.watches, data, settings, SYSTEM)
    except ValueError as exc:
        raise ConfigError("update_at", str(exc)) from None
    backend.start_watcher(settings.watch_poll_s)
    return create_app(backend, settings=settings)
