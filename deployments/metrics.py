"""technic's own metrics, in Prometheus form, with or without Ray.

Every metric is recorded twice, by one call:
 1. into this process's `prometheus_client` registry (`REGISTRY`), which `GET /metrics`
    serves as Prometheus text (deployments/api/routers/health.py); this is the whole story
    for the in-process app (`uvicorn --factory deployments.api.main:local_app`);
 2. inside a Ray Serve replica (the ingress, an alpha replica), also into a
    `ray.serve.metrics` Counter/Histogram, created lazily on first use there. Ray exports
    those, tagged with deployment/replica/application and prefixed `ray_`, next to Serve's
    own metrics (`ray_serve_*`: requests, errors, latency, queue lengths, replicas) on each
    node's metrics export port: `ray start --head --metrics-export-port=8080` (or
    `ray.init(_metrics_export_port=8080)`), scraped at http://<node>:8080/metrics. Under
    Serve that endpoint is the source of truth: `/metrics` on the ingress only shows the
    replica that answered.

| metric (Ray: ray_ prefix)         | type      | tags   | recorded by                 |
|-----------------------------------|-----------|--------|-----------------------------|
| technic_scans_total               | counter   | -      | every finished scan         |
| technic_scan_stage_seconds        | histogram | stage  | ScanStatus.timings_ms       |
| technic_scan_symbols_total        | counter   | outcome| attempted/kept/rejected/errors |
| technic_scan_rejects_total        | counter   | reason | ScanStatus.rejected_by_reason |
| technic_cache_lookups_total       | counter   | result | hit / shared / miss         |
| technic_cache_hit_rate            | gauge     | -      | (hits+shared) / lookups     |
| technic_alpha_batch_requests      | histogram | -      | requests per model call     |
| technic_alpha_batch_rows          | histogram | -      | feature rows per model call |
| technic_data_update_ok            | gauge     | -      | last data update: 1 ok, 0 not |
Stages are the keys of `timings_ms`: plan (universe selection, the "load" stage), indicators
(indicators + checks + scores, on the replicas), alpha, rank, total.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # Ray histogram boundaries must be > 0
ROW_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000)

# (name, description, kind, tag keys, buckets)
SPECS: dict[str, tuple[str, str, tuple[str, ...], tuple[float, ...]]] = {
    "technic_scans_total": ("Finished scans", "counter", (), ()),
    "technic_scan_stage_seconds": ("Scan latency by stage (ScanStatus.timings_ms)",
                                   "histogram", ("stage",), STAGE_BUCKETS),
    "technic_scan_symbols_total": ("Symbols per outcome", "counter", ("outcome",), ()),
    "technic_scan_rejects_total": ("Rejected symbols by reason", "counter", ("reason",), ()),
    "technic_cache_lookups_total": ("Result-cache lookups by result", "counter",
                                    ("result",), ()),
    "technic_cache_hit_rate": ("(hits + shared) / lookups of this process's result cache",
                               "gauge", (), ()),
    "technic_alpha_batch_requests": ("Requests per alpha model call", "histogram", (),
                                     BATCH_BUCKETS),
    "technic_alpha_batch_rows": ("Feature rows per alpha model call", "histogram", (),
                                 ROW_BUCKETS),
    "technic_data_update_ok": ("The last data update succeeded (1) or failed (0)", "gauge",
                               (), ()),
}


def _prom(name: str) -> Any:
    desc, kind, tags, buckets = SPECS[name]
    # prometheus_client appends _total to counters itself
    if kind == "counter":
        return Counter(name.removesuffix("_total"), desc, tags, registry=REGISTRY)
    if kind == "gauge":
        return Gauge(name, desc, tags, registry=REGISTRY)
    return Histogram(name, desc, tags, buckets=buckets, registry=REGISTRY)


_PROM = {name: _prom(name) for name in SPECS}
_RAY: dict[str, Any] | None = None
_RAY_LOCK = threading.Lock()


def _ray_metrics() -> dict[str, Any]:
    """This replica's ray.serve.metrics objects; {} outside a Serve replica."""
    global _RAY
    if _RAY is not None:
        return _RAY
    try:
        from ray.serve import context, metrics
    except ImportError:  # pragma: no cover - ray is a dependency
        return {}
    if context._get_internal_replica_context() is None:
        return {}  # not in a replica (tests, the in-process app): try again next time
    with _RAY_LOCK:
        if _RAY is None:
            made: dict[str, Any] = {}
            for name, (desc, kind, tags, buckets) in SPECS.items():
                if kind == "counter":  # Ray's exporter adds _total, like prometheus_client
                    made[name] = metrics.Counter(name.removesuffix("_total"), desc,
                                                 tag_keys=tags or None)
                elif kind == "gauge":
                    made[name] = metrics.Gauge(name, desc, tag_keys=tags or None)
                else:
                    made[name] = metrics.Histogram(name, desc, list(buckets),
                                                   tag_keys=tags or None)
            _RAY = made
    return _RAY


def _record(name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
    kind = SPECS[name][1]
    prom = _PROM[name].labels(**tags) if tags else _PROM[name]
    if kind == "counter":
        prom.inc(value)
    elif kind == "gauge":
        prom.set(value)
    else:
        prom.observe(value)
    ray_metric = _ray_metrics().get(name)
    if ray_metric is not None:
        tag_dict = dict(tags) if tags else None
        if kind == "counter":
            ray_metric.inc(value, tags=tag_dict)
        elif kind == "gauge":
            ray_metric.set(value, tags=tag_dict)
        else:
            ray_metric.observe(value, tags=tag_dict)


def observe_scan(status: Any) -> None:
    """A finished scan's ScanStatus: stage latencies, symbol outcomes, rejects by reason."""
    _record("technic_scans_total", 1)
    for stage, ms in (getattr(status, "timings_ms", None) or {}).items():
        _record("technic_scan_stage_seconds", float(ms) / 1000.0, {"stage": str(stage)})
    for outcome in ("attempted", "kept", "rejected", "errors"):
        n = int(getattr(status, outcome, 0) or 0)
        if n:
            _record("technic_scan_symbols_total", n, {"outcome": outcome})
    for reason, n in (getattr(status, "rejected_by_reason", None) or {}).items():
        if n:
            _record("technic_scan_rejects_total", int(n), {"reason": str(reason)})


def observe_cache(result: str, hit_rate: float) -> None:
    """One result-cache lookup (hit | shared | miss) and the cache's hit rate after it."""
    _record("technic_cache_lookups_total", 1, {"result": result})
    _record("technic_cache_hit_rate", hit_rate)


def observe_batch(requests: int, rows: int) -> None:
    """One alpha model call carrying `requests` requests and `rows` feature rows."""
    _record("technic_alpha_batch_requests", requests)
    _record("technic_alpha_batch_rows", rows)


def observe_update(ok: bool) -> None:
    """The last `data update`'s outcome (providers/update.json), as read at a scrape."""
    _record("technic_data_update_ok", 1.0 if ok else 0.0)


def render() -> tuple[bytes, str]:
    """(body, content type) of this process's metrics in Prometheus text format."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
