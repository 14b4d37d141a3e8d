"""The real Serve app over real HTTP: Ray started small, the app built by `build_app`.

One Ray instance for the module (~15-25 s to start on 2 cores): dashboard off, token auth off
(RAY_AUTH_MODE=disabled, set before ray.init), HTTP on 127.0.0.1 and a free port, a
500-symbol demo store and tiny models in a temporary folder, API keys on. The alpha batch
wait is raised to 50 ms so that batching under concurrency is certain, not timing luck.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest
import yaml
from serve_support import (
    assert_progress_ordered,
    demo_store,
    ndjson,
    parquet_frame,
    running_app,
)

from technic_v4.alpha.inference import ModelSet
from technic_v4.data import store
from technic_v4.data.reader import StoreReader
from technic_v4.data.universe import GICS_SECTORS
from technic_v4.scan.explain import explain
from technic_v4.scanner_core import ScanConfig, run_scan

ROOT = Path(__file__).resolve().parents[2]
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
KEY = "test-key-1"
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE",
       "TECHNIC_API_KEYS": f"other-key,{KEY}"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("serve"), ENV, "technic", chunk_size=128,
                     batch_wait_timeout_s=0.05) as running:
        yield running


@pytest.fixture(scope="module")
def http(app):
    with httpx.Client(base_url=app["url"], headers={"X-API-Key": KEY}, timeout=60) as c:
        yield c


@pytest.fixture()
def reference(app, monkeypatch):
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(app["models"]))
    return lambda cfg: run_scan(cfg, loader=StoreReader(app["data"]))


def test_ready_after_load(http):
    r = http.get("/readyz", headers={"X-API-Key": ""})
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["panel"]["loaded"] and checks["panel"]["symbols"] == 500
    assert checks["models"]["checked"] and checks["models"]["available"]
    assert http.get("/healthz", headers={"X-API-Key": ""}).json()["status"] == "ok"


@pytest.mark.parametrize("config", [ScanConfig(), ScanConfig(sectors=["Healthcare", "Energy"],
                                                             min_tech_rating=0)])
def test_full_scan_equals_run_scan_row_by_row(http, reference, config):
    frame, status = reference(config)
    assert status.alpha["available"]
    body = {"sectors": config.sectors, "min_tech_rating": config.min_tech_rating}
    body = {k: v for k, v in body.items() if v is not None}
    r = http.post("/v1/scan", json={**body, "format": "parquet"},
                  headers={"Cache-Control": "no-cache"})
    assert r.status_code == 200, r.text
    pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)
    meta = http.post("/v1/scan", json=body).json()["meta"]
    assert (meta["attempted"], meta["kept"], meta["rejected"], meta["rejected_by_reason"]) == (
        status.attempted, status.kept, status.rejected, status.rejected_by_reason)
    assert r.headers["x-technic-data-version"] == status.data_version == meta["data_version"]
    assert r.headers["x-technic-source"] == "synthetic" and float(
        r.headers["x-technic-elapsed-ms"]) > 0


def test_stream_emits_ordered_progress_then_the_same_result(http):
    with http.stream("POST", "/v1/scan/stream", json={"limit": 25}) as r:
        assert r.status_code == 200
        events = ndjson("".join(r.iter_text()))
    assert_progress_ordered(events[:-1])
    indicator_steps = [e for e in events if e.get("stage") == "indicators"]
    assert len(indicator_steps) >= 5  # 0, then one event per 128-symbol chunk
    assert events[-1]["event"] == "result"
    assert events[-1]["rows"] == http.post("/v1/scan", json={"limit": 25}).json()["rows"]


def test_concurrent_scans_are_batched_by_the_alpha_deployment(app):
    before = serve.get_deployment_handle("AlphaModel", "technic").stats.remote().result()

    async def burst():
        async with httpx.AsyncClient(base_url=app["url"], headers={"X-API-Key": KEY},
                                     timeout=60) as c:
            # eight sectors: eight different feature sets (the same features again would be
            # answered from the backend's forecast memo, not predicted)
            return await asyncio.gather(*(c.post("/v1/scan", json={"sectors": [sector]},
                                                 headers={"Cache-Control": "no-cache"})
                                          for sector in GICS_SECTORS[:8]))

    assert all(r.status_code == 200 for r in asyncio.run(burst()))
    after = serve.get_deployment_handle("AlphaModel", "technic").stats.remote().result()
    requests, batches = (after["requests"] - before["requests"],
                         after["batches"] - before["batches"])
    assert requests == 8  # one predict per scan, on its merged rows
    assert batches < requests and after["max_batch_requests"] > 1, after
    assert after["config"] == {"max_batch_size": 16, "batch_wait_timeout_s": 0.05}


def test_result_cache_over_http(http):
    body = {"sectors": ["Utilities"], "limit": 5}
    first = http.post("/v1/scan", json=body, headers={"Cache-Control": "no-cache"})
    second = http.post("/v1/scan", json=body)
    assert (first.headers["x-technic-cache"], second.headers["x-technic-cache"]) == (
        "miss", "hit")
    assert first.content == second.content
    stats = http.get("/v1/stats").json()
    assert stats["cache"]["hits"] >= 1 and stats["alpha"]["batches"] >= 1


def test_documented_errors(http):
    bad = http.post("/v1/scan", json={"sectors": ["Tech", "Nowhere"]})
    assert bad.status_code == 422
    assert "Utilities" in bad.json()["detail"][0]["valid"] and "Nowhere" in bad.text
    assert http.post("/v1/scan", json={"sort_by": "x"}).json()["detail"][0]["field"] == "sort_by"
    assert http.get("/v1/symbols/ZZZZZ").status_code == 404
    assert http.get("/v1/symbols/A%24B").status_code == 422
    assert http.get("/v1/universe?sector=Nowhere").status_code == 422
    assert http.post("/v1/scan", json={}, headers={"Accept": "image/png"}).status_code == 406
    assert http.post("/v1/scan", json={}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert http.get("/v1/models", headers={"X-API-Key": ""}).status_code == 401
    for _ in range(3):  # nothing above broke a replica
        assert http.get("/readyz").status_code == 200


def test_symbol_history_and_models(http):
    sym = http.get("/v1/universe?sector=Energy").json()["rows"][0]["symbol"]
    h = http.get(f"/v1/symbols/{sym}?days=60").json()
    assert len(h["sessions"]) == len(h["bars"]["close"]) == len(h["indicators"]["RSI"]) == 60
    models = http.get("/v1/models").json()
    assert models["available"] and models["loaded"]["alpha_10d"]["available"]


def test_explain_over_serve_is_the_library_answer(http, app):
    """The indicator part from an Indicators replica, the contributions from the AlphaModel
    replica: together the answer `technic_v4.scan.explain` gives in this process."""
    sym = http.get("/v1/universe?sector=Energy").json()["rows"][0]["symbol"]
    for as_of in (None, "2025-06-30"):
        r = http.get(f"/v1/symbols/{sym}/explain", params={"as_of_date": as_of} if as_of else {})
        assert r.status_code == 200, r.text
        expected = explain(StoreReader(app["data"]), ModelSet(app["models"]), sym, as_of)
        assert r.json() == orjson.loads(orjson.dumps(expected))
        assert r.headers["x-technic-models"] == expected["meta"]["models_version"]
    assert http.get("/v1/symbols/ZZZZZ/explain").status_code == 404
    assert http.get("/v1/symbols/A%24B/explain").status_code == 422
    bad = http.get(f"/v1/symbols/{sym}/explain?as_of_date=1990-01-01")
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "as_of_date"


def test_config_files_match_the_app(tmp_path):
    from ray.serve.schema import ServeDeploySchema

    from deployments.launch import _config_with

    cfg = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    ServeDeploySchema.model_validate(cfg)  # what `serve run` validates it with
    app = cfg["applications"][0]
    assert app["import_path"] == "deployments.app:build_app"
    deps = {d["name"]: d for d in app["deployments"]}
    alpha = deps["AlphaModel"]
    assert alpha["max_ongoing_requests"] >= alpha["user_config"]["max_batch_size"]
    assert "autoscaling_config" in deps["Indicators"]
    patched = _config_with(ROOT / "serve_config.yaml", "0.0.0.0", 10000)
    assert yaml.safe_load(patched.read_text())["http_options"] == {
        **cfg["http_options"], "host": "0.0.0.0", "port": 10000}
    patched.unlink()
    web = yaml.safe_load((ROOT / "render.yaml").read_text())["services"][0]
    assert (web["type"], web["plan"], web["healthCheckPath"]) == ("web", "pro_plus", "/healthz")
    assert "0.0.0.0" in web["startCommand"] and '.[serve]' in web["buildCommand"]
    env = {e["key"]: e for e in web["envVars"]}
    assert env["TECHNIC_API_KEYS"]["sync"] is False and env["RAY_AUTH_MODE"]["value"]


def test_new_store_version_is_picked_up(http, app, reference):
    """Rewrite the store (another seed): the next scan comes from the new data, not a cache."""
    old = http.post("/v1/scan", json={"limit": 10}).json()["meta"]["data_version"]
    demo_store(app["data"], seed=7)
    new = store.read_manifest(app["data"]).data_version
    assert new != old
    with ThreadPoolExecutor(2) as pool:  # concurrent requests while the replica reloads
        rs = list(pool.map(lambda _: http.post("/v1/scan", json={"format": "parquet"}), range(2)))
    frame, status = reference(ScanConfig())
    for r in rs:
        assert r.headers["x-technic-data-version"] == new
        pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)


class _Method:
    def __init__(self, result):
        self.result = result

    def remote(self, *args):
        async def call():
            if isinstance(self.result, Exception):
                raise self.result
            if self.result is None:
                await asyncio.sleep(3600)  # a deployment with no replica up yet
            return self.result
        return call()


class _Handle:
    def __init__(self, ready):
        self.ready = _Method(ready)


def test_readyz_is_503_until_both_deployments_answer(tmp_path, monkeypatch):
    """The ingress's readiness before the replicas are up (no Ray needed for this part)."""
    import deployments.ingress as ingress

    monkeypatch.setattr(ingress, "READY_TIMEOUT_S", 0.05)
    loaded, checked = {"loaded": True}, {"checked": True, "available": False}
    cases = [(None, checked, False), (loaded, RuntimeError("replica died"), False),
             (loaded, None, False), (loaded, checked, True)]
    for panel, models, ready in cases:
        backend = ingress.ServeBackend(_Handle(panel), _Handle(models), str(tmp_path),
                                       str(tmp_path), 128)
        state = asyncio.run(backend.readiness())
        assert state["ready"] is ready, state
        if not ready:
            assert any("error" in c for c in state["checks"].values()), state
