"""The replay source: a session frame played minute by minute through the live batching, on
an injected clock, at a given speed or as fast as it is read; bad frames refused by name."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from technic_v4.live.feed import run
from technic_v4.live.replay import ReplayError, ReplaySource, parse_speed

OPEN = pd.Timestamp("2026-10-30 13:30", tz="UTC")


def session(minutes: int = 5, symbols=("AAA", "BBB", "CCC"), seed: int = 0) -> pd.DataFrame:
    """A session frame with gaps: some symbols do not trade in some minutes."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(minutes):
        for s in symbols:
            if rng.random() < 0.2:
                continue
            c = 100 + rng.normal()
            rows.append({"ts": OPEN + pd.Timedelta(minutes=k), "symbol": s, "open": c,
                         "high": c + 1, "low": c - 1, "close": c, "volume": 1000.0 + k})
    return pd.DataFrame(rows)


class FakeTime:
    """A clock that moves only when the replay sleeps."""

    def __init__(self) -> None:
        self.now, self.slept = 100.0, []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def play(source: ReplaySource) -> list:
    out: list = []
    asyncio.run(run(source, [lambda batch, status: out.append(batch)]))
    return out


def test_a_replay_yields_each_minute_once_with_every_bar_of_the_frame():
    frame = session()
    out = play(ReplaySource(frame))
    assert [b.start for b in out] == sorted(frame["ts"].unique())
    got = pd.concat([pd.DataFrame({"ts": b.start, "symbol": b.symbols, "close": b.close})
                     for b in out], ignore_index=True)
    pd.testing.assert_frame_equal(got, frame[["ts", "symbol", "close"]].sort_values(
        ["ts", "symbol"], ignore_index=True), check_dtype=False)
    assert not any(b.correction for b in out)


def test_minutes_are_released_on_the_clock_at_the_given_speed():
    t = FakeTime()
    frame = session(minutes=4, symbols=("AAA",), seed=3).assign(
        ts=lambda f: OPEN + pd.to_timedelta(range(len(f)), unit="min"))
    source = ReplaySource(frame, speed=60.0, clock=t.clock, sleep=t.sleep)
    seen = []
    asyncio.run(run(source, [lambda batch, status: seen.append((batch.start, t.now))]))
    # minute k leaves k seconds after the start at 60x
    assert [now - 100.0 for _, now in seen] == pytest.approx(list(range(len(frame))))
    assert source.status.state == "done" and source.status.bars == len(frame)


def test_max_speed_never_sleeps():
    t = FakeTime()
    play(ReplaySource(session(), speed=None, clock=t.clock, sleep=t.sleep))
    assert t.slept == []


def test_a_repeated_bar_in_the_frame_keeps_the_last_and_is_counted():
    frame = session(minutes=2)
    again = frame.iloc[[0]].assign(close=55.0)
    source = ReplaySource(pd.concat([frame, again], ignore_index=True))
    out = play(source)
    first = out[0]
    assert first.close[list(first.symbols).index(again.symbol.iloc[0])] == 55.0
    assert source.status.duplicates == 1


@pytest.mark.parametrize("change, match", [
    (lambda f: f.drop(columns="volume"), "lacks columns"),
    (lambda f: f.assign(ts=f.ts.dt.tz_localize(None)), "UTC"),
    (lambda f: f.assign(ts=f.ts + pd.Timedelta(seconds=5)), "whole minute"),
    (lambda f: f.assign(symbol="BAD SYM"), "invalid symbols"),
    (lambda f: f.assign(close="x"), "not a number"),
    (lambda f: f.iloc[:0], "no bars"),
])
def test_a_bad_frame_is_refused_by_name(change, match):
    with pytest.raises(ReplayError, match=match):
        ReplaySource(change(session()))


@pytest.mark.parametrize("text, speed", [("60x", 60.0), ("1x", 1.0), ("390", 390.0),
                                         ("max", None), ("2.5X", 2.5)])
def test_speeds(text, speed):
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["0x", "-1x", "fast", "", "1e9x"])
def test_bad_speeds_are_refused(text):
    with pytest.raises(ReplayError, match="speed"):
        parse_speed(text)
