"""The issue-16 checks, shared by the Serve app (tests/serve/test_edge_serve.py) and the
in-process app (tests/serve/test_edge_local.py), both run by their launchers behind the edge.

Each `check_*` drives one hostile behaviour against a running app (`App`), asserts what the
issue asks and returns its figures, which the tests print and (with EDGE_REPORT=path) write to
a JSON file for RELIABILITY.md.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
from edge_support import (
    HANG_GUARD_S,
    Probe,
    address,
    find,
    haproxy_info,
    non_reading,
    raise_fd_limit,
    raw,
    request,
    rss_mb,
    slow_bodies,
    socket_closed_by_peer,
    start_flips,
    start_idle_flood,
)
from serve_support import tiny_models

from deployments.api.schemas import ScanRequest
from technic_v4.alpha import inference, registry
from technic_v4.data import store
from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import run_scan

KEY = "edge-test-key"
TRUSTED_PROXY = "127.0.9.9"
FAILED_KEYS = 10  # TECHNIC_AUTH_FAILURE_LIMIT = 10/min in these apps
# Short edge timeouts keep the module quick; the checks derive their expectations from them.
EDGE_ENV = {
    "TECHNIC_API_KEYS": KEY,
    "TECHNIC_AUTH_FAILURE_LIMIT": f"{FAILED_KEYS}/min",
    "TECHNIC_TRUSTED_PROXIES": TRUSTED_PROXY,
    "TECHNIC_EDGE_REQUEST_TIMEOUT_S": "4",
    "TECHNIC_EDGE_KEEPALIVE_TIMEOUT_S": "3",
    "TECHNIC_EDGE_CLIENT_TIMEOUT_S": "5",
    "TECHNIC_EDGE_QUEUE_TIMEOUT_S": "5",
    "OMP_WAIT_POLICY": "PASSIVE",
}
REQUEST_TIMEOUT_S = 4.0
KEEPALIVE_S = 3.0
CLIENT_TIMEOUT_S = 5.0
QUEUE_TIMEOUT_S = 5.0
CONNS_PER_ADDR = 64   # the defaults of Settings
INFLIGHT_PER_ADDR = 16
BACKEND_MAXCONN = 128
AUTH = [(b"X-API-Key", KEY.encode())]
PAUSE_S = 0.02  # between one client's requests: load enough, and the box left to the rest
SERVE_HEADERS = (b"x-request-timeout-seconds", b"x-request-disconnect-disabled",
                 b"x-session-id", b"x-request-id")


@dataclass
class App:
    """A running app behind the edge: public port, loopback port of the app itself, the
    launcher's pid, the server process to sample for memory (Serve's proxy / uvicorn)."""

    port: int
    backend: int
    pid: int
    server_pid: int
    data: Path
    models: Path
    stores: dict[str, Path] = field(default_factory=dict)  # data_version -> a store with it
    name: str = ""


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: {json.dumps(figures)}")
    path = os.environ.get("EDGE_REPORT")
    if path:
        old = json.loads(Path(path).read_text()) if Path(path).exists() else {}
        Path(path).write_text(json.dumps({**old, name: figures}, indent=2))


def post_scan(app: App, body: dict[str, Any], src: str, *, key: str = KEY,
              headers: list[tuple[bytes, bytes]] | None = None, timeout: float = 60):
    return request(app.port, raw("POST", "/v1/scan", [(b"X-API-Key", key.encode()),
                                                      *(headers or [])],
                                 json.dumps(body).encode()), src, timeout)


def frame_of(body: bytes, fmt: str) -> pd.DataFrame:
    if fmt == "arrow":
        return pa.ipc.open_stream(body).read_pandas()
    return pd.read_parquet(io.BytesIO(body))


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Exactly equal frames (values, NaN where NaN, dtypes, index); `equals` is the fast
    exact check, assert_frame_equal only says where they differ."""
    if not (got.equals(want) and list(got.dtypes) == list(want.dtypes)):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        raise AssertionError("frames differ")


def reference(body: dict[str, Any], data: Path, models: Path) -> pd.DataFrame:
    """`run_scan` on `data` with `models`, for the HTTP request body `body`."""
    return run_scan(ScanRequest.model_validate(body).to_config(), loader=StoreReader(data),
                    models_dir=models)[0]


# -- 1 -----------------------------------------------------------------------------------------

def check_slow_bodies(app: App, n: int = 150, seconds: float = 6.0) -> dict[str, Any]:
    """`n` clients (one address each) trickle request bodies a byte a second for `seconds`,
    reconnecting after each answer, while a probe asks /healthz and a small uncached scan
    every 0.5 s: every probe answers 200 (its worst latency reported), every slow body gets
    408, not before the edge's request timeout."""
    probe = Probe(app.port, KEY, block=21)
    probe.start()
    stats = slow_bodies(app.port, n, seconds, block=20, key=KEY)
    results = probe.stop()
    codes = Counter(s for s, _ in stats.answers)
    times = sorted(t for _, t in stats.answers)
    figures = {"clients": n, "seconds": seconds, "slow_requests": len(stats.answers),
               "answers": dict(codes), "answered_after_s": [round(times[0], 2),
                                                            round(times[-1], 2)],
               "probes": len(results), "healthz_max_s": round(probe.worst("healthz"), 3),
               "scan_max_s": round(probe.worst("scan"), 3)}
    report(f"{app.name}.slow_bodies", figures)
    assert {s for _, s, _ in results} == {200}, results
    assert set(codes) == {408} and len(stats.answers) >= n, figures
    assert REQUEST_TIMEOUT_S - 0.3 <= times[0], figures
    return figures


# -- 2 -----------------------------------------------------------------------------------------

def check_timeout_headers(app: App, direct: bool) -> dict[str, Any]:
    """Serve's per-request timeout header never reaches Serve through the edge. Shown with a
    value that would *shorten* the timeout, which is observable: 0.001 s makes Serve answer
    408 (checked on the app's loopback port when `direct`); through the edge the same request
    is a 200, in every spelling. Any other value (0, -1, nan: "no timeout") is deleted by the
    same rule, so a client can neither disable nor lengthen the server's timeout."""
    spellings = [b"x-request-timeout-seconds", b"X-Request-Timeout-Seconds",
                 b"x_request_timeout_seconds", b"X_REQUEST-TIMEOUT_seconds"]
    out: dict[str, Any] = {}
    if direct:
        r = request(app.backend, raw("GET", "/v1/universe",
                                     [*AUTH, (b"x-request-timeout-seconds", b"0.001")]))
        out["direct_0.001"] = r.status
        assert r.status == 408, (r.status, r.body[:200])
    for i, name in enumerate(spellings):
        for j, value in enumerate((b"0.001", b"0", b"-1", b"nan", b"inf", b"1e9")):
            r = request(app.port, raw("GET", "/v1/universe", [*AUTH, (name, value)]),
                        address(i * 10 + j, 22))
            out[f"{name.decode()}={value.decode()}"] = r.status
            assert r.status == 200, (name, value, r.status, r.body[:200])
    report(f"{app.name}.timeout_headers", out)
    return out


# -- 3 -----------------------------------------------------------------------------------------

BAD_VALUES = (b"\xff\xfe", b"\x80", b"\xc3\x28", b"caf\xe9", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
              b"\x01\x7f", b"ok\xff,\xfe")
HEADER_NAMES = (*SERVE_HEADERS, b"X-Request-Id", b"x_session_id", b"serve_multiplexed_model_id",
                b"x-api-key", b"accept", b"content-type", b"cache-control", b"x-forwarded-for",
                b"user-agent", b"cookie", b"authorization", b"origin", b"accept-encoding",
                b"if-none-match", b"range", b"x-technic-anything")


def check_header_bytes(app: App, direct: bool) -> dict[str, Any]:
    """Every byte string in every header (the four Serve parses strictly, their spellings,
    the ones the app reads, any other), on a health check, a listing and a scan: never a 5xx.
    Also bytes in a header *name* and NUL/CR in a value (HAProxy refuses: 400). With `direct`,
    the control: the four Serve headers sent to the app's loopback port are 500s (what the
    edge prevents)."""
    routes = [("GET", "/healthz", b""), ("GET", "/v1/universe", b""),
              ("POST", "/v1/scan", b'{"limit": 2}')]
    codes: Counter[int | None] = Counter()
    worst: list[tuple[bytes, bytes, str, int | None]] = []
    i = 0
    for name in HEADER_NAMES:
        for value in BAD_VALUES:
            for method, path, body in routes:
                headers = [(name, value)] if name == b"x-api-key" else [*AUTH, (name, value)]
                r = request(app.port, raw(method, path, headers, body), address(i, 23))
                i += 1
                codes[r.status] += 1
                if r.status is None or r.status >= 500:
                    worst.append((name, value, path, r.status))
    for extra in ([(b"x-\xff\xfe", b"1")], [(b"x-nul", b"a\x00b")], [(b"x-ok", b"a\rb")]):
        r = request(app.port, raw("GET", "/healthz", extra), address(i, 23))
        i += 1
        codes[r.status] += 1
        if r.status is None or r.status >= 500:
            worst.append((extra[0][0], extra[0][1], "/healthz", r.status))
    figures: dict[str, Any] = {"requests": i, "statuses": {str(k): v for k, v in codes.items()}}
    if direct:
        figures["direct_to_serve"] = {
            h.decode(): request(app.backend, raw("GET", "/healthz", [(h, b"\xff\xfe")])).status
            for h in SERVE_HEADERS}
    report(f"{app.name}.header_bytes", figures)
    assert not worst, worst[:10]
    if direct:
        assert set(figures["direct_to_serve"].values()) == {500}, figures
    return figures


# -- 4 -----------------------------------------------------------------------------------------

FLIP_SEEDS = (1, 7)
FLIP_START = "2025-01-02"  # ~460 sessions: a rewrite of the 500-symbol store costs ~0.2 s


def demo_markets(n_symbols: int, seeds: tuple[int, ...] = FLIP_SEEDS,
                 start: str = FLIP_START) -> list[Any]:
    return [generate_demo_market(DemoSpec(n_symbols=n_symbols, seed=s, start=start))
            for s in seeds]


def write_market(data: Path, m: Any) -> str:
    return store.write_store(data, sessions=m.sessions, universe=m.universe, open=m.open,
                             high=m.high, low=m.low, close=m.close, volume=m.volume,
                             source="synthetic").data_version


FLIP_BODIES = ({"format": "parquet"}, {"format": "arrow", "limit": 25},
               {"format": "parquet", "sectors": ["Energy"]},
               {"format": "arrow", "limit": 10, "sort_by": "RSI"})


def check_store_flips(app: App, n_symbols: int, restore: Any, answers: int = 1000,
                      flips: int = 50, workers: int = 3, every_s: float = 0.2
                      ) -> dict[str, Any]:
    """`workers` clients scan (Parquet and Arrow; 3 of 4 requests may come from the result
    cache) while another process rewrites the app's store `flips` times, alternating between
    two demo markets of different seeds (each rewrite: `write_store`, as `technic data ingest`
    does); the clients go on until `answers` answers. Every answer's frame equals `run_scan`
    on the store version its X-Technic-Data-Version names, exactly, and its X-Technic-Models
    names the models that made it. The app's store is `restore` after."""
    markets = demo_markets(n_symbols)
    versions = {}
    for k, m in enumerate(markets):  # a store of each version to compute references from
        ref_dir = app.data.parent / f"ref-{k}"
        versions[write_market(ref_dir, m)] = ref_dir
    refs = {(v, i): reference(body, d, app.models) for v, d in versions.items()
            for i, body in enumerate(FLIP_BODIES)}
    models_version = inference.ModelSet(app.models).state()["models_version"]
    results: list[tuple[int, int, dict[str, str], bytes]] = []
    lock, halt = threading.Lock(), threading.Event()

    def client(w: int) -> None:
        transport = httpx.HTTPTransport(local_address=address(w, 24))
        with httpx.Client(base_url=f"http://127.0.0.1:{app.port}", transport=transport,
                          headers={"X-API-Key": KEY}, timeout=60) as c:
            n = w
            while not halt.is_set():
                i = n % len(FLIP_BODIES)
                fresh = {"Cache-Control": "no-cache"} if n % 4 == 0 else {}
                n += 1
                r = c.post("/v1/scan", json=FLIP_BODIES[i], headers=fresh)
                with lock:
                    results.append((i, r.status_code, dict(r.headers), r.content))
                time.sleep(PAUSE_S)

    write_market(app.data, markets[0])
    out = app.data.parent / "flips.json"
    threads = [threading.Thread(target=client, args=(w,)) for w in range(workers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    flipper = start_flips(app.data, n_symbols, FLIP_START, FLIP_SEEDS, flips, every_s, out)
    try:
        while flipper.poll() is None or len(results) < answers:
            assert time.monotonic() - t0 < HANG_GUARD_S, ("hung", flipper.poll(),
                                                          len(results))
            time.sleep(0.2)
    finally:
        halt.set()
        for t in threads:
            t.join(60)
        if flipper.poll() is None:
            flipper.kill()
        write_market(app.data, restore)
    seconds = round(time.monotonic() - t0, 1)
    assert flipper.returncode == 0
    flipped = json.loads(out.read_text())
    seen: Counter[str] = Counter()
    how: Counter[str] = Counter()
    checked: set[tuple[str, int, int]] = set()
    # A scan whose reads keep losing their files to newer rewrites (every ~0.5 s here) may end
    # in an honest 503 + Retry-After ("the store kept changing"): allowed, counted, never a
    # 5xx of another kind, never an answer under a wrong label.
    retry = [body[:300].decode(errors="replace") for _, code, headers, body in results
             if code == 503 and headers.get("retry-after") and b"store" in body]
    failed = [(code, body[:3000]) for _, code, headers, body in results
              if code != 200 and not (code == 503 and headers.get("retry-after")
                                      and b"store" in body)]
    for i, code, headers, body in results:
        if code != 200:
            continue
        version = headers["x-technic-data-version"]
        assert version in versions, version
        assert headers["x-technic-models"] == models_version, headers
        seen[version] += 1
        how[headers.get("x-technic-cache", "")] += 1
        key = (version, i, hash(body))  # a cached answer repeats its bytes: compare once
        if key not in checked:
            assert_same(frame_of(body, FLIP_BODIES[i]["format"]), refs[key[:2]])
            checked.add(key)
    figures = {"answers": len(results), "distinct_bodies_compared": len(checked),
               "flips": len(flipped["versions"]), "seconds": seconds,
               "rewrite_s_median": statistics.median(flipped["seconds"]),
               "by_version": list(seen.values()), "cache": dict(how),
               "retry_503": len(retry), "retry_503_detail": retry[:2],
               "failed": len(failed)}
    report(f"{app.name}.store_flips", figures)
    assert not failed, failed[:3]  # (the share of honest 503s is a figure: it grows with load)
    assert len(flipped["versions"]) == flips and set(flipped["versions"]) == set(versions)
    assert len(seen) == 2, figures  # both versions answered, each labelled as itself
    return figures


# -- 5 -----------------------------------------------------------------------------------------

def model_sets(root: Path) -> dict[str, Path]:
    """Model folders by models_version: seeds 0 and 1 and the two mixes of them (what a scan
    sees while one horizon is updated before the other)."""
    a, b = tiny_models(root / "set0", seed=0), tiny_models(root / "set1", seed=1)
    sets = {}
    for name, (m5, m10) in {"00": (a, a), "11": (b, b), "01": (a, b), "10": (b, a)}.items():
        d = root / f"mix{name}"
        d.mkdir(parents=True, exist_ok=True)
        for h, src in ((5, m5), (10, m10)):
            for p in registry.paths(src, registry.model_id(h)):
                shutil.copyfile(p, d / p.name)
        sets[str(inference.ModelSet(d).state()["models_version"])] = d
    return sets


def copy_model_files(src: Path, dst: Path, metadata_first: bool = True) -> None:
    """Copy both horizons' files from `src` into `dst` in place, as `cp` would: every
    metadata file first, then the model files (the order that used to poison the cache)."""
    pairs = [registry.paths(src, registry.model_id(h)) for h in inference.HORIZONS]
    order = ([meta for _, meta in pairs] + [model for model, _ in pairs] if metadata_first
             else [model for model, _ in pairs] + [meta for _, meta in pairs])
    for path in order:
        shutil.copyfile(path, dst / path.name)


MODEL_BODIES = ({"format": "parquet"}, {"format": "parquet", "limit": 25})
SETTLE_S = 2.5  # > the ingress's model-version TTL (1 s) + a scan


def check_model_update(app: App, root: Path, cycles: int = 1, workers: int = 4
                       ) -> dict[str, Any]:
    """Model updates copied metadata-first into the live models folder (seed 0 -> seed 1 ->
    seed 0 ..., `cycles` times) while `workers` clients scan, mostly from the result cache:
    every answer's frame equals `run_scan` with the model set its X-Technic-Models names
    (alpha columns included, exactly), and once an update is SETTLE_S old, every answer,
    cached or not, names the new set."""
    sets = model_sets(root)
    v0 = str(inference.ModelSet(root / "set0").state()["models_version"])
    v1 = str(inference.ModelSet(root / "set1").state()["models_version"])
    refs = {(v, i): reference(body, app.data, d) for v, d in sets.items()
            for i, body in enumerate(MODEL_BODIES)}
    assert not refs[(v0, 0)].equals(refs[(v1, 0)]), "the two model sets must differ"
    copy_model_files(root / "set0", app.models)
    wait_for_models(app, v0)
    results: list[tuple[float, int, int, dict[str, str], bytes]] = []
    lock, halt = threading.Lock(), threading.Event()

    def client(w: int) -> None:
        transport = httpx.HTTPTransport(local_address=address(w, 25))
        with httpx.Client(base_url=f"http://127.0.0.1:{app.port}", transport=transport,
                          headers={"X-API-Key": KEY}, timeout=60) as c:
            n = w
            while not halt.is_set():
                i = n % len(MODEL_BODIES)
                fresh = {"Cache-Control": "no-cache"} if w == 0 and n % 3 == 0 else {}
                n += 1
                t = time.monotonic()
                r = c.post("/v1/scan", json=MODEL_BODIES[i], headers=fresh)
                with lock:
                    results.append((t, i, r.status_code, dict(r.headers), r.content))
                time.sleep(PAUSE_S)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    settled: list[tuple[float, float, str]] = []  # (from, to, version every answer must name)
    try:
        time.sleep(1.0)
        current = v0
        for _ in range(cycles):
            for target, src in ((v1, "set1"), (v0, "set0")):
                pairs = [registry.paths(root / src, registry.model_id(h))
                         for h in inference.HORIZONS]
                for _, meta in pairs:  # metadata first...
                    shutil.copyfile(meta, app.models / meta.name)
                time.sleep(1.5)      # ...scans (and cache fills) meanwhile...
                for model, _ in pairs:  # ...then the model files
                    shutil.copyfile(model, app.models / model.name)
                t_done = time.monotonic()
                time.sleep(SETTLE_S + 2.0)
                settled.append((t_done + SETTLE_S, time.monotonic(), target))
                current = target
    finally:
        halt.set()
        for t in threads:
            t.join(60)
    assert current == v0
    failed = [(code, body[:200]) for _, _, code, _, body in results if code != 200]
    by: Counter[tuple[str, str]] = Counter()
    checked: set[tuple[str, int, int]] = set()
    for t, i, code, headers, body in results:
        if code != 200:
            continue
        version = headers["x-technic-models"]
        assert version in sets, version
        if (version, i, hash(body)) not in checked:
            assert_same(frame_of(body, "parquet"), refs[(version, i)])
            checked.add((version, i, hash(body)))
        by[(version, headers.get("x-technic-cache", ""))] += 1
        for start, end, want in settled:
            if start <= t <= end:
                assert version == want, (t - start, version, want, headers)
    figures = {"answers": len(results), "updates": 2 * cycles,
               "by_version_and_cache": {f"{'v0' if v == v0 else 'v1' if v == v1 else v}/{c}": k
                                        for (v, c), k in by.items()}}
    report(f"{app.name}.model_update", figures)
    assert not failed, failed[:3]
    assert by[(v1, "hit")] + by[(v1, "shared")] >= 1 and by[(v0, "hit")] >= 1, figures
    return figures


def wait_for_models(app: App, version: str, timeout_s: float = HANG_GUARD_S) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        r = post_scan(app, {"limit": 1}, address(0, 26), headers=[(b"Cache-Control",
                                                                  b"no-cache")])
        if r.status == 200 and r.headers.get("x-technic-models") == version:
            return
        time.sleep(0.5)
    raise TimeoutError(f"models {version} not in use after {timeout_s} s")


# -- 10 ----------------------------------------------------------------------------------------

def check_degenerate_alpha(app: App, root: Path) -> dict[str, Any]:
    """Models trained on N(0, 1) features (what tests/serve_support.tiny_models were until
    issue 16, and what the README screenshot showed: Alpha5d 1.65% / Alpha10d 1.62% on all 62
    rows) give every scanned symbol one forecast. The scan then says alpha is unavailable for
    both horizons with the reason, the columns are null, never a column of equal numbers."""
    flat = tiny_models(root / "flat", realistic=False)
    held = tiny_models(root / "held", seed=0)
    flat_version = str(inference.ModelSet(flat).state()["models_version"])
    copy_model_files(flat, app.models, metadata_first=False)
    try:
        wait_for_models(app, flat_version)
        r = post_scan(app, {"sectors": ["Information Technology"]}, address(1, 26),
                      headers=[(b"Cache-Control", b"no-cache")])
        assert r.status == 200, r.body[:300]
        body = json.loads(r.body)
        alpha = body["meta"]["alpha"]
        rows = body["rows"]
        figures = {"rows": len(rows), "available": alpha["available"],
                   "reason": alpha.get("reason")}
        assert len(rows) >= inference.DEGENERATE_MIN_ROWS
        assert alpha["available"] is False
        for h in ("5d", "10d"):
            assert (f"alpha_{h} gives every scanned symbol the same forecast"
                    in alpha["reason"]), alpha["reason"]
            assert alpha["models"][f"alpha_{h}"]["available"] is False
        assert all(row.get(c) is None for row in rows
                   for c in ("Alpha5d", "Alpha10d", "AlphaScore")), rows[0]
        # the realistic tiny models tell the same rows apart
        copy_model_files(held, app.models, metadata_first=False)
        wait_for_models(app, str(inference.ModelSet(held).state()["models_version"]))
        r = post_scan(app, {"sectors": ["Information Technology"]}, address(2, 26),
                      headers=[(b"Cache-Control", b"no-cache")])
        body = json.loads(r.body)
        values = {row["Alpha5d"] for row in body["rows"]}
        figures["realistic_models_distinct_alpha5d"] = len(values)
        report(f"{app.name}.degenerate_alpha", figures)
        assert body["meta"]["alpha"]["available"] is True and len(values) > len(rows) // 4
    finally:
        copy_model_files(held, app.models, metadata_first=False)
    return figures


# -- 6 -----------------------------------------------------------------------------------------

def check_idle_flood(app: App, root: Path, want: int = 25_000, seconds: float = 20.0,
                     addresses: int = 100) -> dict[str, Any]:
    """`want` connections that never send a byte (or as many as this box's file-descriptor
    limit allows two client processes: stated in the figures) from `addresses` addresses (at
    most what the edge's maxconn holds at CONNS_PER_ADDR each), each reconnecting when it is
    closed, for `seconds`; meanwhile new clients (other addresses) get /healthz and a small
    uncached scan (worst latency reported). The per-address cap refuses what is over it at
    accept; every connection that got in is answered 408 and closed by the edge (after how
    long, which grows with the box's load: reported); a used keep-alive
    connection is closed after its idle timeout; after the flood the edge holds nothing."""
    limit = raise_fd_limit()
    maxconn = int(haproxy_info(app.pid)["Maxconn"])
    per_process = min(want // 2, limit - 1000)
    total = 2 * per_process
    naddr = max(2, min(addresses, (maxconn - 400) // CONNS_PER_ADDR)) // 2  # per process
    admitted = 2 * naddr * CONNS_PER_ADDR
    outs = [root / f"flood-{k}.json" for k in range(2)]
    floods = [start_idle_flood(app.port, per_process, naddr, 40 + k, seconds, outs[k])
              for k in range(2)]
    t0 = time.monotonic()
    probe = Probe(app.port, KEY, block=27)
    time.sleep(1.0)
    probe.start()
    timeline: list[tuple[float, int]] = []  # (time.time(), connections at the edge)
    while time.monotonic() - t0 < seconds + HANG_GUARD_S:
        timeline.append((time.time(), int(haproxy_info(app.pid)["CurrConns"])))
        if all(f.poll() is not None for f in floods) and timeline[-1][1] <= 2:
            break  # the clients are gone, and so are their connections
        time.sleep(0.5)
    results = probe.stop()
    for f in floods:
        f.wait(30)
    stats = [json.loads(o.read_text()) for o in outs]
    stop = max(s["reconnects_until"] for s in stats)  # then the clients only held what was open
    drained = next((round(t - stop, 1) for t, c in timeline if t >= stop and c <= 2), math.inf)
    peak = max(c for _, c in timeline)
    holds = sorted(h for s in stats for h in s["holds"])
    keepalive = keepalive_close_s(app)
    figures = {
        "fd_limit": limit, "edge_maxconn": maxconn, "idle_clients": total,
        "addresses": 2 * naddr, "admitted_max": admitted, "edge_conns_peak": peak,
        "connects": sum(s["connects"] for s in stats),
        "refused_at_accept": sum(s["refused"] for s in stats),
        "answered_408": sum(s["timed_out"] for s in stats),
        "other_close": sum(s["other_close"] for s in stats),
        "open_after_hold": sum(s["open_at_end"] for s in stats),
        "client_measured_408_after_s": ([holds[0], statistics.median(holds), holds[-1]]
                                        if holds else []),
        "edge_empty_s_after_reconnects_stop": drained,
        "probes": len(results), "healthz_max_s": round(probe.worst("healthz"), 3),
        "scan_max_s": round(probe.worst("scan"), 3), "keepalive_closed_after_s": keepalive,
        "edge_conns_every_2s": [c for _, c in timeline[::4]]}
    report(f"{app.name}.idle_flood", figures)
    assert {s for _, s, _ in results} == {200}, Counter(s for _, s, _ in results)
    assert peak <= admitted * 1.05 + 50, figures  # (+ connections being refused, probes)
    assert figures["answered_408"] > 0 and figures["open_after_hold"] == 0, figures
    # the clients held every connection open: the edge closed them all (how long after is a
    # figure: the request timeout after accepting each, and accepting slows with load)
    assert drained < math.inf, figures
    if total > admitted:
        assert figures["refused_at_accept"] > 0, figures
    assert KEEPALIVE_S - 0.3 <= keepalive, keepalive  # closed by the edge, not before
    return figures


def tcp_kernel_mb() -> float:
    """Memory the kernel holds in TCP socket buffers, all sockets (/proc/net/sockstat)."""
    import resource as _r

    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            parts = line.split()
            return int(parts[parts.index("mem") + 1]) * _r.getpagesize() / (1 << 20)
    return 0.0


def keepalive_close_s(app: App) -> float:
    """Seconds after its answer until the edge closes a keep-alive connection left idle."""
    import socket

    with socket.socket() as s:
        s.bind((address(0, 29), 0))
        s.connect(("127.0.0.1", app.port))
        s.sendall(raw("GET", "/healthz", close=False))
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        length = int(next(v for k, v in (line.split(b": ", 1) for line in
                                         data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:])
                          if k.lower() == b"content-length"))
        while len(data.split(b"\r\n\r\n", 1)[1]) < length:
            data += s.recv(65536)
        t0 = time.monotonic()
        s.settimeout(HANG_GUARD_S)
        assert s.recv(65536) == b""
        return round(time.monotonic() - t0, 2)


# -- 7 -----------------------------------------------------------------------------------------

def check_non_reading(app: App, n: int = 1000) -> dict[str, Any]:
    """`n` clients (one address each) ask for a full scan (~0.4 MB of JSON, from the result
    cache) and never read a byte. The memory of the app's server process (Serve's proxy, or
    uvicorn) and of HAProxy is sampled: what they pin is bounded by the edge's backend slots,
    not by `n`; the edge cuts every one of them off (client timeout, or queue timeout then
    503) and /healthz answers 200 throughout."""
    body = post_scan(app, {}, address(0, 31))
    assert body.status == 200
    size_mb = len(body.body) / (1 << 20)
    haproxy = find(app.pid, "haproxy")
    before = {"server": rss_mb(app.server_pid), "haproxy": rss_mb(haproxy)}
    peak = dict(before)
    probe = Probe(app.port, KEY, block=43, scan=b"")
    probe.start()
    t0 = time.monotonic()
    socks = non_reading(app.port, n, 42, raw("POST", "/v1/scan", AUTH, b"{}"))
    opened_s = time.monotonic() - t0
    gone_after = math.nan
    limit_s = QUEUE_TIMEOUT_S + 3 * CLIENT_TIMEOUT_S + HANG_GUARD_S
    open_left, edge_peak, kernel_peak = n, 0, 0.0
    while time.monotonic() - t0 < limit_s:
        peak["server"] = max(peak["server"], rss_mb(app.server_pid))
        peak["haproxy"] = max(peak["haproxy"], rss_mb(haproxy))
        kernel_peak = max(kernel_peak, tcp_kernel_mb())
        open_left = int(haproxy_info(app.pid)["CurrConns"])
        edge_peak = max(edge_peak, open_left)
        if open_left <= 2 and probe.is_alive():  # a probe's connection at most: stop it
            probe.stop()
            continue
        if open_left == 0:
            gone_after = time.monotonic() - t0
            break
        time.sleep(0.5)
    results = probe.stop()
    # client side: reset or EOF? (a socket whose FIN waits behind unread answer bytes gets
    # a second look that reads them)
    readers = sum(not socket_closed_by_peer(s) and not socket_closed_by_peer(s, wait_s=2.0)
                  for s in socks)
    for s in socks:
        s.close()
    time.sleep(1.0)
    after = {"server": rss_mb(app.server_pid), "haproxy": rss_mb(haproxy)}
    bound_mb = BACKEND_MAXCONN * size_mb * 1.5 + 150
    figures = {"clients": n, "response_mb": round(size_mb, 3), "opened_in_s": round(opened_s, 1),
               "rss_mb_before": {k: round(v) for k, v in before.items()},
               "rss_mb_peak": {k: round(v) for k, v in peak.items()},
               "rss_mb_after": {k: round(v) for k, v in after.items()},
               "all_closed_by_edge_after_s": round(gone_after, 1), "still_open": open_left,
               "edge_conns_peak": edge_peak, "client_sockets_not_closed": readers,
               "kernel_tcp_mb_peak": round(kernel_peak),
               "server_growth_bound_mb": round(bound_mb),
               "healthz_max_s": round(probe.worst("healthz"), 3), "probes": len(results)}
    report(f"{app.name}.non_reading", figures)
    assert open_left == 0 and readers == 0, figures
    assert peak["server"] - before["server"] <= bound_mb, figures
    assert peak["haproxy"] <= 400, figures
    # /healthz never fails: it has slots of its own at the edge and (deployments/launch.py:
    # fit_to_ingress) at Serve; its worst latency is a figure
    assert {s for _, s, _ in results} == {200}, figures
    return figures


# -- 8 -----------------------------------------------------------------------------------------

def check_addresses_and_failed_keys(app: App) -> dict[str, Any]:
    """The rate limits key on an address the client cannot choose, and failed keys are
    limited: from one untrusted address, wrong keys with a new X-Forwarded-For each time get
    FAILED_KEYS 401s, then 429 + Retry-After, even with the right key; another address is not
    affected. From the trusted proxy, X-Forwarded-For's last hop is the client (its own
    bucket); garbage there counts against the proxy itself. Requests in flight per address are
    capped (429), per address only."""
    out: dict[str, Any] = {}
    spoofer = address(1, 28)
    codes = []
    for i in range(FAILED_KEYS + 2):
        xff = f"6.6.{i}.1".encode()
        r = request(app.port, raw("GET", "/v1/sectors", [(b"X-API-Key", b"guess"),
                                                         (b"X-Forwarded-For", xff)]), spoofer)
        codes.append(r.status)
    right = request(app.port, raw("GET", "/v1/sectors", [*AUTH, (b"X-Forwarded-For", b"7.7.7.7")]),
                    spoofer)
    out["spoofed_xff_from_one_address"] = codes
    out["right_key_while_blocked"] = [right.status, right.headers.get("retry-after")]
    assert codes == [401] * FAILED_KEYS + [429, 429], codes
    assert right.status == 429 and int(right.headers["retry-after"]) >= 1
    other = request(app.port, raw("GET", "/v1/sectors", AUTH), address(2, 28))
    assert other.status == 200
    # through the trusted proxy: the forwarded address is the client
    via = []
    for _ in range(FAILED_KEYS + 1):
        r = request(app.port, raw("GET", "/v1/sectors", [(b"X-API-Key", b"guess"), (
            b"X-Forwarded-For", b"203.0.113.9, 198.51.100.7")]), TRUSTED_PROXY)
        via.append(r.status)
    other_client = request(app.port, raw("GET", "/v1/sectors", [*AUTH, (
        b"X-Forwarded-For", b"198.51.100.8")]), TRUSTED_PROXY).status
    garbage = request(app.port, raw("GET", "/v1/sectors", [*AUTH, (
        b"X-Forwarded-For", b"not-an-ip")]), TRUSTED_PROXY).status
    out["trusted_proxy_same_client"] = via
    out["trusted_proxy_other_client"] = other_client
    out["trusted_proxy_garbage_xff"] = garbage
    assert via == [401] * FAILED_KEYS + [429], via
    assert other_client == 200 and garbage == 200
    # requests in flight per address: 30 uncached scans at once from one address
    out["inflight_one_address"], out["inflight_other_address"] = inflight_burst(app)
    report(f"{app.name}.addresses", out)
    return out


def inflight_burst(app: App, n: int = 30) -> tuple[dict[str, int], int | None]:
    body = json.dumps({"sort_by": "RSI"}).encode()
    data = raw("POST", "/v1/scan", [*AUTH, (b"Cache-Control", b"no-cache")], body)
    one = address(3, 28)
    results: list[int | None] = []
    lock = threading.Lock()
    start = threading.Barrier(n + 1)

    def go() -> None:
        start.wait()
        r = request(app.port, data, one, timeout=60)
        with lock:
            results.append(r.status)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(0.05)
    other = request(app.port, raw("GET", "/v1/sectors", AUTH), address(4, 28)).status
    for t in threads:
        t.join(60)
    codes = Counter(results)
    assert set(codes) <= {200, 429} and codes[429] >= 1, codes
    assert codes[200] >= 1 and other == 200, (codes, other)
    return {str(k): v for k, v in codes.items()}, other


# -- 9 -----------------------------------------------------------------------------------------

STORE_ROUTES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("POST", "/v1/scan", {"limit": 3}),
    ("POST", "/v1/scan", {"limit": 3, "format": "parquet"}),
    ("POST", "/v1/scan/stream", {"limit": 3}),
    ("GET", "/v1/universe", None),
    ("GET", "/v1/sectors", None),
    ("GET", "/v1/symbols/{symbol}", None),
    ("GET", "/v1/symbols/{symbol}/explain", None),
    ("POST", "/v1/validate", {"rank": "mom_21", "horizons": [5], "top_n": 5}),
    ("POST", "/v1/validate/stream", {"rank": "mom_21", "horizons": [5], "top_n": 5}),
    ("GET", "/v1/models", None),
)


def store_answers(app: App, symbol: str, block_i: int,
                  extra: tuple[tuple[str, str, dict[str, Any] | None], ...] = ()
                  ) -> dict[str, tuple[int | None, str | None, bytes]]:
    out = {}
    for k, (method, path, body) in enumerate(STORE_ROUTES + extra):
        p = path.format(symbol=symbol)
        payload = json.dumps(body).encode() if body is not None else b""
        r = request(app.port, raw(method, p, [*AUTH, (b"Cache-Control", b"no-cache")],
                                  payload), address(block_i * 20 + k, 33))
        out[f"{method} {p} {json.dumps(body) if body else ''}".strip()] = (
            r.status, r.headers.get("retry-after"), r.body[:300])
    return out


def check_unreadable_store(app: App) -> dict[str, Any]:
    """The store deleted, its manifest corrupted, its bars file truncated while the app runs:
    every /v1 route that reads the store answers 503 + Retry-After with the reason (a window
    already in memory keeps answering, correctly; one that must be read is a 503), /readyz is
    503 saying why, /healthz 200; restored, everything answers 200 again."""
    st = app.data / "store"
    symbol = StoreReader(app.data).snapshot().universe["symbol"].iloc[3]
    out: dict[str, Any] = {}

    def expect_503(label: str, answers: dict[str, tuple[int | None, str | None, bytes]],
                   must: tuple[str, ...]) -> None:
        out[label] = {k: v[0] for k, v in answers.items()}
        for route, (status, retry, body) in answers.items():
            if not any(route.startswith(m) for m in must):
                continue
            assert status == 503 and retry, (label, route, status, body)
            assert b"store" in body, (label, route, body)
            assert b"ray::" not in body and b"pid=" not in body, body  # no remote traceback
        ready = request(app.port, raw("GET", "/readyz"))
        health = request(app.port, raw("GET", "/healthz"))
        out[label]["/readyz"], out[label]["/healthz"] = ready.status, health.status
        assert ready.status == 503 and b'"readable":false' in ready.body, ready.body[:300]
        assert health.status == 200

    def expect_ok(label: str) -> None:
        t0 = time.monotonic()
        while True:
            answers = store_answers(app, symbol, 0)
            bad = {k: v[0] for k, v in answers.items() if v[0] != 200}
            if not bad and request(app.port, raw("GET", "/readyz")).status == 200:
                out[label] = "all 200"
                return
            assert time.monotonic() - t0 < HANG_GUARD_S, ("hung", label, bad)
            time.sleep(1.0)

    expect_ok("before")
    moved = app.data / "store-moved"
    st.rename(moved)
    try:
        expect_503("deleted", store_answers(app, symbol, 1), ("POST", "GET"))
    finally:
        moved.rename(st)
    expect_ok("restored after delete")
    manifest = st / "manifest.json"
    text = manifest.read_text()
    manifest.write_text("{not json")
    try:
        expect_503("manifest corrupted", store_answers(app, symbol, 2), ("POST", "GET"))
    finally:
        manifest.write_text(text)
    expect_ok("restored after corrupt manifest")
    bars = st / json.loads(text)["segments"][0]["file"]
    good = bars.read_bytes()
    sessions = StoreReader(app.data).snapshot().sessions
    bars.write_bytes(good[: len(good) // 2])
    cold = (("POST", "/v1/scan", {"limit": 3, "as_of_date": str(sessions[-40].date())}),)
    try:
        answers = store_answers(app, symbol, 3, cold)
        out["bars truncated"] = {k: v[0] for k, v in answers.items()}
        status, retry, body = answers[f"POST /v1/scan {json.dumps(cold[0][2])}"]
        assert status == 503 and retry and b"store" in body, (status, body)
        assert all(v[0] in (200, 503) for v in answers.values()), answers
    finally:
        bars.write_bytes(good)
    expect_ok("restored after truncation")
    report(f"{app.name}.unreadable_store", out)
    return out
