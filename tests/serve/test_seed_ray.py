"""`run_ray_scans_optimized` on a local Ray (BatchWorker actors, chunks of 64 symbols) equals
`run_scan` on the same store and models: the frame, the counts and the rejections."""

from __future__ import annotations

import pandas as pd
import pytest
import ray
from serve_support import demo_store, ray_session, tiny_models

from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.slow
@pytest.mark.parametrize("config", [
    {"max_symbols": 100, "lookback_days": 150, "sectors": ["Technology", "Healthcare"]},
    {"max_symbols": 50, "where": "RSI > 50", "sort_by": "Alpha5d"},
])
def test_ray_scan_equals_run_scan(tmp_path, config):
    from technic_v4.engine.ray_runner import BatchWorker, run_ray_scans_optimized

    data, models = demo_store(tmp_path / "data"), tiny_models(tmp_path / "models")
    cfg = ScanConfig(**config)
    want, want_status = run_scan(cfg, loader=StoreReader(data), models_dir=models)
    ray_session(ENV)
    stages: list[str] = []
    got, status = run_ray_scans_optimized(cfg, lambda stage, done, total: stages.append(stage),
                                          data_dir=data, models_dir=models, chunk_size=64)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) > 0 and got["Alpha5d"].notna().all()
    for name in ("attempted", "kept", "rejected", "errors", "rejected_by_reason", "alpha"):
        assert getattr(status, name) == getattr(want_status, name), name
    pd.testing.assert_frame_equal(status.rejections, want_status.rejections)
    assert isinstance(BatchWorker, ray.actor.ActorClass)
    assert stages.count("indicators") >= 3  # the start and one report per chunk (several)
