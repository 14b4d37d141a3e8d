"""Faults under load, on the real Serve app: replicas killed mid-run, a store rewritten mid-burst.

1. `test_replica_deaths_under_locust`: a headless Locust run (a subprocess: Locust's gevent
   patching must not meet this process's ssl; WORKERS users of
   loadtests/locustfile.py:UncachedScanUser, bounded by MAX_RUN_S) posts uncached scans back
   to back, each answer checked by Locust against `run_scan` (counts and symbols, through
   TECHNIC_LOCUST_EXPECT) and marked failed otherwise. Meanwhile the Indicators replica is
   killed (`ray.kill`, by its actor), then the AlphaModel replica; after each replacement
   SETTLE more scans are answered, then Locust is stopped (scans in flight finish and count).
   Serve starts replacements; the ingress retries the idempotent evaluate/predict calls that
   died with their replica (`deployments.executor.retrying`). Asserted from Locust's exit code
   and CSVs: 0 failed requests, every limit scanned; /readyz 503 while the only AlphaModel
   replica is gone and 200 again after.
2. `test_locust_flags_a_wrong_answer`: the same user against a wrong expectation fails every
   scan, so a 0 above means the answers were checked and right.
3. `test_store_rewrite_never_mixes_versions`: the store is rewritten (another seed) while
   WORKERS threads scan (`Burst`); every answer's rows equal `run_scan` on the version its
   meta names, frame for frame, never a mix.
The figures go to RELIABILITY.md; `FAULTS_REPORT=path` writes them as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serve_support import demo_store, parquet_frame, running_app

from technic_v4.data import store
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "loadtests"))
from run_headless import LocustResult, read_stats, start_locust, stop_locust  # noqa: E402

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
WORKERS = 4
LIMITS = (5, 25, 0)  # 0: no limit, every kept row
HANG_GUARD_S = 600  # a wait this long is a hang; recovery times are reported, not bounded
MAX_RUN_S = 4 * HANG_GUARD_S  # Locust's --run-time: stopped once the faults are over
STOP_TIMEOUT_S = 300  # scans in flight at the end finish and are counted (a hang guard)
SETTLE = 3 * WORKERS  # scans answered before the first fault and after each replacement


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
    return lambda cfg: run_scan(cfg, loader=StoreReader(app["data"]))


def expectation(reference, path: Path) -> Path:
    """`run_scan`'s answer per limit, as UncachedScanUser reads it (TECHNIC_LOCUST_EXPECT)."""
    want = {}
    for limit in LIMITS:
        frame, st = reference(config(limit))
        key = "symbol" if "symbol" in frame else "Symbol"
        want[str(limit)] = {"attempted": st.attempted, "kept": st.kept,
                            "rejected": st.rejected, "errors": st.errors,
                            "symbols": frame[key].tolist()}
    path.write_text(json.dumps(want))
    return path


def locust_run(url: str, prefix: Path, expect: Path,
               during: Callable[[Callable[[], int]], None]) -> LocustResult:
    """A headless Locust run of WORKERS UncachedScanUsers, bounded by MAX_RUN_S, for as long
    as `during(served)` takes (`served()`: requests Locust has finished so far, read from its
    live CSV); then stopped, its in-flight scans finished and counted."""
    proc = start_locust(url, WORKERS, f"{MAX_RUN_S}s", "UncachedScanUser", prefix,
                        env={"TECHNIC_LOCUST_EXPECT": str(expect)},
                        stop_timeout_s=STOP_TIMEOUT_S)

    def served() -> int:
        try:
            return read_stats(prefix).requests
        except (OSError, KeyError, ValueError):  # not written yet, or mid-rewrite
            return 0

    try:
        during(served)
        assert proc.poll() is None, f"Locust ended before the test was done: {MAX_RUN_S=}"
    finally:
        code = stop_locust(proc, STOP_TIMEOUT_S + 30)
    return read_stats(prefix, code)


def test_replica_deaths_under_locust(app, reference, tmp_path):
    url = app["url"]

    def readyz() -> int:
        try:
            return httpx.get(f"{url}/readyz", timeout=HANG_GUARD_S).status_code
        except httpx.HTTPError:
            return -1

    assert readyz() == 200
    killed, not_ready_seen, recovery = [], {}, {}

    def faults(served: Callable[[], int]) -> None:
        wait_until(lambda: served() >= SETTLE, timeout=HANG_GUARD_S)  # the load is on
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

            wait_until(replaced, timeout=HANG_GUARD_S)
            recovery[deployment] = round(time.monotonic() - t_kill, 1)
            not_ready_seen[deployment] = any(c != 200 for c in codes)
            before = served()  # scans answered on the replacement, before the next fault
            wait_until(lambda before=before: served() >= before + SETTLE,
                       timeout=HANG_GUARD_S)

    t0 = time.monotonic()
    result = locust_run(url, tmp_path / "locust",
                        expectation(reference, tmp_path / "expect.json"), faults)
    elapsed = round(time.monotonic() - t0, 1)
    total = result.rows["Aggregated"]
    by_name = {name: int(r["Request Count"]) for name, r in result.rows.items()
               if name != "Aggregated"}
    report("replica_deaths", {
        "requests": result.requests, "failed": result.failed, "by_name": by_name,
        "faults": killed, "recovery_s": recovery, "readyz_not_ready_seen": not_ready_seen,
        "locust_exit_code": result.exit_code, "users": WORKERS,
        "latency_ms": {k: total[k] for k in ("50%", "99%", "Max Response Time")},
        "seconds": elapsed})
    log_tail = result.log.read_text(errors="replace")[-1500:]
    assert result.failed == 0 and not result.failures, (result.failures[:3], log_tail)
    assert result.exit_code == 0, log_tail
    assert set(by_name) == {f"/v1/scan [no-cache, limit {limit or 'none'}]" for limit in LIMITS}
    assert result.requests >= 3 * WORKERS
    assert not_ready_seen["AlphaModel"], "readyz stayed 200 with no AlphaModel replica"
    # ready again (a loaded box may see Serve replace a replica whose health check timed out)
    wait_until(lambda: readyz() == 200, timeout=HANG_GUARD_S)


def test_locust_flags_a_wrong_answer(app, reference, tmp_path):
    """Against an expectation with the symbols in reverse order, every scan counts as failed:
    the validation in UncachedScanUser is live, so the 0 failures above mean something."""
    expect = expectation(reference, tmp_path / "expect.json")
    want = json.loads(expect.read_text())
    for answer in want.values():
        answer["symbols"] = answer["symbols"][::-1]
    expect.write_text(json.dumps(want))
    result = locust_run(app["url"], tmp_path / "locust", expect,
                        lambda served: wait_until(lambda: served() >= WORKERS,
                                                       timeout=HANG_GUARD_S))
    assert result.requests >= 1 and result.failed == result.requests, result.rows
    assert result.exit_code == 1
    assert result.failures and all("symbols differ from the expected answer" in f["Error"]
                                   for f in result.failures), result.failures


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

    from deployments.executor import RETRIES, retrying

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
