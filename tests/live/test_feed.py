"""The batching every live source shares: grouping by minute, the delay on an injected clock,
duplicates dropped, late and changed bars delivered as corrections, all counted."""

import numpy as np
import pandas as pd
import pytest

from technic_v4.live import BarBatch
from technic_v4.live.feed import Batcher, FeedStatus

T0 = pd.Timestamp("2026-10-30 13:30", tz="UTC")
MIN = 60 * 10**9


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bar(close: float, volume: float = 100.0) -> tuple:
    return (close, close + 1, close - 1, close, volume, np.nan, np.nan)


def make(clock: Clock | None = None, delay: float = 0.1) -> tuple[Batcher, FeedStatus]:
    status = FeedStatus("test")
    return Batcher(status, delay=delay, clock=clock or Clock()), status


def rows(batch: BarBatch) -> dict[str, float]:
    return dict(zip(batch.symbols.tolist(), batch.close.tolist(), strict=True))


def test_a_minute_leaves_when_the_next_minute_starts():
    b, status = make()
    assert b.add("AAA", T0.value, bar(1.0)) == []
    assert b.add("BBB", T0.value, bar(2.0)) == []
    out = b.add("AAA", T0.value + MIN, bar(3.0))
    assert [x.start for x in out] == [T0]
    assert rows(out[0]) == {"AAA": 1.0, "BBB": 2.0} and not out[0].correction
    assert status.bars == 3 and status.batches == 1
    assert status.last_bar == T0 + pd.Timedelta(minutes=1)


def test_a_minute_leaves_once_its_bars_stop_coming_for_the_delay():
    clock = Clock()  # binary fractions: the sums are exact
    b, status = make(clock, delay=0.25)
    b.add("AAA", T0.value, bar(1.0))
    clock.now = 0.125
    b.add("BBB", T0.value, bar(2.0))     # the burst goes on: the quiet gap starts again
    clock.now = 0.25
    assert b.due() == [] and b.next_due() == 0.125
    clock.now = 0.375
    (out,) = b.due()
    assert rows(out) == {"AAA": 1.0, "BBB": 2.0}
    assert b.next_due() is None and status.max_wait_s == 0.375


def test_a_minute_that_keeps_trickling_leaves_after_the_longest_wait():
    clock = Clock()
    b, status = make(clock, delay=0.1)
    b.max_wait = 0.25
    for i in range(4):                    # a bar every 0.08 s: never quiet for 0.1 s
        clock.now = 0.08 * i
        b.add(f"S{i}", T0.value, bar(1.0))
        assert b.due() == []
    clock.now = 0.25
    (out,) = b.due()
    assert len(out) == 4 and status.max_wait_s == pytest.approx(0.25)


def test_the_same_bar_twice_is_dropped_and_counted_before_and_after_delivery():
    b, status = make()
    b.add("AAA", T0.value, bar(1.0))
    b.add("AAA", T0.value, bar(1.0))
    b.add("AAA", T0.value + MIN, bar(2.0))
    b.add("AAA", T0.value, bar(1.0))  # delivered already: still the same bar
    assert status.duplicates == 2 and b.flush()[0].start == T0 + pd.Timedelta(minutes=1)
    assert status.corrections == 0


def test_late_and_changed_bars_of_a_delivered_minute_are_one_correction_batch():
    clock = Clock()
    b, status = make(clock)
    b.add("AAA", T0.value, bar(1.0))
    b.add("AAA", T0.value + MIN, bar(2.0))          # T0 leaves
    b.add("AAA", T0.value, bar(1.5))                # changed (an updated bar)
    b.add("CCC", T0.value, bar(9.0))                # late: never delivered for T0
    assert b.due() == []
    clock.now = 0.2
    out = b.due()
    fix = [x for x in out if x.correction]
    assert len(fix) == 1 and fix[0].start == T0
    assert rows(fix[0]) == {"AAA": 1.5, "CCC": 9.0}
    assert status.corrections == 2
    b.add("CCC", T0.value, bar(9.0))                # the correction repeated
    assert status.duplicates == 1


def test_batches_that_are_not_corrections_leave_in_increasing_start():
    clock = Clock()
    b, _ = make(clock)
    b.add("AAA", T0.value + 2 * MIN, bar(3.0))
    b.add("AAA", T0.value + MIN, bar(2.0))          # an earlier minute, still pending
    clock.now = 0.11
    out = b.due()
    assert [x.start.value for x in out] == [T0.value + MIN, T0.value + 2 * MIN]
    assert not any(x.correction for x in out)


def test_a_pending_bar_replaced_by_a_newer_one_is_counted():
    b, status = make()
    b.add("AAA", T0.value, bar(1.0))
    b.add("AAA", T0.value, bar(1.2, volume=150.0))
    (out,) = b.flush()
    assert rows(out) == {"AAA": 1.2} and out.volume[0] == 150.0
    assert status.replaced == 1 and status.bars == 1


def test_a_whole_minute_passes_as_given_and_merges_with_what_is_known():
    b, status = make()
    whole = BarBatch(start=T0, symbols=["AAA", "BBB"], open=[1, 2], high=[1, 2], low=[1, 2],
                     close=[1, 2], volume=[10, 20], trades=[3, 4])
    (out,) = b.add_minute(whole)
    assert out is whole and status.bars == 2
    again = BarBatch(start=T0, symbols=["AAA", "BBB", "CCC"], open=[1, 2, 3],
                     high=[1, 2.5, 3], low=[1, 2, 3], close=[1, 2, 3], volume=[10, 20, 30],
                     trades=[3, 4, 5])
    (fix,) = b.add_minute(again)
    assert fix.correction and sorted(fix.symbols) == ["BBB", "CCC"]
    assert status.duplicates == 1 and status.corrections == 2
    np.testing.assert_array_equal(fix.trades, [4, 5])


@pytest.mark.parametrize("delay", [-1, 5.0])
def test_a_delay_below_zero_or_above_the_longest_wait_is_refused(delay):
    with pytest.raises(ValueError, match="delay"):
        make(delay=delay)
