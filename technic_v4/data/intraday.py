"""The intraday store: one-minute bars, one Parquet file per session, read into arrays.

Layout of `<data_dir>/intraday/` (beside the daily `<data_dir>/store/`, on the same local
disk or object-store prefix, and on the daily store's exchange calendar):
    YYYY-MM-DD.parquet   the session's one-minute bars, time-major: columns ts (bar start,
                         timestamp[ns, UTC]), symbol (dictionary-encoded), open, high, low,
                         close, volume (float64); rows sorted by (ts, symbol); only bars that
                         traded (a minute without a trade has no row). Schema metadata:
                         session, calendar.

Why this layout: a session is written once (or replaced whole, as a correction), so appending
a session never touches another file, and a window of sessions is a handful of files. Writes
are atomic like the daily store's: the file is written to a staging directory and renamed
into place (an object store: one PUT), so a reader sees the old session or the new one.

Reading (`load_intraday`) lays each session on its full minute grid from the calendar —
regular hours by default (09:30-16:00 ET on XNYS, 13:00 on an early close), extended hours
(04:00 to four hours after the close, at most 20:00 local) as an option — so the arrays are
`IntradayPanel`s: (N symbols, T bars) float64, NaN where a symbol has no bar, with each bar's
start time and session. The minute grid is the intraday analogue of the daily Panel's session
axis; resample.py builds the M5..H1 and daily bars from it.
A load goes from Arrow's columns straight to those arrays (the symbol dictionary's indices
and the int64 bar starts: no pandas frame, no string per row), reads only the fields asked
for, and places each session's rows, in file order, into a time-major block that lands
transposed in the (N, T) arrays.

The session frame (the long form the store reads and writes, and a replay plays): a pandas
DataFrame with columns ts, symbol, open, high, low, close, volume, sorted by (ts, symbol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from technic_v4.data.calendar import DEFAULT_CALENDAR, canonical_calendar, get_calendar
from technic_v4.data.panel import FIELDS, Array2D
from technic_v4.data.store_fs import DataDir, StoreError, locate, store_exists
from technic_v4.data.universe import valid_symbols

INTRADAY_DIRNAME = "intraday"
FRAME_COLUMNS = ("ts", "symbol", *FIELDS)
Hours = Literal["regular", "extended"]
EXTENDED_OPEN = pd.Timedelta(hours=4)  # 04:00 local
EXTENDED_CLOSE = pd.Timedelta(hours=20)  # 20:00 local, at most
AFTER_HOURS = pd.Timedelta(hours=4)  # after-hours trading lasts four hours past the close
_SESSION_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.parquet$")
_MINUTE = np.int64(60_000_000_000)


class IntradayError(ValueError):
    """Bars, a session or a window the intraday store cannot take or give; says which."""


@dataclass(frozen=True)
class IntradayPanel:
    """N symbols x T bars of one timeframe over a window of sessions, aligned row for row.

    `times` are the bars' start times (UTC), `session_of` each bar's index into `sessions`,
    `minutes` each bar's length, `partial` whether the close (or an early close) cut it short.
    Arrays follow the Panel convention: (N, T) float64, NaN where a symbol has no bar."""

    symbols: npt.NDArray[np.object_]
    sessions: pd.DatetimeIndex
    times: pd.DatetimeIndex
    session_of: npt.NDArray[np.int64]
    minutes: npt.NDArray[np.int64]
    partial: npt.NDArray[np.bool_]
    open: Array2D
    high: Array2D
    low: Array2D
    close: Array2D
    volume: Array2D
    timeframe: str = "M1"
    hours: str = "regular"
    calendar: str = DEFAULT_CALENDAR
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, t = len(self.symbols), len(self.times)
        for name in FIELDS:
            if getattr(self, name).shape != (n, t):
                raise ValueError(f"IntradayPanel.{name} has shape {getattr(self, name).shape}, "
                                 f"expected ({n}, {t})")
        for name in ("session_of", "minutes", "partial"):
            if len(getattr(self, name)) != t:
                raise ValueError(f"IntradayPanel.{name} has {len(getattr(self, name))} entries "
                                 f"for {t} bars")

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_bars(self) -> int:
        return len(self.times)

    def bars_of(self, session: int) -> slice:
        """The bar columns of session index `session` (bars are in session order)."""
        lo, hi = np.searchsorted(self.session_of, [session, session + 1])
        return slice(int(lo), int(hi))

    def take(self, rows: npt.NDArray[np.int64]) -> IntradayPanel:
        """The sub-panel of the given symbol rows, same bars."""
        arrays: dict[str, Any] = {f: np.ascontiguousarray(getattr(self, f)[rows])
                                  for f in FIELDS}
        return replace(self, symbols=self.symbols[rows], **arrays)


def intraday_location(data_dir: DataDir) -> str:
    """Where the intraday bars are, for messages."""
    return locate(data_dir, INTRADAY_DIRNAME).shown


def store_calendar(data_dir: DataDir) -> str:
    """The daily store's calendar (the intraday bars share it); XNYS when there is no store."""
    if not store_exists(data_dir):
        return DEFAULT_CALENDAR
    from technic_v4.data.store import read_manifest

    return read_manifest(data_dir).calendar


def parse_session(day: object, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """`day` (a date, or text YYYY-MM-DD) as a session of `calendar`, tz-naive midnight;
    IntradayError saying why when it is not a date or not a session."""
    try:
        ts = pd.Timestamp(day)
    except (ValueError, TypeError):
        raise IntradayError(f"not a date: {str(day)[:40]!r} (expected YYYY-MM-DD)") from None
    if ts is pd.NaT:
        raise IntradayError(f"not a date: {str(day)[:40]!r} (expected YYYY-MM-DD)")
    ts = (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()
    cal = get_calendar(calendar)
    if not cal.is_session(ts):
        from technic_v4.data.calendar import why_not_a_session

        raise IntradayError(f"{ts.date()} is not a {canonical_calendar(calendar)} session: it "
                            f"{why_not_a_session(ts, calendar)}")
    return ts


def session_bounds(session: pd.Timestamp, calendar: str = DEFAULT_CALENDAR,
                   hours: Hours = "regular") -> tuple[pd.Timestamp, pd.Timestamp]:
    """[first bar start, end) of `session` in UTC: the calendar's open and close (an early
    close included), or with `hours="extended"` 04:00 local to four hours past the close
    (20:00 local at most)."""
    if hours not in ("regular", "extended"):
        raise IntradayError(f"hours must be 'regular' or 'extended', got {str(hours)[:20]!r}")
    cal = get_calendar(calendar)
    open_, close = cal.session_open(session), cal.session_close(session)
    if hours == "regular":
        return open_, close
    local = pd.Timestamp(session).tz_localize(str(cal.tz))
    return (min(open_, (local + EXTENDED_OPEN).tz_convert("UTC")),
            max(close, min(close + AFTER_HOURS, (local + EXTENDED_CLOSE).tz_convert("UTC"))))


def session_grid(session: pd.Timestamp, calendar: str = DEFAULT_CALENDAR,
                 hours: Hours = "regular") -> pd.DatetimeIndex:
    """The start of every minute bar of `session` (UTC)."""
    lo, hi = session_bounds(session, calendar, hours)
    return pd.date_range(lo, hi, freq="1min", inclusive="left", name="ts")


def check_frame(frame: pd.DataFrame, session: pd.Timestamp, calendar: str = DEFAULT_CALENDAR
                ) -> pd.DataFrame:
    """`frame` as a clean session frame of `session`: the columns, UTC minute starts inside
    the session's extended hours, valid symbols (upper-cased), one bar per (ts, symbol),
    finite prices with low <= open, close <= high and volume >= 0; sorted by (ts, symbol).
    IntradayError naming the first problem and how many rows have it."""
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise IntradayError(f"session frame lacks columns {missing} (needs {list(FRAME_COLUMNS)})")
    ts = frame["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise IntradayError("session frame column ts must be tz-aware timestamps (UTC bar "
                            f"starts), got dtype {ts.dtype}")
    ts = pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns")
    raw, names = pd.factorize(frame["symbol"].to_numpy(dtype=object))
    names = pd.Index(names, dtype=object).astype(str).str.strip().str.upper()
    code, symbols = pd.factorize(names, sort=True)  # symbols sorted: code order = name order
    code = code[raw] if len(raw) else raw
    values = {f: pd.to_numeric(frame[f], errors="coerce").to_numpy(dtype=np.float64)
              for f in FIELDS}

    def bad(mask: np.ndarray, what: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise IntradayError(f"{int(mask.sum())} bar(s) of session {session.date()} {what} "
                                f"(first: {symbols[code[i]] if code[i] >= 0 else None} at "
                                f"{ts[i]})")

    bad(raw < 0, "have no symbol")
    bad(~valid_symbols(pd.Index(symbols))[code], "have an invalid symbol")
    t = ts.asi8
    bad(t % _MINUTE != 0, "do not start on a minute")
    lo, hi = session_bounds(session, calendar, "extended")
    bad((t < lo.value) | (t >= hi.value), f"lie outside the session ({lo}..{hi} UTC)")
    px = np.stack([values[f] for f in ("open", "high", "low", "close")])
    bad(~np.isfinite(px).all(0) | (px <= 0).any(0), "have a missing or non-positive price")
    o, h, lw, c = px
    bad(~((lw <= np.minimum(o, c)) & (np.maximum(o, c) <= h)),
        "have low > min(open, close) or high < max(open, close)")
    vol = values["volume"]
    bad(~(np.isfinite(vol) & (vol >= 0)), "have a missing or negative volume")
    order = np.lexsort((code, t))
    t, code = t[order], code[order]
    dup = np.r_[False, (t[1:] == t[:-1]) & (code[1:] == code[:-1])]
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise IntradayError(f"{int(dup.sum())} bar(s) of session {session.date()} repeat a "
                            f"(ts, symbol) pair (first: {symbols[code[i]]} at "
                            f"{pd.Timestamp(t[i], tz='UTC')})")
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(t, tz="UTC"),
        "symbol": pd.Categorical.from_codes(code, categories=pd.Index(symbols, dtype=object)),
        **{f: values[f][order] for f in FIELDS}})


def write_session(data_dir: DataDir, session: object, frame: pd.DataFrame,
                  calendar: str | None = None) -> str:
    """Write (or atomically replace) the one-minute bars of `session`; returns the file name."""
    calendar = canonical_calendar(calendar or store_calendar(data_dir))
    day = parse_session(session, calendar)
    clean = check_frame(frame, day, calendar)
    name = f"{day.date()}.parquet"
    table = pa.Table.from_pandas(clean, preserve_index=False)
    table = table.replace_schema_metadata({"session": str(day.date()), "calendar": calendar})
    loc = locate(data_dir, INTRADAY_DIRNAME)
    with loc.guard("writing intraday bars to"), loc.staging_dir() as tmp:
        pq.write_table(table, tmp / name, compression="zstd", use_byte_stream_split=list(FIELDS),
                       row_group_size=1 << 20)
        loc.publish(tmp / name, name)
    return name


def stored_sessions(data_dir: DataDir) -> pd.DatetimeIndex:
    """The sessions the intraday store holds, oldest first."""
    loc = locate(data_dir, INTRADAY_DIRNAME)
    with loc.guard("listing intraday bars in"):
        days = sorted(m.group(1) for n in loc.names() if (m := _SESSION_FILE.match(n)))
    return pd.DatetimeIndex(pd.to_datetime(days), name="session")


def read_session(data_dir: DataDir, session: object,
                 symbols: list[str] | None = None, columns: tuple[str, ...] = FIELDS
                 ) -> pd.DataFrame:
    """The session frame of `session` (only `symbols`, when given; only `columns` of the
    price fields); IntradayError when the store does not hold that session."""
    table = _read_table(data_dir, session, symbols, columns)
    at = table.schema.get_field_index("symbol")  # names cast once in Arrow, not per row in pandas
    return table.set_column(at, "symbol", table.column(at).cast(pa.string())).to_pandas()


def _read_table(data_dir: DataDir, session: object, symbols: list[str] | None,
                columns: tuple[str, ...]) -> pa.Table:
    """The stored session as an Arrow table (only `symbols` when given, only `columns`)."""
    day = parse_date(session)
    loc = locate(data_dir, INTRADAY_DIRNAME)
    name = f"{day.date()}.parquet"
    filters = None if symbols is None else [("symbol", "in", list(symbols))]
    with loc.guard("reading intraday bars from"):
        try:
            source = loc.open_input(name)
        except FileNotFoundError:
            raise IntradayError(f"no intraday bars for {day.date()} at "
                                f"{intraday_location(data_dir)} (`technic data intraday "
                                "sessions` lists the stored ones)") from None
        return pq.read_table(source, columns=["ts", "symbol", *columns], filters=filters)


def parse_date(day: object) -> pd.Timestamp:
    """`day` as a tz-naive midnight timestamp; IntradayError when it is not a date."""
    try:
        ts = pd.Timestamp(day)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise IntradayError(f"not a date: {str(day)[:40]!r} (expected YYYY-MM-DD)")
    return (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()


def load_intraday(data_dir: DataDir, *, symbols: list[str] | None = None,
                  end: object = None, sessions: int = 1, hours: Hours = "regular",
                  fields: tuple[str, ...] = FIELDS) -> IntradayPanel:
    """The one-minute IntradayPanel of the last `sessions` stored sessions up to `end`
    (a date; default the newest), for `symbols` (default every symbol in those sessions, in
    sorted order). Each session lies on its full minute grid (module docstring); fields not
    in `fields` are all NaN (read-only), so a VWAP-free scan reads no opens."""
    if sessions < 1:
        raise IntradayError(f"sessions must be at least 1, got {sessions}")
    calendar = store_calendar(data_dir)
    stored = stored_sessions(data_dir)
    if end is not None:
        stored = stored[stored <= parse_date(end)]
    if not len(stored):
        where = "" if end is None else f" up to {parse_date(end).date()}"
        raise IntradayError(f"no intraday bars{where} at {intraday_location(data_dir)}: "
                            "`technic data intraday demo` builds the demo market's")
    window = stored[-sessions:]
    wanted = None if symbols is None else [_symbol(s) for s in symbols]
    parts = [_read_arrays(data_dir, day, fields) for day in window]
    if wanted is None:
        wanted = sorted(set().union(*(set(names[np.bincount(codes[codes >= 0], minlength=len(
            names)) > 0]) for _, names, codes, _ in parts)))
    return _panel(window, parts, wanted, calendar, hours, fields)


SessionArrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.object_], npt.NDArray[np.int64],
                      dict[str, npt.NDArray[np.float64]]]


def _read_arrays(data_dir: DataDir, session: object, fields: tuple[str, ...]) -> SessionArrays:
    """A stored session as arrays straight from Arrow (no pandas frame, no string per row):
    (bar starts in ns, the symbol dictionary, each row's index into it, {field: values})."""
    table = _read_table(data_dir, session, None, fields)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    sym = table.column("symbol").combine_chunks()
    if isinstance(sym.type, pa.DictionaryType):
        names = np.asarray(sym.dictionary.to_pylist(), dtype=object)
        codes = sym.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        codes, uniques = pd.factorize(sym.to_numpy(zero_copy_only=False))
        names = np.asarray(uniques, dtype=object)
    return ts, names, codes, {f: table.column(f).to_numpy() for f in fields}


def panel_from_frames(sessions: pd.DatetimeIndex, frames: list[pd.DataFrame],
                      symbols: list[str], calendar: str = DEFAULT_CALENDAR,
                      hours: Hours = "regular", fields: tuple[str, ...] = FIELDS
                      ) -> IntradayPanel:
    """Session frames (one per session, in order) as a one-minute IntradayPanel over
    `symbols` on the sessions' minute grids; bars outside `hours` are left out."""
    parts: list[SessionArrays] = []
    for frame in frames:
        codes, names = pd.factorize(frame["symbol"].astype(str).to_numpy(dtype=object))
        parts.append((pd.DatetimeIndex(frame["ts"]).asi8, np.asarray(names, dtype=object),
                      codes.astype(np.int64),
                      {f: frame[f].to_numpy(dtype=np.float64) for f in fields}))
    return _panel(sessions, parts, symbols, calendar, hours, fields)


def _panel(sessions: pd.DatetimeIndex, parts: list[SessionArrays], symbols: list[str],
           calendar: str, hours: Hours, fields: tuple[str, ...]) -> IntradayPanel:
    """Sessions' arrays laid on their minute grids: each session fills a time-major
    (minutes, N) block in row order (the file's own order: sequential writes), then lands
    transposed in the (N, T) arrays."""
    grids = [session_grid(day, calendar, hours) for day in sessions]
    times = pd.DatetimeIndex(np.concatenate([g.asi8 for g in grids]) if grids else [],
                             tz="UTC", name="ts")
    offsets = np.cumsum([0, *(len(g) for g in grids)])
    n, t = len(symbols), len(times)
    out: dict[str, Any] = {f: np.empty((n, t)) if f in fields
                           else np.broadcast_to(np.nan, (n, t)) for f in FIELDS}
    index = pd.Index(symbols)
    for k, (ts, names, codes, values) in enumerate(parts):
        m = len(grids[k])
        where = index.get_indexer(pd.Index(names, dtype=object).astype(str)) if len(
            names) else np.empty(0, dtype=np.int64)
        row = np.where(codes >= 0, where[codes], -1) if len(codes) else codes
        col = (ts - grids[k].asi8[0]) // _MINUTE if m else np.zeros(len(ts), dtype=np.int64)
        keep = (row >= 0) & (col >= 0) & (col < m)
        flat = col[keep] * n + row[keep]
        for f in fields:
            block = np.full((m, n), np.nan)
            block.reshape(-1)[flat] = values[f][keep]
            out[f][:, offsets[k]:offsets[k + 1]] = block.T
    session_of = np.repeat(np.arange(len(sessions), dtype=np.int64), np.diff(offsets))
    return IntradayPanel(
        symbols=np.asarray(symbols, dtype=object), sessions=pd.DatetimeIndex(sessions,
                                                                             name="session"),
        times=times, session_of=session_of, minutes=np.ones(t, dtype=np.int64),
        partial=np.zeros(t, dtype=bool), timeframe="M1", hours=hours,
        calendar=canonical_calendar(calendar), **out)


def _symbol(symbol: str) -> str:
    from technic_v4.data.universe import validate_symbol

    return validate_symbol(symbol)


def session_meta(data_dir: DataDir, session: object) -> dict[str, Any]:
    """A stored session file's metadata: session, calendar, rows."""
    day = parse_date(session)
    loc = locate(data_dir, INTRADAY_DIRNAME)
    with loc.guard("reading intraday bars from"):
        try:
            pf = pq.ParquetFile(loc.open_input(f"{day.date()}.parquet"))
        except FileNotFoundError:
            raise IntradayError(f"no intraday bars for {day.date()} at "
                                f"{intraday_location(data_dir)}") from None
    meta = {k.decode(): v.decode() for k, v in (pf.schema_arrow.metadata or {}).items()
            if not k.startswith(b"pandas")}
    if meta.get("session") != str(day.date()):
        raise StoreError(f"intraday file {day.date()}.parquet says it holds session "
                         f"{meta.get('session')!r}")
    return {**meta, "rows": pf.metadata.num_rows}
