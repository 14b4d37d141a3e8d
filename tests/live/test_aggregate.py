"""Aggregation of minute batches into timeframe bars: alignment, partial bars at an early
close, closing without the last minutes, duplicates, corrections, resync flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from technic_v4.live import Aggregator, BarBatch, session_bounds

MIN = pd.Timedelta(minutes=1)


def batch(start: pd.Timestamp, symbols: list[str], close: list[float],
          correction: bool = False) -> BarBatch:
    c = np.asarray(close, dtype=float)
    return BarBatch(start, np.array(symbols, dtype=object), c, c + 1, c - 1, c, c * 10,
                    correction=correction)


def test_early_close_from_the_calendar_cuts_the_last_hour_and_marks_it_partial():
    open_, close = session_bounds("2026-11-27")  # the day after Thanksgiving: 13:00 close
    assert (close - open_) == pd.Timedelta(hours=3, minutes=30)
    agg = Aggregator(["A"], ("H1", "D"))
    agg.open_session(open_, close)
    events = []
    for m in range(200):  # the minutes 12:50-13:00 never come
        events += agg.fold(batch(open_ + m * MIN, ["A"], [100.0 + m]))
    assert [(e.timeframe, e.start - open_, e.partial) for e in events] == [
        ("H1", pd.Timedelta(0), False), ("H1", pd.Timedelta(hours=1), False),
        ("H1", pd.Timedelta(hours=2), False)]
    events = agg.close_through(close)
    assert [(e.timeframe, e.end, e.partial) for e in events] == [
        ("H1", close, True), ("D", close, False)]
    last, day = events
    assert last.bars["open"][0] == 100.0 + 180 and last.bars["close"][0] == 100.0 + 199
    assert day.bars["high"][0] == 100.0 + 199 + 1 and day.bars["volume"][0] == pytest.approx(
        sum((100.0 + m) * 10 for m in range(200)))
    assert agg.close_through(close) == []


def test_a_bar_closes_when_its_last_minute_arrives_or_the_next_bar_begins():
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    agg = Aggregator(["A", "B"], ("M5",))
    agg.open_session(open_, open_ + 30 * MIN)
    assert agg.fold(batch(open_ + 3 * MIN, ["A", "B"], [1.0, 2.0])) == []
    closed = agg.fold(batch(open_ + 4 * MIN, ["A"], [3.0]))  # B has no bar at 09:34: a gap
    assert len(closed) == 1 and closed[0].rows.tolist() == [0, 1]
    assert closed[0].bars["close"].tolist() == [3.0, 2.0]
    assert agg.fold(batch(open_ + 9 * MIN, ["B"], [5.0]))[0].rows.tolist() == [1]
    # nothing in 09:40-09:45 until 09:46 arrives: that bar closes (no rows), then nothing
    assert agg.fold(batch(open_ + 16 * MIN, ["A"], [6.0])) == []


def test_duplicates_are_ignored_and_counted_unknown_symbols_too():
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    agg = Aggregator(["A"], ("M1",))
    agg.open_session(open_, open_ + 10 * MIN)
    first = agg.fold(batch(open_, ["A", "ZZZ"], [1.0, 2.0]))
    again = agg.fold(batch(open_, ["A"], [1.0]))
    assert len(first) == 1 and again == []
    assert agg.counts["duplicate"] == 1 and agg.counts["unknown"] == 1
    assert agg.fold(batch(open_ - MIN, ["A"], [1.0])) == []  # before the open
    assert agg.counts["outside"] == 1


def test_a_correction_revises_the_last_bar_and_flags_an_older_one():
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    agg = Aggregator(["A", "B"], ("M1", "M5"))
    agg.open_session(open_, open_ + 10 * MIN)
    for m in range(3):
        agg.fold(batch(open_ + m * MIN, ["A", "B"], [10.0 + m, 20.0 + m]))
    fixed = agg.fold(batch(open_ + 2 * MIN, ["A"], [99.0], correction=True))
    assert [(e.timeframe, e.revised, e.bars["close"].tolist()) for e in fixed] == [
        ("M1", True, [99.0])]  # the M5 bar is still forming: rebuilt when it closes
    assert agg.fold(batch(open_, ["B"], [7.0], correction=True)) == []
    assert agg.resync["M1"].tolist() == [False, True] and agg.counts["resync"] == 1
    closed = agg.close_through(open_ + 5 * MIN)
    assert closed[0].bars["open"].tolist() == [10.0, 7.0]
    assert closed[0].bars["close"].tolist() == [99.0, 22.0]


def test_a_late_bar_after_the_symbols_last_bar_is_a_new_bar_not_a_revision():
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    agg = Aggregator(["A", "B"], ("M1",))
    agg.open_session(open_, open_ + 10 * MIN)
    agg.fold(batch(open_, ["A", "B"], [1.0, 2.0]))
    agg.fold(batch(open_ + MIN, ["A"], [1.5]))
    late = agg.fold(batch(open_ + MIN, ["B"], [2.5]))
    assert [(e.revised, e.rows.tolist()) for e in late] == [(False, [1])]
    assert agg.counts["late"] == 0 and not agg.resync["M1"].any()


def test_unknown_timeframes_and_non_sessions_are_refused():
    with pytest.raises(ValueError, match="unknown timeframe"):
        Aggregator(["A"], ("M2",))
    with pytest.raises(ValueError, match="not a XNYS session"):
        session_bounds("2026-11-26")


def test_a_bar_of_the_previous_session_flags_a_resync_and_sessions_go_forward():
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    agg = Aggregator(["A", "B"], ("M5", "D"))
    agg.open_session(open_, open_ + 10 * MIN)
    agg.fold(batch(open_, ["A", "B"], [1.0, 2.0]))
    tomorrow = open_ + pd.Timedelta(days=1)
    closed = agg.open_session(tomorrow, tomorrow + 10 * MIN)
    assert [e.timeframe for e in closed] == ["M5", "D"]
    assert agg.fold(batch(open_ + 9 * MIN, ["B"], [3.0])) == []
    assert agg.resync["D"].tolist() == [False, True] and agg.resync["M5"].tolist() == [False, True]
    assert agg.fold(batch(open_ - pd.Timedelta(days=3), ["A"], [1.0])) == []
    assert agg.counts["outside"] == 1
    with pytest.raises(ValueError, match="does not come after"):
        agg.open_session(open_, open_ + 10 * MIN)


def test_a_reused_symbol_array_is_mapped_again_when_its_values_change():
    open_ = pd.Timestamp("2026-03-02 14:30", tz="UTC")
    agg = Aggregator(["A", "B"], ("M1",))
    agg.open_session(open_, open_ + 10 * MIN)
    symbols = np.array(["A"], dtype=object)
    one = np.array([1.0])
    agg.fold(BarBatch(open_, symbols, one, one, one, one, one))
    symbols[0] = "B"  # a source writing the next minute into the same buffer
    closed = agg.fold(BarBatch(open_ + MIN, symbols, one, one, one, one, one))
    assert closed[0].rows.tolist() == [1]
