"""The update after each close, without a person: `ScheduledUpdater` on a ManualClock (no
sleeps) against the local Yahoo chart-API server (tests/yahoo_stub.py). It waits for the
close + delay, appends exactly the new session, retries a failure visibly, and the watches
see the new data version on the next tick."""

from __future__ import annotations

import asyncio
import functools

import pandas as pd
import pytest
from yahoo_stub import YahooStub, generated_bars

from technic_v4.data.providers.base import read_status
from technic_v4.data.providers.schedule import Schedule, ScheduledUpdater, run_update
from technic_v4.data.providers.update import init_store
from technic_v4.data.providers.yahoo import YahooProvider
from technic_v4.data.store import read_manifest
from technic_v4.settings import Settings
from technic_v4.watch.clock import ManualClock
from technic_v4.watch.model import WatchSpec
from technic_v4.watch.service import local_service

SYMS = [f"U{i}" for i in range(8)]


def _utc(text: str) -> float:
    return pd.Timestamp(text, tz="UTC").timestamp()


def test_schedule_forms_and_bad_values():
    s = Schedule.parse("after_close+30m")
    now = pd.Timestamp("2024-11-29 12:00", tz="UTC")  # early close at 18:00 UTC that day
    assert s.next_due(now) == pd.Timestamp("2024-11-29 18:30", tz="UTC")
    assert Schedule.parse("21:15").next_due(now) == pd.Timestamp("2024-11-30 02:15", tz="UTC")
    assert Schedule.parse("after_close").next_due(pd.Timestamp("2024-11-29 18:00", tz="UTC")) \
        == pd.Timestamp("2024-12-02 21:00", tz="UTC")  # Monday's close (EST)
    for bad in ("after_close+30s", "25:00", "sometime"):
        with pytest.raises(ValueError, match="TECHNIC_UPDATE_AT"):
            Schedule.parse(bad)


def test_the_scheduled_update_appends_after_the_close_retries_and_the_watches_see_it(tmp_path):
    bars = generated_bars(SYMS, "2023-09-01", "2024-03-27")
    data = tmp_path / "data"
    uni = pd.DataFrame({"Symbol": SYMS, "Name": SYMS, "Sector": "Energy", "Industry": "Oil"})
    with YahooStub(bars) as stub:
        provider = YahooProvider(data / "providers" / "yahoo" / "daily", base_url=stub.url,
                                 per_minute=None, backoff=0.01, max_retries=1, timeout=2)
        init_store(data, provider, uni, start="2023-09-01", end="2024-03-27")
        svc = local_service(data)
        asyncio.run(svc.create(WatchSpec("all", definition={"where": "Close > 0"})))
        asyncio.run(svc.tick())
        clock = ManualClock(_utc("2024-03-28 19:00"))  # before Thursday's close
        settings = Settings(update_at="after_close+30m", update_retry_s=600)
        updater = ScheduledUpdater(data, settings, clock,
                                   run=functools.partial(run_update, provider=provider))
        assert updater.step().wanted == []  # caught up at start: nothing closed since
        assert updater.next_due == pd.Timestamp("2024-03-28 20:30", tz="UTC")
        stub.add_session("2024-03-28")
        clock.advance_to(_utc("2024-03-28 20:29"))
        n = len(stub.requests)
        assert updater.step() is None and len(stub.requests) == n  # not yet due

        stub.always["U3"] = "500"
        clock.advance_to(_utc("2024-03-28 20:31"))
        assert updater.step().appended == []
        status = updater.status()
        assert not status["ok"] and "U3" in status["last_error"] and status["failures"] == 1
        assert not read_status(data)["ok"] and "U3" in read_status(data)["failed"]
        assert read_manifest(data).last_session == "2024-03-27"  # nothing half-appended

        del stub.always["U3"]
        clock.advance(599)
        assert updater.step() is None  # the retry waits TECHNIC_UPDATE_RETRY_S
        clock.advance(1)
        assert updater.step().appended == ["2024-03-28"]
        assert updater.status()["ok"] and read_status(data)["ok"]
        assert updater.next_due == pd.Timestamp("2024-04-01 20:30", tz="UTC")  # Good Friday

    result = asyncio.run(svc.tick())
    assert [r.session for r in result.runs] == ["2024-03-28"]
    assert result.runs[0].evaluated == ["all"]
