"""Validation: a screen replayed over history, and what its picks did next (issue 14).

`validate(cfg, reader, options)` (report.py walks through it) uses the scan's own pieces: the
plan, the checks (`screen_masks`, the scan's `screen` over every session at once), the compiled
where/rank expressions over the same series, and the scan's ranking order.
"""

from technic_v4.validate.replay import Replay, replay
from technic_v4.validate.report import DEFAULT_HORIZONS, ValidateOptions, ValidationReport, validate

__all__ = ["DEFAULT_HORIZONS", "Replay", "ValidateOptions", "ValidationReport", "replay",
           "validate"]
