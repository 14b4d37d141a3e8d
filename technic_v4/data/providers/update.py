"""`technic data init` and `technic data update`: a provider's bars into the store.

Both ask a provider (base.py) for bars and hand them to the ingest or the append; neither
knows which provider ran. Fetching is slow, rate-limited and can fail half-way, so each
provider caches what it fetched on disk and the store only ever grows by whole sessions:

init (`init_store`): the sessions of the universe's calendar from `start` to the last
  closed session, for every symbol of the universe, fetched and ingested as a new store (the
  universe file gives names, sectors, industries and index memberships). Symbols that had no
  data and symbols that failed are reported by name; the store is built from the others, and
  rerunning the same command fetches only what is missing (the cache) and rebuilds. The
  provider and the universe are kept beside the store (`providers/source.json`,
  `providers/universe.parquet`), so `update` needs no arguments.
update (`update_store`): the sessions after the store's last, up to the last one that has
  closed, for the store's symbols; only sessions up to the provider's `complete_through`
  are appended (appends never rewrite history, so appending past a failure would freeze a
  hole in); the rest waits for a rerun.
"The last closed session" comes from the exchange calendar (exchange_calendars: the
session's close, early closes included) plus `delay` (default 30 min, the time providers
take to settle the day's bars): a session still trading is never fetched, so no partial bar
reaches the store. Each run's outcome is written to `providers/update.json` (`data info`
and the scheduler show it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from technic_v4.data.append import AppendReport, append_bars
from technic_v4.data.calendar import canonical_calendar, get_calendar, sessions_between
from technic_v4.data.ingest import IngestReport, ingest_frame
from technic_v4.data.providers.base import (
    SOURCE,
    UNIVERSE,
    Fetched,
    Progress,
    Provider,
    ProviderError,
)
from technic_v4.data.store import read_manifest, read_universe, store_exists

CLOSE_DELAY = pd.Timedelta(minutes=30)


@dataclass
class UpdateReport:
    fetch: Fetched
    wanted: list[str]             # sessions asked for
    appended: list[str]           # sessions now in the store
    waiting: list[str]            # fetched but held back behind an incomplete session
    store: AppendReport | IngestReport | None = None

    @property
    def ok(self) -> bool:
        return not self.fetch.failed and not self.waiting and (
            not self.wanted or self.appended == self.wanted)


def last_closed_session(calendar: str = "XNYS", now: pd.Timestamp | None = None, *,
                        delay: pd.Timedelta = CLOSE_DELAY) -> pd.Timestamp:
    """The newest session of `calendar` whose close (early closes included) + `delay` has
    passed at `now` (default: the current time), as a naive midnight timestamp."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tz is None else now.tz_convert("UTC")
    cal = get_calendar(calendar)
    today = now.tz_localize(None).normalize()
    for s in reversed(sessions_between(today - pd.Timedelta(days=15), today + pd.Timedelta(
            days=1), calendar)):
        close = cal.session_close(s)
        close = close.tz_localize("UTC") if close.tz is None else close
        if close + delay <= now:
            return s
    raise ProviderError(f"no {calendar} session closed in the 15 days before {now}")


def next_close(calendar: str = "XNYS", now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The close (UTC) of the first session of `calendar` closing after `now`."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    cal = get_calendar(calendar)
    today = now.tz_localize(None).normalize()
    for s in sessions_between(today - pd.Timedelta(days=1), today + pd.Timedelta(days=15),
                              calendar):
        close = cal.session_close(s)
        close = close.tz_localize("UTC") if close.tz is None else close
        if close > now:
            return close
    raise ProviderError(f"no {calendar} session closes in the 15 days after {now}")


def store_universe(universe: pd.DataFrame) -> pd.DataFrame:
    """An index universe (Symbol, Name, Sector, Industry[, Indexes, IndexesSource,
    YahooSymbol]) in the ingest's lowercase columns, extra columns kept."""
    out = universe.rename(columns={c: c.lower() for c in universe.columns})
    for col in ("name", "sector", "industry"):
        if col not in out:
            out[col] = ""
    return out


def init_store(data_dir: str | os.PathLike[str], provider: Provider, universe: pd.DataFrame,
               *, start: str | pd.Timestamp, end: str | pd.Timestamp | None = None,
               now: pd.Timestamp | None = None, progress: Progress | None = None
               ) -> UpdateReport:
    """Build a new store from `provider` for `universe`'s symbols (module docstring)."""
    calendar = canonical_calendar(getattr(provider, "calendar", "XNYS"))
    uni = store_universe(universe)
    stop = pd.Timestamp(end) if end is not None else last_closed_session(calendar, now)
    wanted = sessions_between(start, stop, calendar)
    if len(wanted) == 0:
        raise ProviderError(f"no {calendar} session between {start} and {stop.date()}")
    symbols = list(dict.fromkeys(uni["symbol"].astype(str)))
    fetched = provider.fetch(wanted, symbols, progress=progress)
    days = [str(s.date()) for s in wanted]
    if fetched.bars.empty:
        return UpdateReport(fetch=fetched, wanted=days, appended=[], waiting=[])
    described = ["symbol", "name", "sector", "industry",
                 *(c for c in ("indexes", "indexessource") if c in uni)]
    result = ingest_frame(fetched.bars, data_dir, name=provider.name, prices=provider.prices,
                          universe_file=uni[described], calendar=calendar)
    root = Path(data_dir)
    (root / UNIVERSE).parent.mkdir(parents=True, exist_ok=True)
    uni.astype(str).to_parquet(root / UNIVERSE, index=False)
    (root / SOURCE).write_text(json.dumps({"provider": provider.name, "calendar": calendar,
                                           "start": days[0]}, indent=1))
    got = [s for s in days if result.first_session <= s <= result.last_session]
    return UpdateReport(fetch=fetched, wanted=days, appended=got, waiting=[], store=result)


def update_store(data_dir: str | os.PathLike[str], provider: Provider, *,
                 symbols: Sequence[str] | None = None, universe: pd.DataFrame | None = None,
                 start: str | None = None, end: str | None = None,
                 now: pd.Timestamp | None = None, progress: Progress | None = None
                 ) -> UpdateReport:
    """Fetch the sessions the store lacks and append the complete part (module docstring).
    `universe` (symbol, name[, sector, industry]) names symbols the append adds; without a
    store, `start` is the first session and the bars are ingested as a new store."""
    calendar = canonical_calendar(getattr(provider, "calendar", "XNYS"))
    has_store = store_exists(data_dir)
    if has_store:
        manifest = read_manifest(data_dir)
        if manifest.calendar != calendar:
            raise ProviderError(
                f"{provider.name} fetches {calendar} sessions, and the store in {data_dir} is "
                f"on the {manifest.calendar} calendar: update it from a source for that "
                "exchange with `technic data append FILE`")
        begin = pd.Timestamp(manifest.last_session) + pd.Timedelta(days=1)
        if symbols is None:
            symbols = list(read_universe(data_dir, manifest)["symbol"].astype(str))
    elif start is not None:
        begin = pd.Timestamp(start)
    else:
        raise ProviderError(f"no store in {data_dir}: `technic data init` builds one (or give "
                            "a start date for the first fetch)")
    stop = pd.Timestamp(end) if end is not None else last_closed_session(calendar, now)
    wanted = sessions_between(begin, stop, calendar)
    days = [str(s.date()) for s in wanted]
    if len(wanted) == 0:
        return UpdateReport(fetch=Fetched(bars=pd.DataFrame(), complete_through=None),
                            wanted=[], appended=[], waiting=[])
    fetched = provider.fetch(wanted, symbols, progress=progress)
    upto = fetched.complete_through
    bars = fetched.bars
    dates = bars["date"].astype(str) if len(bars) else pd.Series([], dtype=str)
    ready = bars[dates <= str(upto.date())] if upto is not None else bars.iloc[:0]
    waiting = sorted({d for d in dates.unique() if upto is None or d > str(upto.date())})
    if ready.empty:
        return UpdateReport(fetch=fetched, wanted=days, appended=[], waiting=waiting)
    result: AppendReport | IngestReport
    if has_store:
        result = append_bars(ready.reset_index(drop=True), data_dir, universe=universe)
        appended = result.new_sessions
    else:
        result = ingest_frame(ready.reset_index(drop=True), data_dir, name=provider.name,
                              prices=provider.prices, universe_file=universe,
                              calendar=calendar)
        appended = [d for d in days if result.first_session <= d <= result.last_session]
    return UpdateReport(fetch=fetched, wanted=days, appended=appended, waiting=waiting,
                        store=result)
