"""Helpers shared by the API, Serve and web tests: a small demo store, tiny alpha models, and
the real Serve app started on 127.0.0.1 (`running_app`).

The models are real XGBoost boosters saved through the registry (checksums, metadata), only
trained for a second on noise, so the tests exercise loading, batching and the Alpha columns
without depending on the shipped models/ (which change when they are retrained).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from technic_v4.alpha import registry
from technic_v4.alpha.features import feature_names
from technic_v4.data.demo import DemoSpec, build_demo_store

N_SYMBOLS = 500


def demo_store(root: Path, seed: int | None = None) -> Path:
    """The 500-symbol demo market (`seed`: another one of that size) as the store in `root`.
    Into a new folder it is a copy of the one built once per test run (`built_once`):
    generating takes seconds, copying milliseconds, and the copy is the test's own to change.
    Over an existing store it is written as `build_demo_store` writes (new files renamed into
    place), which the tests that rewrite a store under a running app rely on."""
    spec = DemoSpec(n_symbols=N_SYMBOLS) if seed is None else DemoSpec(n_symbols=N_SYMBOLS,
                                                                       seed=seed)
    home = os.environ.get("PYTEST_TECHNIC_HOME")  # set by conftest.py for the run
    if not home or (root.exists() and any(root.iterdir())):
        build_demo_store(root, spec)
    else:
        shutil.copytree(built_once(spec, Path(home)), root, dirs_exist_ok=True)
    return root


def built_once(spec: DemoSpec, home: Path) -> Path:
    """The store of `spec`, built once per test run under the run's `home` (both xdist
    workers share it: the first to finish moves its build into place, the other drops its
    own); tests copy it, never write to it."""
    key = hashlib.blake2b(repr(spec).encode(), digest_size=8).hexdigest()
    done = home / "demo-stores" / key
    if not done.exists():
        done.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(dir=done.parent, prefix=".building-"))
        build_demo_store(building, spec)
        try:
            os.rename(building, done)
        except OSError:  # the other worker's build is in place: the same bytes
            shutil.rmtree(building)
    return done


# How each model feature is spread across real (and demo) symbols at their last bar; what the
# tiny models train on, so scanned rows fall into different leaves.
FEATURE_DRAWS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "RSI": lambda rng, n: rng.uniform(15, 85, n),
    "MACD": lambda rng, n: rng.normal(0, 8, n),
    "MACD_signal": lambda rng, n: rng.normal(0, 6, n),
    "BB_width": lambda rng, n: rng.uniform(0.05, 0.8, n),
    "ATR_pct": lambda rng, n: rng.uniform(0.01, 0.15, n),
    "Volume_ratio": lambda rng, n: rng.lognormal(0, 0.4, n),
    "mom_21": lambda rng, n: rng.normal(0, 0.15, n),
    "mom_63": lambda rng, n: rng.normal(0, 0.25, n),
    "mom_126": lambda rng, n: rng.normal(0.05, 0.4, n),
}


def feature_rows(rng: np.random.Generator, names: list[str], n: int) -> np.ndarray:
    """(n, len(names)) feature values drawn like real ones (FEATURE_DRAWS)."""
    return np.column_stack([FEATURE_DRAWS[name](rng, n) for name in names])


def tiny_models(root: Path, seed: int = 0, *, realistic: bool = True,
                source: str = "synthetic", calendar: str = "XNYS") -> Path:
    """Both horizons' models, trained for a moment on features drawn like real ones
    (`realistic`), with a label that depends on mom_21 and RSI, so a scan's rows get
    different forecasts; their metadata says they learned `source` bars on `calendar` (scans
    use them on stores of that kind only: the demo market by default). `realistic=False`:
    trained on N(0, 1) features, as these models were until issue 16; real RSI (~50) and
    friends then lie beyond every split, every row lands in the same leaves and the models
    give one value for all (reported as alpha unavailable by `inference.distinguishing`)."""
    rng = np.random.default_rng(seed)
    for h in (5, 10):
        names = list(feature_names(h))
        if realistic:
            n = 2000
            x = feature_rows(rng, names, n)
            z = (x - x.mean(axis=0)) / x.std(axis=0)
            y = (0.01 * z[:, names.index("mom_21")] - 0.005 * z[:, names.index("RSI")]
                 + rng.normal(scale=0.01, size=n))
            params, rounds = {"max_depth": 3, "nthread": 1, "seed": seed}, 5
        else:  # the models of the README screenshot, exactly
            x = rng.normal(size=(400, len(names)))
            y = 0.01 * x[:, 0] + rng.normal(scale=0.01, size=400)
            params, rounds = {"max_depth": 2, "nthread": 1}, 5
        booster = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=names),
                            num_boost_round=rounds)
        registry.save_model(booster, {
            "id": registry.model_id(h), "features": names, "horizon": h,
            "label": f"test label, {h} sessions", "trained_at": "test",
            "data": {"source": source, "calendar": calendar},
            "metrics": {"test": {"rank_ic": {"mean": 0.01, "t_stat": 1.0}}}}, root)
    return root


def parquet_frame(body: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(body))


def ndjson(text: str) -> list[dict]:
    import orjson

    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def assert_progress_ordered(events: list[dict]) -> None:
    """Progress events come stage by stage in run_scan's order, counts never going back."""
    order = ["load", "indicators", "score", "alpha", "rank"]
    stages = [e["stage"] for e in events]
    assert stages[0] == "load" and stages[-1] == "rank", stages
    ranks = [order.index(s) for s in stages]
    assert ranks == sorted(ranks), stages
    for stage in order:
        done = [e["done"] for e in events if e["stage"] == stage]
        assert done and done == sorted(done), (stage, done)
        total = [e["total"] for e in events if e["stage"] == stage][-1]
        assert done[-1] == total, (stage, done, total)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_RAY_KEY: list[object] = [None]  # the settings the running Ray session was started with
_RAY_PORT: list[int] = [0]  # where that session's metrics agent serves Prometheus text


# Serve's controller kills a proxy not ready within 5 s, which a loaded box's proxy start can
# exceed: hang guards of minutes (how fast Serve starts is not what these tests test)
SERVE_START_GUARDS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "600"}
# Ray waits a fixed 30 s for a new node's raylet to register (ray/_private/node.py), which a
# box at load average 40+ can exceed: the start is tried again, the error raised after that
RAY_START_ATTEMPTS = 3


def ray_session(env: dict[str, str], metrics_export_port: int | None = None) -> None:
    """Ray started small for the Serve tests: dashboard off, 2 CPUs, 200 MB object store,
    `env` set before ray.init (so the raylet and every worker inherit it). A session started
    with the same settings (env, the AWS_/TECHNIC_ variables around it, metrics port) is
    reused: one Ray start serves every Serve module whose settings match; another is
    stopped first. conftest.py stops the last one when the test session ends."""
    import ray

    env = {**SERVE_START_GUARDS, **env}
    around = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "TECHNIC_"))}
    key = tuple(sorted({**around, **env}.items()))
    if (ray.is_initialized() and _RAY_KEY[0] == key
            and metrics_export_port in (None, _RAY_PORT[0])):
        return
    if ray.is_initialized():
        ray.shutdown()
    port = metrics_export_port or free_port()
    with patched_env(env):
        for attempt in range(RAY_START_ATTEMPTS):
            try:
                ray.init(include_dashboard=False, num_cpus=2, object_store_memory=200 << 20,
                         logging_level="ERROR", log_to_driver=False,
                         _metrics_export_port=port)
                break
            except Exception as e:  # Ray's fixed 30 s wait for its raylet, on a loaded box
                if "timed out during startup" not in str(e) or attempt + 1 == RAY_START_ATTEMPTS:
                    raise
                ray.shutdown()
    _RAY_KEY[0], _RAY_PORT[0] = key, port


def metrics_port() -> int:
    """Where the running Ray session's metrics agent serves Prometheus text (every session
    exports its metrics, so the metrics test needs no Ray start of its own)."""
    return _RAY_PORT[0]


@contextmanager
def running_app(root: Path, env: dict[str, str], name: str, *,
                metrics_export_port: int | None = None,
                store: Callable[[Path], Path] = demo_store, **app_args) -> Iterator[dict]:
    """The real Serve app over HTTP on 127.0.0.1 and a free port, on a 500-symbol demo store
    and tiny models under `root`, in the shared Ray session of `ray_session(env, ...)`.
    `metrics_export_port`, when given, is where this node's metrics agent serves Prometheus
    text (`ray.init(_metrics_export_port=...)`); by default Ray picks its own port.
    `store(dir)` writes the store into `dir` and returns it (default: the demo store)."""
    from ray import serve
    from ray.serve._private import api as serve_api

    from deployments.app import AppArgs, build_app

    data, models = store(root / "data"), tiny_models(root / "models")
    port = free_port()
    ray_session(env, metrics_export_port)
    # Serve waits 60 s for its proxy actor, which a loaded box can take to schedule: a hang
    # guard of minutes instead (how fast Serve starts is not what these tests test)
    serve_api.HTTP_PROXY_TIMEOUT = max(serve_api.HTTP_PROXY_TIMEOUT, 600)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(AppArgs(data_dir=str(data), models_dir=str(models), **app_args)),
                  name=name)
        yield {"url": f"http://127.0.0.1:{port}", "data": data, "models": models}
    finally:
        serve.shutdown()


@contextmanager
def patched_env(env: dict[str, str]) -> Iterator[None]:
    """`env` set in os.environ for the block (Ray's processes inherit it), then restored."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def warm_backend(root: Path):
    """The in-process API backend on a demo store and tiny models under `root`, warmed."""
    from technic_v4.service.inprocess import InProcessBackend

    backend = InProcessBackend(demo_store(root / "data"), tiny_models(root / "models"),
                               chunk_size=128, warm=False)
    backend.warm()
    return backend


def state_backend(warm, state: Path):  # type: ignore[no-untyped-def]
    """An in-process backend on `warm`'s store and models with its own technic.sqlite (saved
    screens and watches) in `state`, warmed: tests that change screens or watches use it."""
    from technic_v4.screens.saved import DB_NAME, ScreenStore
    from technic_v4.service.inprocess import InProcessBackend

    backend = InProcessBackend(warm.reader.data_dir, warm.models_dir, chunk_size=128,
                               warm=False, screens=ScreenStore(state / DB_NAME))
    backend.warm()
    return backend


def custom_store(root: Path, edit: Callable[[pd.DataFrame, np.ndarray], pd.DataFrame], *,
                 source: str = "synthetic", n_symbols: int = 60,
                 start: str = "2024-01-02") -> Path:
    """A small demo market whose universe table is rewritten by `edit(universe, close)` (same
    rows, same order: row i still describes bar row i), written straight to the store under
    `root` with `source`. Bypasses ingest, so any text can reach the store."""
    from technic_v4.data.demo import generate_demo_market
    from technic_v4.data.store import write_store

    m = generate_demo_market(DemoSpec(n_symbols=n_symbols, start=start))
    universe = edit(m.universe.copy(), m.close)
    assert len(universe) == len(m.universe), "edit must keep every row"
    write_store(root, sessions=m.sessions, universe=universe, open=m.open, high=m.high,
                low=m.low, close=m.close, volume=m.volume, source=source)
    return root


# Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright (no
# browser download).
CHROMIUM = os.environ.get("TECHNIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]


def playwright_or_skip():  # type: ignore[no-untyped-def]
    """Playwright's sync_api, or skip the calling test module saying how to install what is
    missing (call at module level)."""
    import shutil

    import pytest

    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get update && apt-get install "
                    "-y chromium` (and `pip install playwright`; no `playwright install`)",
                    allow_module_level=True)
    return pytest.importorskip("playwright.sync_api",
                               reason="pip install playwright (the dev extra has it)")


# how long a page action may wait (Playwright's default is 30 s): a hang guard for a loaded
# machine, not a speed check
PAGE_GUARD_MS = 180_000


@contextmanager
def chromium(sync_api) -> Iterator:  # type: ignore[no-untyped-def]
    """A launched headless Chromium (Playwright Browser), closed after the block."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_page(page, origin: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The problems seen on `page` from now on, as a list that grows: script errors and any
    request to another origin than `origin` (data: and blob: URLs allowed)."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: r.url.startswith((origin, "data:", "blob:"))
            or problems.append(f"request to another origin: {r.url}"))
    return problems
