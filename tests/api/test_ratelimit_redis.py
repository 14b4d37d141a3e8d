"""Rate-limit buckets shared through a real `redis-server` that these tests start and kill.

Two apps (`create_app` twice over one in-process backend, each with its own Redis client and
fault state) stand for two ingress replicas. With REDIS_URL set they share each key's bucket:
N requests per period in total, not 2N (and, as a control, 2N without Redis). Also: the 429's
Retry-After is the time until the next token (a request at that moment goes through), keys
and client addresses have separate buckets, bucket keys hold the key's SHA-256 and expire,
a flushed script cache is reloaded, Redis killed mid-run (still 200/429 from per-app buckets,
/readyz and /v1/stats say `local (redis degraded: ...)` and count fallbacks), back to shared
after a restart, and a Redis that never answers (one timeout, then local buckets at once).
Skipped, with the install command as the reason, when redis-server is absent.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import warnings

import pytest
from redis_support import REDIS, SKIP_REASON

from deployments.api.keys import RateLimiter
from deployments.api.main import create_app
from deployments.api.redis_limiter import SharedRateLimiter
from deployments.api.redis_store import RedisStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.skipif(REDIS is None, reason=SKIP_REASON)
pytest.importorskip("redis")

KEY_A, KEY_B, OPS = "alpha-secret-key-123", "beta-secret-key-456", "ops-secret-key-789"
ENV = ("TECHNIC_API_KEYS", "TECHNIC_API_KEY_HASHES", "TECHNIC_RATE_LIMIT", "REDIS_URL")


@pytest.fixture()
def apps(redis_server, warm, monkeypatch):
    """`apps(limit, keys=True, redis=True)`: two TestClients over one env, like 2 replicas."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.client().flushall()
    monkeypatch.setenv("TECHNIC_CACHE_RETRY_S", "1")
    monkeypatch.setenv("TECHNIC_CACHE_L1_ENTRIES", "0")

    def build(limit: str, keys: bool = True, redis: bool = True) -> tuple[TestClient, TestClient]:
        for name in ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TECHNIC_RATE_LIMIT", limit)
        if keys:
            monkeypatch.setenv("TECHNIC_API_KEYS", f"{KEY_A},{KEY_B},{OPS}")
        if redis:
            monkeypatch.setenv("REDIS_URL", redis_server.url)
        return TestClient(create_app(warm)), TestClient(create_app(warm))
    return build


def get(c: TestClient, key: str | None = KEY_A):  # type: ignore[no-untyped-def]
    r = c.get("/v1/sectors", headers={"X-API-Key": key} if key else {})
    assert r.status_code in (200, 429), (r.status_code, r.text)
    return r


def limiter_state(c: TestClient) -> dict:
    """/v1/stats's rate_limit (spends one token of OPS's own bucket)."""
    r = c.get("/v1/stats", headers={"X-API-Key": OPS})
    assert r.status_code == 200, r.text
    return r.json()["rate_limit"]


def test_two_apps_share_each_keys_bucket(apps):
    a, b = apps("5/min")
    with a, b:
        codes = [get(c).status_code for _ in range(5) for c in (a, b)]
        assert codes == [200] * 5 + [429] * 5  # N in total across both apps, not 2N
        assert [get(c, KEY_B).status_code for c in (a, b)] == [200, 200]  # its own bucket
        sa, sb = limiter_state(a), limiter_state(b)
    assert (sa["mode"], sa["status"], sb["mode"]) == ("shared", "ok", "shared")
    assert sa["limit"] == "5/60s" and sa["rejected"] + sb["rejected"] == 5
    assert sa["fallbacks"] == sb["fallbacks"] == 0 and sa["local_buckets"] == 0


def test_without_redis_each_app_has_its_own_buckets(apps):
    """The control: the same requests without REDIS_URL get 2N (per-replica buckets)."""
    a, b = apps("5/min", redis=False)
    with a, b:
        codes = [get(c).status_code for _ in range(6) for c in (a, b)]
        assert codes == [200] * 10 + [429] * 2
        assert limiter_state(a)["mode"] == "local"
        assert a.get("/readyz").json()["checks"]["rate_limit"]["mode"] == "local"


@pytest.mark.slow
def test_retry_after_is_when_the_next_token_is_back(apps):
    a, b = apps("3/6s")  # one token every 2 s
    with a, b:
        assert [get(c).status_code for c in (a, b, a)] == [200] * 3
        first = get(b)  # (Retry-After: the whole seconds until a token, on Redis's clock)
        assert first.status_code == 429 and first.headers["retry-after"] in ("1", "2")
        assert "3 requests per 6 s" in first.json()["detail"]
        time.sleep(int(first.headers["retry-after"]))
        assert get(b).status_code == 200  # the token Retry-After promised, on the other app
        again = get(a)
        assert again.status_code == 429 and again.headers["retry-after"] in ("1", "2")


def test_bucket_keys_expire_and_hold_no_raw_key(apps, redis_server):
    a, b = apps("4/10s")
    with a, b:
        t0 = time.monotonic()
        get(a), get(b), get(a, KEY_B)
        redis = redis_server.client()
        digest = {k: hashlib.sha256(k.encode()).hexdigest() for k in (KEY_A, KEY_B)}
        names = sorted(k.decode() for k in redis.keys("technic:rl:*"))
        assert names == sorted(f"technic:rl:v1:4/10000:key:{d}" for d in digest.values())
        for name in names:
            assert 0 < redis.pttl(name) <= 10_000
            stored = b"".join(b"".join(kv) for kv in redis.hgetall(name).items())
            assert not any(k.encode() in stored or k in name for k in digest)
        tokens = float(redis.hget(f"technic:rl:v1:4/10000:key:{digest[KEY_A]}", "tokens"))
        refill = 0.4 * (time.monotonic() - t0)  # 4 per 10 s, while the test ran
        assert 2.0 <= tokens <= min(4.0, 2.0 + refill + 0.01), (tokens, refill)  # 4 - 2 taken

        redis.script_flush()  # as after a restart or failover: EVALSHA gets NOSCRIPT
        assert get(b).status_code == 200
        assert limiter_state(b)["mode"] == "shared"
        assert a.get("/v1/stats", headers={"X-API-Key": OPS}).json()["cache"]["errors"] == 0


def test_open_api_buckets_by_client_address(apps, redis_server):
    a, b = apps("2/min", keys=False)
    with a, b:
        assert [get(c, None).status_code for c in (a, b, a)] == [200, 200, 429]
        (name,) = redis_server.client().keys("technic:rl:*")
    assert name == b"technic:rl:v1:2/60000:addr:testclient"


def test_redis_killed_mid_run_then_restarted(apps, redis_server):
    a, b = apps("3/min")
    with a, b:
        assert [get(c).status_code for c in (a, b)] == [200, 200]  # shared: 1 token left
        redis_server.stop()
        down_a = [get(a).status_code for _ in range(4)]
        down_b = [get(b).status_code for _ in range(4)]
        # each app's own full bucket: limited, never failed, never unlimited; R x N in all
        assert down_a == down_b == [200, 200, 200, 429]
        ready = a.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        check = ready.json()["checks"]["rate_limit"]
        assert check["mode"].startswith("local (redis degraded: ") and "Connection" in \
            check["mode"], check
        assert check["status"] == "degraded" and check["fallbacks"] == 4
        stats = limiter_state(a)
        assert stats["mode"].startswith("local (redis degraded: ")
        assert stats["fallbacks"] == 5 and stats["rejected"] == 1 and stats["local_buckets"] == 2

        redis_server.start()  # empty: the buckets start full again
        time.sleep(1.05)  # TECHNIC_CACHE_RETRY_S=1: the next call probes Redis
        assert [get(c).status_code for c in (a, b, a, b)] == [200, 200, 200, 429]
        for c in (a, b):
            assert c.get("/readyz").json()["checks"]["rate_limit"]["mode"] == "shared"
        assert limiter_state(a)["fallbacks"] == 5  # 4 key requests + the stats call, no more
        assert len(redis_server.client().keys("technic:rl:*")) == 2  # KEY_A and OPS


def test_a_redis_that_never_answers_costs_one_timeout_then_local_buckets():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}", 60,
                           timeout_s=0.1, retry_s=30)
        limiter = SharedRateLimiter(RateLimiter.parse("3/min"), store)

        async def run() -> list[tuple[float, float]]:
            out = []
            for _ in range(5):
                t0 = time.perf_counter()
                wait = await limiter.acquire(b"\x01" * 32)
                out.append((wait, time.perf_counter() - t0))
            return out

        out = asyncio.run(run())
    waits, times = [w for w, _ in out], [t for _, t in out]
    assert waits[:3] == [0.0] * 3 and waits[3] == pytest.approx(20.0, abs=0.1), waits
    assert times[0] >= 0.05, times  # waited for Redis until the timeout; the others did not ask
    stats = limiter.stats()
    assert stats["mode"].startswith("local (redis degraded: ") and "Timeout" in stats["mode"]
    assert (stats["fallbacks"], stats["rejected"], store.errors) == (5, 2, 1)
