"""Row checks for ingest: what a valid daily bar is, and one reason for each invalid row.

Why a module of its own: the checks are the contract between a user's file and the store ("every
bar in the store is a session of the store's exchange calendar, or a day the market traded
that the calendar missed, with finite, positive, consistent OHLC"), so they are listed once,
in order, in `REJECT_REASONS`, and run as whole-column numpy operations: the only Python
loops here run over columns, checks and *distinct* symbols or dates, never over rows.

A row is rejected by the first check that fails (later checks skip it), with reason text
"<kind>: <detail>", e.g. "missing value: close", "not a session: 2024-01-06 is a Saturday",
"duplicate: same symbol and date as row 12". Symbols and dates are factorized first, so each
distinct symbol is stripped, upper-cased and matched against SYMBOL_PATTERN once, and each
distinct date is parsed (dates.py: the formats vendors write, detected or given, never
guessed) and looked up in the store's exchange calendar (default XNYS; calendar.py) once.
Duplicates are checked last, by `flag_duplicates`, once the caller has placed rows on the
(symbol, session) grid.

Two tolerances, because exchanges' prints are right more often than libraries' tables:
 - High or low missing the open/close body by float noise (less than OHLC_TOLERANCE relative,
   a vendor's rounding) is clamped to the body and counted in `Checked.clamped`; a larger miss
   is rejected.
 - A weekday the calendar calls a holiday on which at least EXTRA_SESSION_SHARE of the
   symbols trading around it traded (volume > 0, not a copy of the previous row) is a session
   the calendar lacks: its rows are kept and the day returned in `Checked.extra_days`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from technic_v4.data.calendar import (
    DEFAULT_CALENDAR,
    calendar_bounds,
    calendar_tz,
    calendar_weekmask,
    is_session,
    why_not_a_session,
)
from technic_v4.data.dates import parse_dates
from technic_v4.data.universe import valid_symbols

BAR_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
NUMBER_COLUMNS = (*PRICE_COLUMNS, "volume")

# Checked in this order; each rejected row carries the first that applies.
REJECT_REASONS = (
    "missing value",  # empty/NA cell (the first such column, in BAR_COLUMNS order)
    "invalid symbol",  # not SYMBOL_PATTERN after strip/upper (universe.valid_symbols)
    "unparseable date",  # not ISO 8601
    "unparseable number",  # not a number, or +-inf
    "not a session",  # weekend, holiday/closure of the calendar, or outside it
    "non-positive price",  # open/high/low/close <= 0
    "negative volume",
    "high < low",
    "high < max(open, close)",
    "low > min(open, close)",
    "duplicate",  # same symbol and session as an earlier kept row
)
# High/low missing the body by less than this (relative) is float noise: clamped, counted.
OHLC_TOLERANCE = 1e-9
# A calendar holiday is kept as a session when at least this share of the symbols whose rows
# span it traded on it (the data outvote the calendar).
EXTRA_SESSION_SHARE = 0.5
# The data speak for the market (a holiday kept, a session closed) only when at least this
# many symbols are listed around the day; with fewer, the calendar rules.
MARKET_MIN_SYMBOLS = 2
# Rows trading on more than this share of the calendar's holidays are another exchange's bars
# (London's on XNYS): none is kept, and the reason asks whether --calendar is right.
MAX_OUTVOTED_HOLIDAYS = 0.25
_NA_TEXT = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a"})


class Rejections:
    """Per-row reason; a row, once rejected, is skipped by later checks."""

    def __init__(self, n: int) -> None:
        self.open = np.ones(n, dtype=bool)
        self.kind = np.full(n, -1, dtype=np.int8)
        self.text = np.full(n, None, dtype=object)

    def flag(self, mask: np.ndarray, kind: str, detail: str | Detail) -> None:
        idx = np.flatnonzero(mask & self.open)
        if idx.size:
            self.open[idx] = False
            self.kind[idx] = REJECT_REASONS.index(kind)
            self.text[idx] = f"{kind}: " + (detail if isinstance(detail, str) else detail(idx))

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.kind[self.kind >= 0], minlength=len(REJECT_REASONS))
        return {k: int(v) for k, v in zip(REJECT_REASONS, c, strict=True) if v}


@dataclass(eq=False)
class Checked:
    """What `check_rows` found: the rejections so far, each row's symbol (index into `table`,
    -1 when invalid) and day (int64 days since 1970-01-01), the parsed numbers (high/low
    clamped where they missed the body by float noise), which rows were clamped, the days the
    data kept against the calendar, and how many date values each format read."""

    rej: Rejections
    sym_id: np.ndarray
    table: np.ndarray
    day: np.ndarray
    values: dict[str, np.ndarray]
    clamped: dict[str, np.ndarray]  # "high"/"low" -> bool per row
    extra_days: np.ndarray  # int64 days: calendar holidays the data traded on, kept
    date_formats: dict[str, int]


def check_rows(bars: pd.DataFrame, calendar: str = DEFAULT_CALENDAR, *,
               date_format: str | None = None,
               extra_session_share: float | None = EXTRA_SESSION_SHARE) -> Checked:
    """Run every check but the duplicate one (sessions of exchange `calendar`, dates read as
    `date_format` or detected: dates.py); a calendar holiday on which at least
    `extra_session_share` of the symbols live around it traded is a session (None: never)."""
    n = len(bars)
    rej = Rejections(n)
    # factorize codes NA as -1, which indexes the slot appended to each per-distinct array.

    scodes, suniq = pd.factorize(bars["symbol"])
    norm = pd.Index(suniq, dtype=object).astype(str).str.strip().str.upper()
    s_missing = np.append(norm == "", True)[scodes]
    s_valid = valid_symbols(pd.Index(suniq, dtype=object).astype(str).str.strip())
    table = np.unique(norm[s_valid].to_numpy(dtype=object))
    s_id = np.where(s_valid, np.searchsorted(table, norm), -1)
    sym_id = np.append(s_id, -1)[scodes]

    dcodes, duniq = pd.factorize(bars["date"])
    d_day, d_missing, d_session, d_note, formats = _parse_dates(duniq, calendar, date_format)
    day = np.append(d_day, 0)[dcodes]

    raw = {c: bars[c] for c in BAR_COLUMNS}
    values, missing, bad = {}, {}, {}
    for c in NUMBER_COLUMNS:
        values[c], missing[c], bad[c] = _parse_numbers(raw[c])

    rej.flag(s_missing, "missing value", "symbol")
    rej.flag(np.append(d_missing, True)[dcodes], "missing value", "date")
    for c in NUMBER_COLUMNS:
        rej.flag(missing[c], "missing value", c)
    rej.flag(sym_id < 0, "invalid symbol", partial(_quoted, raw["symbol"]))
    rej.flag(np.append(d_day == _NAT, True)[dcodes], "unparseable date",
             partial(_quoted, raw["date"]))
    for c in NUMBER_COLUMNS:
        rej.flag(bad[c], "unparseable number", lambda i, c=c: f"{c}=" + _quoted(raw[c], i))
    extra = np.zeros(0, dtype=np.int64)
    if extra_session_share is not None:
        extra = _outvote(rej, sym_id, len(table), dcodes, d_day, d_session, d_note, values,
                         calendar, extra_session_share)
    rej.flag(~np.append(d_session, False)[dcodes], "not a session",
             lambda i: np.append(d_note, "")[dcodes[i]])
    v = values
    for c in PRICE_COLUMNS:
        rej.flag(v[c] <= 0, "non-positive price", lambda i, c=c: f"{c}=" + _num(v[c], i))
    rej.flag(v["volume"] < 0, "negative volume", lambda i: _num(v["volume"], i))
    top, bottom = np.maximum(v["open"], v["close"]), np.minimum(v["open"], v["close"])
    # float noise (a vendor's rounding: 3395.852050781249 vs 3395.85205078125) is clamped to
    # the body and counted; a miss beyond OHLC_TOLERANCE is a real inconsistency, rejected.
    clamped = {"high": rej.open & (v["high"] < top) & (v["high"] >= top * (1 - OHLC_TOLERANCE)),
               "low": rej.open & (v["low"] > bottom) & (v["low"] <= bottom * (1 + OHLC_TOLERANCE))}
    v["high"] = np.where(clamped["high"], top, v["high"])
    v["low"] = np.where(clamped["low"], bottom, v["low"])
    rej.flag(v["high"] < v["low"], "high < low",
             lambda i: _num(v["high"], i) + " < " + _num(v["low"], i))
    rej.flag(v["high"] < top, "high < max(open, close)",
             lambda i: _num(v["high"], i) + " < " + _num(top, i))
    rej.flag(v["low"] > bottom, "low > min(open, close)",
             lambda i: _num(v["low"], i) + " > " + _num(bottom, i))
    clamped = {k: m & rej.open for k, m in clamped.items()}
    return Checked(rej, sym_id, table, day, values, clamped, extra, formats)


def _outvote(rej: Rejections, sym_id: np.ndarray, n_symbols: int, dcodes: np.ndarray,
             d_day: np.ndarray, d_session: np.ndarray, d_note: np.ndarray,
             values: dict[str, np.ndarray], calendar: str, share: float) -> np.ndarray:
    """Mark as sessions (in `d_session`, in place) the calendar holidays on which at least
    `share` of the symbols whose rows span the day traded (and at least MARKET_MIN_SYMBOLS);
    return those days.

    Only weekdays the calendar calls closed are candidates (a weekend row is a vendor's fill
    or a time-zone slip, never a session). A symbol traded on the day when its row has volume
    above 0 and differs from its previous row: a vendor's holiday row repeating the last
    close is a fill, not a print. Rows counted are those that passed the checks so far."""
    trades_on = np.array(list(calendar_weekmask(calendar))) == "1"
    first_ok, last_ok = calendar_bounds(calendar)
    lo, hi = (int(np.datetime64(t.date(), "D").astype(np.int64)) for t in (first_ok, last_ok))
    weekday = (d_day + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    cand = ((d_day != _NAT) & ~d_session & (d_day >= lo) & (d_day <= hi)
            & trades_on[weekday])
    if not cand.any():
        return np.zeros(0, dtype=np.int64)
    rows = np.flatnonzero(rej.open)
    sym, day = sym_id[rows], np.append(d_day, 0)[dcodes[rows]]
    order = np.lexsort((day, sym))
    rows, sym, day = rows[order], sym[order], day[order]
    same = np.r_[False, sym[1:] == sym[:-1]]
    fill = same.copy()
    for f in NUMBER_COLUMNS:
        col = values[f][rows]
        fill[1:] &= col[1:] == col[:-1]
    first = np.full(n_symbols, np.iinfo(np.int64).max)
    last = np.full(n_symbols, np.iinfo(np.int64).min)
    np.minimum.at(first, sym, day)
    np.maximum.at(last, sym, day)
    firsts, lasts = np.sort(first[first <= last]), np.sort(last[first <= last])
    k = np.flatnonzero(cand)
    live = (np.searchsorted(firsts, d_day[k], "right") - np.searchsorted(lasts, d_day[k], "left"))
    traded_rows = cand[dcodes[rows]] & (values["volume"][rows] > 0) & ~fill
    pairs = np.unique(np.stack([dcodes[rows][traded_rows], sym[traded_rows]]), axis=1)
    traded = np.bincount(pairs[0], minlength=len(d_day))[k] if pairs.size else np.zeros(len(k))
    keep = (traded >= MARKET_MIN_SYMBOLS) & (traded >= share * live)
    span = d_day[k]
    holidays = _weekday_holidays(max(int(day.min()), lo), min(int(day.max()), hi), calendar)
    if keep.sum() > max(2, MAX_OUTVOTED_HOLIDAYS * holidays):  # another exchange's bars
        why = (f"; the rows trade on {int(keep.sum())} of the {holidays} {calendar} holidays "
               "they span: is --calendar the exchange they trade on?")
        keep[:] = False
    else:
        why = ""
    d_session[k[keep]] = True
    for j in np.flatnonzero(~keep):  # distinct holiday dates only
        d_note[k[j]] += f" ({int(traded[j])} of {int(live[j])} symbols traded on it{why})"
    return np.sort(span[keep].astype(np.int64))


def _weekday_holidays(first: int, last: int, calendar: str) -> int:
    """Days in [first, last] (int days) on the calendar's weekmask that are not sessions."""
    days = pd.date_range(_day(first), _day(last), freq="D")
    trades_on = np.array(list(calendar_weekmask(calendar))) == "1"
    weekdays = days[trades_on[days.day_of_week]]
    return int((~is_session(weekdays, calendar).to_numpy()).sum())


def _day(day: int) -> pd.Timestamp:
    return pd.Timestamp(np.datetime64(int(day), "D"))


def flag_duplicates(rej: Rejections, ok: np.ndarray, flat: np.ndarray) -> None:
    """Reject every later row landing on an already-taken (symbol, session) cell."""
    counts = np.bincount(flat)
    if counts.max(initial=0) <= 1:
        return
    shared = counts[flat] > 1
    rows, cells = ok[shared], flat[shared]
    order = np.argsort(cells, kind="stable")  # stable: rows stay in file order within a cell
    rows, cells = rows[order], cells[order]
    starts = np.r_[True, cells[1:] != cells[:-1]]
    first = rows[np.maximum.accumulate(np.where(starts, np.arange(len(cells)), 0))]
    first_of = np.full(len(rej.open), -1)
    first_of[rows[~starts]] = first[~starts]
    mask = np.zeros(len(rej.open), dtype=bool)
    mask[rows[~starts]] = True
    rej.flag(mask, "duplicate", lambda i: "same symbol and date as row " + _num(first_of + 1, i))


_NAT = np.iinfo(np.int64).min


def _parse_dates(uniq, calendar: str = DEFAULT_CALENDAR, date_format: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Per distinct date value: day number (_NAT if unparseable), missing?, session?, why
    not; and how many values each date format read (dates.parse_dates)."""
    idx = pd.Index(uniq)
    missing = np.zeros(len(idx), dtype=bool)
    if idx.dtype.kind not in "Mfiu":
        missing = np.asarray(idx.astype(str).str.strip().str.lower().isin(_NA_TEXT), dtype=bool)
    ts, formats = parse_dates(idx, date_format, calendar_tz(calendar))
    day = np.where(ts.isna(), _NAT, ts.values.astype("datetime64[D]").astype(np.int64))
    session = np.zeros(len(idx), dtype=bool)
    good = day != _NAT
    session[good] = is_session(ts[good], calendar).to_numpy()
    note = np.full(len(idx), "", dtype=object)
    for k in np.flatnonzero(good & ~session):  # distinct non-session dates only
        note[k] = f"{ts[k].date()} {why_not_a_session(ts[k], calendar)}"
    return day, missing, session, note, formats


def _parse_numbers(col: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 values, missing mask, unparseable-or-infinite mask."""
    if col.dtype.kind in "fiub":
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
    else:
        values = _text_to_float(col)
        missing = np.zeros(len(col), dtype=bool)
        nan = np.flatnonzero(np.isnan(values))  # only these need a second look at the text
        if nan.size:
            sub = col.iloc[nan]
            text = sub.astype(str).str.strip().str.lower()
            missing[nan] = np.asarray(sub.isna() | text.isin(_NA_TEXT), dtype=bool)
    return values, missing, (np.isnan(values) & ~missing) | np.isinf(values)


def _text_to_float(col: pd.Series, chunk: int = 1 << 16) -> np.ndarray:
    """float64 of text cells, NaN where not a number. Arrow's cast is ~20x faster than pandas'
    `to_numeric` but refuses a whole array for one bad cell, so it runs per chunk and only a
    chunk holding such a cell goes through `to_numeric` (which agrees on every number)."""
    out = np.empty(len(col))
    try:
        arr = pa.array(col, from_pandas=True)
        fast = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects
        fast = False
    for start in range(0, len(col), chunk):  # over chunks, not rows
        stop = min(start + chunk, len(col))
        try:
            if not fast:
                raise pa.ArrowInvalid("no fast path")
            out[start:stop] = pc.cast(arr.slice(start, stop - start), pa.float64()).to_numpy(
                zero_copy_only=False)
        except pa.ArrowInvalid:
            part = pd.to_numeric(col.iloc[start:stop], errors="coerce")
            out[start:stop] = part.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


Detail = Callable[..., Any]  # rejected rows (an index array) -> their detail texts


def _quoted(col: pd.Series, idx: np.ndarray) -> np.ndarray:
    return ("'" + col.iloc[idx].astype(str) + "'").to_numpy(dtype=object)


def _num(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return values[idx].astype(str).astype(object)


def scatter_dense(values: dict[str, np.ndarray], rows: np.ndarray, flat: np.ndarray,
                  shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """(N symbols, T sessions) arrays, NaN where no row landed: `values[f][rows]` placed at the
    `flat` = symbol * T + session cells (duplicates already removed by `flag_duplicates`)."""
    out = {}
    for f in NUMBER_COLUMNS:
        dense = np.full(shape[0] * shape[1], np.nan)
        dense[flat] = values[f][rows]
        out[f] = dense.reshape(shape)
    return out


def session_days(sessions: pd.DatetimeIndex) -> np.ndarray:
    """Sessions as int64 days since 1970-01-01, the unit `check_rows` gives each row's date in."""
    return sessions.values.astype("datetime64[D]").astype(np.int64)


def place_rows(values: dict[str, np.ndarray], rej: Rejections, ok: np.ndarray,
               store_row: np.ndarray, day: np.ndarray, sessions: pd.DatetimeIndex,
               n_symbols: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Rows `ok` (row i going to symbol row `store_row[i]` on its date's session) as dense
    (n_symbols, len(sessions)) arrays. A later row landing on a taken cell is rejected as a
    duplicate first (`flag_duplicates`). Returns the arrays, the rows kept and their flat
    cells (symbol * T + session); ingest and append both place rows this way."""
    k = len(sessions)
    flat = store_row * k + np.searchsorted(session_days(sessions), day[ok])
    flag_duplicates(rej, ok, flat)
    keep = rej.open[ok]
    kept, flat = ok[keep], flat[keep]
    return scatter_dense(values, kept, flat, (n_symbols, k)), kept, flat
