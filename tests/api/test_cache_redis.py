"""The shared result cache against a real `redis-server` that these tests start and kill.

Two apps (`create_app` over the in-process backend, each with its own `ResultCache.from_settings`)
stand for two ingress replicas: what one computed, the other serves from Redis. Also: TTL
expiry, Redis killed mid-run (scans still 200, uncached; /readyz ready but `degraded`;
/v1/stats counts errors), recovery after a restart, a Redis that accepts connections and never
answers (bounded by the timeout, then skipped), keys that change with the data version, and
the value format. Skipped, with the install command as the reason, when redis-server is absent.
"""

from __future__ import annotations

import asyncio
import socket
import time
import warnings

import pytest
from redis_support import REDIS, SKIP_REASON
from serve_support import warm_backend

from deployments.api.cache import CachedBody, ResultCache, decode, encode, redis_key
from deployments.api.main import create_app
from deployments.api.redis_store import RedisStore
from technic_v4.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.skipif(REDIS is None, reason=SKIP_REASON)
redis = pytest.importorskip("redis")


@pytest.fixture()
def env(redis_server, monkeypatch):
    """REDIS_URL on the test redis_server, an empty Redis, no L1 unless a test sets one."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.client().flushall()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("TECHNIC_CACHE_L1_ENTRIES", "0")
    monkeypatch.setenv("TECHNIC_CACHE_RETRY_S", "0.2")
    return monkeypatch


def app_client(warm) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(warm, api_keys=()))


def how(r) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    return r.headers["x-technic-cache"]


def test_two_apps_share_results_through_redis(env, redis_server, warm):
    env.setenv("TECHNIC_CACHE_L1_ENTRIES", "4")
    body = {"sectors": ["Energy"], "limit": 20}
    with app_client(warm) as a, app_client(warm) as b:
        first = a.post("/v1/scan", json=body)
        other = b.post("/v1/scan", json=body)
        local = b.post("/v1/scan", json=body)
        assert [how(first), how(other), how(local)] == ["miss", "hit", "hit"]
        assert other.content == first.content and local.content == first.content
        assert other.headers["content-type"] == first.headers["content-type"]
        assert other.headers["x-technic-data-version"] == first.headers["x-technic-data-version"]
        csv = b.post("/v1/scan", json={**body, "format": "csv"})
        assert how(csv) == "miss" and a.post("/v1/scan", json={**body, "format": "csv"}
                                             ).content == csv.content
        sa, sb = a.get("/v1/stats").json()["cache"], b.get("/v1/stats").json()["cache"]
    assert (sa["backend"], sa["status"], sa["hits"], sa["misses"]) == ("redis", "ok", 1, 1)
    assert (sb["hits"], sb["redis_hits"], sb["misses"], sb["errors"]) == (2, 1, 1, 0)
    assert sb["hit_rate"] == round(2 / 3, 4)
    keys = redis_server.client().keys("technic:result:v1:*")
    assert len(keys) == 2  # the JSON and the CSV body


def test_entries_expire_after_the_ttl(env, redis_server, warm):
    env.setenv("TECHNIC_CACHE_TTL_S", "1")
    env.setenv("TECHNIC_CACHE_L1_ENTRIES", "4")  # the L1 copy must expire with Redis's
    body = {"sectors": ["Utilities"], "limit": 5}
    with app_client(warm) as c:
        assert how(c.post("/v1/scan", json=body)) == "miss"
        (key,) = redis_server.client().keys("technic:result:v1:*")
        assert 0 < redis_server.client().pttl(key) <= 1000
        assert how(c.post("/v1/scan", json=body)) == "hit"
        time.sleep(1.1)
        assert redis_server.client().keys("technic:result:v1:*") == []
        assert how(c.post("/v1/scan", json=body)) == "miss"


def test_redis_killed_mid_run_then_restarted(env, redis_server, warm):
    env.setenv("TECHNIC_CACHE_RETRY_S", "1")
    body = {"sectors": ["Financials"], "limit": 10}
    with app_client(warm) as c:
        assert [how(c.post("/v1/scan", json=body)) for _ in range(2)] == ["miss", "hit"]
        assert c.get("/readyz").json()["checks"]["cache"] == {"backend": "redis",
                                                              "status": "ok"}
        redis_server.stop()
        t_down = time.monotonic()
        down = [c.post("/v1/scan", json=body) for _ in range(3)]
        assert [how(r) for r in down] == ["miss"] * 3  # still answered, uncached
        assert down[0].json()["rows"] == down[2].json()["rows"]
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        check = ready.json()["checks"]["cache"]
        assert (check["backend"], check["status"]) == ("redis", "degraded"), check
        assert "Connection" in check["error"]
        stats = c.get("/v1/stats").json()["cache"]
        assert stats["status"] == "degraded" and stats["errors"] >= 1
        # backed off: one failed call per TECHNIC_CACHE_RETRY_S (1 s), not one per request
        assert stats["errors"] <= 2 + (time.monotonic() - t_down) // 1.0, stats

        redis_server.start()
        time.sleep(1.05)  # TECHNIC_CACHE_RETRY_S=1: the next call probes Redis again
        assert how(c.post("/v1/scan", json=body)) == "miss"  # the restarted Redis is empty
        assert how(c.post("/v1/scan", json=body)) == "hit"
        assert c.get("/readyz").json()["checks"]["cache"]["status"] == "ok"
        assert c.get("/v1/stats").json()["cache"]["status"] == "ok"


def test_a_redis_that_never_answers_costs_one_timeout_then_nothing():
    """A socket that accepts and stays silent: one call waits out timeout_s, the next skip
    Redis (one error in all; how long each took is the machine's business)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}", 60,
                           timeout_s=0.1, retry_s=30)

        async def run() -> list[float]:
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                assert await store.get("k") is None
                times.append(time.perf_counter() - t0)
            return times

        times = asyncio.run(run())
    assert times[0] >= 0.05, times  # waited for its answer until the timeout
    assert store.errors == 1 and store.degraded  # the other four never asked


def test_keys_change_with_the_data_version(env, redis_server, tmp_path):
    """A rewritten store is a new data version: its first scan misses, and the answers of
    both versions are kept under their own keys."""
    from technic_v4.data.demo import DemoSpec, build_demo_store

    own = warm_backend(tmp_path)
    body = {"sectors": ["Health Care"], "limit": 5}
    with app_client(own) as c:
        assert how(old := c.post("/v1/scan", json=body)) == "miss"
        build_demo_store(tmp_path / "data", DemoSpec(n_symbols=120, seed=7))
        assert how(new := c.post("/v1/scan", json=body)) == "miss"
        assert how(c.post("/v1/scan", json=body)) == "hit"
    assert old.headers["x-technic-data-version"] != new.headers["x-technic-data-version"]
    assert len(redis_server.client().keys("technic:result:v1:*")) == 2
    k = ("scan", "v1", "m", "req")
    assert redis_key(k) != redis_key(("scan", "v2", "m", "req")) != redis_key(
        ("scan", "v1", "m2", "req"))


def test_values_are_our_own_bytes_and_garbage_is_a_miss(env, redis_server, warm):
    item = CachedBody(b'{"rows":[]}', "application/json", {"X-Technic-Data-Version": "d"})
    blob = encode(item)
    assert blob.startswith(b"TRC1") and blob.endswith(item.body) and decode(blob) == item
    for bad in (b"", b"\x80\x04\x95pickle", b"TRC1\x00\x00\x00\x02[]"):
        with pytest.raises(ValueError):
            decode(bad)
    body = {"sectors": ["Materials"], "limit": 3}
    with app_client(warm) as c:
        assert how(c.post("/v1/scan", json=body)) == "miss"
        (key,) = redis_server.client().keys("technic:result:v1:*")
        redis_server.client().set(key, b"\x80\x04\x95not ours", px=60_000)
        assert how(c.post("/v1/scan", json=body)) == "miss"
        assert how(c.post("/v1/scan", json=body)) == "hit"  # rewritten by the miss
        assert c.get("/v1/stats").json()["cache"]["errors"] == 1


def test_without_redis_url_the_cache_is_in_memory(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    cache = ResultCache.from_settings(Settings())
    assert cache.remote is None and cache.stats()["backend"] == "memory"
    assert asyncio.run(cache.health()) == {"backend": "memory", "status": "ok"}
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1")
    monkeypatch.setenv("TECHNIC_CACHE_TTL_S", "0")
    with pytest.raises(ValueError, match="TTL"):
        ResultCache.from_settings(Settings())
