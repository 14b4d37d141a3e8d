"""A live screen replayed through a session equals the intraday scan's full recompute at every
bar close (same passing set, same values to 1e-9): timeframes are terms of one planner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from technic_cli import technic

from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.demo_intraday import build_demo_intraday
from technic_v4.data.store import load_panel
from technic_v4.live.bars import BarBatch
from technic_v4.live.replay import load_session
from technic_v4.live.screens import LiveScreen
from technic_v4.scan.intraday import scan_intraday

SESSION = "2026-10-30"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("live-screen")
    build_demo_store(root, DemoSpec(n_symbols=60, start="2026-04-01"))
    build_demo_intraday(root, sessions=2)
    return root



def _whole(root) -> list[str]:
    """Symbols with every one of the last 60 daily bars: the intraday scan reads a fixed window
    of daily bars, the live state each symbol's whole history; they agree where nothing is
    missing from the window."""
    panel = load_panel(root)
    whole = np.isfinite(panel.close[:, -61:-1]).all(axis=1)
    return panel.symbols[whole].tolist()


@pytest.mark.parametrize("where", [
    "D.Close > D.SMA50 and M5.Close > M5.EMA9",
    "crosses_above(M5.Close, M5.SMA20) or M15.RSI < 40",
    "D.Close > D.SMA20 and crosses_above(M5.Close, M5.VWAP) and M15.VWAP > 0",
])
def test_live_screen_equals_the_full_recompute_at_every_bar_close(store, where):
    live = LiveScreen(store, where, symbols=_whole(store))
    live.start(SESSION)
    frame = load_session(store, SESSION)
    checked, kinds = 0, set()
    for ts, minute in frame.groupby("ts", sort=True):
        batch = BarBatch(pd.Timestamp(ts), minute["symbol"].to_numpy(dtype=object),
                         *(minute[f].to_numpy(dtype=float) for f in
                           ("open", "high", "low", "close", "volume")))
        events = live(batch)
        closes = [ev for ev in live.state.bar_end.items() if ev[0] == "M5"]
        end = closes[0][1]
        if end is None or end != pd.Timestamp(ts) + pd.Timedelta(minutes=1):
            continue
        if checked % 4 == 0:
            full = scan_intraday(store, where, end, symbols=live.symbols)
            assert sorted(full.rows["Symbol"]) == sorted(live.passing)
            for _, row in full.rows.iterrows():
                mine = live.row(row["Symbol"])
                for col, value in mine.items():
                    assert value == pytest.approx(row[col], rel=1e-9, abs=1e-9), col
        checked += 1
        for ev in events:
            kinds.add(ev["kind"])
            assert ev["bar_time"] == end.isoformat() and ev["timeframe"] == "M5"
    assert checked == 78 and kinds == {"entered", "left"}


def test_the_cli_prints_events_whose_sets_equal_the_full_recompute(store, capsys):
    where = "D.Close > D.SMA20 and crosses_above(M5.Close, M5.EMA9)"
    symbols = ",".join(_whole(store))
    args = ("live", "--replay", SESSION, "--speed", "max", "--where", where, "--symbol",
            symbols, "--format", "jsonl", "--data-dir", str(store))
    assert technic(*args) == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert "done" in err.splitlines()[-1] and events
    passing: set[str] = set()
    by_time: dict[str, set[str]] = {}
    for ev in events:
        (passing.add if ev["kind"] == "entered" else passing.discard)(ev["symbol"])
        by_time[ev["bar_time"]] = set(passing)
    for stamp in sorted(by_time)[::7]:
        full = scan_intraday(store, where, pd.Timestamp(stamp), symbols=symbols.split(","))
        assert set(full.rows["Symbol"]) == by_time[stamp], stamp
    assert len({ev["id"] for ev in events}) == len(events)
    assert technic(*args) == 0  # a replay gives the same events, ids included
    assert [json.loads(line) for line in capsys.readouterr()[0].splitlines()] == events


@pytest.mark.parametrize("extra, message", [
    (("--where", "M5.Close > 0", "--format", "xml"), "--format 'xml'"),
    (("--top", "3"), "give --where or --screen"),
    (("--where", "W.Close > 0"), "weekly"),
    (("--screen", "nosuch"), "unknown screen 'nosuch'"),
    (("--screen", "momentum-leaders"), "RS_rating is not kept live"),
])
def test_wrong_live_screen_options_are_one_error_line(store, capsys, extra, message):
    assert technic("live", "--replay", SESSION, "--speed", "max", "--data-dir", str(store),
                   *extra) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""
