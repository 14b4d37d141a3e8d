"""Helpers shared by test_api.py and test_serve.py: a small demo store, tiny alpha models.

The models are real XGBoost boosters saved through the registry (checksums, metadata), only
trained for a second on noise, so the tests exercise loading, batching and the Alpha columns
without depending on the shipped models/ (which change when they are retrained).
"""

from __future__ import annotations

import io
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
