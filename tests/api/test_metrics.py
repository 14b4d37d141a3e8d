"""Our Prometheus metrics (deployments/metrics.py) follow the scans the in-process app runs."""

from __future__ import annotations

import warnings

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_support import demo_store, tiny_models

from deployments import metrics
from deployments.api.main import create_app
from technic_v4.service.inprocess import InProcessBackend

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or None) or 0.0


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    backend = InProcessBackend(demo_store(root / "data"), tiny_models(root / "models"),
                               chunk_size=128, warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=())) as c:
        yield c


def test_scans_move_the_metrics(client):
    stages = ("load", "indicators", "score", "alpha", "rank", "total")
    before = {"scans": value("technic_scans_total"),
              **{s: value("technic_scan_stage_seconds_count", stage=s) for s in stages},
              "total_s": value("technic_scan_stage_seconds_sum", stage="total"),
              "batches": value("technic_alpha_batch_requests_count"),
              "ones": _ones_bucket(),
              "miss": value("technic_cache_lookups_total", result="miss"),
              "hit": value("technic_cache_lookups_total", result="hit"),
              "attempted": value("technic_scan_symbols_total", outcome="attempted")}
    bodies = [{"limit": 5}, {"sectors": ["Energy"]}, {"limit": 5}, {"min_price": 1e9}]
    for body in bodies:
        assert client.post("/v1/scan", json=body).status_code == 200
    assert value("technic_scans_total") == before["scans"] + 3          # one was a cache hit
    assert value("technic_cache_lookups_total", result="miss") == before["miss"] + 3
    assert value("technic_cache_lookups_total", result="hit") == before["hit"] + 1
    assert 0 < value("technic_cache_hit_rate") < 1
    for stage in stages:  # every stage of each of the 3 scans, counted once
        assert value("technic_scan_stage_seconds_count", stage=stage) == before[stage] + 3
    assert value("technic_scan_stage_seconds_sum", stage="total") > before["total_s"]
    assert value("technic_alpha_batch_requests_count") == before["batches"] + 3  # 1 per scan
    assert value("technic_scan_symbols_total", outcome="attempted") > before["attempted"]
    # min_price 1e9 rejects every symbol: that reason must be counted
    text = client.get("/metrics")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text.text)}
    reasons = {s.labels["reason"]: s.value for s in families["technic_scan_rejects"].samples
               if s.name == "technic_scan_rejects_total"}
    assert reasons and all(v > 0 for v in reasons.values())
    scans = [s.value for s in families["technic_scans"].samples
             if s.name == "technic_scans_total"]
    assert scans == [value("technic_scans_total")]
    assert _ones_bucket() == before["ones"] + 3  # each a batch of one request


def _ones_bucket() -> float:
    """Alpha calls that carried one request (the le=1 bucket)."""
    return value("technic_alpha_batch_requests_bucket", le="1.0")


def test_metrics_need_the_key_when_keys_are_set(tmp_path):
    backend = InProcessBackend(demo_store(tmp_path / "data"), tiny_models(tmp_path / "models"),
                               warm=False)
    with TestClient(create_app(backend, api_keys=("k" * 32,))) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"X-API-Key": "k" * 32}).status_code == 200


def test_no_ray_metrics_outside_a_serve_replica():
    assert metrics._ray_metrics() == {}
    metrics.observe_batch(2, 10)  # records to prometheus_client only, no Ray needed
    assert value("technic_alpha_batch_rows_count") >= 1
