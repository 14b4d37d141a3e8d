"""A local stand-in for Yahoo Finance's chart API, in the wire format yfinance parses, so the
real `yfinance` client (pointed here by the provider's `base_url`) is what the tests drive.

Binds 127.0.0.1 on a free port only. Serves:
  GET /                          the cookie page yfinance asks fc.yahoo.com for (sets A3)
  GET /v1/test/getcrumb          a crumb, as text
  GET /consent                   the consent page of yfinance's fallback strategy (no form)
  GET /v8/finance/chart/{SYM}    daily bars between period1 and period2 (epoch seconds,
                                 period2 exclusive): {"chart": {"result": [{meta, timestamp,
                                 indicators: {quote: [{open, high, low, close, volume}],
                                 adjclose: [{adjclose}]}}], "error": null}}; a symbol it does
                                 not know gets Yahoo's 404 "No data found, symbol may be
                                 delisted"; a known one with no bars in the range, a result
                                 without timestamps.
`script[SYM]` lists failure modes consumed one per chart request for that symbol (then it is
served normally); `always[SYM]` applies to every request. Modes:
  "429"        HTTP 429 "Too Many Requests" (text, as Yahoo sends it)
  "500"        HTTP 500 with an HTML body
  "malformed"  HTTP 200 whose JSON is cut short
  "slow"       the answer is held back `slow_s` seconds (past the client's timeout)
  "partial"    only the first half of the asked range (a short answer, not an error)
`requests` logs every chart request as (symbol, first day, last day) asked for; with
`hold_after = N`, chart requests after the Nth wait until `release` is set (a client can be
killed while they hang).
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pandas as pd
from http_stub import LoopbackStub

from technic_v4.data.calendar import sessions_between

NY = "America/New_York"


def generated_bars(symbols: list[str], start: str, end: str, *,
                   calendar: str = "XNYS") -> dict[str, pd.DataFrame]:
    """Deterministic random-walk daily bars per symbol on the calendar's sessions: columns
    open, high, low, close, adj_close (close x a slowly drifting dividend factor), volume,
    indexed by session."""
    days = sessions_between(start, end, calendar)
    out = {}
    for sym in symbols:
        rng = np.random.default_rng(zlib.crc32(sym.encode()))
        close = 20 + 80 * rng.random() * np.exp(np.cumsum(rng.normal(0, 0.015, len(days))))
        openp = close * (1 + rng.normal(0, 0.004, len(days)))
        high = np.maximum(openp, close) * (1 + rng.random(len(days)) * 0.01)
        low = np.minimum(openp, close) * (1 - rng.random(len(days)) * 0.01)
        factor = np.linspace(0.97, 1.0, len(days))
        out[sym] = pd.DataFrame({
            "open": openp.round(4), "high": high.round(4), "low": low.round(4),
            "close": close.round(4), "adj_close": (close * factor).round(4),
            "volume": rng.integers(100_000, 5_000_000, len(days)).astype(float)}, index=days)
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away (killed, timed out) is expected here, not a stub fault."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class YahooStub(LoopbackStub):
    server_class = _Server  # a client that went away is no stub fault

    def __init__(self, bars: dict[str, pd.DataFrame], *, tz: str = NY,
                 slow_s: float = 3.0) -> None:
        self.bars, self.tz, self.slow_s = bars, tz, slow_s
        self.script: dict[str, list[str]] = defaultdict(list)
        self.always: dict[str, str] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.hold_after: int | None = None
        self.release = threading.Event()
        self._lock = threading.Lock()
        super().__init__()

    def hits(self, symbol: str) -> int:
        return sum(1 for s, _, _ in self.requests if s == symbol)

    def add_session(self, day: str) -> None:
        """Every symbol gets a bar on `day` (its last close, moved 1%)."""
        ts = pd.Timestamp(day)
        for sym, frame in self.bars.items():
            last = frame.iloc[-1]
            row = last * 1.01
            row["volume"] = last["volume"]
            self.bars[sym] = pd.concat([frame, row.to_frame(ts).T])

    # -- requests --------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        if url.path == "/":
            return self._send(h, 200, b"<html></html>", "text/html",
                              {"Set-Cookie": "A3=stub; Path=/; Max-Age=86400"})
        if url.path == "/v1/test/getcrumb":
            return self._send(h, 200, b"stubcrumb", "text/plain")
        if not url.path.startswith("/v8/finance/chart/"):
            return self._send(h, 404, b"<html>not here</html>", "text/html")
        sym = unquote(url.path.rsplit("/", 1)[-1])
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        first, last = self._range(query)
        with self._lock:
            self.requests.append((sym, str(first.date()), str(last.date())))
            mode = self.script[sym].pop(0) if self.script[sym] else self.always.get(sym)
            held = self.hold_after is not None and len(self.requests) > self.hold_after
        if held:
            self.release.wait(60)
        if mode == "429":
            return self._send(h, 429, b"Too Many Requests\r\n", "text/plain")
        if mode == "500":
            return self._send(h, 500, b"<html>Internal error</html>", "text/html")
        if mode == "slow":
            time.sleep(self.slow_s)
        if sym not in self.bars:
            body = {"chart": {"result": None, "error": {
                "code": "Not Found", "description": "No data found, symbol may be delisted"}}}
            return self._send(h, 404, json.dumps(body).encode(), "application/json")
        frame = self.bars[sym]
        frame = frame[(frame.index >= first) & (frame.index <= last)]
        if mode == "partial":
            frame = frame.iloc[: len(frame) // 2]
        raw = json.dumps(self._chart(sym, frame)).encode()
        if mode == "malformed":
            raw = raw[: len(raw) // 2]
        return self._send(h, 200, raw, "application/json")

    def _range(self, query: dict[str, str]) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The sessions [period1, period2) asks for, as naive days (range=1d: the last one)."""
        if "period1" in query:
            lo = pd.Timestamp(int(query["period1"]), unit="s", tz="UTC").tz_convert(self.tz)
            hi = pd.Timestamp(int(query.get("period2", 2e9)), unit="s",
                              tz="UTC").tz_convert(self.tz) - pd.Timedelta(seconds=1)
            return lo.tz_localize(None).normalize(), hi.tz_localize(None).normalize()
        far = pd.Timestamp("2100-01-01")
        return far - pd.Timedelta(days=36500), far

    def _chart(self, sym: str, frame: pd.DataFrame) -> dict:
        opens = [pd.Timestamp(d).tz_localize(self.tz) + pd.Timedelta(hours=9, minutes=30)
                 for d in frame.index]
        meta = {"currency": "USD", "symbol": sym, "exchangeName": "NMS",
                "fullExchangeName": "NasdaqGS", "instrumentType": "EQUITY",
                "firstTradeDate": 345479400, "regularMarketTime": 1_700_000_000,
                "hasPrePostMarketData": True, "gmtoffset": -18000, "timezone": "EST",
                "exchangeTimezoneName": self.tz, "priceHint": 2, "dataGranularity": "1d",
                "range": "", "validRanges": ["1d", "5d", "1mo", "1y", "5y", "max"]}
        result: dict = {"meta": meta, "indicators": {"quote": [{}], "adjclose": [{}]}}
        if len(frame):
            result["timestamp"] = [int(t.timestamp()) for t in opens]
            result["indicators"] = {
                "quote": [{c: _nulls(frame[c]) for c in ("open", "high", "low", "close")}
                          | {"volume": _nulls(frame["volume"])}],
                "adjclose": [{"adjclose": _nulls(frame["adj_close"])}]}
        return {"chart": {"result": [result], "error": None}}

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, raw: bytes, kind: str,
              headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(code)
            h.send_header("Content-Type", kind)
            h.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            pass


def _nulls(col: pd.Series) -> list[float | None]:
    """Yahoo writes a missing value as null."""
    return [None if pd.isna(v) else float(v) for v in col]
