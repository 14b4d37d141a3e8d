"""The scan engine: config -> plan -> evaluate -> screen -> alpha -> result, one orchestrator.

`run.py` walks through it; every front end (CLI, HTTP, stream, validation, watches) calls
`execute` (or `run_scan`, which runs it in this process).
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
