"""The documented import path of the scan: `from technic_v4.scanner_core import ScanConfig,
run_scan`. The engine lives in `technic_v4/scan/` (run.py walks through it)."""

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
