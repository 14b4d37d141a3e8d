"""Demo minute bars: deterministic, and their daily resample equals the demo market's daily
bars exactly for every symbol and session (halted and thin names included); only the demo
market gets them; `technic data intraday check` flags a daily bar that disagrees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from technic_v4.data import intraday as I
from technic_v4.data import resample as R
from technic_v4.data.demo import DemoSpec, build_demo_store
from technic_v4.data.demo_intraday import build_demo_intraday, demo_minutes
from technic_v4.data.panel import FIELDS
from technic_v4.data.store import load_panel, write_store

SPEC = DemoSpec(n_symbols=60, start="2026-04-01", end="2026-11-27")  # ends on an early close


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    build_demo_store(root, SPEC)
    return root


def test_daily_resample_equals_the_daily_bars(demo_dir):
    days = build_demo_intraday(demo_dir, sessions=3)
    assert days == ["2026-11-24", "2026-11-25", "2026-11-27"]
    minutes = I.load_intraday(demo_dir, sessions=3)
    assert minutes.n_bars == 390 + 390 + 210
    daily = load_panel(demo_dir, bars=3)
    report = R.check_daily(minutes, daily)
    assert report.flagged == 0
    assert report.compared == int(np.isfinite(daily.close).sum())
    rows = pd.Index(daily.symbols).get_indexer(minutes.symbols)
    ours = R.daily_bars(minutes)
    for f in FIELDS:  # bit for bit, not only within a tolerance
        np.testing.assert_array_equal(ours[f], getattr(daily, f)[rows])


def test_minutes_are_deterministic_and_well_formed(demo_dir):
    daily = load_panel(demo_dir, bars=2)
    a, b = demo_minutes(daily, 1), demo_minutes(daily, 1)
    pd.testing.assert_frame_equal(a, b)
    assert not demo_minutes(daily, 0).equals(a)
    clean = I.check_frame(a, daily.sessions[1])  # what write_session accepts
    assert len(clean) == len(a)
    assert (a.groupby("symbol").size() <= 390).all()


def test_only_the_demo_market_gets_demo_minutes(tmp_path, demo_dir):
    panel = load_panel(demo_dir, bars=150)
    write_store(tmp_path, sessions=panel.sessions, universe=panel.universe, open=panel.open,
                high=panel.high, low=panel.low, close=panel.close, volume=panel.volume,
                source="files")
    with pytest.raises(I.IntradayError, match="not the synthetic demo market"):
        build_demo_intraday(tmp_path)
    with pytest.raises(I.IntradayError, match="between 1 and 60"):
        build_demo_intraday(demo_dir, sessions=0)
