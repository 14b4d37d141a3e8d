"""A local stand-in for api.polygon.io: grouped-daily and ticker-reference responses in
Polygon's recorded format, served from real fixture bars, with scripted failures.

Binds 127.0.0.1 on a free port only. `script[date]` is a list of failure modes consumed one per
request for that date (then the day is served normally); a mode in `always[date]` applies to
every request. Modes:
  "429"        HTTP 429 with Retry-After: 0
  "500"        HTTP 500
  "truncated"  Content-Length of the full body, half the body sent, connection closed
  "cut_json"   a complete HTTP response whose JSON body is cut short
  "empty"      200 with resultsCount 0 and no results (a day Polygon has no bars for)
  "wrong_day"  200 with the previous day's bars
  "401"        HTTP 401 (bad key)
`hits[date]` counts requests per date.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import pandas as pd
from http_stub import LoopbackStub

KEY = "test-key"


class PolygonStub(LoopbackStub):
    def __init__(self, bars: pd.DataFrame, tickers: list[dict] | None = None) -> None:
        """`bars`: long frame (symbol, date YYYY-MM-DD, open, high, low, close, volume)."""
        self.by_day = {d: g for d, g in bars.groupby("date")}
        self.tickers = tickers or []
        self.script: dict[str, list[str]] = defaultdict(list)
        self.always: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        super().__init__()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        if query.get("apiKey") != [KEY]:
            return self._send(h, 401, {"status": "ERROR", "error": "Unknown API Key"})
        if url.path.startswith("/v3/reference/tickers"):
            return self._tickers(h, query)
        day = url.path.rsplit("/", 1)[-1]
        self.hits[day] += 1
        mode = self.script[day].pop(0) if self.script[day] else self.always.get(day)
        if mode in ("429", "500", "401"):
            headers = {"Retry-After": "0"} if mode == "429" else {}
            return self._send(h, int(mode), {"status": "ERROR", "error": mode}, headers)
        if mode == "wrong_day":
            prev = max(d for d in self.by_day if d < day)
            body = self._grouped(prev)
        elif mode == "empty" or day not in self.by_day:
            body = {"queryCount": 0, "resultsCount": 0, "adjusted": True, "status": "OK",
                    "request_id": "stub"}
        else:
            body = self._grouped(day)
        raw = json.dumps(body).encode()
        if mode == "truncated":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(raw)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(raw[: len(raw) // 2])
            h.wfile.flush()
            h.close_connection = True
            return None
        if mode == "cut_json":
            raw = raw[: len(raw) // 2]
        return self._send_raw(h, 200, raw, {})

    def _grouped(self, day: str) -> dict:
        g = self.by_day[day]
        t = int(pd.Timestamp(day + " 16:00", tz="America/New_York").value // 1_000_000)
        results = [{"T": r.symbol, "v": r.volume, "vw": (r.high + r.low) / 2, "o": r.open,
                    "c": r.close, "h": r.high, "l": r.low, "t": t, "n": 1000}
                   for r in g.itertuples()]
        return {"queryCount": len(results), "resultsCount": len(results), "adjusted": True,
                "results": results, "status": "OK", "request_id": "stub"}

    def _tickers(self, h: BaseHTTPRequestHandler, query: dict) -> None:
        cursor = int(query.get("cursor", ["0"])[0])
        page = self.tickers[cursor: cursor + 2]
        body: dict = {"results": page, "status": "OK", "count": len(page)}
        if cursor + 2 < len(self.tickers):
            body["next_url"] = f"{self.url}/v3/reference/tickers?cursor={cursor + 2}"
        self._send(h, 200, body)

    def _send(self, h: BaseHTTPRequestHandler, code: int, body: dict,
              headers: dict[str, str] | None = None) -> None:
        self._send_raw(h, code, json.dumps(body).encode(), headers or {})

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, code: int, raw: bytes,
                  headers: dict[str, str]) -> None:
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)
