"""Benchmark: Alpaca stream client latency and throughput, and a whole session replayed.

    python bench/bench_live_feed.py [--symbols 5000] [--minutes 30] [--delay 0.05]

stream   a local server in another process speaks Alpaca's protocol and sends each minute's
         bars of --symbols symbols in Alpaca-sized arrays (500 bars a message), one minute
         every 0.5 s; the client (technic_v4.live.alpaca.AlpacaFeed, batching delay --delay)
         yields a batch per minute. Latency = the batch's yield minus the server's send of
         that minute's first bar (one monotonic clock: the same machine), so it holds the
         loopback, the JSON decoding, the batching delay and the batch build; median and p99
         over the minutes. The bar that waits longest is the minute's first. Bars of a minute
         that arrive after its batch left (the burst took longer than the delay) are counted
         as corrections.
replay   a 390-minute session of --symbols symbols (the session frame) checked and played at
         `max` through the same batching (ReplaySource): seconds for the whole session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import time

import numpy as np
import pandas as pd

from technic_v4.live.feed import DEFAULT_DELAY_S

T0 = pd.Timestamp("2026-10-30 13:30", tz="UTC")
KEY, SECRET = "bench-key", "bench-secret"
PER_MESSAGE = 500
GAP_S = 0.5


def serve(port_q: mp.Queue, sent_q: mp.Queue, symbols: int, minutes: int) -> None:
    """The server process: Alpaca's handshake, then `minutes` bursts of bars."""
    from websockets.asyncio.server import serve as ws_serve

    names = [f"S{i:04d}" for i in range(symbols)]

    async def handle(ws):  # type: ignore[no-untyped-def]
        await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
        await ws.recv()
        await ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
        for _ in range(-(-symbols // 1000)):
            await ws.recv()
            await ws.send(json.dumps([{"T": "subscription", "bars": []}]))
        for k in range(minutes + 1):
            t = (T0 + pd.Timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
            msgs = [json.dumps([{"T": "b", "S": s, "o": 10.0, "h": 11.0, "l": 9.0,
                                 "c": 10.0 + k, "v": 100, "t": t, "n": 5, "vw": 10.1}
                                for s in names[i:i + PER_MESSAGE]])
                    for i in range(0, symbols, PER_MESSAGE)]
            await asyncio.sleep(GAP_S)
            sent_q.put(time.monotonic())
            for m in msgs:
                await ws.send(m)
        await ws.wait_closed()

    async def main() -> None:
        async with ws_serve(handle, "127.0.0.1", 0, max_size=None) as server:
            port_q.put(server.sockets[0].getsockname()[1])
            await asyncio.sleep(3600)

    asyncio.run(main())


async def stream(port: int, symbols: int, minutes: int, delay: float
                 ) -> tuple[list[float], dict[str, object]]:
    """When each minute's (first) batch left, and the feed's status at the end."""
    from technic_v4.live.alpaca import AlpacaFeed

    feed = AlpacaFeed([f"S{i:04d}" for i in range(symbols)], key_id=KEY, secret_key=SECRET,
                      stream_url=f"ws://127.0.0.1:{port}", batch_delay_s=delay)
    yielded: dict[pd.Timestamp, float] = {}
    async for batch in feed:
        yielded.setdefault(batch.start, time.monotonic())
        if len(yielded) == minutes:
            break
    await feed.aclose()
    return [yielded[k] for k in sorted(yielded)], feed.status.as_dict()


def replay(symbols: int) -> tuple[float, float]:
    from technic_v4.live.feed import run
    from technic_v4.live.replay import ReplaySource

    n, m = symbols, 390
    names = np.array([f"S{i:04d}" for i in range(n)], dtype=object)
    close = 100 + np.random.default_rng(0).normal(size=n * m)
    frame = pd.DataFrame({"ts": T0 + pd.to_timedelta(np.repeat(np.arange(m), n), unit="min"),
                          "symbol": np.tile(names, m), "open": close, "high": close + 1,
                          "low": close - 1, "close": close, "volume": 1000.0})
    t0 = time.perf_counter()
    source = ReplaySource(frame)
    t1 = time.perf_counter()
    asyncio.run(run(source, []))
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--delay", type=float, default=DEFAULT_DELAY_S)
    args = ap.parse_args()
    port_q: mp.Queue = mp.Queue()
    sent_q: mp.Queue = mp.Queue()
    server = mp.Process(target=serve, args=(port_q, sent_q, args.symbols, args.minutes),
                        daemon=True)
    server.start()
    try:
        port = port_q.get(timeout=60)
        yielded, status = asyncio.run(stream(port, args.symbols, args.minutes, args.delay))
        sent = [sent_q.get(timeout=60) for _ in yielded]
    finally:
        server.terminate()
    lat = np.array(yielded) - np.array(sent)
    print(f"stream  {args.symbols} symbols x {args.minutes} minutes, delay {args.delay}s: "
          f"first bar -> batch median {np.median(lat) * 1e3:.0f} ms, "
          f"p99 {np.percentile(lat, 99) * 1e3:.0f} ms, max {lat.max() * 1e3:.0f} ms; "
          f"bars after their minute's batch (corrections) {status['corrections']}")
    check, play = replay(args.symbols)
    print(f"replay  390 minutes x {args.symbols} symbols at max: checked in {check:.2f} s, "
          f"played in {play:.2f} s")


if __name__ == "__main__":
    main()
