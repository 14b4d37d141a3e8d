"""The real Serve app on a store that exists only in an S3 bucket (moto, tests/s3_support.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from serve_support import parquet_frame, running_app

from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader
from technic_v4.scanner_core import ScanConfig, run_scan

SPEC = DemoSpec(n_symbols=150)


def test_serve_replicas_read_the_store_from_s3(s3, tmp_path, monkeypatch):
    """The real Serve app (its replicas are separate Ray worker processes) on a store that
    exists only in the bucket: no filesystem is shared with the processes that read it."""
    pytest.importorskip("ray.serve")
    import httpx

    uri = s3.uri("serve")

    def in_bucket(_unused_local_dir):
        build_demo_store(uri, SPEC)
        return uri

    env = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
    with running_app(tmp_path, env, "technic-s3", chunk_size=64, store=in_bucket) as app:
        assert app["data"] == uri
        frame, status = run_scan(ScanConfig(max_symbols=30), loader=StoreReader(uri),
                                 models_dir=app["models"])
        with httpx.Client(base_url=app["url"], timeout=120) as http:
            r = http.post("/v1/scan", json={"limit": 30, "format": "parquet"},
                          headers={"Cache-Control": "no-cache"})
    assert r.status_code == 200, r.text
    pd.testing.assert_frame_equal(parquet_frame(r.content), frame, check_exact=True)
    assert r.headers["x-technic-data-version"] == status.data_version
