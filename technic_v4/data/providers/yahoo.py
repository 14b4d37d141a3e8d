"""Yahoo Finance daily bars through `yfinance`, behind the provider interface (base.py).

Yahoo's chart API (`/v8/finance/chart/{symbol}`) answers one symbol per request; yfinance's
`download()` is a thread loop over the same call that folds errors into a shared dict. This
provider makes the call itself, per symbol, on a small thread pool, so each symbol's outcome
(bars, no data, failed and why) is its own:
 1. The session range is cut from the calendar (first..last session asked); the symbol's
    Yahoo ticker comes from the universe's `YahooSymbol` when given, else from the store
    symbol and the calendar's venue suffix (`BRK.B` -> `BRK-B` on XNYS, `SAP` -> `SAP.DE` on
    XETR, `VOD` -> `VOD.L` on XLON; YAHOO_SUFFIX).
 2. A symbol already cached for this range (`<cache>/<first>_<last>/<SYMBOL>.parquet`, empty
    when Yahoo had nothing) is read, not fetched: an interrupted `data init` resumes where it
    stopped. Each answer is written through a temporary file and one rename.
 3. Otherwise `Ticker.history(auto_adjust=False)`: Open/High/Low/Close as Yahoo reports them
    (split-adjusted) and `Adj Close` (splits and dividends) both kept, as `adj_close`, so the
    store's price mode (manifest "adjusted") is chosen explicitly at ingest. The exchange's
    time zone is given to yfinance from the calendar, which saves a request per symbol.
 4. Yahoo's "No data found, symbol may be delisted" (or an empty range) is `empty`, by name.
    A 429 (rate limited), 5xx, a body that does not parse or a timeout is retried with
    exponential backoff and jitter up to `max_retries`, then `failed` with the last reason.
    yfinance memoises answers for past ranges in-process; that memo is cleared before a retry
    so the retry really asks again.
 5. Requests start at most `per_minute` a minute across the threads (polite default: 60).

`base_url` (Settings `TECHNIC_YAHOO_URL`) sends every yahoo.com request yfinance makes
(chart, cookie, crumb, consent) to another server: tests point the real client at a local
server speaking the chart API's wire format (tests/yahoo_stub.py). Yahoo's data is for
personal use under its terms.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from technic_v4.data.calendar import calendar_tz, canonical_calendar
from technic_v4.data.providers.base import (
    Fetched,
    Progress,
    ProviderError,
    RateLimiter,
    write_atomic,
)

log = logging.getLogger("technic.yahoo")

# Yahoo's venue suffix per exchange calendar (ISO MIC); US venues have none.
YAHOO_SUFFIX = {
    "XNYS": "", "XNAS": "", "XTSE": ".TO", "XLON": ".L", "XETR": ".DE", "XFRA": ".F",
    "XPAR": ".PA", "XAMS": ".AS", "XBRU": ".BR", "XLIS": ".LS", "XMIL": ".MI", "XMAD": ".MC",
    "XSWX": ".SW", "XSTO": ".ST", "XHEL": ".HE", "XCSE": ".CO", "XOSL": ".OL", "XWBO": ".VI",
    "XDUB": ".IR", "XTKS": ".T", "XHKG": ".HK", "XASX": ".AX", "XNZE": ".NZ", "XKRX": ".KS",
    "XBOM": ".BO", "XSES": ".SI", "XTAI": ".TW", "BVMF": ".SA", "XMEX": ".MX", "XJSE": ".JO",
}
_SAFE = re.compile(r"^[A-Z0-9][A-Z0-9.\-^=&]{0,30}$")


def yahoo_symbol(symbol: str, calendar: str) -> str:
    """The Yahoo ticker of store symbol `symbol` on `calendar` (module docstring, step 1)."""
    cal = canonical_calendar(calendar)
    if cal not in YAHOO_SUFFIX:
        raise ProviderError(f"no Yahoo venue suffix is known for the {cal} calendar; known: "
                            f"{', '.join(sorted(YAHOO_SUFFIX))} (or give YahooSymbol in the "
                            "universe file)")
    suffix = YAHOO_SUFFIX[cal]
    if not suffix:
        return symbol.replace(".", "-")  # BRK.B -> BRK-B
    return symbol if symbol.endswith(suffix) else symbol + suffix


def redirected_session(base_url: str) -> Any:
    """A curl_cffi session (yfinance's own backend) that sends every *.yahoo.com request to
    `base_url` instead, path and query kept."""
    from curl_cffi import requests as curl

    base = base_url.rstrip("/")

    class Redirected(curl.Session):
        def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(url)
            if parts.hostname and parts.hostname.endswith("yahoo.com"):
                url = base + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            return super().request(method, url, *args, **kwargs)

    return Redirected(impersonate="chrome")


class YahooProvider:
    """Daily bars from Yahoo Finance (module docstring)."""

    name = "yahoo"
    prices = "adj_close"

    def __init__(self, cache_dir: str | Path, *, calendar: str = "XNYS",
                 yahoo_symbols: Mapping[str, str] | None = None, base_url: str | None = None,
                 per_minute: float | None = 60.0, workers: int = 4, max_retries: int = 4,
                 backoff: float = 2.0, max_backoff: float = 60.0, timeout: float = 10.0) -> None:
        import yfinance

        self.yf = yfinance
        self.calendar = canonical_calendar(calendar)
        self.tz = calendar_tz(self.calendar)
        self.cache_dir = Path(cache_dir)
        self.yahoo_symbols = dict(yahoo_symbols or {})
        self.session = redirected_session(base_url) if base_url else None
        self.limiter = RateLimiter(per_minute)
        self.workers, self.max_retries, self.timeout = max(1, workers), max_retries, timeout
        self.backoff, self.max_backoff = backoff, max_backoff
        self._count = threading.Lock()
        self.requests = 0
        yfinance.config.debug.hide_exceptions = False  # errors raised, each one classified
        # yfinance's own caches (time zones, cookie) in a folder made here, before any thread:
        # its lazy `makedirs` races between threads, and a failed cache silently costs one
        # more chart request per symbol; nothing is written to the user's home either
        own = self.cache_dir / "yfinance"
        own.mkdir(parents=True, exist_ok=True)
        yfinance.set_tz_cache_location(str(own))  # every cache of yfinance, despite its name

    def ticker_of(self, symbol: str) -> str:
        return self.yahoo_symbols.get(symbol) or yahoo_symbol(symbol, self.calendar)

    def fetch(self, sessions: pd.DatetimeIndex, symbols: Sequence[str] | None, *,
              progress: Progress | None = None) -> Fetched:
        """Bars of `symbols` on `sessions` (module docstring). Yahoo has no "every symbol"."""
        if symbols is None:
            raise ProviderError("Yahoo fetches named symbols: give a universe or --symbols")
        if len(sessions) == 0:
            return Fetched(bars=_frame([]), complete_through=None)
        first, last = sessions[0].normalize(), sessions[-1].normalize()
        folder = self.cache_dir / f"{first.date()}_{last.date()}"
        for sym in symbols:
            if not _SAFE.match(sym) or not _SAFE.match(self.ticker_of(sym)):
                raise ProviderError(f"symbol {sym!r} is not a ticker (letters, digits, . - ^ = &)")
        out = Fetched(bars=_frame([]), complete_through=last)
        frames: list[pd.DataFrame] = []
        todo = []
        done = 0
        for sym in symbols:
            path = folder / f"{sym}.parquet"
            if path.is_file():
                got = pd.read_parquet(path)
                out.cached.append(sym)
                done += 1
                (frames.append(got) if len(got) else out.empty.append(sym))
            else:
                todo.append(sym)
        if progress:
            progress(done, len(symbols))
        before = self.requests
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self._one, sym, first, last): sym for sym in todo}
            for fut in as_completed(futures):
                sym = futures[fut]
                bars, why = fut.result()
                done += 1
                if bars is None:
                    out.failed[sym] = why
                else:
                    write_atomic(bars, folder / f"{sym}.parquet")
                    out.fetched.append(sym)
                    (frames.append(bars) if len(bars) else out.empty.append(sym))
                if progress:
                    progress(done, len(symbols))
        out.requests = self.requests - before
        out.empty.sort()
        out.fetched.sort()
        if frames:
            out.bars = pd.concat(frames, ignore_index=True)
        if out.failed:
            out.complete_through = None
        return out

    # -- one symbol ------------------------------------------------------------------------
    def _one(self, sym: str, first: pd.Timestamp, last: pd.Timestamp
             ) -> tuple[pd.DataFrame | None, str]:
        """(bars, "") or (empty frame, "") for no data, or (None, reason) after every retry."""
        from yfinance.data import YfData
        from yfinance.exceptions import (
            YFPricesMissingError,
            YFRateLimitError,
            YFTzMissingError,
        )

        ticker = self.ticker_of(sym)
        self.yf.cache.get_tz_cache().store(ticker, self.tz)
        why = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            with self._count:
                self.requests += 1
            wait = None
            try:
                hist = self.yf.Ticker(ticker, session=self.session).history(
                    start=first.strftime("%Y-%m-%d"),
                    end=(last + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                    interval="1d", auto_adjust=False, actions=False, repair=False,
                    timeout=self.timeout)
                return _rows(sym, hist, first, last), ""
            except (YFPricesMissingError, YFTzMissingError):
                return _frame([]), ""
            except YFRateLimitError:
                why = "rate limited by Yahoo (HTTP 429)"
                wait = self.backoff * 2 ** (attempt + 1)
            except Exception as exc:  # noqa: BLE001 - every other failure is retried, then reported
                why = f"{type(exc).__name__}: {str(exc)[:200]}"
            if attempt == self.max_retries:
                break
            YfData.cache_get.cache_clear()  # else a past range's failed answer is replayed
            wait = min(self.max_backoff, wait or self.backoff * 2 ** attempt)
            wait *= 0.5 + random.random() / 2
            log.info("yahoo %s: %s; retry %d/%d in %.2fs", ticker, why, attempt + 1,
                     self.max_retries, wait)
            time.sleep(wait)
        return None, f"{ticker}: gave up after {self.max_retries + 1} attempts (last: {why})"


def _frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]
    return pd.DataFrame(rows, columns=cols)


def _rows(sym: str, hist: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp
          ) -> pd.DataFrame:
    """yfinance's frame as the store's long rows, inside [first, last], all-empty rows out."""
    if hist is None or hist.empty:
        return _frame([])
    idx = pd.DatetimeIndex(hist.index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    keep = (days >= first) & (days <= last)
    hist, days = hist[keep], days[keep]
    out = pd.DataFrame({
        "symbol": sym, "date": days.strftime("%Y-%m-%d"),
        "open": hist["Open"].to_numpy(float), "high": hist["High"].to_numpy(float),
        "low": hist["Low"].to_numpy(float), "close": hist["Close"].to_numpy(float),
        "adj_close": hist["Adj Close"].to_numpy(float),
        "volume": hist["Volume"].to_numpy(float)})
    return out[out[["open", "high", "low", "close"]].notna().any(axis=1)].reset_index(drop=True)
