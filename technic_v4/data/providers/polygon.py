"""Polygon.io client: one grouped-daily request per session for the whole US market.

Why grouped daily: the scanner this project replaces made one HTTP request per symbol (75 s to
53 min per scan). `GET /v2/aggs/grouped/locale/us/market/stocks/{date}` returns every ticker's
bar for one session in one response, so a year of history is ~252 requests and a daily update
is one.

What the client guarantees, per session asked for, exactly one of:
  a DataFrame of bars (symbol, date, open, high, low, close, volume), every row dated that
  session (a response whose bars carry another date is refused, not stored under the wrong day);
  `None`: the server answered but holds no bars for it (`resultsCount` 0: a missing day);
  a `PolygonError` after retries are spent, or at once for 401/403 (a bad key is not transient).
Retried, with exponential backoff and jitter (capped at `max_backoff`): 429 (honouring
Retry-After), 5xx, transport errors, and bodies that are truncated or do not parse, or whose
`resultsCount` disagrees with the bars received. A `RateLimiter` spaces request starts across
threads (Polygon's free tier allows 5 requests/minute; paid tiers are unlimited).
The key comes from `POLYGON_API_KEY` and is sent as the `apiKey` query parameter; `base_url` is
configurable (argument, or env `POLYGON_BASE_URL`) so tests talk to a stub server on
127.0.0.1 and never to the internet.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import date

import httpx
import pandas as pd

log = logging.getLogger("technic.polygon")

API_KEY_ENV = "POLYGON_API_KEY"
DEFAULT_BASE_URL = "https://api.polygon.io"
GROUPED_PATH = "/v2/aggs/grouped/locale/us/market/stocks/{day}"
TICKERS_PATH = "/v3/reference/tickers"
BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]


class PolygonError(RuntimeError):
    """A request that cannot succeed (bad key) or that failed after every retry."""


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.wait = wait


class RateLimiter:
    """At most `per_minute` request starts per minute, shared by every thread (None: no cap)."""

    def __init__(self, per_minute: float | None):
        self.interval = 0.0 if not per_minute else 60.0 / per_minute
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class PolygonClient:
    """Grouped-daily bars and the ticker reference, with retries (see module docstring)."""

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 max_retries: int = 5, backoff: float = 1.0, max_backoff: float = 60.0,
                 per_minute: float | None = None, timeout: float = 30.0,
                 adjusted: bool = True) -> None:
        key = api_key or os.environ.get(API_KEY_ENV)
        if not key:
            raise PolygonError(f"no Polygon API key: set {API_KEY_ENV} (https://polygon.io)")
        self.api_key, self.adjusted = key, adjusted
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.limiter = RateLimiter(per_minute)
        self.http = httpx.Client(base_url=base_url or os.environ.get(
            "POLYGON_BASE_URL", DEFAULT_BASE_URL), timeout=timeout)
        self.requests = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PolygonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ endpoints

    def grouped_daily(self, day: date | str | pd.Timestamp) -> pd.DataFrame | None:
        """Every ticker's bar for session `day`, or None when Polygon has none for it."""
        day = pd.Timestamp(day).date()
        path = GROUPED_PATH.format(day=day.isoformat())
        params = {"adjusted": str(self.adjusted).lower()}
        return self._with_retries(f"grouped daily {day}", path, params,
                                  lambda body: _parse_grouped(body, day))

    def tickers(self, *, market: str = "stocks", active: bool = True) -> pd.DataFrame:
        """The ticker reference (symbol, name, type, primary_exchange), following next_url."""
        rows: list[dict] = []
        url, params = TICKERS_PATH, {"market": market, "active": str(active).lower(),
                                     "limit": "1000"}
        seen: set[str] = set()
        while url and url not in seen:  # a repeated next_url would loop forever
            seen.add(url)
            body = self._with_retries("tickers", url, params, lambda b: b)
            rows.extend(body.get("results") or [])
            url, params = body.get("next_url"), {}
        frame = pd.DataFrame(rows)
        for col in ("ticker", "name", "type", "primary_exchange"):
            if col not in frame:
                frame[col] = ""
        return frame.rename(columns={"ticker": "symbol"})[
            ["symbol", "name", "type", "primary_exchange"]]

    # ------------------------------------------------------------------ plumbing

    def _with_retries(self, what: str, url: str, params: dict, parse):
        last = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            try:
                return parse(self._get_json(url, params))
            except _Retry as retry:
                last = str(retry)
                if attempt == self.max_retries:
                    break
                wait = retry.wait
                if wait is None:
                    wait = min(self.max_backoff, self.backoff * 2**attempt)
                    wait *= 0.5 + random.random() / 2
                log.info("polygon %s: %s; retry %d/%d in %.2fs", what, last, attempt + 1,
                         self.max_retries, wait)
                time.sleep(min(wait, self.max_backoff))
        raise PolygonError(f"polygon {what}: gave up after {self.max_retries + 1} attempts "
                           f"(last: {last})")

    def _get_json(self, url: str, params: dict) -> dict:
        self.requests += 1
        try:
            # merge, not replace: a next_url carries its own query (the cursor)
            full = httpx.URL(url).copy_merge_params({**params, "apiKey": self.api_key})
            resp = self.http.get(full)
            status = resp.status_code
            if status in (401, 403):
                raise PolygonError(f"polygon refused the API key (HTTP {status}): "
                                   f"{resp.text[:200]}")
            if status == 429:
                raise _Retry("HTTP 429 rate limited", _retry_after(resp))
            if status >= 500:
                raise _Retry(f"HTTP {status}")
            if status != 200:
                raise PolygonError(f"polygon HTTP {status} for {url}: {resp.text[:200]}")
            try:
                body = resp.json()
            except ValueError as exc:
                raise _Retry(f"body does not parse ({len(resp.content)} bytes): {exc}") from exc
        except httpx.TransportError as exc:  # connect/read errors, truncated bodies
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict):
            raise _Retry("body is not a JSON object")
        if body.get("status") == "ERROR":
            raise _Retry(f"status ERROR: {body.get('error') or body.get('message')}")
        return body


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _parse_grouped(body: dict, day: date) -> pd.DataFrame | None:
    results = body.get("results") or []
    count = body.get("resultsCount")
    if count is not None and count != len(results):
        raise _Retry(f"resultsCount {count} but {len(results)} bars received")
    if not results:
        return None
    frame = pd.DataFrame(results)
    missing = [c for c in ("T", "o", "h", "l", "c", "v", "t") if c not in frame]
    if missing:
        raise _Retry(f"bars lack fields {missing}")
    ts = pd.to_datetime(frame["t"], unit="ms", utc=True).dt.tz_convert("America/New_York")
    dates = ts.dt.date
    if (dates != day).any():
        wrong = sorted({str(d) for d in dates[dates != day]})[:3]
        raise _Retry(f"response for {day} holds bars dated {wrong}")
    out = pd.DataFrame({"symbol": frame["T"].astype(str), "date": day.isoformat(),
                        "open": frame["o"], "high": frame["h"], "low": frame["l"],
                        "close": frame["c"], "volume": frame["v"]})
    return out[BAR_COLUMNS].astype({c: float for c in BAR_COLUMNS[2:]})
