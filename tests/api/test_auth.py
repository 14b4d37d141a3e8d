"""API keys hashed at rest, constant-time checks, per-key rate limits (deployments/api/keys.py).

Apps are built by `create_app` over the in-process backend with the environment set by
monkeypatch; the rate limiter's clock is replaced where a test needs time to pass.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings

import pytest

from deployments.api.keys import KeyRing, RateLimiter, hash_key, main, parse_hash
from deployments.api.main import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ENV = ("TECHNIC_API_KEYS", "TECHNIC_API_KEY_HASHES", "TECHNIC_RATE_LIMIT", "REDIS_URL")


@pytest.fixture(scope="module")
def backend(warm):  # type: ignore[no-untyped-def]
    return warm  # the session's warm in-process backend (conftest.py)


@pytest.fixture()
def app_with(backend, monkeypatch):
    def build(**env: str):
        for name in ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return TestClient(create_app(backend))
    return build


@pytest.mark.slow
def test_hash_format_and_cli():
    assert hash_key("k1") == "sha256:" + hashlib.sha256(b"k1").hexdigest()
    out = subprocess.run([sys.executable, "-m", "deployments.api.keys", "hash", "k1"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == hash_key("k1")
    piped = subprocess.run([sys.executable, "-m", "deployments.api.keys", "hash", "-"],
                           input="k1\n", capture_output=True, text=True, check=True)
    assert piped.stdout.strip() == hash_key("k1")
    assert main(["new"]) == 0 and main(["bogus"]) == 2
    for bad in ("k1", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "g" * 64):
        with pytest.raises(ValueError, match="sha256"):
            parse_hash(bad)


def test_only_digests_are_kept():
    ring = KeyRing.build(["plain-secret"], [hash_key("other")])
    assert len(ring.digests) == 2 and all(len(d) == 32 for d in ring.digests)
    assert b"plain-secret" not in b"".join(ring.digests)
    assert ring.match("plain-secret") and ring.match("other")
    assert ring.match("plain-secre") is None and ring.match("") is None
    assert ring.match(None) is None and not KeyRing.build([], [])


@pytest.mark.parametrize("env", [
    {"TECHNIC_API_KEY_HASHES": f"{hash_key('k1')}, {hash_key('k2')}"},
    {"TECHNIC_API_KEYS": "k1,k2"},
    {"TECHNIC_API_KEYS": "k1", "TECHNIC_API_KEY_HASHES": hash_key("k2")},
])
def test_keys_from_hashes_plain_or_both(app_with, env):
    with app_with(**env) as c:
        for path in ("/v1/universe", "/v1/sectors", "/v1/models", "/v1/stats",
                     "/v1/symbols/AAPL"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"X-API-Key": "k3"}).status_code == 401, path
        assert c.post("/v1/scan", json={"limit": 1}).status_code == 401
        assert c.post("/v1/scan/stream", json={"limit": 1}).status_code == 401
        r = c.get("/v1/universe", headers={"X-API-Key": "k3"})
        assert r.headers["www-authenticate"] == "X-API-Key"
        for key in ("k1", "k2"):
            assert c.get("/v1/sectors", headers={"X-API-Key": key}).status_code == 200
        ok = c.post("/v1/scan", json={"limit": 1}, headers={"X-API-Key": "k2"})
        assert ok.status_code == 200 and len(ok.json()["rows"]) == 1
        for open_path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/"):
            assert c.get(open_path).status_code == 200, open_path


def test_a_bad_hash_in_config_fails_at_startup(backend, monkeypatch):
    monkeypatch.setenv("TECHNIC_API_KEY_HASHES", "sha256:nothex")
    with pytest.raises(ValueError, match="TECHNIC_API_KEY_HASHES"):
        create_app(backend)


def test_open_when_no_keys(app_with):
    with app_with() as c:
        assert c.get("/v1/sectors").status_code == 200


def test_rate_limit_per_key_with_retry_after(app_with):
    with app_with(TECHNIC_API_KEYS="k1,k2", TECHNIC_RATE_LIMIT="3/min") as c:
        one, two = {"X-API-Key": "k1"}, {"X-API-Key": "k2"}
        assert [c.get("/v1/sectors", headers=one).status_code for _ in range(3)] == [200] * 3
        r = c.get("/v1/sectors", headers=one)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 20
        assert "3 requests per 60 s" in r.json()["detail"]
        assert c.post("/v1/scan", json={"limit": 1}, headers=one).status_code == 429
        assert c.get("/v1/sectors", headers=two).status_code == 200  # its own bucket
        assert c.get("/healthz").status_code == 200  # never limited
        assert c.get("/v1/sectors", headers={"X-API-Key": "x"}).status_code == 401


def test_rate_limit_per_client_when_open(app_with):
    with app_with(TECHNIC_RATE_LIMIT="2/s") as c:
        codes = [c.get("/v1/sectors").status_code for _ in range(3)]
        assert codes == [200, 200, 429]


def test_limiter_mode_is_reported(app_with):
    """Without REDIS_URL the buckets are per process (`local`); no limit is `off`."""
    with app_with(TECHNIC_API_KEYS="k1", TECHNIC_RATE_LIMIT="3/min") as c:
        state = c.get("/v1/stats", headers={"X-API-Key": "k1"}).json()["rate_limit"]
        assert (state["mode"], state["limit"], state["rejected"]) == ("local", "3/60s", 0)
        assert c.get("/readyz").json()["checks"]["rate_limit"]["mode"] == "local"
    with app_with() as c:
        assert c.get("/v1/stats").json()["rate_limit"] == {"mode": "off"}


def test_token_bucket_refills():
    now = [0.0]
    lim = RateLimiter.parse("60/min", clock=lambda: now[0], max_buckets=2)
    assert [lim.take("a") for _ in range(60)] == [0.0] * 60
    wait = lim.take("a")
    assert wait == pytest.approx(1.0) and lim.retry_after(wait) == "1"
    now[0] += 0.5
    assert lim.take("a") == pytest.approx(0.5)
    now[0] += 1.0
    assert lim.take("a") == 0.0
    lim.take("b"), lim.take("c")
    assert "a" not in lim.buckets and len(lim.buckets) == 2 and lim.rejected == 2
    assert RateLimiter.parse("10/5s").rate == 2.0 and RateLimiter.parse("") is None
    for bad in ("60", "x/min", "60/fortnight", "0/min"):
        with pytest.raises(ValueError):
            RateLimiter.parse(bad)


def test_openapi_documents_auth_and_limits(app_with):
    with app_with() as c:
        paths = c.get("/openapi.json").json()["paths"]
    for path, ops in paths.items():
        for op in ops.values():
            codes = set(op["responses"])
            if path.startswith("/v1/"):
                assert {"401", "429"} <= codes, path
                assert ("413" in codes) == ("requestBody" in op), path
            else:
                assert "401" not in codes, path
