"""The scan engine: config -> plan -> evaluate -> screen -> alpha -> select -> result.

`run.py` walks through it. A scan (`execute`, or `run_scan` in this process), many screens at
one session (`many.execute_many`: watches) and a replay over past sessions (validate) pick
and order rows with the one `select.select`; an evaluation computes only the indicator
outputs something reads (`terms.Terms`); `executor.Executor` says where evaluate and predict
run.
"""

from technic_v4.scan.columns import EXTRA_COLUMNS, RESULT_COLUMNS, SHOWN_INDICATORS, SORTABLE
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import Block, WindowSpec, evaluate_chunk, measure
from technic_v4.scan.plan import ScanPlan, plan_scan
from technic_v4.scan.result import STAGES, ScanStatus
from technic_v4.scan.run import Evaluations, StageTimer, execute, run_scan, run_sync

__all__ = ["EXTRA_COLUMNS", "RESULT_COLUMNS", "SHOWN_INDICATORS", "SORTABLE", "STAGES", "Block",
           "Evaluations", "ScanConfig", "ScanPlan", "ScanStatus", "StageTimer", "WindowSpec",
           "evaluate_chunk", "execute", "measure", "plan_scan", "run_scan", "run_sync"]
