"""Exchange trading sessions: the time axis every Panel is laid on.

A store records the `exchange_calendars` calendar its bars trade on (manifest `calendar`,
default XNYS; a store written before the field existed is XNYS). Ingest's "not a session"
check, the sessions a store spans, appends, the quality gate's gaps and the demo market all
ask the store's calendar through this module. A store's own sessions are that calendar's,
plus the days its data traded on that the calendar calls closed (manifest `extra_sessions`),
minus the sessions on which none of its symbols traded (manifest `closures`):
`effective_sessions`. Names are the library's ISO MIC codes (XNYS,
XLON, XTKS, XHKG, XPHS, ...) or its aliases (NYSE, LSE, JPX, HKEX, ...), any case; an alias
is recorded as its MIC. `technic data calendars` lists them.

`exchange_calendars` costs ~0.5 s to import and ~0.15 s to build a calendar, so it is imported
only when a calendar is first needed (a scan of a store never needs one: the store records the
calendar sessions its axis lacks, see store.py), and each calendar is built once per process
with an explicit `start` (the library otherwise builds ~20 years around today).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import exchange_calendars as xcals

DEFAULT_CALENDAR = "XNYS"
# The earliest session any store needs (MSFT listed in 1986); a calendar whose holidays are
# recorded only from a later year (XTKS 1997, XSHG 1991) starts there instead.
CALENDAR_START = "1970-01-02"


class CalendarError(ValueError):
    """An exchange calendar name that exchange_calendars does not know (or cannot build)."""


def _xcals() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        import exchange_calendars

    return exchange_calendars


def calendar_names() -> list[str]:
    """Every calendar name exchange_calendars knows (MIC codes first, then aliases), sorted."""
    x = _xcals()
    return sorted(x.get_calendar_names(include_aliases=False)) + sorted(
        set(x.get_calendar_names(include_aliases=True))
        - set(x.get_calendar_names(include_aliases=False)))


def canonical_calendar(name: str | None) -> str:
    """The MIC code of calendar `name` (None: the default, XNYS); CalendarError for a name the
    library does not know, saying how to list the valid ones."""
    if name is None:
        return DEFAULT_CALENDAR
    key = str(name).strip().upper()
    if key == DEFAULT_CALENDAR:
        return key  # the common case, without importing exchange_calendars
    x = _xcals()
    if key not in set(x.get_calendar_names(include_aliases=True)):
        raise CalendarError(
            f"unknown exchange calendar {str(name)[:40]!r}: `technic data calendars` lists the "
            f"{len(x.get_calendar_names(include_aliases=False))} valid names (e.g. XNYS, XLON, "
            "XTKS, XHKG, XPHS, XTSE, XASX; aliases like NYSE, LSE, JPX are accepted)")
    return str(x.resolve_alias(key))


@lru_cache(maxsize=8)
def get_calendar(name: str = DEFAULT_CALENDAR) -> xcals.ExchangeCalendar:
    """Calendar `name` (a MIC code or alias), built once per process from CALENDAR_START (or
    the calendar's own earliest supported date)."""
    mic = canonical_calendar(name)
    x = _xcals()
    start = pd.Timestamp(CALENDAR_START)
    factory = x.calendar_utils._default_calendar_factories.get(mic)
    bound = _bound_min(factory)
    if bound is not None:
        start = max(start, bound)
    with warnings.catch_warnings():
        # exchange_calendars 4.x trips a pandas 3 deprecation inside its own constructor.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        try:
            return x.get_calendar(mic, start=start)
        except ValueError as exc:  # "holidays are only recorded back to the year 1991"
            year = re.search(r"back to the year (\d{4})", str(exc))
            if year is None:
                raise CalendarError(f"exchange calendar {mic} cannot be built: {exc}") from None
            try:
                return x.get_calendar(mic, start=f"{year.group(1)}-01-02")
            except Exception as again:  # noqa: BLE001  (the library's own error, reworded)
                raise CalendarError(f"exchange calendar {mic} cannot be built: {again}") from None
        except Exception as exc:  # noqa: BLE001
            raise CalendarError(f"exchange calendar {mic} cannot be built: {exc}") from None


def _bound_min(factory: object) -> pd.Timestamp | None:
    try:
        bound = getattr(factory, "bound_min", lambda: None)()
    except Exception:  # noqa: BLE001  (some calendars do not implement it)
        return None
    return None if bound is None else pd.Timestamp(bound).tz_localize(None).normalize()


def xnys() -> xcals.ExchangeCalendar:
    """The NYSE calendar (the default)."""
    return get_calendar(DEFAULT_CALENDAR)


def calendar_bounds(name: str = DEFAULT_CALENDAR) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last session the calendar covers (its end moves with today's date)."""
    cal = get_calendar(name)
    return _naive(cal.first_session), _naive(cal.last_session)


def sessions_between(start: str | pd.Timestamp, end: str | pd.Timestamp,
                     calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """Sessions of `calendar` in [start, end], as tz-naive midnight timestamps."""
    cal = get_calendar(calendar)
    first, last = calendar_bounds(calendar)
    start = max(pd.Timestamp(start).normalize(), first)
    end = min(pd.Timestamp(end).normalize(), last)
    if start > end:
        return pd.DatetimeIndex([], name="session")
    out = cal.sessions_in_range(start, end)
    return pd.DatetimeIndex(out.tz_localize(None) if out.tz is not None else out, name="session")


def is_session(dates: pd.DatetimeIndex, calendar: str = DEFAULT_CALENDAR) -> pd.Series:
    """Boolean mask: which of `dates` are sessions of `calendar`."""
    cal = get_calendar(calendar)
    return pd.Series(pd.DatetimeIndex(dates).normalize().isin(cal.sessions), index=dates)


def missing_sessions(sessions: pd.DatetimeIndex, calendar: str = DEFAULT_CALENDAR,
                     closures: list[str] | tuple = ()) -> list[str]:
    """Sessions of `calendar` strictly inside [sessions[0], sessions[-1]] that `sessions`
    lacks and that are not recorded `closures`, as YYYY-MM-DD (what a store records so a scan
    never builds the calendar)."""
    if len(sessions) < 2:
        return []
    expected = sessions_between(sessions[0], sessions[-1], calendar)
    absent = expected[~expected.isin(sessions)].difference(pd.to_datetime(list(closures)))
    return [str(d.date()) for d in absent]


def extra_sessions(sessions: pd.DatetimeIndex, calendar: str = DEFAULT_CALENDAR) -> list[str]:
    """Days of `sessions` that `calendar` calls closed (sessions the data outvoted it on)."""
    if len(sessions) == 0:
        return []
    extra = sessions[~is_session(sessions, calendar).to_numpy()]
    return [str(d.date()) for d in extra]


def why_not_a_session(day: pd.Timestamp, calendar: str = DEFAULT_CALENDAR) -> str:
    """'is a Saturday', 'is an XNYS holiday or closure', 'is outside the XNYS calendar (...)'."""
    first, last = calendar_bounds(calendar)
    mic = canonical_calendar(calendar)
    article = "an" if mic[:1] in "AEFHILMNORSX" else "a"
    if not first <= day <= last:
        return f"is outside the {mic} calendar ({first.date()}..{last.date()})"
    if calendar_weekmask(calendar)[day.day_of_week] == "0":
        return f"is a {day.day_name()}"
    return f"is {article} {mic} holiday or closure"


def _naive(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()


def calendar_tz(name: str = DEFAULT_CALENDAR) -> str:
    """The exchange's time zone (e.g. 'Asia/Seoul'), where an epoch becomes a trading date."""
    return str(get_calendar(name).tz)


def calendar_weekmask(name: str = DEFAULT_CALENDAR) -> str:
    """Seven '1'/'0' characters, Monday first: the weekdays the exchange normally trades."""
    mask = str(getattr(get_calendar(name), "weekmask", "1111100"))
    return mask if len(mask) == 7 else "1111100"


def effective_sessions(start: str | pd.Timestamp, end: str | pd.Timestamp,
                       calendar: str = DEFAULT_CALENDAR, *, extra: list[str] | tuple = (),
                       closures: list[str] | tuple = ()) -> pd.DatetimeIndex:
    """Sessions of a store in [start, end]: its calendar's, plus the days its data traded on
    that the calendar calls closed (`extra`), minus the calendar sessions on which nothing
    traded (`closures`); both as recorded in the store's manifest."""
    out = sessions_between(start, end, calendar)
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    add = pd.DatetimeIndex(pd.to_datetime(list(extra)))
    drop = pd.DatetimeIndex(pd.to_datetime(list(closures)))
    out = out.union(add[(add >= lo) & (add <= hi)]).difference(drop)
    return pd.DatetimeIndex(out, name="session")
