"""The cost bomb through the edge, on the Serve app: `python -m deployments.launch` (HAProxy in
front of Ray Serve) on a 5,000-symbol demo store answers a 422 naming the costliest part and
the budget, at the ingress, before an Indicators replica computes anything, and stays healthy.
The latency of those answers is reported (figures: `-s`, EDGE_REPORT), not asserted.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest
import yaml
from edge_checks import EDGE_ENV, KEY, report
from edge_support import ROOT, address, launched, raw, request
from serve_support import free_port, tiny_models

from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.screens.cost import Budget

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
BOMB = "sma(sma(sma(sma(Close,1260),1260),1260),1260) > 0"


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # type: ignore[no-untyped-def]
    if ray.is_initialized():  # one Ray at a time on two cores
        ray.shutdown()
    root = tmp_path_factory.mktemp("cost-edge")
    data = root / "data"
    build_demo_store(data, DemoSpec(n_symbols=5_000, start="2026-04-01"))
    models = tiny_models(root / "models")
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config["applications"][0]["args"].update(data_dir=str(data), models_dir=str(models),
                                             chunk_size=1000)
    cfg = root / "serve_config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    env = {**EDGE_ENV, "TECHNIC_BACKEND_PORT": str(free_port()),
           "TECHNIC_OBJECT_STORE_MB": "200", "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0"}
    with launched(["deployments.launch", str(cfg), "--port", str(port), "--num-cpus", "2"],
                  env, port, root / "launch.log"):
        yield port


def _send(port: int, method: str, path: str, body: dict) -> tuple[int, bytes]:
    r = request(port, raw(method, path, [(b"X-API-Key", KEY.encode())],
                          json.dumps(body).encode()), address(0, 30), 60)
    return r.status, r.body


def test_the_bomb_is_a_422_through_the_edge(app):
    port, budget = app, Budget()
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        status, body = _send(port, "POST", "/v1/scan", {"where": BOMB})
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 422, body[:300]
        (entry,) = json.loads(body)["detail"]
        assert entry["costliest"] == "sma(Close, 1260)" and entry["max_reads"] == (
            budget.max_reads)
        assert "budget 6.0 billion" in entry["msg"]
    for method, path in (("PUT", "/v1/screens/bomb"), ("POST", "/v1/validate")):
        status, body = _send(port, method, path, {"where": BOMB})
        assert status == 422, (path, body[:300])
    health = request(port, raw("GET", "/healthz"), address(0, 30), 10)
    assert health.status == 200
    report("cost_bomb_serve", {"requests": len(times), "median_ms": statistics.median(times),
                               "max_ms": max(times)})

