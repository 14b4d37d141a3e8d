"""Resampling minute bars: each M5..H1 bar and each daily bar is what pandas computes by
grouping the stored minutes on bins aligned to the session open (an independent reference),
over random sessions with minutes missing, halts and early closes; a bar cut by the close is
partial; the daily resample is checked against the daily store's bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intraday_frames import random_frame

from technic_v4.data import intraday as I
from technic_v4.data import resample as R
from technic_v4.data.calendar import xnys
from technic_v4.data.panel import FIELDS, panel_from_arrays

SESSIONS = ["2026-10-29", "2026-10-30", "2026-11-27", "2026-12-24"]  # two early closes
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def reference(frame: pd.DataFrame, session: str, minutes: int | None) -> pd.DataFrame:
    """pandas' groupby over (symbol, bin start); minutes=None: the day's regular hours."""
    opened = xnys().session_open(pd.Timestamp(session))
    closed = xnys().session_close(pd.Timestamp(session))
    f = frame[(frame.ts >= opened) & (frame.ts < closed)] if minutes is None else frame
    start = opened if minutes is None else opened + ((f.ts - opened) // pd.Timedelta(
        minutes=minutes)) * pd.Timedelta(minutes=minutes)
    return f.assign(start=start).groupby(["symbol", "start"]).agg(AGG)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=st.lists(st.sampled_from(SESSIONS), min_size=1, max_size=2, unique=True),
       timeframe=st.sampled_from(["M5", "M15", "M30", "H1"]),
       present=st.sampled_from([1.0, 0.7, 0.1]),
       halt=st.tuples(st.integers(0, 389), st.integers(1, 120)),
       seed=st.integers(0, 2**16))
def test_resample_equals_grouping_on_open_aligned_bins(days, timeframe, present, halt, seed):
    days = sorted(days)
    symbols = ["AAA", "BBB", "CCC"]
    frames = [random_frame(d, symbols, seed + k, present, (halt[0], halt[0] + halt[1]))
              for k, d in enumerate(days)]
    panel = I.panel_from_frames(pd.DatetimeIndex(days), frames, symbols)
    k = R.TIMEFRAME_MINUTES[timeframe]
    bars = R.resample(panel, timeframe)
    for d, (day, frame) in enumerate(zip(days, frames, strict=True)):
        cols = bars.bars_of(d)
        grid_len = panel.bars_of(d).stop - panel.bars_of(d).start
        assert cols.stop - cols.start == -(-grid_len // k)
        times = bars.times[cols]
        opened = xnys().session_open(pd.Timestamp(day))
        assert times[0] == opened and ((times.asi8 - opened.value) % (k * 60 * 10**9) == 0).all()
        part = bars.partial[cols]
        assert part[:-1].sum() == 0 and part[-1] == (grid_len % k != 0)
        ref = reference(frame, day, k)
        for row, sym in enumerate(symbols):
            got = {f: getattr(bars, f)[row, cols] for f in FIELDS}
            mine = ref.loc[sym] if sym in ref.index.get_level_values(0) else ref.iloc[:0]
            at = np.searchsorted(times.asi8, pd.DatetimeIndex(mine.index).asi8)
            for f in FIELDS:
                np.testing.assert_array_equal(got[f][at], mine[f].to_numpy())
            absent = np.ones(len(times), bool)
            absent[at] = False
            assert np.isnan(got["close"][absent]).all()

    daily = R.daily_bars(panel)
    for d, (day, frame) in enumerate(zip(days, frames, strict=True)):
        ref = reference(frame, day, None)
        for row, sym in enumerate(symbols):
            for f in FIELDS:
                want = ref.loc[sym][f].iloc[0] if sym in ref.index.get_level_values(0) else np.nan
                np.testing.assert_array_equal(daily[f][row, d], want)


def test_the_last_hour_of_an_early_close_is_partial():
    frame = random_frame("2026-11-27", ["AAA"], seed=1)
    panel = I.panel_from_frames(pd.DatetimeIndex(["2026-11-27"]), [frame], ["AAA"])
    h1 = R.resample(panel, "H1")
    assert list(h1.times.tz_convert("America/New_York").strftime("%H:%M")) == [
        "09:30", "10:30", "11:30", "12:30"]
    assert list(h1.minutes) == [60, 60, 60, 30] and list(h1.partial) == [0, 0, 0, 1]
    assert R.closed_through(h1, pd.Timestamp("2026-11-27 12:30", tz="America/New_York")) == 3
    assert R.closed_through(h1, pd.Timestamp("2026-11-27 13:00", tz="America/New_York")) == 4


def test_extended_hours_bins_run_back_from_the_open():
    frame = random_frame("2026-10-30", ["AAA"], seed=2, hours="extended")
    panel = I.panel_from_frames(pd.DatetimeIndex(["2026-10-30"]), [frame], ["AAA"],
                                hours="extended")
    h1 = R.resample(panel, "H1")
    local = h1.times.tz_convert("America/New_York").strftime("%H:%M")
    assert local[0] == "03:30" and h1.minutes[0] == 30 and h1.partial[0]
    assert "09:30" in list(local) and local[-1] == "19:30" and h1.minutes[-1] == 30
    # the daily bar counts regular hours only
    regular = I.panel_from_frames(pd.DatetimeIndex(["2026-10-30"]), [frame], ["AAA"])
    for f in FIELDS:
        np.testing.assert_array_equal(R.daily_bars(panel)[f], R.daily_bars(regular)[f])


def test_check_daily_flags_each_disagreement():
    days = pd.DatetimeIndex(["2026-10-29", "2026-10-30"])
    frames = [random_frame(d, ["AAA", "BBB"], seed=k) for k, d in enumerate(days)]
    panel = I.panel_from_frames(days, frames, ["AAA", "BBB"])
    d = R.daily_bars(panel)
    daily = panel_from_arrays(["AAA", "BBB"], days, **{f: d[f].copy() for f in FIELDS})
    clean = R.check_daily(panel, daily)
    assert clean.compared == 4 and clean.flagged == 0
    daily.high[1, 0] += 0.01
    daily.volume[1, 0] += 1
    daily.close[0, 1] = np.nan  # the store lacks AAA's second day
    flagged = R.check_daily(panel, daily)
    assert flagged.flagged == 2 and flagged.compared == 3
    assert sorted(flagged.mismatches.field) == ["high", "volume"]
    assert set(flagged.mismatches.symbol) == {"BBB"}
    assert list(flagged.one_sided.side) == ["intraday only"]
