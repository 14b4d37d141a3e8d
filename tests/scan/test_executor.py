"""The local Executor: the scan's evaluate and predict in this process, and the models
version a scan reports."""

from __future__ import annotations

import pandas as pd
from panels import small_panel

from technic_v4.alpha.inference import ModelSet
from technic_v4.data.reader import PanelSource
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.scan.executor import Executor, LocalExecutor
from technic_v4.scan.run import execute, run_sync


def test_local_executor_is_the_scan_and_names_its_models():
    reader = PanelSource(small_panel(seed=4))
    local: Executor = LocalExecutor(reader, ModelSet())
    cfg = ScanConfig(where="RSI > 40", rank="mom_21", max_symbols=20)
    frame, status = run_sync(execute(cfg, reader.snapshot, local.evaluate, local.predict))
    want, want_status = run_scan(cfg, loader=reader)
    pd.testing.assert_frame_equal(frame, want)
    version = run_sync(local.models_version())
    assert version and version == status.alpha.get("models_version") \
        == want_status.alpha.get("models_version")
