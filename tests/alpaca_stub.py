"""Local stand-ins for Alpaca's market data: the v2 stocks stream (websocket) and the
`GET /v2/stocks/bars` REST endpoint, in Alpaca's documented message shapes, on 127.0.0.1.

`AlpacaStream(scripts)` serves one script per connection, in order (the last one repeats):
after `[{"T":"success","msg":"connected"}]` it reads the auth message (a wrong key gets
`[{"T":"error","code":402,"msg":"auth failed"}]` and the close), answers `authenticated`,
acknowledges every subscribe message with a `subscription` message (or the script's
`subscribe_error`), then plays the script's steps:
  ("send", payload)  a text frame: a list/dict is JSON-encoded, a str is sent as given
  ("close",)         drops the connection (as a network failure would)
  ("hold",)          keeps it open until the client closes
`subscribed` collects the symbols each connection subscribed to.

`AlpacaRest(bars, page_size)` serves `bars` (a long frame: symbol, start, o, h, l, c, v, n,
vw) filtered by symbols/start/end, `page_size` bars per page with `next_page_token`;
`script` is a list of HTTP statuses answered first (then the data); `hits` counts requests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
from http_stub import LoopbackStub
from websockets.asyncio.server import ServerConnection, serve

KEY, SECRET = "test-key", "test-secret"
QUIET = logging.getLogger("alpaca_stub")  # the server's own logs stay out of the tests' output
QUIET.propagate = False
QUIET.addHandler(logging.NullHandler())
Step = tuple[Any, ...]


def bar_msg(symbol: str, start: pd.Timestamp, close: float, *, kind: str = "b",
            volume: float = 100.0) -> dict[str, Any]:
    """One bar message as Alpaca sends it."""
    return {"T": kind, "S": symbol, "o": close - 0.5, "h": close + 1, "l": close - 1,
            "c": close, "v": volume, "t": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "n": 10,
            "vw": close - 0.1}


class AlpacaStream:
    def __init__(self, scripts: list[dict[str, Any]]):
        self.scripts = scripts
        self.connections = 0
        self.subscribed: list[list[str]] = []
        self.server: Any = None

    async def __aenter__(self) -> AlpacaStream:
        self.server = await serve(self._handle, "127.0.0.1", 0, logger=QUIET)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    async def _handle(self, ws: ServerConnection) -> None:
        script = self.scripts[min(self.connections, len(self.scripts) - 1)]
        self.connections += 1
        await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
        auth = json.loads(await ws.recv())
        if auth != {"action": "auth", "key": KEY, "secret": SECRET}:
            await ws.send(json.dumps([{"T": "error", "code": 402, "msg": "auth failed"}]))
            await ws.close()
            return
        await ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
        symbols: list[str] = []
        want = script.get("subscribe_messages", 1)
        for _ in range(want):
            sub = json.loads(await ws.recv())
            symbols += sub.get("bars", [])
            if "subscribe_error" in script:
                await ws.send(json.dumps([script["subscribe_error"]]))
                await ws.wait_closed()
                return
            await ws.send(json.dumps([{"T": "subscription", "trades": [], "quotes": [],
                                       "bars": symbols, "updatedBars": symbols}]))
        self.subscribed.append(symbols)
        for step in script.get("steps", []):
            if step[0] == "send":
                payload = step[1]
                await ws.send(payload if isinstance(payload, str) else json.dumps(payload))
            elif step[0] == "close":
                ws.transport.abort()  # a network failure: no close frame
                return
            elif step[0] == "hold":
                await ws.wait_closed()
                return
        await ws.wait_closed()


class AlpacaRest(LoopbackStub):
    def __init__(self, bars: pd.DataFrame, page_size: int = 1000) -> None:
        self.bars, self.page_size = bars.sort_values(["symbol", "start"]), page_size
        self.script: list[int] = []
        self.hits = 0
        super().__init__()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        self.hits += 1
        url = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if (h.headers.get("APCA-API-KEY-ID"), h.headers.get("APCA-API-SECRET-KEY")) != (
                KEY, SECRET):
            return self._send(h, 401, {"message": "unauthorized"})
        if self.script:
            status = self.script.pop(0)
            return self._send(h, status, {"message": f"scripted {status}"},
                              {"Retry-After": "0"} if status == 429 else {})
        if url.path != "/v2/stocks/bars" or q.get("timeframe") != "1Min":
            return self._send(h, 404, {"message": "not found"})
        start, end = pd.Timestamp(q["start"]), pd.Timestamp(q["end"])
        b = self.bars
        b = b[b["symbol"].isin(q["symbols"].split(",")) & (b["start"] >= start)
              & (b["start"] <= end)]
        offset = int(q.get("page_token", "0"))
        page = b.iloc[offset:offset + self.page_size]
        out: dict[str, list[dict[str, Any]]] = {}
        for r in page.itertuples():
            out.setdefault(r.symbol, []).append(
                {"t": r.start.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": r.o, "h": r.h, "l": r.l,
                 "c": r.c, "v": r.v, "n": r.n, "vw": r.vw})
        more = offset + self.page_size < len(b)
        return self._send(h, 200, {"bars": out, "next_page_token":
                                   str(offset + self.page_size) if more else None})

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: dict,
              headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)


def rest_frame(symbols: list[str], starts: list[pd.Timestamp],
               close: Callable[[str, pd.Timestamp], float]) -> pd.DataFrame:
    """The REST truth: one bar per symbol and start, values from `close`, shaped like
    `bar_msg` so a stream bar and its REST twin are the same bar."""
    rows = []
    for s in symbols:
        for t in starts:
            m = bar_msg(s, t, close(s, t))
            rows.append({"symbol": s, "start": t, **{k: m[k] for k in "ohlcvn"},
                         "vw": m["vw"]})
    return pd.DataFrame(rows)
