"""A validation's blocks as Ray tasks spread over the cluster (technic_v4 itself never imports Ray).

`RayRunner(data_dir)` is a `technic_v4.validate.measure.Runner`: `validate(..., runner=...)`
plans the replay in the calling process (the universe table and the close column's presence,
no prices), then the runner:
  1. puts the plan in the object store once;
  2. launches one task per block (`_measure`, SPREAD over the nodes), at most `in_flight` at a
     time, each opening the store from its URI (a local path every node sees, or s3:// gs://:
     technic_v4/data/store_fs.py) and returning the block's `BlockStats` (a few KB per
     session) and the node it ran on;
  3. reports progress ("indicators", blocks done, blocks) as blocks finish, in any order;
     a task whose worker dies (killed, out of memory, a node lost) is run again by Ray, up to
     `max_retries` times; an error the block raises (a bad store, a cancel) is not retried
     and ends the validation with that error, the other tasks cancelled;
  4. hands the blocks back; `measure.merge` lays them in session order, so the report is the
     one a single process computes (tests/serve/test_ray_validate.py: to 1e-12).
`technic validate --ray ADDRESS` and the Indicators deployment (TECHNIC_VALIDATE_TASKS > 0)
use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray

from technic_v4 import cancel
from technic_v4.data.reader import StoreReader
from technic_v4.validate.measure import BlockStats, Measure, measure_block
from technic_v4.validate.replay import Progress, ReplayPlan

ReaderFactory = Callable[[str], Any]  # data dir -> a reader (StoreReader; tests wrap it)


def store_reader(data_dir: str) -> StoreReader:
    """The reader a task opens: the store at `data_dir`, never a demo built in its place."""
    return StoreReader(data_dir, auto_demo=False, windows=1)


@ray.remote
def _measure(factory: ReaderFactory, data_dir: str, plan: ReplayPlan, what: Measure,
             b: int) -> tuple[BlockStats, str]:
    """Block `b` of `plan` measured on whatever node runs it, and that node's id."""
    stats = measure_block(plan, factory(data_dir), b, what)
    return stats, ray.get_runtime_context().get_node_id()


class RayRunner:
    """Runs a plan's blocks as Ray tasks (module docstring); `nodes` records, per block, the
    node id it ran on (the last run's)."""

    def __init__(self, data_dir: str, *, in_flight: int = 4, max_retries: int = 3,
                 num_cpus: float = 1.0, factory: ReaderFactory = store_reader):
        if in_flight < 1:
            raise ValueError(f"in_flight must be >= 1, got {in_flight}")
        self.data_dir, self.in_flight, self.factory = str(data_dir), in_flight, factory
        self.options = {"max_retries": max_retries, "num_cpus": num_cpus,
                        "scheduling_strategy": "SPREAD"}
        self.nodes: dict[int, str] = {}

    def __call__(self, plan: ReplayPlan, what: Measure,
                 progress: Progress | None = None) -> list[BlockStats]:
        report = progress or (lambda stage, done, total: None)
        total = len(plan.blocks)
        shared = ray.put(plan)
        task = _measure.options(**self.options)
        waiting = list(range(total))
        running: dict[Any, int] = {}
        out: list[BlockStats] = []
        self.nodes = {}
        report("indicators", 0, total)
        try:
            while waiting or running:
                cancel.check()  # between blocks (technic_v4/cancel.py)
                while waiting and len(running) < self.in_flight:
                    b = waiting.pop(0)
                    running[task.remote(self.factory, self.data_dir, shared, what, b)] = b
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    b = running.pop(ref)
                    stats, node = ray.get(ref)
                    out.append(stats)
                    self.nodes[b] = node
                    report("indicators", len(out), total)
        finally:
            for ref in running:  # an error or a cancel: the rest is not wanted
                ray.cancel(ref, force=True)
        return out
