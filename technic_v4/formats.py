"""Scan results as bytes: CSV, JSON and Parquet, each carrying where the data came from.

Shared by the CLI and the HTTP service so a result looks the same wherever it is fetched.
JSON is `{"meta": {...}, "rows": [...]}` with NaN as null; CSV and Parquet carry the `Source`
column on every row, and Parquet also stores `meta` in its schema metadata. CSV text cells that
a spreadsheet would evaluate (=, +, -, @ first) get a leading ' (as the page's CSV does).
"""

from __future__ import annotations

import io
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("table", "csv", "json", "parquet")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet evaluates


def scan_meta(status: Any) -> dict[str, Any]:
    """The status summary that travels with every serialised result."""
    return status.summary()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, dates as YYYY-MM-DD. Built from per-column lists: the same records as
    `to_dict(orient="records")` at a third of the cost (5,000 x 31: 25 ms instead of 75)."""
    cols: dict[str, list[Any]] = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            col = col.dt.strftime("%Y-%m-%d")
        cols[str(name)] = col.tolist()
    names = list(cols)
    return [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def to_json(frame: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    return orjson.dumps({"meta": meta, "rows": _records(frame)},
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def to_csv(frame: pd.DataFrame) -> bytes:
    return _no_formulas(frame).to_csv(index=False, date_format="%Y-%m-%d").encode()


def _no_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a ' before each text cell a spreadsheet would run as a formula (one starting
    with =, +, -, @, tab or CR: a company name like `=HYPERLINK(...)` from a universe file).
    Numbers are left alone; `frame` is copied only when some cell needs it."""
    out = frame
    for name in frame.columns:
        col = frame[name]
        if col.dtype != object and not pd.api.types.is_string_dtype(col):
            continue
        values = col.to_numpy(dtype=object)
        risky = [isinstance(v, str) and v.startswith(FORMULA_START) for v in values]
        if any(risky):
            out = frame.copy() if out is frame else out
            out[name] = ["'" + v if r else v for v, r in zip(values, risky, strict=True)]
    return out


def to_parquet(frame: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    merged = {**(table.schema.metadata or {}), b"technic": orjson.dumps(meta)}
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(merged), buf)
    return buf.getvalue()


def serialise(frame: pd.DataFrame, meta: dict[str, Any], fmt: str) -> bytes:
    """`frame` as `fmt` (csv, json or parquet)."""
    if fmt == "json":
        return to_json(frame, meta)
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "parquet":
        return to_parquet(frame, meta)
    raise ValueError(f"unknown format {fmt!r}; valid: csv, json, parquet")
