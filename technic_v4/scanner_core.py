"""The origin design's scan module, kept because users' scripts import it: `from
technic_v4.scanner_core import ScanConfig, run_scan`. It only re-exports the engine, which lives
in `technic_v4/scan/` (run.py walks through `execute`, which `run_scan` runs in this process)."""

from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.scan import (
    EXTRA_COLUMNS,
    RESULT_COLUMNS,
    SHOWN_INDICATORS,
    SORTABLE,
    ScanConfig,
    ScanStatus,
    run_scan,
)

__all__ = ["EXTRA_COLUMNS", "RESULT_COLUMNS", "SHOWN_INDICATORS", "SORTABLE", "ConfigError",
           "ScanConfig", "ScanStatus", "StaleDataError", "run_scan"]
