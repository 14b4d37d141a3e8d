"""Ingest: turn a long table of daily bars (CSV or Parquet) into the price store.

Why: real data arrives as one long file, one row per (symbol, date), millions of rows, some of
them wrong. A wrong bar that reaches the store silently bends every indicator computed over it; a
good bar dropped silently shortens history. So ingest checks every row, keeps every valid one,
rejects each invalid one with exactly one reason the user can act on, and accounts for all of
them: rows_read == rows_kept + rows_rejected.

How `ingest_bars` works (all vectorized: no Python loop runs over rows):
 1. `read_bars_file` reads the seven required columns by name, case-insensitively, by suffix.
    CSV goes through pyarrow's multithreaded reader with prices typed float64; if any cell does
    not parse, the file is re-read as text and pandas coerces it, so a bad cell becomes a
    rejection, not an exception.
 2. `ingest_checks.check_rows` runs the checks of `REJECT_REASONS` in order; each rejected row
    gets the first that fails ("missing value: close", "not a session: 2024-01-06 is a
    Saturday", ...). Dates are read in the format given (`date_format`) or detected, never
    guessed (dates.py); high/low off the body by float noise are clamped and counted.
 3. Symbols are sorted; sessions are the store's effective sessions from the first to the
    last date that passed the checks: every session of the exchange calendar (`calendar`,
    default XNYS; recorded in the manifest), plus each holiday on which at least
    `extra_session_share` of the symbols around it traded (the data outvote the calendar;
    manifest `extra_sessions`), minus each calendar session on which none of at least
    MARKET_MIN_SYMBOLS listed symbols has a bar (a market-wide closure: manifest
    `closures`, never a symbol's gap). Each row gets the flat cell
    `symbol_code * T + session_position`.
 4. Duplicates (same normalized symbol, same session) are found on those cells, last, among rows
    that passed everything else, so a bad first row never shadows a good later one: the first
    row is kept and each later one is rejected naming it. A bincount tells whether there are any
    before anything is sorted.
 5. Kept rows are scattered into dense (N, T) arrays at their cells — no pivot, no join; a
    symbol without a row on a session gets NaN there.
 6. The optional universe file (symbol, sector; name, industry, indexes optional) supplies
    names, GICS sectors through `normalize_sector`, and index memberships (ids like "sp500,dow";
    `technic data universe --out` writes such a file, with an IndexesSource column the
    manifest's meta "memberships" records); problems go to `universe_issues`, never a crash.
    Without one, every sector and industry is "Unknown" and no issue is recorded.
 7. `write_store` replaces the store atomically (meta: {"ingest": summary, "adjusted": "as
    given"}). Then the rejections are written to `<data_dir>/store/ingest_rejections.csv`
    (header only when there are none), beside the store they describe; the next store write
    replaces it along with the store.
If every row is rejected, or the file cannot be read, `IngestError` says why and the store is
left as it was.
Row numbers in rejections are 1-based data rows: the header is not counted, nor are blank lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from technic_v4.data.calendar import DEFAULT_CALENDAR, canonical_calendar, effective_sessions
from technic_v4.data.dates import DateFormatError, check_format
from technic_v4.data.indexes import META_KEY, parse_memberships
from technic_v4.data.ingest_checks import (
    BAR_COLUMNS,
    EXTRA_SESSION_SHARE,
    MARKET_MIN_SYMBOLS,
    NUMBER_COLUMNS,
    REJECT_REASONS,
    _parse_numbers,
    check_rows,
    place_rows,
)
from technic_v4.data.store import StoreManifest, write_beside, write_store
from technic_v4.data.universe import UNKNOWN, UnknownSectorError, normalize_sector, valid_symbols

__all__ = ["BAR_COLUMNS", "MODES", "PRICE_MODES", "REJECTIONS_FILENAME", "REJECT_REASONS",
           "IngestError", "ingest_frame",
           "IngestReport", "ingest_bars", "read_bars_file"]

MODES = ("replace",)
# How prices reach the store, recorded in manifest meta["adjusted"]: "as given" (the file's
# OHLC, whatever they are), "adj_close" (OHLC scaled by Adj Close / Close: splits and
# dividends removed), "raw" (Close as traded; Adj Close, if any, ignored).
PRICE_MODES = ("as given", "adj_close", "raw")
REJECTIONS_FILENAME = "ingest_rejections.csv"


class IngestError(ValueError):
    """The input cannot become a store; the message says why and the store is untouched."""


@dataclass(frozen=True, eq=False)
class IngestReport:
    """What one ingest read, kept, rejected and wrote."""

    rows_read: int
    rows_kept: int
    rows_rejected: int
    rejections: pd.DataFrame = field(repr=False)  # row (1-based), symbol, date, reason
    symbols: int
    sessions: int
    first_session: str
    last_session: str
    universe_issues: pd.DataFrame = field(repr=False)  # symbol, issue
    manifest: StoreManifest
    quality: Any = field(default=None, repr=False)  # quality.QualityReport of the new store

    def summary(self) -> dict[str, Any]:
        """Counts, and rejections by reason kind in check order: the dict the manifest keeps
        under meta["ingest"] (rows_read, rows_kept, rows_rejected, rejected_by_reason, symbols,
        sessions, first_session, last_session, universe_file, universe_issues, date_formats,
        clamped, extra_sessions, closures, extra_session_share), and `quality`: each flag's
        count of symbols and share of all symbols."""
        out = dict(self.manifest.meta["ingest"])
        if self.quality is not None:
            out["quality"] = self.quality.rates()
        return out


def ingest_bars(
    bars_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    universe_path: str | os.PathLike[str] | None = None,
    mode: str = "replace",
    calendar: str = DEFAULT_CALENDAR,
    date_format: str | None = None,
    extra_session_share: float = EXTRA_SESSION_SHARE,
) -> IngestReport:
    """Validate a long bars file and write it as the store in `data_dir` (see module docstring);
    `calendar`: the exchange calendar the bars trade on; `date_format`: dates.DATE_FORMATS name
    or strftime pattern (None: detected); `extra_session_share`: see ingest_checks."""
    if mode not in MODES:
        raise ValueError(f"ingest mode {mode!r} is not supported; supported modes: {MODES}")
    calendar = canonical_calendar(calendar)  # an unknown name fails before any file is read
    check_format(date_format)
    universe_file = None if universe_path is None else _read_universe_file(universe_path)
    bars = read_bars_file(bars_path)
    return ingest_frame(bars, data_dir, universe_file=universe_file, name=Path(bars_path).name,
                        universe_name=None if universe_path is None else Path(universe_path).name,
                        calendar=calendar, date_format=date_format,
                        extra_session_share=extra_session_share)


def ingest_frame(
    bars: pd.DataFrame,
    data_dir: str | os.PathLike[str],
    *,
    name: str,
    universe_file: pd.DataFrame | None = None,
    universe_name: str | None = None,
    prices: str = "as given",
    calendar: str = DEFAULT_CALENDAR,
    date_format: str | None = None,
    extra_session_share: float = EXTRA_SESSION_SHARE,
) -> IngestReport:
    """Steps 2-7 of the module docstring for a long table already read (columns BAR_COLUMNS,
    plus `adj_close` when `prices == "adj_close"`: OHLC are then scaled by adj_close / close,
    volume left as given, and a row without a valid adj_close is rejected). `name` is what
    the store's source and messages call the input; `calendar` the exchange calendar."""
    if prices not in PRICE_MODES:
        raise ValueError(f"prices {prices!r}: expected one of {PRICE_MODES}")
    if not 0.0 < extra_session_share <= 1.0:
        raise ValueError(f"extra_session_share {extra_session_share!r}: expected a share in "
                         "(0, 1], e.g. 0.5 (half the symbols trading around the day)")
    calendar = canonical_calendar(calendar)
    n = len(bars)
    if n == 0:
        raise IngestError(f"{name} has no data rows")

    try:
        checked = check_rows(bars, calendar, date_format=date_format,
                             extra_session_share=extra_session_share)
    except DateFormatError as exc:
        raise IngestError(f"{name}: {exc}; the store was not changed") from None
    rej, sym_id, table, day, values = (checked.rej, checked.sym_id, checked.table, checked.day,
                                       checked.values)
    if prices == "adj_close":
        _adjust(bars, rej, values)
    ok = np.flatnonzero(rej.open)
    if ok.size == 0:
        raise IngestError(f"all {n} rows of {name} were rejected "
                          f"({_format_counts(rej.counts())}); the store was not changed")

    # Symbols and sessions come from rows passing every check but the duplicate one: a
    # duplicate never removes a symbol or a date, because its first occurrence is kept.
    present = np.bincount(sym_id[ok], minlength=len(table)) > 0
    symbols = table[present]
    remap = np.cumsum(present) - 1
    extra = [str(_day_ts(d).date()) for d in checked.extra_days]
    sessions = effective_sessions(_day_ts(day[ok].min()), _day_ts(day[ok].max()), calendar,
                                  extra=extra)
    n_sym = len(symbols)
    arrays, kept, _ = place_rows(values, rej, ok, remap[sym_id[ok]], day, sessions, n_sym)
    arrays, sessions, closures = drop_closures(arrays, sessions, extra)
    n_ses = len(sessions)

    rejected = np.flatnonzero(~rej.open)
    assert n == len(kept) + len(rejected), "every row is either kept or rejected"
    rejections = pd.DataFrame({
        "row": rejected + 1,
        "symbol": _as_text(bars["symbol"].iloc[rejected]),
        "date": _as_text(bars["date"].iloc[rejected]),
        "reason": rej.text[rejected].astype(str),
    })
    if "file" in bars:  # per-symbol folders: name the file each rejected row came from
        rejections["file"] = bars["file"].iloc[rejected].to_numpy()
    universe, issues = _join_universe(symbols, universe_file)
    first, last = str(sessions[0].date()), str(sessions[-1].date())
    uni_name = universe_name
    sources = _membership_sources(universe, universe_file, uni_name)
    summary = {
        "rows_read": n, "rows_kept": len(kept), "rows_rejected": len(rejected),
        "rejected_by_reason": rej.counts(), "symbols": n_sym, "sessions": n_ses,
        "first_session": first, "last_session": last,
        "universe_file": uni_name, "universe_issues": len(issues),
        "date_formats": checked.date_formats,
        "clamped": {k: int(m[kept].sum()) for k, m in checked.clamped.items()},
        "extra_sessions": extra, "closures": closures,
        "extra_session_share": extra_session_share,
    }
    manifest = write_store(
        data_dir, sessions=sessions, universe=universe, source=f"ingest:{name}",
        meta={"ingest": summary, "adjusted": prices, **({META_KEY: sources} if sources else {})},
        calendar=calendar, closures=closures,
        **arrays,
    )
    write_beside(data_dir, REJECTIONS_FILENAME, rejections.to_csv(index=False))
    from technic_v4.data.quality import check_store

    quality = check_store(data_dir)  # the gate runs at every ingest
    return IngestReport(
        rows_read=n, rows_kept=len(kept), rows_rejected=len(rejected), rejections=rejections,
        symbols=n_sym, sessions=n_ses, first_session=first, last_session=last,
        universe_issues=issues, manifest=manifest, quality=quality,
    )


def drop_closures(arrays: dict[str, np.ndarray], sessions: pd.DatetimeIndex,
                  keep: list[str] | tuple = (), min_symbols: int = MARKET_MIN_SYMBOLS
                  ) -> tuple[dict[str, np.ndarray], pd.DatetimeIndex, list[str]]:
    """The arrays and sessions without the market-wide closures, and those closures: sessions
    (other than `keep`) on which none of the symbols whose bars span them has a bar, when at
    least `min_symbols` do span them (with fewer, a missing bar is that symbol's gap)."""
    present = np.isfinite(arrays["close"])
    t = len(sessions)
    if t == 0 or present.shape[0] == 0:
        return arrays, sessions, []
    has = present.any(1)
    first = np.where(has, present.argmax(1), t)
    last = np.where(has, t - 1 - present[:, ::-1].argmax(1), -1)
    starts = np.bincount(first[has], minlength=t + 1)[:t]
    ends = np.bincount(last[has] + 1, minlength=t + 1)[:t]
    live = np.cumsum(starts) - np.cumsum(ends)
    closed = ~present.any(0) & (live >= min_symbols) & ~sessions.isin(pd.to_datetime(list(keep)))
    if not closed.any():
        return arrays, sessions, []
    kept = ~closed
    return ({f: a[:, kept] for f, a in arrays.items()}, sessions[kept],
            [str(d.date()) for d in sessions[closed]])


# ---------------------------------------------------------------------------- reading files


def read_bars_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The columns BAR_COLUMNS of a long bars file (.csv, .csv.gz, .parquet, .pq), as stored.

    Header names match case-insensitively; extra columns are ignored. Values are not validated
    here: numbers may come back as float64 or, when some cell is not a number, as text.
    """
    p = Path(path)
    kind = _file_kind(p, "bars file")
    try:
        names = pacsv.open_csv(p).schema.names if kind == "csv" else pq.read_schema(p).names
        chosen = _pick_columns(names, BAR_COLUMNS, (), f"bars file {p.name}")
        if kind == "parquet":
            table = pq.read_table(p, columns=list(chosen.values()))
        else:
            text = {chosen[c]: pa.string() for c in ("symbol", "date")}
            try:
                table = _read_csv(p, text | {chosen[c]: pa.float64() for c in NUMBER_COLUMNS})
            except pa.ArrowInvalid:  # some cell is not a number: read as text, reject it later
                table = _read_csv(p, text | {chosen[c]: pa.string() for c in NUMBER_COLUMNS})
    except pa.ArrowInvalid as exc:  # not CSV / Parquet at all, or a ragged row
        raise IngestError(f"cannot read {p.name}: {short_text(exc)}") from exc
    df = table.to_pandas()
    return pd.DataFrame({c: df[chosen[c]] for c in BAR_COLUMNS})


def _read_csv(path: Path, types: dict[str, pa.DataType]) -> pa.Table:
    # Only an empty cell is null: "NA" or "null" may be a ticker; text like "NaN" in a number
    # column is recognised as missing by the checks.
    opts = pacsv.ConvertOptions(column_types=types, include_columns=list(types),
                                null_values=[""], strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=opts)


def _file_kind(path: Path, what: str) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        kind = "csv"
    elif name.endswith((".parquet", ".pq")):
        kind = "parquet"
    else:
        raise IngestError(f"unsupported {what} {path.name!r}: expected .csv, .csv.gz, "
                          ".parquet or .pq")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return kind


def _pick_columns(names: list[str], required: tuple[str, ...], optional: tuple[str, ...],
                  what: str) -> dict[str, str]:
    """Wanted column -> actual header name, matching case-insensitively."""
    found: dict[str, list[str]] = {}
    for name in names:
        found.setdefault(str(name).strip().lstrip("\ufeff").lower(), []).append(name)
    missing = [c for c in required if c not in found]
    if missing:
        raise IngestError(f"{what} has no column {', '.join(map(repr, missing))} (header: "
                          f"{header_text(names)}); required: {', '.join(required)}")
    chosen = {}
    for c in (*required, *optional):
        if len(found.get(c, [])) > 1:
            raise IngestError(f"{what} has more than one {c!r} column: "
                              f"{header_text(found[c])}")
        if c in found:
            chosen[c] = found[c][0]
    return chosen


def header_text(names: list[str], limit: int = 12, width: int = 300) -> str:
    """A file's header for a message: the first `limit` names (at most `width` characters) and
    how many more, so a 2,000-column file does not print a 9 KB line."""
    shown: list[str] = []
    used = 0
    for name in names[:limit]:
        text = str(name)[:40]
        if used + len(text) > width:
            break
        shown.append(text)
        used += len(text) + 2
    more = len(names) - len(shown)
    return ", ".join(shown) + (f", ... ({more} more of {len(names)} columns)" if more else "")


def short_text(what: object, limit: int = 300) -> str:
    """`str(what)` cut to `limit` characters with a count of the rest (a parser's message
    may quote a whole row)."""
    text = " ".join(str(what).split())
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _as_text(col: pd.Series) -> pd.Series:
    if col.dtype.kind == "M":
        col = col.dt.strftime("%Y-%m-%d")
    return col.astype("str").fillna("").reset_index(drop=True)  # missing -> ""


def _day_ts(day: np.integer) -> pd.Timestamp:
    return pd.Timestamp(np.datetime64(int(day), "D"))


# ---------------------------------------------------------------------------- universe


def _read_universe_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """symbol, sector (required) and name, industry (optional) as text, blanks as ""."""
    p = Path(path)
    if _file_kind(p, "universe file") == "csv":
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    else:
        df = pq.read_table(p).to_pandas()
    chosen = _pick_columns(list(df.columns), ("symbol", "sector"),
                           ("name", "industry", "indexes", "indexessource"),
                           f"universe file {p.name}")
    blank = pd.Series("", index=df.index)
    out = pd.DataFrame({c: df[chosen[c]] if c in chosen else blank
                        for c in ("symbol", "name", "sector", "industry",
                                  *(c for c in ("indexes", "indexessource") if c in chosen))})
    return out.fillna("").astype(str).apply(lambda s: s.str.strip())


def _join_universe(symbols: np.ndarray, uni: pd.DataFrame | None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The universe table aligned with `symbols`, and the issues met building it."""
    issues: list[pd.DataFrame] = []

    def note(syms: Any, issue: Any) -> None:
        issues.append(pd.DataFrame({"symbol": np.asarray(syms, dtype=object), "issue": issue}))

    base = pd.DataFrame({"symbol": symbols, "name": symbols, "sector": UNKNOWN,
                         "industry": UNKNOWN})
    if uni is None:
        return base, pd.DataFrame({"symbol": pd.Series(dtype=str), "issue": pd.Series(dtype=str)})
    sym = uni["symbol"].str.upper()
    valid = valid_symbols(pd.Index(uni["symbol"].fillna("")))
    note(uni["symbol"][~valid], "invalid symbol in universe file: " + ("'" + uni["symbol"][
        ~valid] + "'"))
    uni = uni.assign(symbol=sym)[valid]
    dup = uni["symbol"].duplicated().to_numpy()
    note(uni["symbol"][dup], "duplicate universe entry (first kept)")
    uni = uni[~dup].set_index("symbol")

    canon: dict[str, str | None] = {}
    for s in uni["sector"].unique():  # distinct sector names only
        try:
            canon[s] = None if s.lower() in ("", UNKNOWN.lower()) else normalize_sector(s)
        except UnknownSectorError:
            canon[s] = UNKNOWN
    sector = uni["sector"].map(canon)
    note(sector.index[sector.isna()], "missing sector: sector Unknown")
    unknown = (sector == UNKNOWN).to_numpy()
    note(sector.index[unknown], "unknown sector " + uni["sector"][unknown].map(repr) +
         ": sector Unknown")
    uni = uni.assign(sector=sector.fillna(UNKNOWN))

    stored = pd.Index(symbols)
    no_entry = ~stored.isin(uni.index)
    note(stored[no_entry], "no universe entry: sector Unknown")
    orphans = ~uni.index.isin(stored)
    note(uni.index[orphans], "universe entry has no kept bars: not stored")

    got = uni.reindex(stored)
    base["name"] = got["name"].where(got["name"].fillna("") != "", stored).to_numpy()
    base["sector"] = got["sector"].fillna(UNKNOWN).to_numpy()
    base["industry"] = got["industry"].where(got["industry"].fillna("") != "",
                                             UNKNOWN).to_numpy()
    if "indexes" in uni:
        parsed = [parse_memberships(v) for v in got["indexes"]]
        base["indexes"] = [ids for ids, _ in parsed]
        bad = [(s, b) for s, (_, b) in zip(stored, parsed, strict=True) if b]
        note([s for s, _ in bad], [f"invalid index ids {b} (dropped)" for _, b in bad])
    out = pd.concat(issues, ignore_index=True).astype(str)
    return base, out.sort_values("symbol", kind="stable").reset_index(drop=True)


def _membership_sources(universe: pd.DataFrame, uni: pd.DataFrame | None,
                        name: str | None) -> list[str]:
    """Where the stored memberships came from: the universe file's IndexesSource values of the
    symbols that have memberships (`technic data universe --out` writes them), else the file."""
    if uni is None or "indexes" not in universe or not (universe["indexes"] != "").any():
        return []
    if "indexessource" not in uni:
        return [f"universe file {name or 'given'}"]
    member = set(universe.loc[universe["indexes"] != "", "symbol"])
    keyed = uni.assign(symbol=uni["symbol"].str.upper())
    found = keyed.loc[keyed["symbol"].isin(member), "indexessource"].astype(str).str.strip()
    return sorted(set(found[found != ""])) or [f"universe file {name or 'given'}"]


def _adjust(bars: pd.DataFrame, rej: Any, values: dict[str, np.ndarray]) -> None:
    """Scale OHLC in `values` by adj_close / close; reject rows without a usable adj_close."""
    if "adj_close" not in bars:
        raise IngestError("prices adj_close needs an Adj Close column; without one, ingest "
                          "with --prices raw (Close as traded, splits left to the quality gate)")
    adj, missing, bad = _parse_numbers(bars["adj_close"])
    rej.flag(missing, "missing value", "adj close")
    rej.flag(bad, "unparseable number", "adj close")
    rej.flag(adj <= 0, "non-positive price", "adj close")
    factor = adj / values["close"]
    for f in ("open", "high", "low", "close"):
        values[f] = values[f] * factor


def _format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())
