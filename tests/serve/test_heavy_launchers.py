"""Heavy requests and event streams against both launchers, through the edge, as documented:
`python -m deployments.local` (in-process) and `python -m deployments.launch` (Ray Serve), on
the 500-symbol demo store with the tiny models and the edge tests' settings (EDGE_ENV).

  streams    200 open /v1/events streams from 25 addresses: a scan still 200; one more from
             a full address 429 with Retry-After
  sequence   Last-Event-ID `\\xb2`, 20 digits, `-1`: 400 naming the header
  validates  16 at once from 4 addresses: each 200 or 429/503 with Retry-After, none 500
  cancel     a validate whose client disconnects: the process doing it (uvicorn; Serve's
             Indicators replica) uses < 1 CPU-s in the 3 s after, and less than half of
             what it burnt per 3 s before
  health     /healthz answers while 3 heavy validates run (latency reported, not asserted)
Figures go to stdout and, with EDGE_REPORT=path, to that JSON file (RELIABILITY.md).
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml
from edge_checks import EDGE_ENV, KEY, App, post_scan, report
from edge_support import HOST, address, find, launched, raw, request, rss_mb
from serve_support import demo_store, free_port, tiny_models

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"where": "sma(sma(Close, 300), 300) > 0", "horizons": [5]}  # a minute or more
LIGHT = {"where": "sma(Close, 50) > sma(Close, 200)", "horizons": [5, 21]}
STREAMS, PER_ADDRESS = 200, 8


@pytest.fixture(scope="module", params=["local", "serve"])
def app(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp(f"heavy-{request.param}")
    data, models = demo_store(root / "data"), tiny_models(root / "models")
    port, backend = free_port(), free_port()
    env = {**EDGE_ENV, "TECHNIC_BACKEND_PORT": str(backend), "TECHNIC_EVENT_STREAMS": "256",
           "TECHNIC_EVENT_STREAMS_PER_ADDR": str(PER_ADDRESS), "TECHNIC_HEAVY_SLOTS": "3",
           "TECHNIC_HEAVY_PER_CLIENT": "3",  # one key: one client
           # HEAVY's validation must run to be cancelled (the budget's own refusals are
           # tests/serve/test_cost_edge.py's)
           "TECHNIC_SCREEN_MAX_READS": "1e15", "TECHNIC_SCREEN_MAX_MEMORY_MB": "1e6"}
    if request.param == "local":
        env |= {"TECHNIC_DATA_DIR": str(data), "TECHNIC_MODELS_DIR": str(models)}
        args = ["deployments.local", "--port", str(port)]
    else:
        import ray

        if ray.is_initialized():  # one Ray at a time on two cores
            ray.shutdown()
        config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
        config["applications"][0]["args"].update(data_dir=str(data), models_dir=str(models),
                                                 chunk_size=128)
        (root / "serve_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        env |= {"TECHNIC_OBJECT_STORE_MB": "200", "RAY_AUTH_MODE": "disabled",
                "RAY_USAGE_STATS_ENABLED": "0"}
        args = ["deployments.launch", str(root / "serve_config.yaml"), "--port", str(port),
                "--num-cpus", "2"]
    with launched(args, env, port, root / "launch.log") as proc:
        # the process that computes a validate: uvicorn's, or the Indicators replica
        worker = proc.pid if request.param == "local" else find(proc.pid, "Indicators")
        yield App(port=port, backend=backend, pid=proc.pid, server_pid=worker, data=data,
                  models=models, name=request.param)


def headed(port: int, data: bytes, src: str) -> tuple[socket.socket, int]:
    """Send `data` from `src`; read the status line and headers; the socket stays open."""
    s = socket.create_connection((HOST, port), timeout=30, source_address=(src, 0))
    s.sendall(data)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/") else 0
    return s, status


def sent(port: int, data: bytes, src: str) -> socket.socket:
    """Send `data` from `src` without reading: a client that may leave at any moment."""
    s = socket.create_connection((HOST, port), timeout=30, source_address=(src, 0))
    s.sendall(data)
    return s


def post(path: str, body: dict) -> bytes:
    return raw("POST", path, [(b"X-API-Key", KEY.encode())], json.dumps(body).encode())


def events(extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    return raw("GET", "/v1/events", [(b"X-API-Key", KEY.encode()), *(extra or [])],
               close=False)


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def wait_until(cond, what: str, limit_s: float = 600.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for `cond`; `limit_s` is a hang guard (at load 50+ a heavy validate took over
    120 s to burn its first 3 CPU-s), not a bound on speed."""
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {limit_s} s: {what}")
        time.sleep(0.1)


def test_open_event_streams_leave_scans_alone(app):
    opened: list[socket.socket] = []
    try:
        statuses = []
        for i in range(STREAMS):
            s, status = headed(app.port, events(), address(i // PER_ADDRESS, 61))
            opened.append(s)
            statuses.append(status)
        assert statuses == [200] * STREAMS, sorted(set(statuses))
        t0 = time.monotonic()
        r = post_scan(app, {"limit": 5, "sectors": ["Utilities"]}, address(0, 62))
        scan_s = time.monotonic() - t0
        assert r.status == 200, r.body[:300]
        extra, status = headed(app.port, events(), address(0, 61))  # a full address
        opened.append(extra)
        assert status == 429, status
        report(f"{app.name}: {STREAMS} event streams", {"scan_status": r.status,
                                                        "scan_s": round(scan_s, 2),
                                                        "stream_over_address": status})
    finally:
        for s in opened:
            s.close()


def test_event_sequence_garbage_is_a_400(app):
    for value in (b"\xb2", b"99999999999999999999", b"-1"):
        r = request(app.port, raw("GET", "/v1/events", [(b"X-API-Key", KEY.encode()),
                                                        (b"Last-Event-ID", value)]),
                    address(1, 63))
        assert r.status == 400, (value, r.status, r.body[:300])
        assert b"last-event-id" in r.body, r.body[:300]


def test_concurrent_validates_are_answered_or_refused(app):
    idle = rss_mb(app.server_pid)
    peak = idle
    done = False

    def sample() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, rss_mb(app.server_pid))
            time.sleep(0.2)

    with ThreadPoolExecutor(17) as pool:
        sampler = pool.submit(sample)
        replies = list(pool.map(lambda k: request(app.port, post(
            "/v1/validate", {**LIGHT, "top_n": k + 1}), address(k % 4, 64), 300), range(16)))
        done = True
        sampler.result()
    codes = sorted(r.status for r in replies)
    assert set(codes) <= {200, 429, 503}, [(r.status, r.body[:200]) for r in replies]
    assert 200 in codes, codes
    for r in replies:
        if r.status != 200:
            assert int(r.headers["retry-after"]) >= 1, r.headers
    report(f"{app.name}: 16 validates from 4 addresses", {
        "statuses": codes, "rss_idle_mb": round(idle), "rss_peak_mb": round(peak),
        "rss_after_mb": round(rss_mb(app.server_pid))})


def test_a_disconnected_validate_stops_using_cpu(app):
    pid = app.server_pid
    t0 = cpu_s(pid)
    client = sent(app.port, post("/v1/validate", HEAVY), address(0, 65))
    wait_until(lambda: cpu_s(pid) - t0 > 3.0, "the validate has burnt 3 CPU-s")
    before = cpu_s(pid)
    time.sleep(2.0)
    rate = (cpu_s(pid) - before) / 2.0
    client.close()
    start = cpu_s(pid)
    time.sleep(3.0)
    after = cpu_s(pid) - start
    report(f"{app.name}: validate disconnected", {"cpu_s_per_s_before": round(rate, 2),
                                                  "cpu_s_in_3s_after": round(after, 2)})
    assert after < 1.0 and after < 0.5 * rate * 3.0, (rate, after)


def test_health_answers_while_three_heavy_validates_run(app):
    pid = app.server_pid
    t0 = cpu_s(pid)
    clients = [sent(app.port, post("/v1/validate", {**HEAVY, "top_n": k + 1}),
                    address(k, 66)) for k in range(3)]
    try:
        wait_until(lambda: cpu_s(pid) - t0 > 3.0, "the validates are running")
        latencies = []
        for i in range(20):
            r = request(app.port, raw("GET", "/healthz"), address(100 + i, 66))
            assert r.status == 200, r.body[:200]
            latencies.append(r.seconds)
            time.sleep(0.1)
        plain = post_scan(app, {"limit": 5, "sectors": ["Energy"]}, address(200, 66))
        assert plain.status == 200, plain.body[:300]
        latencies.sort()
        report(f"{app.name}: /healthz during 3 heavy validates", {
            "p50_ms": round(latencies[10] * 1000), "max_ms": round(latencies[-1] * 1000),
            "plain_scan_s": round(plain.seconds, 2)})
    finally:
        for c in clients:
            c.close()
