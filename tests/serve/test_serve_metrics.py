"""Serve's and technic's metrics scraped end to end from Ray's per-node Prometheus endpoint.

1. Start the real app (`running_app`) with `ray.init(_metrics_export_port=PORT)`. Nothing else
   is needed in Ray 2.60: the raylet starts the per-node dashboard agent (its metrics agent)
   even with `include_dashboard=False`, and that agent serves http://127.0.0.1:PORT/metrics.
2. Make N uncached scans over HTTP, then one cached repeat of the last.
3. Poll the endpoint (Ray exports on a report interval, so a metric appears seconds after it
   is recorded) until every expectation below holds or DEADLINE_S passes; parse each scrape
   with prometheus_client's text parser, never regexes. On timeout the assertion names the
   expectations still unmet, with the values last seen.
Expected (N = SCANS): Serve's `ray_serve_num_http_requests_total` (POST /v1/scan, 200) and the
Ingress's `ray_serve_deployment_request_counter_total` >= N + 1, the Indicators' >= 4 (the
first scan's chunks; later scans reuse its evaluation); our `ray_technic_scans_total`
exactly N (the cached answer is not a scan) and one cache hit; `ray_technic_scan_stage_seconds`
with a bucket series per stage and `total` counting N scans; the alpha batch histograms on the
AlphaModel replica. Every technic series carries application/deployment/replica tags naming a
live replica. Histogram `_sum`s are not compared: Ray 2.60 rebuilds them from bucket midpoints
(ray/_private/telemetry/open_telemetry_metric_recorder.py), so they are approximate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from serve_support import metrics_port, running_app

from deployments.metrics import STAGE_BUCKETS

ray = pytest.importorskip("ray")
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
APP = "technic-metrics"  # its own name: the Ray session (and its counters) may be shared
SCANS = 6
DEADLINE_S = 600.0  # a hang guard: how soon the exports catch up is printed, not bounded
STAGES = {"load", "indicators", "score", "alpha", "rank", "total"}


def scrape(url: str) -> list[Sample]:
    """Every sample of one scrape of `url` (Prometheus text), parsed by prometheus_client."""
    text = httpx.get(url, timeout=10).text
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def matching(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of `name` over every series whose labels include `labels` (e.g. all replicas)."""
    return sum(s.value for s in matching(samples, name, **labels))


def live_replicas(deployment: str) -> set[str]:
    """Replica ids of `deployment`, from the actor names SERVE_REPLICA::app#deployment#id."""
    prefix = f"SERVE_REPLICA::{APP}#{deployment}#"
    return {a["name"].removeprefix(prefix) for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(prefix)}


def expectations(n: int) -> dict[str, Callable[[list[Sample]], object]]:
    """name -> check(samples); a check returns True when met, anything else is what it saw."""
    scan = {"application": APP, "route": "/v1/scan"}
    ingress = {"application": APP, "deployment": "Ingress"}

    def at_least(name: str, want: float, **labels: str):
        return lambda s: total(s, name, **labels) >= want or total(s, name, **labels)

    def stage_histogram(s: list[Sample]) -> object:
        buckets = matching(s, "ray_technic_scan_stage_seconds_bucket", **ingress)
        stages = {b.labels["stage"] for b in buckets}
        count = total(s, "ray_technic_scan_stage_seconds_count", stage="total", **ingress)
        return (STAGES <= stages and count == n) or {"stages": sorted(stages), "count": count}

    return {
        "serve http requests": at_least("ray_serve_num_http_requests_total", n + 1,
                                        method="POST", status_code="200", **scan),
        "serve ingress requests": at_least("ray_serve_deployment_request_counter_total", n + 1,
                                           deployment="Ingress", **scan),
        # the first scan evaluates the universe (500 symbols, 4 chunks of 128) on the
        # Indicators replicas; later ones screen that kept evaluation (same data version)
        "serve indicator requests": at_least("ray_serve_deployment_request_counter_total", 4,
                                             deployment="Indicators", **scan),
        "technic scans": at_least("ray_technic_scans_total", n, **ingress),
        "technic cache hit": at_least("ray_technic_cache_lookups_total", 1, result="hit",
                                      **ingress),
        "technic stage histogram": stage_histogram,
        "serve batch size": at_least("ray_serve_actual_batch_size_count", 1, application=APP,
                                     deployment="AlphaModel", function_name="predict"),
        "technic batch requests": at_least("ray_technic_alpha_batch_requests_count", 1,
                                           application=APP, deployment="AlphaModel"),
        "technic batch rows": at_least("ray_technic_alpha_batch_rows_count", 1,
                                       application=APP, deployment="AlphaModel"),
    }


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("metrics"), ENV, APP, chunk_size=128) as a:
        yield {**a, "metrics": f"http://127.0.0.1:{metrics_port()}/metrics"}


def test_serve_and_technic_metrics_are_scraped(app):
    with httpx.Client(base_url=app["url"], timeout=90) as c:
        for i in range(SCANS):
            r = c.post("/v1/scan", json={"limit": 5 + i},
                       headers={"Cache-Control": "no-cache"})
            assert r.status_code == 200, r.text[:300]
        assert c.post("/v1/scan", json={"limit": 5 + SCANS - 1}).status_code == 200
    t_done = time.monotonic()

    checks = expectations(SCANS)
    unmet: dict[str, object] = {}
    while True:
        try:
            samples = scrape(app["metrics"])
        except httpx.HTTPError as exc:  # the agent may still be binding its port
            samples, unmet = [], {"scrape": repr(exc)}
        else:
            unmet = {name: seen for name, check in checks.items()
                     if (seen := check(samples)) is not True}
        if not unmet or time.monotonic() - t_done > DEADLINE_S:
            break
        time.sleep(1)
    latency = round(time.monotonic() - t_done, 1)
    print(f"\nall expected metrics scraped {latency} s after the last scan")
    assert not unmet, f"after {latency} s still unmet: {unmet}"

    # exact, now that the exports have caught up: the cached answer was not a scan
    ingress = {"application": APP, "deployment": "Ingress"}
    assert total(samples, "ray_technic_scans_total", **ingress) == SCANS
    # every technic series is tagged with a live replica of the deployment that recorded it
    for name, deployment in [("ray_technic_scans_total", "Ingress"),
                             ("ray_technic_scan_stage_seconds_bucket", "Ingress"),
                             ("ray_technic_alpha_batch_requests_bucket", "AlphaModel")]:
        series = matching(samples, name, application=APP, deployment=deployment)
        assert series and {s.labels["replica"] for s in series} <= live_replicas(deployment)
    # the stage histogram: our bucket bounds, cumulative counts, +Inf bucket == _count
    for stage in STAGES:
        buckets = matching(samples, "ray_technic_scan_stage_seconds_bucket", stage=stage,
                           **ingress)
        bounds = sorted((float(b.labels["le"]), b.value) for b in buckets)
        assert [le for le, _ in bounds] == [*STAGE_BUCKETS, float("inf")], stage
        counts = [v for _, v in bounds]
        assert counts == sorted(counts), (stage, counts)
        assert counts[-1] == total(samples, "ray_technic_scan_stage_seconds_count",
                                   stage=stage, **ingress), stage
