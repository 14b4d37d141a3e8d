"""Ingest a folder of per-symbol CSV files, as Yahoo Finance and most vendors export them.

Why: the commonest way users hold daily bars is one file per ticker (`AAPL.csv`, `BRK-B.csv`)
with `Date, Open, High, Low, Close, Adj Close, Volume`. Rather than a second ingest, the folder
is turned into the long table the long-file ingest takes (`ingest.ingest_frame`), so every row
goes through the same checks, rejection report, universe join, quality gate and atomic store
write.

How:
 1. The symbol is the file name's stem (`brk-b.csv` -> BRK-B, `AAPL.csv.gz` -> AAPL); files
    are read by pyarrow's CSV reader on a thread pool (the reader releases the GIL), prices as
    float64; a file with an unparseable cell is re-read as text so the cell becomes a
    rejection. Headers match case-insensitively; "Adj Close" may be spelt adj_close/adjclose.
 2. Tables are concatenated with a `symbol` column; row numbers in the rejection report are
    positions in that concatenation (files in sorted name order), and `file` names the source.
 3. Prices, explicitly (recorded in the manifest's meta["adjusted"]):
      "adj_close" (default): OHLC scaled by Adj Close / Close, so splits and dividends are out
                  of the series; Volume is kept as given (Yahoo's is already split-adjusted).
      "raw":      Close as traded; Adj Close ignored. The quality gate will flag every
                  unadjusted split ("split"), which is the point of choosing raw knowingly.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from technic_v4.data.calendar import DEFAULT_CALENDAR, canonical_calendar
from technic_v4.data.dates import check_format
from technic_v4.data.ingest import (
    IngestError,
    IngestReport,
    _read_universe_file,
    header_text,
    ingest_frame,
    short_text,
)
from technic_v4.data.ingest_checks import EXTRA_SESSION_SHARE

YAHOO_COLUMNS = {"date": "date", "open": "open", "high": "high", "low": "low", "close": "close",
                 "adj close": "adj_close", "adj_close": "adj_close", "adjclose": "adj_close",
                 "volume": "volume"}
SUFFIXES = (".csv", ".csv.gz")


def ingest_csv_folder(
    folder: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    universe_path: str | os.PathLike[str] | None = None,
    prices: str = "adj_close",
    threads: int | None = None,
    calendar: str = DEFAULT_CALENDAR,
    date_format: str | None = None,
    extra_session_share: float = EXTRA_SESSION_SHARE,
) -> IngestReport:
    """Replace the store in `data_dir` with the per-symbol CSV files of `folder`, on exchange
    `calendar` (`date_format`, `extra_session_share`: as for `ingest.ingest_bars`)."""
    if prices not in ("adj_close", "raw"):
        raise ValueError(f"prices {prices!r}: expected 'adj_close' or 'raw'")
    calendar = canonical_calendar(calendar)
    check_format(date_format)
    bars = read_csv_folder(folder, threads=threads, need_adj=prices == "adj_close")
    universe = None if universe_path is None else _read_universe_file(universe_path)
    return ingest_frame(bars, data_dir, name=Path(folder).name + "/", universe_file=universe,
                        universe_name=None if universe_path is None else Path(universe_path).name,
                        prices=prices, calendar=calendar, date_format=date_format,
                        extra_session_share=extra_session_share)


def csv_files(folder: str | os.PathLike[str]) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise IngestError(f"not a folder of per-symbol CSV files: {root}")
    files = sorted(p for p in root.iterdir() if p.name.lower().endswith(SUFFIXES))
    if not files:
        raise IngestError(f"{root} holds no .csv or .csv.gz files")
    return files


def symbol_of(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES[::-1]:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.strip().upper()


def read_csv_folder(folder: str | os.PathLike[str], *, threads: int | None = None,
                    need_adj: bool = True) -> pd.DataFrame:
    """The long table (symbol, date, open, high, low, close, volume[, adj_close], file)."""
    files = csv_files(folder)
    with ThreadPoolExecutor(max_workers=threads or min(8, (os.cpu_count() or 2) * 2)) as pool:
        tables = list(pool.map(lambda p: _read_one(p, need_adj), files))
    if any(t.schema.field("close").type == pa.string() for t in tables):
        tables = [t.cast(pa.schema([(f.name, pa.string()) for f in t.schema])) for t in tables]
    counts = [t.num_rows for t in tables]
    table = pa.concat_tables(tables)
    df = table.to_pandas()
    sym = pd.Series([symbol_of(p) for p in files], dtype=object).repeat(counts)
    df.insert(0, "symbol", sym.to_numpy())
    df["file"] = pd.Series([p.name for p in files]).repeat(counts).to_numpy()
    return df


def _read_one(path: Path, need_adj: bool) -> pa.Table:
    try:
        names = pacsv.open_csv(path).schema.names
    except pa.ArrowInvalid as exc:  # empty, or not CSV
        raise IngestError(f"cannot read {path.name}: {short_text(exc)}") from exc
    chosen: dict[str, str] = {}
    for name in names:
        key = str(name).strip().lstrip("\ufeff").lower()
        if key in YAHOO_COLUMNS and YAHOO_COLUMNS[key] not in chosen:
            chosen[YAHOO_COLUMNS[key]] = name
    wanted = ["date", "open", "high", "low", "close", "volume"] + (["adj_close"] if need_adj
                                                                    else [])
    missing = [c for c in wanted if c not in chosen]
    if missing:
        hint = ("; without Adj Close, ingest with --prices raw (Close as traded, splits left "
                "to the quality gate)" if missing == ["adj_close"] else "")
        raise IngestError(f"{path.name} has no column {', '.join(missing)} (header: "
                          f"{header_text(names)}){hint}")

    def read(number_type: pa.DataType) -> pa.Table:
        types = {chosen["date"]: pa.string()} | {chosen[c]: number_type for c in wanted[1:]}
        opts = pacsv.ConvertOptions(column_types=types, include_columns=[chosen[c] for c in
                                                                          wanted],
                                    null_values=["", "null", "NaN", "nan"],
                                    strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=opts,
                              read_options=pacsv.ReadOptions(use_threads=False))

    try:
        try:
            table = read(pa.float64())
        except pa.ArrowInvalid:
            table = read(pa.string())
    except pa.ArrowInvalid as exc:
        raise IngestError(f"cannot read {path.name}: {short_text(exc)}") from exc
    return table.rename_columns([{v: k for k, v in chosen.items()}[n] for n in
                                 table.column_names]).select(wanted)
