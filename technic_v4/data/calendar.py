"""XNYS trading sessions, the one time axis every Panel is laid on."""

from __future__ import annotations

import warnings
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

# exchange_calendars builds ~20 years around "today" unless told; the store reaches back further.
CALENDAR_START = "1990-01-02"


@lru_cache(maxsize=1)
def xnys() -> xcals.ExchangeCalendar:
    """The NYSE calendar, built once per process (start given explicitly, as the library asks)."""
    with warnings.catch_warnings():
        # exchange_calendars 4.x trips a pandas 3 deprecation inside its own constructor.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        return xcals.get_calendar("XNYS", start=CALENDAR_START)


def sessions_between(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """XNYS sessions in [start, end], as tz-naive midnight timestamps."""
    cal = xnys()
    start = max(pd.Timestamp(start), cal.first_session)
    end = min(pd.Timestamp(end), cal.last_session)
    if start > end:
        return pd.DatetimeIndex([], name="session")
    out = cal.sessions_in_range(start, end)
    return pd.DatetimeIndex(out.tz_localize(None) if out.tz is not None else out, name="session")


def is_session(dates: pd.DatetimeIndex) -> pd.Series:
    """Boolean mask: which of `dates` are XNYS sessions."""
    cal = xnys()
    return pd.Series(pd.DatetimeIndex(dates).normalize().isin(cal.sessions), index=dates)
