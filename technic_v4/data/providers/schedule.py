"""Providers built from Settings, one update run that records its outcome, and the schedule
that runs it after each close without a person.

`TECHNIC_UPDATE_AT` (off by default) says when: `after_close` or `after_close+30m` (the
exchange's close of each session, early closes included, plus a delay: `45m`, `2h`), or
`HH:MM` in the exchange's time zone on each session day. `ScheduledUpdater.step()` runs the
update when it is due (the watcher's loop calls it before each tick, so watches see the new
data version on that tick); a failed run is retried every `TECHNIC_UPDATE_RETRY_S` until one
succeeds, and every run's outcome is written to `providers/update.json` and kept in
`status()` (`/readyz` detail, `technic data info`, the counters), so a stale store is
visible, never silent. Time comes from a watch `Clock`, so tests move it by hand.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from technic_v4.data.calendar import calendar_tz, get_calendar, sessions_between
from technic_v4.data.providers.base import (
    Progress,
    Provider,
    ProviderError,
    read_source,
    saved_universe,
    write_status,
)
from technic_v4.data.providers.update import UpdateReport, update_store

if TYPE_CHECKING:
    from technic_v4.settings import Settings
    from technic_v4.watch.clock import Clock

log = logging.getLogger("technic.update")
PROVIDERS = ("yahoo", "polygon")
_AFTER = re.compile(r"^after_close(?:\+(\d+)([mh]))?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def build_provider(name: str, data_dir: str | os.PathLike[str], settings: Settings, *,
                   calendar: str = "XNYS", per_minute: float | None = None,
                   workers: int | None = None,
                   yahoo_symbols: dict[str, str] | None = None) -> Provider:
    """Provider `name` with its key and base URL from `settings`; Yahoo tickers from
    `yahoo_symbols`, else the universe `data init` saved (its YahooSymbol column)."""
    root = Path(data_dir)
    if name == "yahoo":
        from technic_v4.data.providers.yahoo import YahooProvider

        uni = saved_universe(root)
        tickers = {} if uni is None or "yahoosymbol" not in uni else dict(
            zip(uni["symbol"], uni["yahoosymbol"], strict=True))
        tickers |= yahoo_symbols or {}
        return YahooProvider(root / "providers" / "yahoo" / "daily", calendar=calendar,
                             yahoo_symbols=tickers, base_url=settings.yahoo_url or None,
                             per_minute=per_minute or 60.0, workers=workers or 4)
    if name == "polygon":
        from technic_v4.data.providers.polygon import PolygonClient, PolygonProvider

        client = PolygonClient(settings.polygon_api_key or None,
                               base_url=settings.polygon_url or None, per_minute=per_minute)
        return PolygonProvider(client, root, workers=workers or 4)
    raise ProviderError(f"unknown provider {name!r}; available: {', '.join(PROVIDERS)}")


def run_update(data_dir: str | os.PathLike[str], settings: Settings, *,
               provider: Provider | None = None, now: pd.Timestamp | None = None,
               end: str | None = None, start: str | None = None,
               progress: Progress | None = None) -> UpdateReport:
    """One `data update` with the provider `data init` recorded (else `provider`), its
    outcome written to `providers/update.json` whatever it is (an exception is recorded,
    then raised)."""
    at = pd.Timestamp.now(tz="UTC") if now is None else now
    status: dict[str, Any] = {"at": str(at), "ok": False}
    try:
        if provider is None:
            source = read_source(data_dir) or {}
            provider = build_provider(source.get("provider", "polygon"), data_dir, settings,
                                      calendar=source.get("calendar", "XNYS"))
        status["provider"] = provider.name
        reference = getattr(provider, "reference", None)  # names for new listings
        report = update_store(data_dir, provider, start=start, end=end, now=now,
                              progress=progress, universe=reference() if reference else None)
    except Exception as exc:  # noqa: BLE001 - recorded, then raised to the caller
        status["error"] = f"{type(exc).__name__}: {exc}"
        write_status(data_dir, status)
        raise
    f = report.fetch
    status.update(ok=report.ok, appended=report.appended, waiting=report.waiting,
                  empty=f.empty, failed=f.failed, fetched=len(f.fetched),
                  cached=len(f.cached))
    if not report.ok:
        status["error"] = (f"{len(f.failed)} failed ({', '.join(list(f.failed)[:5])})"
                           if f.failed else f"sessions waiting: {report.waiting}")
    write_status(data_dir, status)
    return report


@dataclass(frozen=True)
class Schedule:
    """When the update is due (module docstring): after each close + `delay`, or at `at`
    (exchange time) on each session day."""

    calendar: str
    delay: pd.Timedelta | None = None
    at: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str, calendar: str = "XNYS") -> Schedule:
        text = text.strip().lower()
        if m := _AFTER.match(text):
            n, unit = m.groups()
            delay = pd.Timedelta(0) if n is None else pd.Timedelta(
                int(n), unit="min" if unit == "m" else "h")
            return cls(calendar, delay=delay)
        if m := _CLOCK.match(text):
            return cls(calendar, at=(int(m.group(1)), int(m.group(2))))
        raise ValueError(f"TECHNIC_UPDATE_AT {text!r}: expected after_close, after_close+30m "
                         "(m or h), or HH:MM (exchange time)")

    def due_times(self, now: pd.Timestamp) -> list[pd.Timestamp]:
        """The due times (UTC) of the sessions from yesterday to two weeks ahead."""
        today = now.tz_convert("UTC").tz_localize(None).normalize()
        cal = get_calendar(self.calendar)
        out = []
        for s in sessions_between(today - pd.Timedelta(days=2), today + pd.Timedelta(days=15),
                                  self.calendar):
            if self.delay is not None:
                close = cal.session_close(s)
                close = close.tz_localize("UTC") if close.tz is None else close
                out.append(close + self.delay)
            else:
                assert self.at is not None
                local = (s + pd.Timedelta(hours=self.at[0], minutes=self.at[1])).tz_localize(
                    calendar_tz(self.calendar))
                out.append(local.tz_convert("UTC"))
        return out

    def next_due(self, now: pd.Timestamp) -> pd.Timestamp:
        """The first due time after `now`."""
        return next(t for t in self.due_times(now) if t > now)

    def last_due(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """The latest due time at or before `now`."""
        past = [t for t in self.due_times(now) if t <= now]
        return past[-1] if past else None


class ScheduledUpdater:
    """Runs the update when the schedule says (module docstring); `step()` is cheap when
    nothing is due."""

    def __init__(self, data_dir: str | os.PathLike[str], settings: Settings, clock: Clock, *,
                 calendar: str | None = None,
                 run: Callable[..., UpdateReport] = run_update) -> None:
        source = read_source(data_dir) or {}
        self.data_dir, self.settings, self.clock, self.run = data_dir, settings, clock, run
        self.schedule = Schedule.parse(settings.update_at,
                                       calendar or source.get("calendar", "XNYS"))
        self.retry_s = settings.update_retry_s
        self.counters = {"runs": 0, "failures": 0, "sessions_appended": 0}
        self.last_error: str | None = None
        self.last_ok: str | None = None
        self.next_due = self._now()  # a missed close is caught up at start

    def _now(self) -> pd.Timestamp:
        return pd.Timestamp(self.clock.now(), unit="s", tz="UTC")

    def step(self) -> UpdateReport | None:
        """Run the update if it is due; the next due time follows from the outcome."""
        now = self._now()
        if now < self.next_due:
            return None
        self.counters["runs"] += 1
        try:
            report = self.run(self.data_dir, self.settings, now=now)
            ok, why = report.ok, ("" if report.ok else f"incomplete: failed "
                                  f"{list(report.fetch.failed)[:5]}, waiting {report.waiting}")
        except Exception as exc:  # noqa: BLE001 - counted, shown in status(), retried
            report, ok, why = None, False, f"{type(exc).__name__}: {exc}"
        if report is not None:
            self.counters["sessions_appended"] += len(report.appended)
        if ok:
            self.last_ok, self.last_error = str(now), None
            self.next_due = self.schedule.next_due(now)
        else:
            self.counters["failures"] += 1
            self.last_error = why
            self.next_due = now + pd.Timedelta(seconds=self.retry_s)
            log.warning("scheduled update failed (retry at %s): %s", self.next_due, why)
        return report

    def status(self) -> dict[str, Any]:
        """For /readyz detail and metrics: ok unless the last run failed."""
        return {"ok": self.last_error is None, "last_ok": self.last_ok,
                "last_error": self.last_error, "next_due": str(self.next_due),
                **self.counters}


def attach_updater(service: Any, data_dir: Any, settings: Settings, clock: Clock) -> None:
    """Give a WatchService (its `updater`) the scheduled update when TECHNIC_UPDATE_AT is set
    and the data dir is local (downloads are cached in it); a bad value is a ValueError."""
    if settings.update_at and isinstance(data_dir, Path):
        service.updater = ScheduledUpdater(data_dir, settings, clock)
