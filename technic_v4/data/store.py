"""The price store: Parquet segments laid out so a universe loads straight into 2-D arrays.

Layout of `<data_dir>/store/`:
    manifest.json     format, data_version, source, shape, first/last session, meta, and the
                      files that make up the store: `universe` and `segments` (in session order);
                      `calendar`, the exchange calendar of its sessions (XNYS when absent: stores
                      written before the field), and `missing_sessions`, that calendar's
                      sessions the axis lacks between its first and last (so a scan's quality
                      gate never has to build the calendar); `extra_sessions`, days on the
                      axis the calendar calls closed (the data traded on them), and
                      `closures`, calendar sessions left off the axis because no symbol
                      traded (neither is a symbol's gap)
    universe.parquet  symbol, name, sector, industry, [indexes,] first_session, last_session
                      (indexes: the index lists a symbol is in, "sp500,dow"; absent in a
                      store built without memberships)
                      (row i of this table is column i of every session's block; an append
                      writes universe-NNNNNN.parquet, named by the manifest)
    bars.parquet      the base segment, dense and time-major: row r is session r // N_k, symbol
                      r % N_k; columns open, high, low, close, volume (float64, NaN where no
                      bar); one row group per SESSIONS_PER_GROUP sessions; its sessions in the
                      schema metadata.
    bars-NNNNNN.parquet  tail segments, one per append, same layout over their own sessions.
                      New symbols only ever join at the end of the universe, so a segment holds
                      the first N_k symbols (N_k = the universe size when it was written);
                      `load_panel` pads the symbols a segment predates with NaN.

Why this layout: a scan needs the last few hundred sessions of every symbol. Time-major row
groups let us read just those, and because every session block holds exactly N rows in universe
order, `column.reshape(T, N).T` *is* the Panel — no pivot, no join, no sort (a long -> wide
`pivot` costs ~100 ms at 5,000 x 252; this costs a transpose).

`write_store` (ingest) writes a one-segment store to a temporary directory that replaces the old
store in one rename, so a reader sees the old store or the new one, never half of each;
`data_version` hashes the files' bytes. An object store (`data_dir` an `s3://`, `gs://` URI;
store_fs.py) has no rename: there the new files go up under names the old manifest does not use,
then the manifest (one atomic PUT), then the old files are deleted; a reader that opened the old
manifest and finds a file gone retries once, as after a local compaction. `append_segment` (a
daily append), in either kind of store, writes only the new sessions: a new segment file and
universe file under names no manifest refers to yet, then the manifest (a rename or one PUT), so
a reader (which reads the manifest first) sees the store before or after the append, and a
crash leaves at most an unreferenced file. Existing segments are never touched; data_version =
hash(previous data_version, new files' bytes). After MAX_SEGMENTS tails `compact_store` rewrites
the store as one segment (append does it automatically). Format 1 stores (one bars.parquet, no
segment list) are read as a single segment.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from technic_v4.data.calendar import (
    DEFAULT_CALENDAR,
    canonical_calendar,
    extra_sessions,
    missing_sessions,
)
from technic_v4.data.panel import FIELDS, UNIVERSE_COLUMNS, Array2D, Panel, universe_columns
from technic_v4.data.store_fs import (  # noqa: F401  (the location helpers are store API)
    DataDir,
    LocalStore,
    ObjectStore,
    StoreError,
    locate,
    manifest_stamp,
    store_exists,
    store_location,
    store_path,
    write_beside,
)

STORE_FORMAT = 2
READABLE_FORMATS = (1, 2)
SESSIONS_PER_GROUP = 21
MAX_SEGMENTS = 50  # tail segments before an append compacts the store into one
_DATA_FILE = re.compile(r"^(bars|universe)(-\d{6})?\.parquet$")


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
    universe: str = "universe.parquet"
    # [{"file", "n_symbols", "n_sessions"}] in session order; empty in a format-1 store
    segments: list[dict[str, Any]] = field(default_factory=list)
    # The exchange_calendars calendar the sessions are on (a store written before this field
    # existed is on XNYS), and that calendar's sessions inside [first, last] the session axis
    # lacks (None: not recorded; the quality gate then asks the calendar itself).
    calendar: str = DEFAULT_CALENDAR
    missing_sessions: list[str] | None = None
    # Days on the axis that the calendar calls closed (the data traded: ingest_checks), and
    # calendar sessions left off the axis because no symbol traded (market-wide closures,
    # never a symbol's gap).
    extra_sessions: list[str] = field(default_factory=list)
    closures: list[str] = field(default_factory=list)

    def segment_list(self) -> list[dict[str, Any]]:
        return self.segments or [{"file": "bars.parquet", "n_symbols": self.n_symbols,
                                  "n_sessions": self.n_sessions}]


def read_manifest(data_dir: DataDir) -> StoreManifest:
    loc = locate(data_dir)
    where = loc.where("manifest.json")
    try:
        with loc.guard("reading the manifest of"):
            text = loc.read_bytes("manifest.json")
    except (FileNotFoundError, IsADirectoryError):
        raise StoreError(f"no price store at {loc.shown} (manifest.json missing)") from None
    try:
        manifest = StoreManifest(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise StoreError(f"unreadable store manifest {where}: {exc}") from exc
    if manifest.format not in READABLE_FORMATS:
        raise StoreError(f"store format {manifest.format} at {where}, this build reads "
                         f"{', '.join(map(str, READABLE_FORMATS))}: re-ingest the data")
    return manifest


def write_store(
    data_dir: DataDir,
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
    calendar: str = DEFAULT_CALENDAR,
    closures: list[str] | None = None,
) -> StoreManifest:
    """Write (or atomically replace) the store, as one segment, from (N, T) arrays and the
    universe table; `calendar` is the exchange calendar the sessions are on, `closures` its
    sessions left off the axis because nothing traded (recorded, not counted as gaps)."""
    arrays = {"open": open, "high": high, "low": low, "close": close, "volume": volume}
    n, t = len(universe), len(sessions)
    sessions = _check_input(sessions, universe, arrays)
    calendar = canonical_calendar(calendar)
    closures = sorted(closures or [])
    absent = missing_sessions(sessions, calendar, closures)
    loc = locate(data_dir)
    with loc.guard("writing the store"), loc.writer_lock(), loc.staging_dir() as tmp:
        first, last = _spans(sessions, close)
        uni = universe.loc[:, universe_columns(universe)].reset_index(drop=True).copy()
        uni["first_session"], uni["last_session"] = first, last
        pq.write_table(pa.Table.from_pandas(uni, preserve_index=False), tmp / "universe.parquet")
        _write_bars(tmp / "bars.parquet", sessions, arrays)
        manifest = StoreManifest(
            format=STORE_FORMAT, source=source, n_symbols=n, n_sessions=t,
            data_version=_hash_files([tmp / "universe.parquet", tmp / "bars.parquet"]),
            first_session=str(sessions[0].date()) if t else "",
            last_session=str(sessions[-1].date()) if t else "", created=_now(), meta=meta or {},
            segments=[{"file": "bars.parquet", "n_symbols": n, "n_sessions": t}],
            calendar=calendar, missing_sessions=absent,
            extra_sessions=extra_sessions(sessions, calendar), closures=closures)
        return _replace_files(loc, tmp, manifest)


def _replace_files(loc: LocalStore | ObjectStore, staged: Path, manifest: StoreManifest
                   ) -> StoreManifest:
    """Publish a staged one-segment store: its files under names no manifest has used (a
    sequence number one past any in the store), then the manifest, then every other data file
    goes. A file name is never reused, so a reader that opened the files its manifest names
    reads exactly that version (module docstring); dot files (the writer lock) stay."""
    seq = 1 + max((_seq(n) for n in loc.names() if _DATA_FILE.match(n)), default=-1)
    bars, uni = (f"bars-{seq:06d}.parquet", f"universe-{seq:06d}.parquet") if seq else (
        "bars.parquet", "universe.parquet")
    loc.publish(staged / "bars.parquet", bars)
    loc.publish(staged / "universe.parquet", uni)
    manifest = replace(manifest, universe=uni, segments=[{**manifest.segments[0], "file": bars}])
    loc.put_text("manifest.json", _dump(manifest))
    for name in loc.names():
        if name not in ("manifest.json", bars, uni) and not name.startswith("."):
            loc.delete(name)
    return manifest


def append_segment(
    data_dir: DataDir,
    *,
    sessions: pd.DatetimeIndex,
    universe: pd.DataFrame,
    open: Array2D,
    high: Array2D,
    low: Array2D,
    close: Array2D,
    volume: Array2D,
    source: str | None = None,
    meta: dict[str, Any] | None = None,
    closures: list[str] | None = None,
) -> StoreManifest:
    """Add sessions after the store's last as one new tail segment (module docstring).

    `universe` is the store's universe followed by any new symbols; the arrays are
    (len(universe), len(sessions)); `closures`: calendar sessions among them left off the
    axis because nothing traded. No existing file is rewritten."""
    arrays = {"open": open, "high": high, "low": low, "close": close, "volume": volume}
    sessions = _check_input(sessions, universe, arrays)
    read_manifest(data_dir)  # a clear error when there is no store
    loc = locate(data_dir)
    with loc.guard("appending to"), loc.writer_lock():
        return _append(loc, data_dir, sessions, universe, arrays, source, meta,
                       sorted(closures or []))


def _append(loc, data_dir, sessions, universe, arrays, source, meta, closures
            ) -> StoreManifest:
    old = read_manifest(data_dir)
    uni = read_universe(data_dir, old)
    n, k = len(universe), len(sessions)
    if list(universe["symbol"].iloc[: len(uni)]) != list(uni["symbol"]):
        raise ValueError("the appended universe must start with the store's symbols, in order")
    if k == 0 or (old.last_session and sessions[0] <= pd.Timestamp(old.last_session)):
        raise ValueError(f"appended sessions must follow the store's last ({old.last_session})")
    first, last = _spans(sessions, arrays["close"])
    new = universe.loc[:, universe_columns(universe)].reset_index(drop=True).copy()
    new["first_session"], new["last_session"] = first, last
    m = len(uni)  # old symbols keep their first session, and their last unless they traded
    old_first, old_last = (pd.DatetimeIndex(uni[c]) for c in ("first_session", "last_session"))
    new.loc[: m - 1, "first_session"] = old_first.where(old_first.notna(), first[:m])
    new.loc[: m - 1, "last_session"] = last[:m].where(last[:m].notna(), old_last)

    # calendar sessions between the old last session and the new ones that the axis lacks
    bridge = pd.DatetimeIndex([pd.Timestamp(old.last_session), *sessions]) if (
        old.last_session) else sessions
    absent = None if old.missing_sessions is None else [
        *old.missing_sessions, *missing_sessions(bridge, old.calendar, closures)]
    segs = old.segment_list()
    seq = max([_seq(s["file"]) for s in segs] + [_seq(old.universe)]) + 1
    bars_name, uni_name = f"bars-{seq:06d}.parquet", f"universe-{seq:06d}.parquet"
    digest = hashlib.blake2b(old.data_version.encode(), digest_size=10)
    with loc.staging_dir() as stage:
        _write_bars(stage / bars_name, sessions, arrays)
        pq.write_table(pa.Table.from_pandas(new, preserve_index=False), stage / uni_name)
        version = _hash_files([stage / bars_name, stage / uni_name], digest)
        for name in (bars_name, uni_name):
            loc.publish(stage / name, name)
    manifest = replace(
        old, format=STORE_FORMAT, data_version=version,
        source=source or old.source, n_symbols=n, n_sessions=old.n_sessions + k,
        first_session=old.first_session or str(sessions[0].date()),
        last_session=str(sessions[-1].date()), created=_now(),
        meta=old.meta if meta is None else meta, universe=uni_name,
        segments=[*segs, {"file": bars_name, "n_symbols": n, "n_sessions": k}],
        missing_sessions=absent, closures=[*old.closures, *closures],
        extra_sessions=[*old.extra_sessions, *extra_sessions(sessions, old.calendar)])
    loc.put_text("manifest.json", _dump(manifest))
    for name in loc.names():  # keep the current and previous universe only
        if name.startswith("universe-") and name.endswith(".parquet") and name not in (
                uni_name, old.universe):
            loc.delete(name)
    return manifest


def compact_store(data_dir: DataDir) -> StoreManifest:
    """Rewrite the store as one segment (same content; a new data_version)."""
    m = read_manifest(data_dir)
    panel = load_panel(data_dir)
    return write_store(data_dir, sessions=panel.sessions, universe=panel.universe,
                       open=panel.open, high=panel.high, low=panel.low, close=panel.close,
                       volume=panel.volume, source=m.source, meta=m.meta,
                       calendar=m.calendar, closures=m.closures)


def _check_input(sessions, universe: pd.DataFrame, arrays: dict[str, Array2D]
                 ) -> pd.DatetimeIndex:
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
    return sessions


def _spans(sessions: pd.DatetimeIndex, close: Array2D) -> tuple[pd.DatetimeIndex, ...]:
    """Each symbol's first and last session with a bar (NaT when none)."""
    present = np.isfinite(close)
    t = len(sessions)
    first = np.where(present.any(1), present.argmax(1), -1)
    last = np.where(present.any(1), t - 1 - present[:, ::-1].argmax(1), -1)
    return (pd.DatetimeIndex(np.where(first >= 0, sessions[first], pd.NaT)),
            pd.DatetimeIndex(np.where(last >= 0, sessions[last], pd.NaT)))


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


def _hash_files(paths: list[Path], digest: Any = None) -> str:
    digest = digest or hashlib.blake2b(digest_size=10)
    for p in paths:
        with p.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _seq(name: str) -> int:
    stem = name.rsplit(".", 1)[0]
    return int(stem.rsplit("-", 1)[1]) if "-" in stem else 0


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")


def _dump(manifest: StoreManifest) -> str:
    return json.dumps(asdict(manifest), indent=2, default=str)


def read_universe(data_dir: DataDir, manifest: StoreManifest | None = None) -> pd.DataFrame:
    manifest = manifest or read_manifest(data_dir)
    loc = locate(data_dir)
    with loc.guard("reading the universe of"):
        return pq.read_table(_open(loc, manifest.universe, "universe table")).to_pandas()


class StoreFileGone(StoreError):
    """A file the manifest names is not there: the store was replaced while being read."""


def _open(loc: LocalStore | ObjectStore, name: str, what: str):
    try:
        return loc.open_input(name)
    except FileNotFoundError:
        raise StoreFileGone(f"no {what} at {loc.where(name)}") from None


def _segment_sessions(pf: pq.ParquetFile) -> pd.DatetimeIndex:
    meta = pf.schema_arrow.metadata or {}
    return pd.DatetimeIndex(json.loads(meta[b"sessions"]), name="session")


def _open_segments(data_dir, manifest: StoreManifest) -> list[tuple[pq.ParquetFile, dict]]:
    loc = locate(data_dir)
    with loc.guard("reading the bars of"):
        return [(pq.ParquetFile(_open(loc, seg["file"], "bars file")), seg)
                for seg in manifest.segment_list()]


def read_sessions(data_dir: DataDir, manifest: StoreManifest | None = None) -> pd.DatetimeIndex:
    segs = _open_segments(data_dir, manifest or read_manifest(data_dir))
    return pd.DatetimeIndex(np.concatenate([_segment_sessions(pf).to_numpy() for pf, _ in segs]),
                            name="session")


def load_panel(
    data_dir: DataDir,
    *,
    end: str | pd.Timestamp | None = None,
    bars: int | None = None,
    manifest: StoreManifest | None = None,
    rows: np.ndarray | None = None,
) -> Panel:
    """The Panel of the last `bars` sessions up to `end` (inclusive; default all, latest).

    Reads, per segment, only the row groups that cover the window, from the files `manifest`
    names (default: the current manifest); `rows` (universe positions) keeps only those
    symbols, read one row group at a time. `end` that is not a session means the last session
    on or before it; an `end` before the store's first session is an error. Without a
    `manifest`, a store replaced between reading the manifest and its files is read again
    (twice at most); with one, a file gone is StoreFileGone (the caller re-reads).
    """
    if manifest is not None:
        with locate(data_dir).guard("loading bars from"):
            return _load_window(data_dir, end, bars, manifest, rows)
    for attempt in range(3):
        try:
            with locate(data_dir).guard("loading bars from"):
                return _load_window(data_dir, end, bars, read_manifest(data_dir), rows)
        except (FileNotFoundError, StoreFileGone):
            if attempt == 2:
                raise StoreError(f"the store at {store_location(data_dir)} kept changing while "
                                 "it was read; try again") from None
    raise AssertionError("unreachable")


def _load_window(data_dir, end, bars, manifest: StoreManifest,
                 rows: np.ndarray | None = None) -> Panel:
    universe = read_universe(data_dir, manifest)
    segs = _open_segments(data_dir, manifest)
    parts = [_segment_sessions(pf) for pf, _ in segs]
    sessions = pd.DatetimeIndex(np.concatenate([p.to_numpy() for p in parts]), name="session")
    n = len(universe)
    if (n != manifest.n_symbols or len(sessions) != manifest.n_sessions
            or any(len(p) != s["n_sessions"] or s["n_symbols"] > n
                   for p, (_, s) in zip(parts, segs, strict=True))):
        raise StoreError(f"store at {store_location(data_dir)} is inconsistent with its manifest")
    stop = len(sessions) - 1
    if end is not None:
        stop = int(sessions.searchsorted(pd.Timestamp(end).normalize(), side="right")) - 1
        if stop < 0:
            raise StoreError(
                f"as-of date {pd.Timestamp(end).date()} is before the store's first session "
                f"{sessions[0].date()}"
            )
    start = 0 if bars is None else max(0, stop + 1 - int(bars))
    t = stop - start + 1
    pick = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    arrays = {f: np.full((len(pick), t), np.nan) for f in FIELDS}
    offset = 0
    for pf, seg in segs:
        nk, tk = seg["n_symbols"], seg["n_sessions"]
        a, b = max(start - offset, 0), min(stop - offset, tk - 1)  # segment-local window
        c0, offset = offset + a - start, offset + tk
        if a > b:
            continue
        inside = pick < nk  # symbols this segment predates stay NaN
        g0, g1 = a // SESSIONS_PER_GROUP, b // SESSIONS_PER_GROUP
        # all rows: the groups at once; some rows: group by group (memory of one group)
        batches = [range(g0, g1 + 1)] if rows is None else [[g] for g in range(g0, g1 + 1)]
        for groups in batches:
            lo = max(a, groups[0] * SESSIONS_PER_GROUP)
            hi = min(b, (groups[-1] + 1) * SESSIONS_PER_GROUP - 1)
            table = pf.read_row_groups(list(groups), columns=list(FIELDS))
            skip, tb, col = lo - groups[0] * SESSIONS_PER_GROUP, hi - lo + 1, c0 + lo - a
            for f in FIELDS:
                block = table.column(f).to_numpy()[skip * nk:(skip + tb) * nk].reshape(tb, nk)
                if rows is None:
                    arrays[f][:nk, col:col + tb] = block.T
                else:
                    arrays[f][inside, col:col + tb] = block[:, pick[inside]].T
    return Panel(
        symbols=universe["symbol"].to_numpy(dtype=object)[pick],
        sessions=sessions[start : stop + 1],
        universe=universe.iloc[pick].reset_index(drop=True),
        data_version=manifest.data_version,
        source=manifest.source,
        meta={"first_session": manifest.first_session, "last_session": manifest.last_session,
              "calendar": manifest.calendar, "missing_sessions": manifest.missing_sessions,
              "extra_sessions": manifest.extra_sessions, "closures": manifest.closures},
        **arrays,
    )


def read_present(data_dir: DataDir, manifest: StoreManifest, stop: int,
                 rows: np.ndarray) -> np.ndarray:
    """(len(rows), stop + 1) bool: whether each of `rows` (universe positions) has a bar at
    each session up to `stop`, from the close column alone, one row group at a time (what a
    replay plans its blocks from without holding a whole history of prices)."""
    pick = np.asarray(rows, dtype=np.int64)
    out = np.zeros((len(pick), stop + 1), dtype=bool)
    offset = 0
    for pf, seg in _open_segments(data_dir, manifest):
        nk, tk = seg["n_symbols"], seg["n_sessions"]
        inside = pick < nk  # symbols this segment predates have no bar in it
        for g in range(pf.num_row_groups):
            lo = offset + g * SESSIONS_PER_GROUP
            if lo > stop:
                break
            close = pf.read_row_group(g, columns=["close"]).column("close").to_numpy()
            tb = min(len(close) // max(nk, 1), stop + 1 - lo)
            block = close[: tb * nk].reshape(tb, nk)
            out[inside, lo:lo + tb] = np.isfinite(block[:, pick[inside]]).T
        offset += tk
    return out
