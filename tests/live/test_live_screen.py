"""A live screen replayed through a session equals the intraday scan's full recompute at every
bar close (same passing set, same values to 1e-9): timeframes are terms of one planner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
