"""Issue 16 on the Serve app: hostile clients and operator faults, through the edge.

The app is what Render runs: `python -m deployments.launch` (a subprocess: HAProxy on a public
port, Ray Serve's proxy on 127.0.0.1 behind it), on a 500-symbol demo store and the tiny
models, with API keys, a failed-key limit of 10/min, one trusted proxy (127.0.9.9) and short
edge timeouts (tests/edge_checks.py: EDGE_ENV) so the module stays quick. One launch serves
every test; each check puts back what it changes (store, models), so they pass in any order
(also reversed, and each alone). Each check is described in
tests/edge_checks.py; figures go to stdout (`-s`) and, with EDGE_REPORT=path, to a JSON file
(RELIABILITY.md quotes them).

Points of the issue: 1 slow bodies, 2 timeout headers, 3 header bytes, 4 store flips, 5 model
update copied metadata-first, 6 idle connections, 7 non-reading clients, 8 addresses and
failed keys (and in-flight per address), 9 unreadable store, 10 a forecast that cannot tell
symbols apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml
from edge_checks import (
    EDGE_ENV,
    App,
    check_addresses_and_failed_keys,
    check_degenerate_alpha,
    check_header_bytes,
    check_idle_flood,
    check_model_update,
    check_non_reading,
    check_slow_bodies,
    check_store_flips,
    check_timeout_headers,
    check_unreadable_store,
    post_scan,
)
from edge_support import address, find, launched
from serve_support import N_SYMBOLS, demo_store, free_port, tiny_models

from technic_v4.data.demo import DemoSpec, generate_demo_market

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if ray.is_initialized():  # one Ray at a time on two cores; serve_support starts it again
        ray.shutdown()
    root = tmp_path_factory.mktemp("edge-serve")
    data, models = demo_store(root / "data"), tiny_models(root / "models")
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config["applications"][0]["args"].update(data_dir=str(data), models_dir=str(models),
                                             chunk_size=128)
    cfg = root / "serve_config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    port, backend = free_port(), free_port()
    env = {**EDGE_ENV, "TECHNIC_BACKEND_PORT": str(backend), "TECHNIC_OBJECT_STORE_MB": "200",
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    with launched(["deployments.launch", str(cfg), "--port", str(port), "--num-cpus", "2"],
                  env, port, root / "launch.log") as proc:
        haproxy = find(proc.pid, "haproxy")
        yield App(port=port, backend=backend, pid=proc.pid,
                  server_pid=find(proc.pid, "ProxyActor"), data=data, models=models,
                  name="serve")
    assert not psutil.pid_exists(haproxy) or psutil.Process(haproxy).status() == "zombie", \
        "HAProxy outlived the launcher"


def test_serve_listens_on_loopback_only_behind_the_edge(app):
    listening = {c.laddr.ip for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == app.backend}
    assert listening == {"127.0.0.1"}, listening
    r = post_scan(app, {"limit": 5}, address(0, 19))
    assert r.status == 200 and r.headers["x-technic-models"], r.body[:200]


def test_1_slow_bodies_never_stall_health_or_scans(app):
    check_slow_bodies(app)


def test_2_clients_cannot_set_serves_request_timeout(app):
    check_timeout_headers(app, direct=True)


def test_3_no_header_bytes_give_a_5xx(app):
    check_header_bytes(app, direct=True)


def test_4_every_answer_is_labelled_with_the_store_version_it_came_from(app):
    check_store_flips(app, N_SYMBOLS, restore=generate_demo_market(DemoSpec(n_symbols=N_SYMBOLS)))


def test_5_model_update_copied_metadata_first_never_mislabels(app, tmp_path):
    check_model_update(app, tmp_path)


def test_10_a_forecast_that_cannot_tell_symbols_apart_is_unavailable(app, tmp_path):
    check_degenerate_alpha(app, tmp_path)


def test_6_idle_connections_are_closed_and_capped_per_address(app, tmp_path):
    check_idle_flood(app, tmp_path)


def test_7_non_reading_clients_pin_bounded_memory(app):
    check_non_reading(app)


def test_8_rate_limits_key_on_a_trustworthy_address_and_failed_keys(app):
    check_addresses_and_failed_keys(app)


def test_9_unreadable_store_is_503_with_retry_after_everywhere(app):
    check_unreadable_store(app)


def test_launcher_without_haproxy_is_a_clear_error_before_ray_starts(tmp_path):
    """No haproxy binary: exit 2 with one line saying so, in seconds (Ray never started)."""
    env = {**os.environ, "TECHNIC_HAPROXY": str(tmp_path / "no-such-haproxy"),
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "deployments.launch", "--port", "1"], env=env,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith("technic: TECHNIC_HAPROXY="), out.stderr
