"""The Alpaca stream client against local servers speaking Alpaca's documented messages:
bars in order, duplicates, updated bars, a dropped connection with reconnect and REST
backfill, refused keys and subscriptions, malformed messages (counted, never a crash)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from alpaca_stub import KEY, SECRET, AlpacaRest, AlpacaStream, bar_msg, rest_frame

from technic_v4.live import BarBatch
from technic_v4.live.alpaca import AlpacaError, AlpacaFeed

T0 = pd.Timestamp("2026-10-30 13:30", tz="UTC")
SYMBOLS = ["AAA", "BBB"]


def t(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=i)


def price(symbol: str, start: pd.Timestamp) -> float:
    return 100.0 + ord(symbol[0]) + (start - T0) / pd.Timedelta(minutes=1)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(stream: AlpacaStream, clock: Clock, rest_url: str = "http://127.0.0.1:9", **kw):
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    kw.setdefault("now", lambda: t(5) + pd.Timedelta(seconds=30))
    kw.setdefault("batch_delay_s", 60)  # minutes leave when the next one starts
    f = AlpacaFeed(SYMBOLS, key_id=kw.pop("key", KEY), secret_key=SECRET,
                   stream_url=stream.url, data_url=rest_url, clock=clock,
                   sleep=no_sleep, backoff=0.5, **kw)
    f.waits = waits  # type: ignore[attr-defined]
    return f


async def collect(f: AlpacaFeed, stop) -> list[BarBatch]:
    out: list[BarBatch] = []
    try:
        async for b in f:
            out.append(b)
            if stop(out):
                break
    finally:
        await f.aclose()
    return out


def run(scripts, body, rest: AlpacaRest | None = None, **kw):
    async def main():
        clock = Clock()
        async with AlpacaStream(scripts) as stream:
            f = feed(stream, clock, rest.url if rest else "http://127.0.0.1:9", **kw)
            batches = await asyncio.wait_for(body(f), 60)  # a hang guard, not a bound
            return f, stream, batches
    return asyncio.run(main())


def closes(batch: BarBatch) -> dict[str, float]:
    return dict(zip(batch.symbols.tolist(), batch.close.tolist(), strict=True))


def msgs(i: int, symbols=SYMBOLS, **kw) -> list[dict]:
    return [bar_msg(s, t(i), price(s, t(i)), **kw) for s in symbols]


def test_bars_arrive_as_one_batch_per_minute_in_order_and_duplicates_are_dropped():
    steps = [("send", msgs(0)), ("send", msgs(0)[:1]), ("send", msgs(1)),
             ("send", msgs(2)), ("hold",)]
    f, stream, out = run([{"steps": steps}],
                         lambda f: collect(f, lambda out: len(out) == 2))
    assert [b.start for b in out] == [t(0), t(1)]
    assert closes(out[0]) == {s: price(s, t(0)) for s in SYMBOLS}
    assert out[0].trades is not None and out[0].vwap is not None
    assert f.status.duplicates == 1 and f.status.malformed == 0
    assert stream.subscribed == [SYMBOLS] and f.status.state == "done"


def test_an_updated_bar_of_a_delivered_minute_is_a_correction():
    """With no delay every frame's bars leave as soon as it is read (the delay itself is
    test_feed's, on a fake clock)."""
    updated = [bar_msg("AAA", t(0), 7.0, kind="u")]
    steps = [("send", msgs(0)), ("send", msgs(1)), ("send", updated), ("hold",)]
    f, _, out = run([{"steps": steps}],
                    lambda f: collect(f, lambda out: any(b.correction for b in out)),
                    batch_delay_s=0)
    fix = [b for b in out if b.correction]
    assert [b.start for b in out if not b.correction] == [t(0), t(1)]
    assert fix[0].start == t(0) and closes(fix[0]) == {"AAA": 7.0}
    assert f.status.corrections == 1


def test_a_dropped_connection_reconnects_and_backfills_the_missed_minutes():
    truth = rest_frame(SYMBOLS, [t(i) for i in range(6)], price)
    first = [("send", msgs(0)), ("send", msgs(1)), ("send", msgs(2, ["AAA"])), ("close",)]
    second = [("send", msgs(4, ["AAA"])), ("send", msgs(5)), ("send", msgs(6)[:1]),
              ("hold",)]
    with AlpacaRest(truth, page_size=3) as rest:
        rest.script = [429, 500]  # retried, then served
        f, stream, out = run([{"steps": first}, {"steps": second}],
                             lambda f: collect(f, lambda out: out[-1].start == t(5)), rest)
    assert stream.connections == 2 and f.status.reconnects == 1
    normal = [b.start for b in out if not b.correction]
    assert normal == sorted(normal) == [t(i) for i in range(6)]
    got: dict[tuple[str, pd.Timestamp], float] = {}
    for b in out:  # a correction replaces what came before
        got.update({(s, b.start): c for s, c in closes(b).items()})
    assert got == {(r.symbol, r.start): r.c for r in truth.itertuples()}
    fixes = [b for b in out if b.correction]
    assert [(b.start, list(b.symbols)) for b in fixes] == [(t(2), ["BBB"])]
    # 13:32 BBB, 13:33 x2, 13:34 x2 from REST; 13:32 AAA and 13:34 AAA seen twice
    assert f.status.backfilled == 5 and f.status.duplicates == 2
    assert f.status.rate_limited == 1 and rest.hits > 3  # pages followed after the retries
    assert len(f.waits) == 3  # one reconnect backoff, two HTTP retries


@pytest.mark.parametrize("script, kw, why", [
    ([503] * 10, {"max_retries": 1}, "HTTP 503"),
    ([], {"max_body_bytes": 100}, "response over 100 bytes"),
])
def test_a_backfill_that_fails_is_an_error_in_the_status_and_the_stream_goes_on(script, kw,
                                                                                 why):
    first = [("send", msgs(0)), ("close",)]
    second = [("send", msgs(5)), ("send", msgs(6)[:1]), ("hold",)]
    with AlpacaRest(rest_frame(SYMBOLS, [t(i) for i in range(6)], price)) as rest:
        rest.script = script
        f, _, out = run([{"steps": first}, {"steps": second}],
                        lambda f: collect(f, lambda out: out[-1].start == t(5)), rest, **kw)
    assert [b.start for b in out] == [t(0), t(5)]
    assert "backfill" in f.status.last_error and why in f.status.last_error
    assert f.status.backfilled == 0


def test_a_refused_key_is_a_precise_error_and_the_feed_stops():
    async def body(f):
        with pytest.raises(AlpacaError, match="402: auth failed .*ALPACA_API_KEY_ID"):
            await collect(f, lambda out: False)
        return []
    f, stream, _ = run([{"steps": []}], body, key="wrong")
    assert f.status.state == "failed" and stream.connections == 1
    assert "auth failed" in f.status.last_error


@pytest.mark.parametrize("code, msg, match", [
    (409, "insufficient subscription", "--feed iex"),
    (405, "symbol limit exceeded", "fewer symbols"),
])
def test_a_refused_subscription_is_fatal_and_named(code, msg, match):
    script = {"subscribe_error": {"T": "error", "code": code, "msg": msg}}

    async def body(f):
        with pytest.raises(AlpacaError, match=match):
            await collect(f, lambda out: False)
        return []
    f, _, _ = run([script], body)
    assert f.status.state == "failed" and str(code) in f.status.last_error


def test_a_slow_client_error_reconnects_and_giving_up_is_visible():
    script = {"steps": [("send", [{"T": "error", "code": 407, "msg": "slow client"}])]}

    async def body(f):
        with pytest.raises(AlpacaError, match="gave up after 3"):
            await collect(f, lambda out: False)
        return []
    f, stream, _ = run([script], body, max_reconnects=2)
    assert stream.connections == 3 and f.status.reconnects == 2
    assert f.status.state == "failed"


def test_malformed_messages_are_counted_and_skipped():
    bad_bar = dict(bar_msg("AAA", t(0), 1.0), o="x")
    off_minute = bar_msg("BBB", t(0) + pd.Timedelta(seconds=7), 1.0)
    garbage = ["not json", "42", [{"no": "type"}], [bad_bar], [off_minute],
               [bar_msg("ZZZ", t(0), 1.0)], [{"T": "zz"}], [dict(bar_msg("AAA", t(0), 1.0),
                                                            t="yesterday")]]
    steps = [("send", g) for g in garbage] + [("send", msgs(0)), ("send", msgs(1)),
                                              ("hold",)]
    f, _, out = run([{"steps": steps}], lambda f: collect(f, lambda out: len(out) == 1))
    assert closes(out[0]) == {s: price(s, t(0)) for s in SYMBOLS}
    assert f.status.malformed == len(garbage) and f.status.errors == 0


def test_bad_arguments_are_refused_before_connecting():
    for kw, match in [({"key_id": ""}, "ALPACA_API_KEY_ID"), ({"feed": "otc"}, "feed"),
                      ({"symbols": ["AA PL"]}, "invalid symbol"), ({"symbols": []}, "no sym")]:
        args = {"symbols": SYMBOLS, "key_id": KEY, "secret_key": SECRET, **kw}
        with pytest.raises(AlpacaError, match=match):
            AlpacaFeed(args.pop("symbols"), **args)
