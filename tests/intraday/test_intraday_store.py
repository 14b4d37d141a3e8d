"""The intraday store: a session frame written is read back bit-identical, laid on the
session's minute grid (early closes and extended hours from the calendar), and bad input
is refused with a message naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from intraday_frames import random_frame

from technic_v4.data import intraday as I
from technic_v4.data.panel import FIELDS

DAY, EARLY, NEXT = "2026-10-30", "2026-11-27", "2026-11-30"  # a Friday, Black Friday


def test_round_trip_and_window(tmp_path):
    a = random_frame(DAY, ["MSFT", "AAPL", "BRK.B"], seed=1)
    b = random_frame(EARLY, ["AAPL", "MSFT"], seed=2)
    I.write_session(tmp_path, DAY, a.sample(frac=1, random_state=0))  # any row order
    I.write_session(tmp_path, EARLY, b)
    assert list(I.stored_sessions(tmp_path).strftime("%Y-%m-%d")) == [DAY, EARLY]
    back = I.read_session(tmp_path, DAY)
    expect = a.sort_values(["ts", "symbol"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expect, check_dtype=False)

    panel = I.load_intraday(tmp_path, sessions=2, symbols=["aapl", "MSFT", "BRK.B"])
    assert panel.close.shape == (3, 390 + 210)  # a full session, then an early close
    assert panel.times[390] == pd.Timestamp(f"{EARLY} 14:30", tz="UTC")
    assert panel.times[-1] == pd.Timestamp(f"{EARLY} 17:59", tz="UTC")
    assert list(panel.session_of[[0, 389, 390, 599]]) == [0, 0, 1, 1]
    assert np.isnan(panel.close[2, 390:]).all()  # BRK.B has no bars on the second day
    for frame, k in ((a, 0), (b, 1)):
        for row, sym in enumerate(panel.symbols):
            mine = frame[frame.symbol == sym]
            cols = np.searchsorted(panel.times.asi8, pd.DatetimeIndex(mine.ts).asi8)
            for f in FIELDS:
                np.testing.assert_array_equal(getattr(panel, f)[row, cols], mine[f])
            have = np.isfinite(panel.close[row, panel.bars_of(k)]).sum()
            assert have == len(mine)

    only_first = I.load_intraday(tmp_path, end=DAY)
    assert list(only_first.symbols) == ["AAPL", "BRK.B", "MSFT"] and only_first.n_bars == 390


def test_extended_hours_are_kept_and_read_on_request(tmp_path):
    frame = random_frame(DAY, ["SPY"], seed=3, hours="extended")
    I.write_session(tmp_path, DAY, frame)
    regular = I.load_intraday(tmp_path)
    extended = I.load_intraday(tmp_path, hours="extended")
    assert regular.n_bars == 390 and extended.n_bars == 16 * 60  # 04:00-20:00 ET
    assert extended.times[0] == pd.Timestamp(f"{DAY} 04:00", tz="America/New_York")
    inside = np.isin(extended.times.asi8, regular.times.asi8)
    np.testing.assert_array_equal(extended.close[:, inside], regular.close)
    assert np.isfinite(extended.close[:, ~inside]).sum() > 0
    early = I.session_bounds(pd.Timestamp(EARLY), hours="extended")
    assert early[1] == pd.Timestamp(f"{EARLY} 17:00", tz="America/New_York")


def test_rewriting_a_session_replaces_it_whole(tmp_path):
    I.write_session(tmp_path, DAY, random_frame(DAY, ["AAA", "BBB"], seed=4))
    second = random_frame(DAY, ["CCC"], seed=5)
    I.write_session(tmp_path, DAY, second)
    assert set(I.read_session(tmp_path, DAY).symbol) == {"CCC"}
    assert [p.name for p in (tmp_path / "intraday").iterdir()] == [f"{DAY}.parquet"]


def _bad(frame: pd.DataFrame, **change) -> pd.DataFrame:
    out = frame.copy()
    for col, value in change.items():
        out.loc[out.index[3], col] = value
    return out


@pytest.mark.parametrize(("change", "message"), [
    ({"symbol": "BAD SYMBOL!"}, "invalid symbol"),
    ({"close": np.nan}, "missing or non-positive price"),
    ({"high": 1.0}, "high < max"),
    ({"volume": -5.0}, "negative volume"),
    ({"ts": pd.Timestamp(f"{DAY} 21:00", tz="UTC") + pd.Timedelta(seconds=30)},
     "do not start on a minute"),
    ({"ts": pd.Timestamp(f"{NEXT} 01:00", tz="UTC")}, "outside the session"),
])
def test_bad_bars_are_refused_by_name(tmp_path, change, message):
    frame = random_frame(DAY, ["AAA", "BBB"], seed=6)
    with pytest.raises(I.IntradayError, match=message):
        I.write_session(tmp_path, DAY, _bad(frame, **change))
    assert I.stored_sessions(tmp_path).empty


def test_bad_sessions_dates_and_frames_are_refused(tmp_path):
    frame = random_frame(DAY, ["AAA"], seed=7)
    with pytest.raises(I.IntradayError, match="is a Saturday"):
        I.write_session(tmp_path, "2026-10-31", frame)
    with pytest.raises(I.IntradayError, match="not a date"):
        I.write_session(tmp_path, "yesterday-ish", frame)
    with pytest.raises(I.IntradayError, match="repeat a"):
        I.write_session(tmp_path, DAY, pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(I.IntradayError, match="tz-aware"):
        I.write_session(tmp_path, DAY, frame.assign(ts=frame.ts.dt.tz_localize(None)))
    with pytest.raises(I.IntradayError, match="lacks columns"):
        I.write_session(tmp_path, DAY, frame.drop(columns="volume"))
    with pytest.raises(I.IntradayError, match="no intraday bars"):
        I.load_intraday(tmp_path)
    I.write_session(tmp_path, DAY, frame)
    with pytest.raises(I.IntradayError, match="no intraday bars for 2026-10-29"):
        I.read_session(tmp_path, "2026-10-29")
    with pytest.raises(I.IntradayError, match="no intraday bars up to 2026-10-29"):
        I.load_intraday(tmp_path, end="2026-10-29")
    with pytest.raises(ValueError, match="invalid symbol"):
        I.load_intraday(tmp_path, symbols=["../etc"])
