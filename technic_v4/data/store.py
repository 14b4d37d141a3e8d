"""The price store: one Parquet file laid out so a universe loads straight into 2-D arrays.

Layout of `<data_dir>/store/`:
    manifest.json     format, data_version, source, shape, first/last session, meta
    universe.parquet  symbol, name, sector, industry, first_session, last_session
                      (row i of this table is column i of every session's block)
    bars.parquet      dense and time-major: row r is session r // N, symbol r % N;
                      columns open, high, low, close, volume (float64, NaN where no bar);
                      one row group per SESSIONS_PER_GROUP sessions.

Why this layout: a scan needs the last few hundred sessions of every symbol. Time-major row
groups let us read just those, and because every session block holds exactly N rows in universe
order, `column.reshape(T, N).T` *is* the Panel — no pivot, no join, no sort (a long -> wide
`pivot` costs ~100 ms at 5,000 x 252; this costs a transpose).

Writes go to a temporary directory that replaces the old store in one rename, so a reader
sees the old store or the new one, never half of each. `data_version` hashes the files' bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from technic_v4.data.panel import FIELDS, UNIVERSE_COLUMNS, Array2D, Panel

STORE_FORMAT = 1
STORE_DIRNAME = "store"
SESSIONS_PER_GROUP = 21


class StoreError(RuntimeError):
    """The store is missing, unreadable or inconsistent; the message says which and where."""


@dataclass(frozen=True)
class StoreManifest:
    format: int
    data_version: str
    source: str
    n_symbols: int
    n_sessions: int
    first_session: str
    last_session: str
    created: str
    meta: dict[str, Any]


def store_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / STORE_DIRNAME


def store_exists(data_dir: str | os.PathLike[str]) -> bool:
    return (store_path(data_dir) / "manifest.json").is_file()


def read_manifest(data_dir: str | os.PathLike[str]) -> StoreManifest:
    path = store_path(data_dir) / "manifest.json"
    if not path.is_file():
        raise StoreError(f"no price store at {store_path(data_dir)} (manifest.json missing)")
    try:
        raw = json.loads(path.read_text())
        manifest = StoreManifest(**raw)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"unreadable store manifest {path}: {exc}") from exc
    if manifest.format != STORE_FORMAT:
        raise StoreError(
            f"store format {manifest.format} at {path}, this build reads {STORE_FORMAT}")
    return manifest


def write_store(
    data_dir: str | os.PathLike[str],
    *,
    sessions: pd.DatetimeIndex,
    universe: pd.DataFrame,
    open: Array2D,
    high: Array2D,
    low: Array2D,
    close: Array2D,
    volume: Array2D,
    source: str,
    meta: dict[str, Any] | None = None,
) -> StoreManifest:
    """Write (or atomically replace) the store from (N, T) arrays and the universe table."""
    arrays = {"open": open, "high": high, "low": low, "close": close, "volume": volume}
    n, t = len(universe), len(sessions)
    for name, arr in arrays.items():
        if arr.shape != (n, t):
            raise ValueError(f"{name} has shape {arr.shape}, expected ({n}, {t})")
    missing = [c for c in UNIVERSE_COLUMNS if c not in universe.columns]
    if missing:
        raise ValueError(f"universe lacks columns {missing}")
    if not pd.Index(universe["symbol"]).is_unique:
        raise ValueError("universe symbols are not unique")
    sessions = pd.DatetimeIndex(sessions)
    if not sessions.is_monotonic_increasing or not sessions.is_unique:
        raise ValueError("sessions must be strictly increasing")

    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".store-", dir=root))
    try:
        present = np.isfinite(close)
        first = np.where(present.any(1), present.argmax(1), -1)
        last = np.where(present.any(1), t - 1 - present[:, ::-1].argmax(1), -1)
        uni = universe.loc[:, list(UNIVERSE_COLUMNS)].reset_index(drop=True).copy()
        uni["first_session"] = pd.DatetimeIndex(np.where(first >= 0, sessions[first], pd.NaT))
        uni["last_session"] = pd.DatetimeIndex(np.where(last >= 0, sessions[last], pd.NaT))
        pq.write_table(pa.Table.from_pandas(uni, preserve_index=False), tmp / "universe.parquet")
        _write_bars(tmp / "bars.parquet", sessions, arrays)
        manifest = StoreManifest(
            format=STORE_FORMAT,
            data_version=_hash_files([tmp / "universe.parquet", tmp / "bars.parquet"]),
            source=source,
            n_symbols=n,
            n_sessions=t,
            first_session=str(sessions[0].date()) if t else "",
            last_session=str(sessions[-1].date()) if t else "",
            created=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            meta=meta or {},
        )
        (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2, default=str))
        _swap_into_place(tmp, store_path(root))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _write_bars(path: Path, sessions: pd.DatetimeIndex, arrays: dict[str, Array2D]) -> None:
    n = arrays["close"].shape[0]
    schema = pa.schema([(f, pa.float64()) for f in FIELDS])
    schema = schema.with_metadata({"sessions": json.dumps([str(s.date()) for s in sessions]),
                                   "n_symbols": str(n)})
    with pq.ParquetWriter(path, schema, compression="lz4",
                          use_byte_stream_split=True) as writer:
        for s0 in range(0, len(sessions), SESSIONS_PER_GROUP):
            s1 = min(s0 + SESSIONS_PER_GROUP, len(sessions))
            cols = [pa.array(np.ascontiguousarray(arrays[f][:, s0:s1].T).ravel()) for f in FIELDS]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema),
                               row_group_size=(s1 - s0) * n)


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.blake2b(digest_size=10)
    for p in paths:
        with p.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _swap_into_place(new: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def read_universe(data_dir: str | os.PathLike[str]) -> pd.DataFrame:
    path = store_path(data_dir) / "universe.parquet"
    if not path.is_file():
        raise StoreError(f"no universe table at {path}")
    return pq.read_table(path).to_pandas()


def read_sessions(data_dir: str | os.PathLike[str]) -> pd.DatetimeIndex:
    path = store_path(data_dir) / "bars.parquet"
    if not path.is_file():
        raise StoreError(f"no bars file at {path}")
    meta = pq.read_schema(path).metadata or {}
    return pd.DatetimeIndex(json.loads(meta[b"sessions"]), name="session")


def load_panel(
    data_dir: str | os.PathLike[str],
    *,
    end: str | pd.Timestamp | None = None,
    bars: int | None = None,
) -> Panel:
    """The Panel of the last `bars` sessions up to `end` (inclusive; default all, latest).

    Reads only the row groups that cover the window. `end` that is not a session means the
    last session on or before it; an `end` before the store's first session is an error.
    """
    manifest = read_manifest(data_dir)
    path = store_path(data_dir) / "bars.parquet"
    universe = read_universe(data_dir)
    sessions = read_sessions(data_dir)
    n = len(universe)
    if n != manifest.n_symbols or len(sessions) != manifest.n_sessions:
        raise StoreError(f"store at {path.parent} is inconsistent with its manifest")
    stop = len(sessions) - 1
    if end is not None:
        stop = int(sessions.searchsorted(pd.Timestamp(end).normalize(), side="right")) - 1
        if stop < 0:
            raise StoreError(
                f"as-of date {pd.Timestamp(end).date()} is before the store's first session "
                f"{sessions[0].date()}"
            )
    start = 0 if bars is None else max(0, stop + 1 - int(bars))
    g0, g1 = start // SESSIONS_PER_GROUP, stop // SESSIONS_PER_GROUP
    table = pq.ParquetFile(path).read_row_groups(list(range(g0, g1 + 1)), columns=list(FIELDS))
    skip = start - g0 * SESSIONS_PER_GROUP
    t = stop - start + 1
    arrays = {}
    for f in FIELDS:
        flat = table.column(f).to_numpy()
        block = flat[skip * n : (skip + t) * n].reshape(t, n)
        arrays[f] = np.ascontiguousarray(block.T)
    return Panel(
        symbols=universe["symbol"].to_numpy(dtype=object),
        sessions=sessions[start : stop + 1],
        universe=universe,
        data_version=manifest.data_version,
        source=manifest.source,
        meta={"first_session": manifest.first_session, "last_session": manifest.last_session},
        **arrays,
    )
