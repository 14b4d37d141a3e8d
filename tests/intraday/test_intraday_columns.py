"""VWAP, the opening range, the gaps and RVOL equal a plain pandas computation over the
session frames (one group per symbol and session), with minutes missing, extended hours and
an early close."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from intraday_frames import random_frame

from technic_v4.data import intraday as I
from technic_v4.data import resample as R
from technic_v4.data.calendar import xnys
from technic_v4.indicators import intraday as C

DAYS = pd.DatetimeIndex(["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"])
SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture(scope="module")
def frames():
    return [random_frame(d, SYMBOLS, seed=k, present=0.6, halt=(20, 80), hours="extended")
            for k, d in enumerate(DAYS)]


def regular(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    o, c = xnys().session_open(day), xnys().session_close(day)
    return frame[(frame.ts >= o) & (frame.ts < c)]


def value_at(panel, values, sym, ts):
    return values[list(panel.symbols).index(sym), panel.times.get_loc(ts)]


def test_vwap_and_opening_range(frames):
    panel = I.panel_from_frames(DAYS, frames, SYMBOLS, hours="extended")
    vw = C.vwap(panel)
    hi, lo = C.opening_range(panel, 30)
    checked = 0
    for day, frame in zip(DAYS, frames, strict=True):
        open_ = xnys().session_open(day)
        for sym, g in regular(frame, day).groupby("symbol"):
            tp = (g.high + g.low + g.close) / 3
            ref = (tp * g.volume).cumsum() / g.volume.cumsum()
            first30 = g[g.ts < open_ + pd.Timedelta(minutes=30)]
            for ts, want in zip(g.ts, ref, strict=True):
                got = value_at(panel, vw, sym, ts)
                assert got == pytest.approx(want, rel=1e-12, nan_ok=True)
                in_range = ts < open_ + pd.Timedelta(minutes=29)
                h, lw = value_at(panel, hi, sym, ts), value_at(panel, lo, sym, ts)
                if in_range:
                    assert np.isnan(h) and np.isnan(lw)
                else:
                    assert (h, lw) == (first30.high.max(), first30.low.min())
                checked += 1
        premarket = panel.times < open_
        assert np.isnan(vw[:, premarket & (panel.session_of == DAYS.get_loc(day))]).all()
    assert checked > 500


def test_gaps_against_the_previous_close(frames):
    panel = I.panel_from_frames(DAYS, frames, SYMBOLS, hours="extended")
    prev = np.arange(1, 13, dtype=float).reshape(3, 4) * 10
    gap, pre = C.gaps(panel, prev)
    for s, (day, frame) in enumerate(zip(DAYS, frames, strict=True)):
        open_ = xnys().session_open(day)
        for r, sym in enumerate(SYMBOLS):
            mine = frame[frame.symbol == sym]
            reg = regular(mine, day)
            pm = mine[mine.ts < open_]
            last = panel.bars_of(s).stop - 1
            assert gap[r, last] == pytest.approx(reg.open.iloc[0] / prev[r, s] - 1, rel=1e-12)
            assert pre[r, last] == pytest.approx(pm.close.iloc[-1] / prev[r, s] - 1, rel=1e-12)
            before = panel.times.get_loc(reg.ts.iloc[0]) - 1
            assert np.isnan(gap[r, before])
    only_regular = I.panel_from_frames(DAYS, frames, SYMBOLS)
    assert np.isnan(C.gaps(only_regular, prev)[1]).all()


def test_rvol_by_time_of_day(frames):
    panel = I.panel_from_frames(DAYS, frames, SYMBOLS)
    got = C.rvol(panel, lookback=2)
    long = pd.concat([regular(f, d).assign(session=k, minute=(regular(f, d).ts - xnys(
    ).session_open(d)) // pd.Timedelta(minutes=1)) for k, (d, f) in enumerate(
        zip(DAYS, frames, strict=True))])
    checked = 0
    for s in range(1, len(DAYS)):
        for r, sym in enumerate(SYMBOLS):
            g = long[long.symbol == sym]
            today = g[g.session == s]
            for m in (0, 45, 150, 209):
                so_far = today[today.minute <= m].volume.sum()
                base = [g[(g.session == p) & (g.minute <= m)].volume.sum()
                        for p in range(max(0, s - 2), s)]
                col = panel.bars_of(s).start + m
                want = so_far / np.mean(base) if np.mean(base) > 0 else np.nan
                assert got[r, col] == pytest.approx(want, rel=1e-12, nan_ok=True)
                checked += 1
    assert checked == 36 and np.isnan(got[:, panel.bars_of(0)]).all()


def test_columns_on_a_coarser_timeframe_read_the_bar_close(frames):
    panel = I.panel_from_frames(DAYS[:1], frames[:1], SYMBOLS)
    m15 = R.resample(panel, "M15")
    vw = C.at_bar_close(C.vwap(panel), panel, m15)
    np.testing.assert_array_equal(vw[:, 1], C.vwap(panel)[:, 29])
    with pytest.raises(I.IntradayError, match="one-minute bars"):
        C.vwap(m15)
