"""`technic data update --provider polygon`: fetch sessions into a cache, then append them.

Why a cache between the provider and the store: fetching is slow, rate-limited and can fail
half-way; the store must only ever grow by whole, consecutive sessions. So:
 0. Polygon's grouped daily bars are US stocks: a store on another exchange calendar than
    XNYS is refused (a clear error, nothing fetched).
 1. Sessions wanted = XNYS sessions after the store's last (or from `start` when there is no
    store) up to `end` (default: the last session that has closed).
 2. Each wanted session not already cached is fetched (a thread pool; the client rate-limits
    and retries) and written to `<data_dir>/providers/polygon/grouped/YYYY-MM-DD.parquet`
    through a temporary file and one rename, so a crash never leaves half a day behind. A
    session Polygon has no bars for is reported `missing`; one that failed every retry is
    reported `failed`; neither is cached, so the next run asks again. Cached days are never
    fetched twice: rerunning after a failure resumes where it stopped.
 3. Only the consecutive run of cached sessions right after the store's last session is
    appended (`append.append_bars`, or a first ingest when there is no store). A session
    after a missing or failed one waits in the cache: appending past a hole would freeze the
    hole in (appends never rewrite history), and a session is never appended twice because
    append refuses sessions the store already holds.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from technic_v4.data.append import AppendReport, append_bars
from technic_v4.data.calendar import calendar_bounds, sessions_between
from technic_v4.data.ingest import IngestReport, ingest_frame
from technic_v4.data.providers.polygon import PolygonClient, PolygonError
from technic_v4.data.store import read_manifest, store_exists

CACHE_DIR = Path("providers") / "polygon" / "grouped"
US_CALENDAR = "XNYS"  # Polygon's grouped daily endpoint: US stocks only


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)   # fetched and cached by this run
    cached: list[str] = field(default_factory=list)    # already cached before this run
    missing: list[str] = field(default_factory=list)   # Polygon had no bars for them
    failed: dict[str, str] = field(default_factory=dict)  # session -> error after retries


@dataclass
class UpdateReport:
    fetch: FetchReport
    appended: list[str]
    waiting: list[str]            # cached but not appended: after a missing/failed session
    store: AppendReport | IngestReport | None = None


def cache_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / CACHE_DIR


def last_closed_session(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The newest XNYS session whose close has passed (16:00 New York + 30 min margin)."""
    now = now or pd.Timestamp.now(tz="America/New_York")
    today = now.tz_localize(None).normalize()
    sessions = sessions_between(today - pd.Timedelta(days=10), today, US_CALENDAR)
    if len(sessions) and sessions[-1] == today and now.hour * 60 + now.minute < 16 * 60 + 30:
        sessions = sessions[:-1]
    return sessions[-1]


def fetch_sessions(client: PolygonClient, sessions: pd.DatetimeIndex,
                   cache: str | os.PathLike[str], *, workers: int = 4) -> FetchReport:
    """Make sure each session is cached (see module docstring, step 2)."""
    root = Path(cache)
    root.mkdir(parents=True, exist_ok=True)
    report = FetchReport()
    todo: list[pd.Timestamp] = []
    for s in sessions:
        key = str(s.date())
        (report.cached if (root / f"{key}.parquet").is_file() else todo).append(key)

    def one(key: str) -> tuple[str, str, str]:
        try:
            bars = client.grouped_daily(key)
        except PolygonError as exc:
            return key, "failed", str(exc)
        if bars is None:
            return key, "missing", ""
        tmp = root / f".{key}.{os.getpid()}.tmp"
        bars.to_parquet(tmp, index=False)
        os.replace(tmp, root / f"{key}.parquet")
        return key, "fetched", ""

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for key, outcome, why in pool.map(one, todo):
            if outcome == "failed":
                report.failed[key] = why
            else:
                getattr(report, outcome).append(key)
    report.fetched.sort()
    report.missing.sort()
    return report


def refresh_tickers(data_dir: str | os.PathLike[str], client: PolygonClient) -> pd.DataFrame:
    """Fetch the ticker reference and keep it at `<cache>/../tickers.parquet`: it names the
    symbols an update adds (Polygon's reference has no GICS sector: they stay Unknown until a
    universe file is ingested)."""
    ref = client.tickers()
    path = cache_dir(data_dir).parent / "tickers.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    ref.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return ref


def _known_tickers(data_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    path = cache_dir(data_dir).parent / "tickers.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def update_store(data_dir: str | os.PathLike[str], client: PolygonClient, *,
                 start: str | None = None, end: str | None = None,
                 workers: int = 4, tickers: bool = False) -> UpdateReport:
    """Fetch what the store lacks up to `end` and append the consecutive part (module doc);
    with `tickers`, refresh the ticker reference first (names for new symbols)."""
    has_store = store_exists(data_dir)
    if has_store:
        manifest = read_manifest(data_dir)
        if manifest.calendar != US_CALENDAR:
            raise ValueError(
                f"Polygon's grouped daily bars are US equities on {US_CALENDAR} sessions, and "
                f"the store in {data_dir} is on the {manifest.calendar} calendar: update it "
                "from a source for that exchange with `technic data append FILE`")
        begin = pd.Timestamp(manifest.last_session) + pd.Timedelta(days=1)
    elif start is not None:
        begin = pd.Timestamp(start)
    else:
        raise ValueError(f"no store in {data_dir}: give a start date for the first fetch")
    stop = pd.Timestamp(end) if end is not None else last_closed_session()
    stop = min(stop, calendar_bounds(US_CALENDAR)[1])
    wanted = sessions_between(begin, stop, US_CALENDAR)
    cache = cache_dir(data_dir)
    names = refresh_tickers(data_dir, client) if tickers else _known_tickers(data_dir)
    fetch = fetch_sessions(client, wanted, cache, workers=workers)

    ready = []
    for s in wanted:  # the consecutive run of cached sessions
        path = cache / f"{s.date()}.parquet"
        if not path.is_file():
            break
        ready.append(path)
    waiting = [str(s.date()) for s in wanted[len(ready):]
               if (cache / f"{s.date()}.parquet").is_file()]
    if not ready:
        return UpdateReport(fetch=fetch, appended=[], waiting=waiting)
    bars = pd.concat([pd.read_parquet(p) for p in ready], ignore_index=True)
    source = "polygon:grouped-daily"
    result: AppendReport | IngestReport
    if has_store:
        result = append_bars(bars, data_dir, universe=names)
    else:
        uni = None if names is None else pd.DataFrame({
            "symbol": names["symbol"].astype(str), "name": names["name"].fillna("").astype(str),
            "sector": "", "industry": ""})
        result = ingest_frame(bars, data_dir, name=source, prices="as given", universe_file=uni)
    appended = [p.name.removesuffix(".parquet") for p in ready]
    return UpdateReport(fetch=fetch, appended=appended, waiting=waiting, store=result)
