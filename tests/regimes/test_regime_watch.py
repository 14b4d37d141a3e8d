"""Watches and the market regime: a `regime_changed` event exactly at the sessions whose
regime differs from the session before, for the watches that asked; screens reading the
regime evaluated as of each appended session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "watch"))
from serve_support import tiny_models  # noqa: E402
from support import SplitMarket, run  # noqa: E402

from technic_v4.data import store  # noqa: E402
from technic_v4.data.demo import DemoSpec, generate_demo_market  # noqa: E402
from technic_v4.regimes import regime_series  # noqa: E402
from technic_v4.watch.deliver import Policy  # noqa: E402
from technic_v4.watch.model import KINDS, WatchSpec  # noqa: E402
from technic_v4.watch.send import summary  # noqa: E402
from technic_v4.watch.service import local_service  # noqa: E402

APPENDED = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("regime-watch")
    market = generate_demo_market(DemoSpec(n_symbols=120, start="2025-01-02"))
    series = regime_series(market.to_panel())
    changes = np.flatnonzero(series.regime[1:] != series.regime[:-1]) + 1
    changes = changes[(changes > 300) & (changes < len(series.regime) - APPENDED)]
    first = int(changes[0]) - 2  # the baseline two sessions before a change
    store.write_store(root / "data", sessions=market.sessions[:first + 1],
                      universe=market.universe,
                      **{f: getattr(market, f)[:, :first + 1] for f in
                         ("open", "high", "low", "close", "volume")}, source="synthetic")
    split = SplitMarket(root / "data", market, first + 1)
    svc = local_service(root / "data", tiny_models(root / "models"),
                        policy=Policy(allow_private=True))
    trend = series.trend[first + 2]
    specs = [WatchSpec("regime", definition={"max_symbols": 5}, regime_changed=True),
             WatchSpec("plain", definition={"max_symbols": 5}),
             WatchSpec("in-trend", definition={"where": f'regime == "{trend}"'})]
    for spec in specs:
        run(svc.create(spec))
    sessions = []
    for _ in range(APPENDED):
        sessions += split.append()
        run(svc.tick())
    events = [e for _, e in svc.store.events_after(0, 100_000)]
    return {"series": series, "sessions": sessions, "events": events, "trend": trend}


def test_regime_changed_events_mark_exactly_the_changes(world) -> None:
    series, events = world["series"], world["events"]
    got = [e for e in events if e["kind"] == "regime_changed"]
    expected = []
    for session in world["sessions"]:
        t = series.index_of(session)
        if series.regime[t] != series.regime[t - 1]:
            expected.append((session, series.regime[t - 1], series.regime[t]))
    assert expected, "the appended sessions should hold a regime change"
    assert [(e["session"], e["previous_regime"], e["regime"]) for e in got] == expected
    assert {e["watch"] for e in got} == {"regime"} and "regime_changed" in KINDS
    assert all(e["symbol"] == "" and e["row"] is None for e in got)
    assert got[0]["regime_tags"] == series.tags_at(series.index_of(got[0]["session"]))
    title, body = summary("regime", got[0]["session"], got)
    assert "1 regime changed" in title and f"-> {got[0]['regime']}" in body


def test_a_watch_reading_the_regime_follows_each_sessions(world) -> None:
    series, trend = world["series"], world["trend"]
    mine = [e for e in world["events"] if e["watch"] == "in-trend"]
    kinds = {(e["session"], e["kind"]) for e in mine}
    for prev, session in zip(world["sessions"], world["sessions"][1:], strict=False):
        was = series.trend[series.index_of(prev)] == trend
        now = series.trend[series.index_of(session)] == trend
        if was and not now:
            assert (session, "left") in kinds and (session, "entered") not in kinds
        if now and not was:
            assert (session, "entered") in kinds and (session, "left") not in kinds
        if was == now == False:  # noqa: E712 - nothing kept on either side
            assert not any(s == session for s, _ in kinds)
