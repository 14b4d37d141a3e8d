"""A validation's blocks as Ray tasks on a simulated 2-node cluster (deployments/ray_validate.py).

`ray.cluster_utils.Cluster` starts a head node and a worker node on this machine, 1 CPU each
(as tests/serve/test_cluster.py). The tasks read the store from its path (both nodes see it
here). The distributed report equals the single-process one to 1e-12, its blocks ran on both
nodes, and a block whose worker process dies is run again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import serve_support
from report_compare import assert_reports_close
from serve_support import patched_env

from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.reader import StoreReader
from technic_v4.scan import ScanConfig
from technic_v4.validate import ValidateOptions, validate

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
NODE = {"num_cpus": 1, "object_store_memory": 100 << 20}
CFG = ScanConfig(where="RSI < 60 and Close > SMA50", rank="mom_63 / ATR_pct")
OPTS = ValidateOptions(start="2025-01-02", horizons=(1, 5, 21), top=5, cost_bps=5)


class CrashOnce:
    """A reader factory whose reader kills its worker process at its first block read, once
    per marker file: the worker dies as on an out-of-memory kill."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self, data_dir: str) -> StoreReader:
        marker = self.marker

        class Crashing(StoreReader):
            def load_block(self, first, last, rows):  # type: ignore[no-untyped-def]
                if not os.path.exists(marker):
                    Path(marker).touch()
                    os._exit(1)
                return super().load_block(first, last, rows)

        return Crashing(data_dir, auto_demo=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-validate")
    data = root / "data"
    build_demo_store(data, DemoSpec(n_symbols=60, start="2022-01-03", end="2025-06-30"))
    if ray.is_initialized():  # a single-node session of another module (serve_support)
        ray.shutdown()
        serve_support._RAY_KEY[0] = None
    made = None
    with patched_env(ENV):
        try:
            made = cluster_utils.Cluster(initialize_head=True, head_node_args={
                **NODE, "include_dashboard": False})
            made.add_node(**NODE)
            made.wait_for_nodes()
            ray.init(address=made.address, logging_level="ERROR", log_to_driver=False)
            yield {"data": str(data), "root": root}
        finally:
            if ray.is_initialized():
                ray.shutdown()
            if made is not None:
                made.shutdown()


def _report(result) -> dict:  # type: ignore[no-untyped-def]
    report = dict(result.report)
    report.pop("timings_ms")
    return report


def test_ray_blocks_equal_one_process_on_both_nodes_and_retry_a_dead_worker(cluster):
    import sys

    from ray import cloudpickle

    from deployments.ray_validate import RayRunner

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # CrashOnce, to the workers

    reader = StoreReader(cluster["data"])
    one = validate(CFG, reader, OPTS, block_sessions=10_000)
    marker = str(cluster["root"] / "crashed")
    runner = RayRunner(cluster["data"], in_flight=4, max_retries=2, num_cpus=0.5,
                       factory=CrashOnce(marker))
    seen: list[tuple[int, int]] = []
    got = validate(CFG, reader, OPTS, block_sessions=20, runner=runner,
                   progress=lambda stage, done, total: seen.append((done, total))
                   if stage == "indicators" else None)
    blocks = got.report["data"]["blocks"]
    assert blocks >= 4 and os.path.exists(marker)  # one worker died, its block ran again
    assert len(runner.nodes) == blocks and len(set(runner.nodes.values())) == 2
    assert [d for d, _ in seen] == list(range(blocks + 1))
    one.report["data"].pop("blocks")
    got.report["data"].pop("blocks")
    assert_reports_close(_report(got), _report(one))
    assert got.daily.drop(columns="session").shape == one.daily.drop(columns="session").shape
    for col in one.daily.columns:
        a, b = one.daily[col], got.daily[col]
        if a.dtype.kind == "f":
            assert ((a - b).abs() <= 1e-12 * a.abs().clip(lower=1e-3)).where(a.notna()).all()
            assert (a.isna() == b.isna()).all()
        else:
            assert a.equals(b), col
