"""Helpers shared by the API, Serve and web tests: a small demo store, tiny alpha models, and
the real Serve app started on 127.0.0.1 (`running_app`).

The models are real XGBoost boosters saved through the registry (checksums, metadata), only
trained for a second on noise, so the tests exercise loading, batching and the Alpha columns
without depending on the shipped models/ (which change when they are retrained).
"""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterator
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
    spec = DemoSpec(n_symbols=N_SYMBOLS) if seed is None else DemoSpec(n_symbols=N_SYMBOLS,
                                                                       seed=seed)
    build_demo_store(root, spec)
    return root


def tiny_models(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for h in (5, 10):
        names = list(feature_names(h))
        x = rng.normal(size=(400, len(names)))
        y = 0.01 * x[:, 0] + rng.normal(scale=0.01, size=400)
        booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(
            x, label=y, feature_names=names), num_boost_round=5)
        registry.save_model(booster, {
            "id": registry.model_id(h), "features": names, "horizon": h,
            "label": f"test label, {h} sessions", "trained_at": "test",
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


@contextmanager
def running_app(root: Path, env: dict[str, str], name: str, **app_args) -> Iterator[dict]:
    """The real Serve app over HTTP on 127.0.0.1 and a free port, on a 500-symbol demo store
    and tiny models under `root`. Ray is started small: dashboard off, token auth off via `env`
    (set before ray.init, so the raylet and every worker inherit it), 2 CPUs, 200 MB store."""
    import ray
    from ray import serve

    from deployments.app import AppArgs, build_app

    data, models = demo_store(root / "data"), tiny_models(root / "models")
    port = free_port()
    with patched_env(env):
        try:
            ray.init(include_dashboard=False, num_cpus=2, object_store_memory=200 << 20,
                     logging_level="ERROR", log_to_driver=False)
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            serve.run(build_app(AppArgs(data_dir=str(data), models_dir=str(models),
                                        **app_args)), name=name)
            yield {"url": f"http://127.0.0.1:{port}", "data": data, "models": models}
        finally:
            serve.shutdown()
            ray.shutdown()


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
    from deployments.api.backend import InProcessBackend

    backend = InProcessBackend(demo_store(root / "data"), tiny_models(root / "models"),
                               chunk_size=128, warm=False)
    backend.warm()
    return backend
