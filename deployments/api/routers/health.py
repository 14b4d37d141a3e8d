"""Liveness, readiness and counters.

/healthz: the process answers (Render's health check; no data needed, no key).
/readyz:  200 only when the store is readable (`checks.store`), the scan window is in memory
          on the indicator replicas and the alpha models were loaded and checked (available,
          or explicitly unavailable with the reason); 503 + Retry-After with what is missing
          otherwise (a store deleted or corrupted while running included). No key, for load
          balancers.
          `checks.cache` is {backend: memory|redis, status: ok|degraded}: a degraded shared
          cache (Redis down) never makes the service unready, since scans still run uncached.
          `checks.rate_limit.mode` is off, local (per replica), shared (Redis), or
          `local (redis degraded: <error>)` while requests fall back to per-replica buckets
          (keys.py, redis_limiter.py); also never a reason to be unready.
/v1/stats: result-cache counters (backend, hits, misses, errors, hit_rate), the rate limiter
          (mode, limit, rejected, fallbacks), the failed-key limiter (`auth_failures`: limit,
          rejected, addresses tracked), the heavy-request and event-stream slots (`heavy`,
          `event_streams`: running, rejected, cancelled; deployments/api/work.py) and the alpha
          model's batch counters (needs the key).
/metrics: this process's technic metrics in Prometheus text format (deployments/metrics.py;
          needs the key when keys are configured; not in the OpenAPI schema, like most
          scrape endpoints). Under Ray Serve, scrape Ray's metrics
          export port instead: it has every replica's technic_* and Serve's own metrics.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from deployments import metrics
from deployments.api.dependencies import APIKey, Backend, Cache, RateLimit, rate_limit_stats
from deployments.api.responses import JSONBody
from deployments.api.schemas import Readiness
from technic_v4 import __version__
from technic_v4.data.store_fs import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONBody:
    """The server is up (says nothing about data; see /readyz)."""
    return JSONBody({"status": "ok", "version": __version__})


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Still loading"}})
async def readyz(backend: Backend, cache: Cache, limiter: RateLimit) -> JSONBody:
    """Ready to scan: the store is readable, the Panel is loaded and the models are checked."""
    state = await backend.readiness()
    try:
        snap = await asyncio.to_thread(backend.snapshot)
        store: dict[str, object] = {"readable": True, "data_version": snap.data_version}
    except StoreError as exc:
        store = {"readable": False, "error": f"the price store cannot be read: {exc}"}
    # Ping (or probe) Redis first: the limiter shares the cache's store, so its mode is fresh.
    cache_check = await cache.health()
    checks = {**state["checks"], "store": store, "cache": cache_check,
              "rate_limit": rate_limit_stats(limiter)}
    update = _last_update(backend)
    if update is not None:  # a failed data update is shown, not hidden (the store still scans)
        checks["update"] = update
    ready = bool(state["ready"]) and bool(store["readable"])
    state = {**state, "ready": ready, "checks": checks}
    return JSONBody(state, status_code=200 if ready else 503,
                    headers=None if ready else {"Retry-After": "5"})


@router.get("/v1/stats", dependencies=[APIKey])
async def stats(request: Request, backend: Backend, cache: Cache, limiter: RateLimit
                ) -> JSONBody:
    """Result-cache hits/misses, rate-limit mode and fallbacks, the alpha batch sizes."""
    failures = getattr(request.app.state, "auth_failures", None)
    return JSONBody({"cache": cache.stats(), "rate_limit": rate_limit_stats(limiter),
                     "auth_failures": rate_limit_stats(failures),
                     "heavy": request.app.state.heavy.stats(),
                     "event_streams": request.app.state.streams.stats(),
                     **await backend.stats()})


@router.get("/metrics", dependencies=[APIKey], include_in_schema=False)
async def prometheus_metrics(backend: Backend) -> Response:
    """Scan latency by stage, rejects by reason, cache hit rate, alpha batch sizes, the last
    data update's outcome."""
    update = _last_update(backend)
    if update is not None:
        metrics.observe_update(bool(update["ok"]))
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


def _last_update(backend: Any) -> dict[str, Any] | None:
    """The last `data update`'s outcome (providers/update.json) when the data dir is local."""
    from pathlib import Path

    from technic_v4.data.providers.base import read_status

    root = getattr(getattr(backend, "reader", None), "data_dir", None)
    if not isinstance(root, Path):
        return None
    status = read_status(root)
    if status is None:
        return None
    return {k: status.get(k) for k in ("ok", "at", "provider", "error", "appended")}
