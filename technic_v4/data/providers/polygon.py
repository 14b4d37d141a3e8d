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
The key (Settings `TECHNIC_POLYGON_API_KEY`, passed in) is sent as the `apiKey` query
parameter; `base_url` (Settings `TECHNIC_POLYGON_URL`) lets tests talk to a stub server on
127.0.0.1 and never to the internet.

`PolygonProvider` puts the client behind the provider interface (base.py): each session is
fetched once into `<data_dir>/providers/polygon/grouped/YYYY-MM-DD.parquet` (temporary file,
one rename), so a rerun after a failure resumes; a session Polygon has no bars for is
`empty`, one that failed every retry `failed`; neither is cached, so the next run asks again.
The bars returned are the cached sessions' (every listed symbol: new listings join the
store), complete through the session before the first missing or failed one.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import pandas as pd

from technic_v4.data.providers.base import (
    BAR_COLUMNS,
    Fetched,
    Progress,
    ProviderError,
    RateLimiter,
    write_atomic,
)

log = logging.getLogger("technic.polygon")

DEFAULT_BASE_URL = "https://api.polygon.io"
GROUPED_PATH = "/v2/aggs/grouped/locale/us/market/stocks/{day}"
TICKERS_PATH = "/v3/reference/tickers"


class PolygonError(ProviderError):
    """A request that cannot succeed (bad key) or that failed after every retry."""


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.wait = wait


class PolygonClient:
    """Grouped-daily bars and the ticker reference, with retries (see module docstring)."""

    def __init__(self, api_key: str | None, *, base_url: str | None = None,
                 max_retries: int = 5, backoff: float = 1.0, max_backoff: float = 60.0,
                 per_minute: float | None = None, timeout: float = 30.0,
                 adjusted: bool = True) -> None:
        if not api_key:
            raise PolygonError("no Polygon API key: set TECHNIC_POLYGON_API_KEY "
                               "(https://polygon.io)")
        self.api_key, self.adjusted = api_key, adjusted
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.limiter = RateLimiter(per_minute)
        self.http = httpx.Client(base_url=base_url or DEFAULT_BASE_URL, timeout=timeout)
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


CACHE_DIR = Path("providers") / "polygon" / "grouped"


def cache_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / CACHE_DIR


def fetch_sessions(client: PolygonClient, sessions: pd.DatetimeIndex,
                   cache: str | os.PathLike[str], *, workers: int = 4,
                   progress: Progress | None = None) -> Fetched:
    """Make sure each session is cached (module docstring); `bars` is left empty."""
    root = Path(cache)
    out = Fetched(bars=pd.DataFrame(columns=BAR_COLUMNS), complete_through=None)
    todo = []
    for s in sessions:
        key = str(s.date())
        if (root / f"{key}.parquet").is_file():
            out.cached.append(key)
        else:
            todo.append(key)
    before = client.requests

    def one(key: str) -> tuple[str, str, str]:
        try:
            bars = client.grouped_daily(key)
        except PolygonError as exc:
            return key, "failed", str(exc)
        if bars is None:
            return key, "empty", ""
        write_atomic(bars, root / f"{key}.parquet")
        return key, "fetched", ""

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, (key, outcome, why) in enumerate(pool.map(one, todo)):
            if outcome == "failed":
                out.failed[key] = why
            elif outcome == "empty":
                out.empty.append(key)
            else:
                out.fetched.append(key)
            if progress:
                progress(len(out.cached) + i + 1, len(sessions))
    out.empty.sort()
    out.fetched.sort()
    out.requests = client.requests - before
    return out


class PolygonProvider:
    """Polygon's grouped daily bars behind the provider interface (module docstring)."""

    name = "polygon"
    prices = "as given"
    calendar = "XNYS"  # the grouped daily endpoint: US stocks only

    def __init__(self, client: PolygonClient, data_dir: str | os.PathLike[str], *,
                 workers: int = 4) -> None:
        self.client, self.cache, self.workers = client, cache_dir(data_dir), workers

    def fetch(self, sessions: pd.DatetimeIndex, symbols: Sequence[str] | None, *,
              progress: Progress | None = None) -> Fetched:
        """Every symbol's bars on the cached `sessions`, complete through the end of their
        first consecutive run (`symbols` is not a filter: the endpoint answers for the whole
        market)."""
        out = fetch_sessions(self.client, sessions, self.cache, workers=self.workers,
                             progress=progress)
        cached = [(s, self.cache / f"{s.date()}.parquet") for s in sessions]
        have = [path.is_file() for _, path in cached]
        run = have.index(False) if False in have else len(have)  # consecutive cached run
        if run:
            out.complete_through = sessions[run - 1]
        frames = [pd.read_parquet(path) for (_, path), ok in zip(cached, have, strict=True) if ok]
        if frames:
            out.bars = pd.concat(frames, ignore_index=True)
        return out

    def reference(self, *, refresh: bool = False) -> pd.DataFrame | None:
        """Names for symbols an update adds (symbol, name, sector, industry): Polygon's ticker
        reference, fetched when `refresh` and kept at `providers/polygon/tickers.parquet`
        (it has no GICS sector: those stay Unknown until a universe file names them)."""
        path = self.cache.parent / "tickers.parquet"
        if refresh:
            write_atomic(self.client.tickers(), path)
        if not path.is_file():
            return None
        ref = pd.read_parquet(path)
        return pd.DataFrame({"symbol": ref["symbol"].astype(str),
                             "name": ref["name"].fillna("").astype(str),
                             "sector": "", "industry": ""})
