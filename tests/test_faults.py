"""Faults under load, on the real Serve app: replicas killed mid-burst, a store rewritten mid-burst.

1. `test_replica_deaths_during_a_burst`: WORKERS threads post uncached scans in a loop; the
   Indicators replica is killed (`ray.kill`, by its actor), then the AlphaModel replica. Serve
   starts replacements; the ingress retries the idempotent evaluate/predict calls that died
   with their replica (`deployments.ingress.retrying`). Asserted: 0 failed scans, every answer
   complete (attempted = kept + rejected + errors, equal to `run_scan`'s counts and symbols),
   /readyz 503 while the only AlphaModel replica is gone and 200 again after.
2. `test_store_rewrite_never_mixes_versions`: the store is rewritten (another seed) while scans
   run; every answer's rows equal `run_scan` on the version its meta names, never a mix.
The figures go to RELIABILITY.md; `FAULTS_REPORT=path` writes them as JSON.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serve_support import demo_store, parquet_frame, running_app

from technic_v4.data import store
from technic_v4.data_engine import StoreLoader
from technic_v4.scanner_core import ScanConfig, run_scan

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
WORKERS = 4
LIMITS = (5, 25, 0)  # 0: no limit, every kept row


def config(limit: int) -> ScanConfig:
    return ScanConfig(max_symbols=limit or None)


def replica_actor(deployment: str):
    """The actor of the (first) live replica of `deployment` in app "technic"."""
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["name"].startswith(f"SERVE_REPLICA::technic#{deployment}#"):
            return ray.get_actor(a["name"], namespace=a["namespace"]), a["name"]
    raise LookupError(f"no replica of {deployment}")


def replica_names(deployment: str) -> set[str]:
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(f"SERVE_REPLICA::technic#{deployment}#")}


class Burst:
    """WORKERS threads posting scans until stopped; every outcome recorded."""

    def __init__(self, url: str, fmt: str = "json"):
        self.url, self.fmt = url, fmt
        self.stop = threading.Event()
        self.results: list[tuple[int, dict | None, bytes, dict]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(WORKERS)]

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=90) as c:
            n = i
            while not self.stop.is_set():
                limit = LIMITS[n % len(LIMITS)]
                n += 1
                body = {"format": self.fmt, **({"limit": limit} if limit else {})}
                try:
                    r = c.post("/v1/scan", json=body, headers={"Cache-Control": "no-cache"})
                    out = (r.status_code, body, r.content, dict(r.headers))
                except httpx.HTTPError as exc:  # a dropped connection counts as a failure
                    out = (-1, body, repr(exc).encode(), {})
                with self.lock:
                    self.results.append(out)

    def __enter__(self) -> Burst:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)


def wait_until(pred, timeout: float, every: float = 0.25) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(every)
    raise TimeoutError(f"not within {timeout} s")


def report(name: str, figures: dict) -> None:
    print(f"\n{name}: {json.dumps(figures)}")
    path = os.environ.get("FAULTS_REPORT")
    if path:
        old = json.loads(Path(path).read_text()) if Path(path).exists() else {}
        Path(path).write_text(json.dumps({**old, name: figures}, indent=2))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("faults"), ENV, "technic", chunk_size=128) as a:
        yield a


@pytest.fixture()
def reference(app, monkeypatch):
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(app["models"]))
    return lambda cfg: run_scan(cfg, loader=StoreLoader(app["data"]))


def test_replica_deaths_during_a_burst(app, reference):
    ref = {limit: reference(config(limit)) for limit in LIMITS}
    url = app["url"]

    def readyz() -> int:
        try:
            return httpx.get(f"{url}/readyz", timeout=10).status_code
        except httpx.HTTPError:
            return -1

    assert readyz() == 200
    killed, not_ready_seen, recovery = [], {}, {}
    t0 = time.monotonic()
    with Burst(url) as burst:
        time.sleep(2)
        for deployment in ("Indicators", "AlphaModel"):
            actor, name = replica_actor(deployment)
            ray.kill(actor, no_restart=True)
            killed.append(deployment)
            t_kill = time.monotonic()
            codes: list[int] = []

            def replaced(codes=codes, name=name, deployment=deployment) -> bool:
                codes.append(readyz())
                names = replica_names(deployment)
                return codes[-1] == 200 and name not in names and len(names) >= 1

            wait_until(replaced, timeout=90)
            recovery[deployment] = round(time.monotonic() - t_kill, 1)
            not_ready_seen[deployment] = any(c != 200 for c in codes)
            time.sleep(2)  # scans on the replacement, before the next fault
    elapsed = round(time.monotonic() - t0, 1)

    status = Counter(code for code, *_ in burst.results)
    failures = [(c, b, body[:300]) for c, b, body, _ in burst.results if c != 200]
    for code, body, content, _ in burst.results:
        if code != 200:
            continue
        out = json.loads(content)
        meta, rows = out["meta"], out["rows"]
        frame, st = ref[body.get("limit", 0)]
        assert meta["attempted"] == meta["kept"] + meta["rejected"] + meta["errors"], meta
        assert (meta["attempted"], meta["kept"], meta["rejected"], meta["errors"]) == (
            st.attempted, st.kept, st.rejected, st.errors)
        key = "symbol" if rows and "symbol" in rows[0] else "Symbol"
        assert [r[key] for r in rows] == frame[key].tolist()
    report("replica_deaths", {"scans": len(burst.results), "failed": len(failures),
                              "status": dict(status), "faults": killed,
                              "recovery_s": recovery, "readyz_not_ready_seen": not_ready_seen,
                              "seconds": elapsed, "workers": WORKERS})
    assert not failures, failures[:3]
    assert len(burst.results) >= 3 * WORKERS
    assert not_ready_seen["AlphaModel"], "readyz stayed 200 with no AlphaModel replica"
    assert readyz() == 200


def test_store_rewrite_never_mixes_versions(app, reference):
    old = store.read_manifest(app["data"]).data_version
    refs = {old: {limit: reference(config(limit))[0] for limit in LIMITS}}
    with Burst(app["url"], fmt="parquet") as burst:
        time.sleep(1.5)
        demo_store(app["data"], seed=7)
        new = store.read_manifest(app["data"]).data_version
        time.sleep(4)
    assert new != old
    refs[new] = {limit: reference(config(limit))[0] for limit in LIMITS}
    seen: Counter = Counter()
    failed = [(c, b, content[:300]) for c, b, content, _ in burst.results if c != 200]
    for code, body, content, headers in burst.results:
        if code != 200:
            continue
        version = headers["x-technic-data-version"]
        assert version in refs, version
        seen[version] += 1
        want = refs[version][body.get("limit", 0)]
        pd.testing.assert_frame_equal(parquet_frame(content), want, check_exact=True)
    report("store_rewrite", {"scans": len(burst.results), "failed": len(failed),
                             "by_version": {"old": seen[old], "new": seen[new]}})
    assert not failed, failed[:3]
    assert seen[new] >= 1


def test_retrying_is_bounded_and_only_for_dead_replicas():
    """The ingress's retry policy without Ray: replica deaths retried RETRIES times, then
    raised; any other error raised at once, never resent."""
    import asyncio

    from ray.exceptions import ActorDiedError

    from deployments.ingress import RETRIES, retrying

    def flaky(errors: list[BaseException]):
        calls = []

        async def call():
            calls.append(1)
            if len(calls) <= len(errors):
                raise errors[len(calls) - 1]
            return "ok"
        return call, calls

    call, calls = flaky([ActorDiedError()] * RETRIES)
    assert asyncio.run(retrying(call, "x", backoff_s=0)) == "ok" and len(calls) == RETRIES + 1
    call, calls = flaky([ActorDiedError()] * (RETRIES + 1))
    with pytest.raises(ActorDiedError):
        asyncio.run(retrying(call, "x", backoff_s=0))
    assert len(calls) == RETRIES + 1
    call, calls = flaky([ValueError("bad request")])
    with pytest.raises(ValueError):
        asyncio.run(retrying(call, "x", backoff_s=0))
    assert len(calls) == 1
