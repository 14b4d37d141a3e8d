"""Keys own their screens, watches and events through both launchers, as documented: keys
`k1,k2` and an admin key from the environment (TECHNIC_API_KEYS, TECHNIC_ADMIN_KEYS as a
`sha256:` entry), requests through the edge. Under Serve the watch routes reach the Watcher
deployment through its handle, with the caller's scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from edge_support import launched
from serve_support import demo_store, free_port, tiny_models

from deployments.api.keys import hash_key
from technic_v4.cli.watch import sse_events

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _args(launcher: str, root: Path, data: Path, models: Path, port: int) -> list[str]:
    if launcher == "deployments.local":
        return [launcher, "--port", str(port)]
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config["applications"][0]["args"].update(data_dir=str(data), models_dir=str(models),
                                             chunk_size=128)
    cfg = root / "serve_config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    return [launcher, str(cfg), "--port", str(port), "--num-cpus", "2"]


@pytest.mark.parametrize("launcher", ["deployments.local", "deployments.launch"])
def test_another_key_cannot_see_change_or_delete(launcher, tmp_path):
    if launcher == "deployments.launch":
        ray = pytest.importorskip("ray")
        if ray.is_initialized():  # one Ray at a time on two cores
            ray.shutdown()
    data, models = demo_store(tmp_path / "data"), tiny_models(tmp_path / "models")
    port = free_port()
    env = {"TECHNIC_API_KEYS": "k1,k2", "TECHNIC_ADMIN_KEYS": hash_key("adm"),
           "TECHNIC_BACKEND_PORT": str(free_port()), "TECHNIC_DATA_DIR": str(data),
           "TECHNIC_MODELS_DIR": str(models), "TECHNIC_STATE_DIR": str(tmp_path / "state"),
           "TECHNIC_OBJECT_STORE_MB": "200", "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_WAIT_POLICY": "PASSIVE"}
    args = _args(launcher, tmp_path, data, models, port)
    with launched(args, env, port, tmp_path / "launcher.log"):
        url = f"http://127.0.0.1:{port}"

        def as_(key: str, method: str, path: str, **kw: Any) -> httpx.Response:
            return httpx.request(method, url + path, headers={"x-api-key": key}, timeout=120,
                                 **kw)

        def events(key: str) -> list[dict]:
            r = as_(key, "GET", "/v1/events", params={"after": 0, "follow": "false"})
            assert r.status_code == 200, r.text
            return [e for _, e in sse_events(r.text.splitlines())]

        assert as_("k1", "PUT", "/v1/screens/mine", json={"where": "RSI > 50", "limit": 4}
                   ).status_code == 200
        r = as_("k1", "POST", "/v1/watches", json={"name": "w1", "screen": "mine",
                                                   "initial": True})
        assert r.status_code == 201, r.text
        for method, path in [("GET", "/v1/screens/mine"), ("DELETE", "/v1/screens/mine"),
                             ("GET", "/v1/watches/w1"), ("POST", "/v1/watches/w1/test"),
                             ("POST", "/v1/watches/w1/redeliver"),
                             ("DELETE", "/v1/watches/w1")]:
            assert as_("k2", method, path).status_code == 404, (method, path)
        assert as_("k2", "GET", "/v1/watches").json()["count"] == 0
        assert events("k2") == []
        assert {e["watch"] for e in events("k1")} == {"w1"}
        # the admin (configured as a hash) sees k1's watch and events, naming its owner
        listed = as_("adm", "GET", "/v1/watches").json()["watches"]
        assert [(w["name"], w["owner"]) for w in listed] == [("w1", hash_key("k1"))]
        assert events("adm") == events("k1")
        # k1 still reads and deletes its own
        assert as_("k1", "GET", "/v1/watches/w1").status_code == 200
        assert as_("k1", "DELETE", "/v1/watches/w1").status_code == 200
        assert as_("k1", "DELETE", "/v1/screens/mine").status_code == 200
