"""Append new sessions to the store: the daily update, without re-ingesting history.

Why: after the first ingest, data arrives one session at a time (a vendor's end-of-day file,
Polygon's grouped-daily response). Re-reading years of files for one day is wasteful, and a
re-ingest could silently change history; an append may only add sessions after the store's
last one, so a scan of a past date gives the same answer before and after (point-in-time).

How `append_bars` works:
 1. The new rows (long table, columns BAR_COLUMNS) pass the same row checks as ingest
    (`ingest_checks.check_rows`); in addition a row on a session the store already holds is
    rejected ("duplicate: session ... is already in the store"), as is a later row for the same
    (symbol, session).
 2. New sessions are the store's effective sessions after its last up to the newest date
    kept, as at ingest: every session of its exchange calendar (manifest `calendar`), plus a
    holiday the new rows outvote the calendar on (manifest `extra_sessions`), minus a session
    none of them traded on between symbols' bars (manifest `closures`); rows on other days
    are "not a session". A session with no rows that is not a closure (too few symbols to
    tell) stays NaN for every symbol (the quality gate reports it as a gap, and a later
    append cannot fill it: re-ingest to repair history).
 3. Symbols not yet in the store are added at the end of the universe (sector Unknown until a
    universe file says otherwise); existing symbols keep their rows, so old cells never move.
 4. Only the new sessions are written: `store.append_segment` adds one tail segment file (the
    new sessions x every symbol) and a new universe table, then replaces the manifest, which
    names them, in one rename; no existing file is rewritten, so every old cell is
    bit-identical and a reader sees the store before or after the append, never half of it.
    `data_version` = hash(previous version, new files' bytes). Once the store has more than
    MAX_SEGMENTS tail segments, the append compacts it into one (`store.compact_store`, a
    full rewrite, so loads never read a long chain of small files).
 5. The quality gate reruns over the whole store (`quality.csv` beside the store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.data.calendar import canonical_calendar, effective_sessions
from technic_v4.data.dates import DateFormatError
from technic_v4.data.ingest import _adjust, _as_text, _day_ts, drop_closures
from technic_v4.data.ingest_checks import (
    EXTRA_SESSION_SHARE,
    check_rows,
    place_rows,
    session_days,
)
from technic_v4.data.panel import MEMBERSHIPS, universe_columns
from technic_v4.data.quality import check_store
from technic_v4.data.store import (
    MAX_SEGMENTS,
    StoreManifest,
    append_segment,
    compact_store,
    read_manifest,
    read_universe,
)
from technic_v4.data.universe import UNKNOWN


class AppendError(ValueError):
    """Nothing could be appended; the store is unchanged."""


@dataclass(frozen=True, eq=False)
class AppendReport:
    rows_read: int
    rows_kept: int
    rows_rejected: int
    new_sessions: list[str]
    new_symbols: list[str]
    empty_sessions: list[str]       # appended sessions no row arrived for
    rejections: pd.DataFrame = field(repr=False)
    manifest: StoreManifest | None = None
    previous_version: str = ""
    quality: Any = field(default=None, repr=False)
    extra_sessions: list[str] = field(default_factory=list)  # holidays the rows traded on
    closures: list[str] = field(default_factory=list)        # sessions nothing traded on


def _describe(symbols: list[str], universe: pd.DataFrame | None) -> pd.DataFrame:
    out = pd.DataFrame({"symbol": symbols, "name": symbols, "sector": UNKNOWN,
                        "industry": UNKNOWN})
    if universe is None or not symbols:
        return out
    known = universe.drop_duplicates("symbol").set_index("symbol")
    for col in ("name", "sector", "industry", MEMBERSHIPS):
        if col in known:
            out[col] = out.get(col, "")
            got = known[col].reindex(symbols)
            ok = got.notna() & (got.astype(str) != "")
            out.loc[ok.to_numpy(), col] = got[ok].astype(str).to_numpy()
    return out


def append_bars(bars: pd.DataFrame, data_dir: str | os.PathLike[str], *,
                source: str | None = None, universe: pd.DataFrame | None = None,
                calendar: str | None = None, date_format: str | None = None,
                extra_session_share: float = EXTRA_SESSION_SHARE) -> AppendReport:
    """Append the sessions in `bars` newer than the store's last (see module docstring).
    `universe` (symbol, name[, sector, industry]) describes symbols new to the store;
    `calendar`, when given, must be the store's (an append never changes it); `date_format`
    and `extra_session_share` as for ingest."""
    old = read_manifest(data_dir)
    if calendar is not None and canonical_calendar(calendar) != old.calendar:
        raise AppendError(f"the store is on the {old.calendar} calendar, not "
                          f"{canonical_calendar(calendar)}: an append keeps the store's calendar "
                          "(re-ingest the whole history with --calendar to change it)")
    prices = old.meta.get("adjusted", "as given")
    n = len(bars)
    if n == 0:
        raise AppendError("no rows to append")
    try:
        checked = check_rows(bars, old.calendar, date_format=date_format,
                             extra_session_share=extra_session_share)
    except DateFormatError as exc:
        raise AppendError(f"{exc}; the store was not changed") from None
    rej, sym_id, table, day, values = (checked.rej, checked.sym_id, checked.table, checked.day,
                                       checked.values)
    if prices == "adj_close" and "adj_close" in bars:
        _adjust(bars, rej, values)
    last_day = session_days(pd.DatetimeIndex([old.last_session]))[0]
    rej.flag(rej.open & (day <= last_day), "duplicate",
             lambda i: "session " + _as_text(bars["date"].iloc[i]).to_numpy(dtype=object)
             + f" is already in the store (last session {old.last_session})")
    ok = np.flatnonzero(rej.open)
    if ok.size == 0:
        counts = ", ".join(f"{k}: {v}" for k, v in rej.counts().items())
        raise AppendError(f"all {n} rows were rejected ({counts}); the store was not changed")

    old_uni = read_universe(data_dir, old)
    extra = [str(_day_ts(d).date()) for d in checked.extra_days if d > last_day]
    new_ses = effective_sessions(_day_ts(last_day + 1), _day_ts(day[ok].max()), old.calendar,
                                 extra=extra)
    known = pd.Index(old_uni["symbol"])
    incoming = table[np.unique(sym_id[ok])]
    added = [s for s in incoming if s not in known]
    symbols = np.concatenate([known.to_numpy(dtype=object), np.asarray(added, dtype=object)])
    col_of = pd.Index(symbols).get_indexer(table)  # table position -> store row
    n_sym = len(symbols)
    arrays, kept, _ = place_rows(values, rej, ok, col_of[sym_id[ok]], day, new_ses, n_sym)
    arrays, new_ses, closures = drop_closures(arrays, new_ses, extra)
    universe = pd.concat([old_uni.loc[:, universe_columns(old_uni)],
                          _describe(added, universe)], ignore_index=True)
    if MEMBERSHIPS in universe:  # symbols without a membership: "" (never NaN)
        universe[MEMBERSHIPS] = universe[MEMBERSHIPS].fillna("")
    filled = np.isfinite(arrays["close"]).any(0)
    rejected = np.flatnonzero(~rej.open)
    summary = {"sessions": [str(s.date()) for s in new_ses], "rows_kept": int(len(kept)),
               "rows_rejected": int(len(rejected)), "new_symbols": len(added),
               "previous_version": old.data_version, "extra_sessions": extra,
               "closures": closures,
               "clamped": {c: int(m[kept].sum()) for c, m in checked.clamped.items()}}
    meta = dict(old.meta)
    meta["appends"] = [*meta.get("appends", []), summary][-50:]
    manifest = append_segment(data_dir, sessions=new_ses, universe=universe,
                              source=source or old.source, meta=meta, closures=closures,
                              **arrays)
    if len(manifest.segment_list()) > MAX_SEGMENTS + 1:
        manifest = compact_store(data_dir)
    quality = check_store(data_dir)
    return AppendReport(
        rows_read=n, rows_kept=len(kept), rows_rejected=len(rejected),
        new_sessions=[str(s.date()) for s in new_ses], new_symbols=added,
        empty_sessions=[str(s.date()) for s in new_ses[~filled]],
        extra_sessions=extra, closures=closures,
        rejections=pd.DataFrame({"row": rejected + 1,
                                 "symbol": _as_text(bars["symbol"].iloc[rejected]),
                                 "date": _as_text(bars["date"].iloc[rejected]),
                                 "reason": rej.text[rejected].astype(str)}),
        manifest=manifest, previous_version=old.data_version, quality=quality,
    )
