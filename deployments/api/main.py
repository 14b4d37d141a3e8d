"""`create_app(scanner)`: the technic HTTP API over any ScanBackend, with or without Ray.

The Serve ingress calls it with a backend over DeploymentHandles; tests and a laptop call it
with `InProcessBackend` and run it under TestClient or uvicorn
(`uvicorn --factory deployments.api.main:local_app`).
"""

from __future__ import annotations

from fastapi import FastAPI

from deployments.api import errors
from deployments.api.backend import InProcessBackend, ScanBackend
from deployments.api.cache import ResultCache
from deployments.api.dependencies import install_auth
from deployments.api.limits import BodyLimit, document
from deployments.api.responses import MetaHeaders
from deployments.api.routers import health, models, page, scan, symbols, universe
from technic_v4 import __version__

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
               cache: ResultCache | None = None) -> FastAPI:
    """The app over `scanner`; `api_keys` (plain) default to the env (deployments/api/keys.py)."""
    app = FastAPI(title="technic", version=__version__, description=DESCRIPTION,
                  openapi_tags=[{"name": "scan"}, {"name": "universe"}, {"name": "symbols"},
                                {"name": "models"}, {"name": "health"}])
    app.state.backend = scanner
    app.state.cache = cache or ResultCache.from_env()  # REDIS_URL: shared (cache.py)
    install_auth(app, api_keys)
    for router in (scan.router, universe.router, symbols.router, models.router, health.router):
        app.include_router(router)
    app.include_router(page.router)  # GET /: the scan page (deployments/web/)
    errors.install(app)
    document(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(MetaHeaders, backend=scanner)
    return app


def local_app() -> FastAPI:
    """The API without Ray, on $TECHNIC_DATA_DIR and the default models (uvicorn --factory)."""
    return create_app(InProcessBackend())
