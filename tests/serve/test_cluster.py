"""Scale-out: the app on a simulated 2-node Ray cluster, one Indicators replica per node.

`ray.cluster_utils.Cluster` starts a head node and a worker node on this machine, each with
1 CPU and its own resource (`node_a` / `node_b`) plus one `indicator_slot`. The app is the one
`build_app` builds, with Indicators at 2 fixed replicas that each need an `indicator_slot`, so
Ray must place one per node. Scans over HTTP equal `run_scan`, and the replica actors sit on
two distinct node ids. Both nodes read the same `data_dir` (a local folder here; on a real
cluster a shared filesystem, see docs/kuberay-rayservice.yaml).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
import serve_support
from serve_support import (
    SERVE_START_GUARDS,
    demo_store,
    free_port,
    parquet_frame,
    patched_env,
    tiny_models,
)

from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
cluster_utils = pytest.importorskip("ray.cluster_utils")
ENV = {**SERVE_START_GUARDS, "RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
NODE = {"num_cpus": 1, "object_store_memory": 100 << 20}


@pytest.fixture(scope="module")
def cluster_app(tmp_path_factory):
    from deployments.alpha import AlphaModel
    from deployments.indicators import Indicators
    from deployments.ingress import Ingress

    root = tmp_path_factory.mktemp("cluster")
    data, models = str(demo_store(root / "data")), str(tiny_models(root / "models"))
    cluster = None
    if ray.is_initialized():  # a single-node session of another module (serve_support)
        ray.shutdown()
        serve_support._RAY_KEY[0] = None
    with patched_env(ENV):
        try:
            cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
                **NODE, "resources": {"node_a": 1, "indicator_slot": 1},
                "include_dashboard": False})
            cluster.add_node(**NODE, resources={"node_b": 1, "indicator_slot": 1})
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            indicators = Indicators.options(
                num_replicas=2, autoscaling_config=None,
                ray_actor_options={"num_cpus": 0.5, "resources": {"indicator_slot": 1}})
            app = Ingress.bind(indicators.bind(data), AlphaModel.bind(models), data, models, 128)
            serve.run(app, name="technic")
            yield {"url": f"http://127.0.0.1:{port}", "data": data, "models": models}
        finally:
            if ray.is_initialized():
                serve.shutdown()
                ray.shutdown()
            if cluster is not None:
                cluster.shutdown()


def replica_nodes(deployment: str) -> dict[str, str]:
    """Replica actor name -> node id, from the GCS actor table (no dashboard needed)."""
    from ray._private import state

    prefix = f"SERVE_REPLICA::technic#{deployment}#"
    return {a["Name"]: a["Address"]["NodeID"] for a in state.actors().values()
            if a["State"] == "ALIVE" and a["Name"].startswith(prefix)}


def test_indicator_replicas_on_two_nodes_and_scans_correct(cluster_app, monkeypatch):
    nodes = replica_nodes("Indicators")
    assert len(nodes) == 2 and len(set(nodes.values())) == 2, nodes
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(nodes.values()) <= alive and len(alive) == 2

    monkeypatch.setenv("TECHNIC_MODELS_DIR", cluster_app["models"])
    configs = [ScanConfig(), ScanConfig(sectors=["Energy", "Utilities"], min_tech_rating=0)]
    want = [run_scan(cfg, loader=StoreReader(cluster_app["data"]))[0] for cfg in configs]
    bodies = [{"format": "parquet"},
              {"format": "parquet", "sectors": ["Energy", "Utilities"], "min_tech_rating": 0}]

    def scan(i: int) -> httpx.Response:
        with httpx.Client(base_url=cluster_app["url"], timeout=60) as c:
            return c.post("/v1/scan", json=bodies[i % 2], headers={"Cache-Control": "no-cache"})

    with ThreadPoolExecutor(4) as pool:  # 8 scans of 4 chunks: both replicas get chunks
        responses = list(pool.map(scan, range(8)))
    for i, r in enumerate(responses):
        assert r.status_code == 200, r.text
        pd.testing.assert_frame_equal(parquet_frame(r.content), want[i % 2], check_exact=True)


def test_kuberay_manifest_serves_our_application():
    """docs/kuberay-rayservice.yaml (not run on Kubernetes): its serveConfigV2 validates as a
    Serve config and deploys the application and deployments of serve_config.yaml."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    root = Path(__file__).resolve().parents[2]
    manifest = yaml.safe_load((root / "docs" / "kuberay-rayservice.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    served = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(served)
    ours = yaml.safe_load((root / "serve_config.yaml").read_text())["applications"][0]
    theirs = served["applications"][0]
    assert theirs["import_path"] == ours["import_path"]
    assert {d["name"] for d in theirs["deployments"]} == {d["name"] for d in ours["deployments"]}
    assert manifest["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
