"""Reading the store: one manifest-stamped reader for every process that scans.

A scan needs two things from the data: a `Snapshot` (one data version's universe table and
session axis: what a plan is made from, no prices) and Panels (`load(end, bars)`: the last
`bars` sessions up to `end`). `StoreReader` serves both for a data dir and is what the CLI, the
in-process API backend, the Serve ingress (snapshots only) and the Indicators replicas (windows)
use; `PanelSource` serves them from a Panel in memory (tests, notebooks).

StoreReader walk-through:
 1. `manifest()`: the store's manifest, re-read only when its stamp (inode, mtime, size)
    changes; an object store has no cheap stamp, so there it is read on each call (~1 KB).
 2. `snapshot()`: universe + sessions of the manifest's data version, read once per version
    from the files that manifest names.
 3. `load(end, bars)`: `end` resolved to a session of the snapshot, then an LRU of windows
    keyed (data_version, session, bars). A miss reads exactly the files the manifest names;
    file names are never reused (store.py), so a window is labelled with the version it was
    read from, even while the store is being rewritten. A file gone (the store replaced in
    between) means: read the new manifest and try again.
A local data dir without a store gets the synthetic demo market (`ensure_store`); an empty
object-store location is refused instead: there an empty prefix is far likelier a typo or a
missing upload than a wish for ~200 MB of made-up prices in a bucket.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from cachetools import LRUCache

from technic_v4.data import store
from technic_v4.data.panel import Panel
from technic_v4.data.store_fs import DataDir, data_root, shown

log = logging.getLogger("technic.data")
RETRIES = 8  # reads of a store that is replaced while being read (backing off 1, 2, 4... ms)
T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    """One data version's universe and sessions: enough to plan a scan, no prices."""

    data_version: str
    source: str
    universe: pd.DataFrame
    sessions: pd.DatetimeIndex
    index: pd.Index  # symbol -> universe row
    manifest: store.StoreManifest | None = None  # None for a Panel in memory

    @property
    def first_session(self) -> str:
        return str(self.sessions[0].date()) if len(self.sessions) else ""

    @property
    def last_session(self) -> str:
        return str(self.sessions[-1].date()) if len(self.sessions) else ""

    def session_at(self, end: object) -> int:
        """Index of the last session on or before `end` (None: the latest); StoreError when
        `end` is before the first session."""
        last = len(self.sessions) - 1
        if end is None:
            return last
        ts = pd.Timestamp(str(end)).normalize()
        stop = int(self.sessions.searchsorted(ts, side="right")) - 1
        if stop < 0:
            raise store.StoreError(f"as-of date {ts.date()} is before the store's first session "
                                   f"{self.first_session}")
        return stop

    def rows(self, symbols: Sequence[str]) -> np.ndarray:
        """Universe row of each symbol, -1 for one not in the universe."""
        return self.index.get_indexer(list(symbols))


def ensure_store(data_dir: DataDir) -> store.StoreManifest:
    """The store's manifest; builds the synthetic demo market first when a local data dir
    holds no store (an object-store one is refused: module docstring)."""
    root = data_root(data_dir)
    if not store.store_exists(root):
        from technic_v4.data.demo import build_demo_store

        if not isinstance(root, Path):
            raise store.StoreError(
                f"no price store at {store.store_location(root)}; an object-store location is "
                f"never filled with the synthetic demo automatically: write one with `technic "
                f"data demo --data-dir {shown(root)}` or `technic data ingest FILE --data-dir "
                f"{shown(root)}`")
        log.warning(
            "no price store in %s: building the deterministic synthetic demo market "
            "(source: synthetic; bring real data with `technic data ingest`)", root,
        )
        return build_demo_store(root)
    return store.read_manifest(root)


class StoreReader:
    """Snapshots and Panel windows of one data dir (module docstring); thread-safe."""

    def __init__(self, data_dir: DataDir, *, auto_demo: bool = True,
                 windows: int = 3):
        self.data_dir = data_root(data_dir)
        self.auto_demo = auto_demo
        self.size = windows
        self._lock = threading.Lock()
        self._manifest: tuple[tuple, store.StoreManifest] | None = None
        self._snapshot: Snapshot | None = None
        self._panels: LRUCache[tuple, Panel] = LRUCache(max(1, windows))

    def manifest(self) -> store.StoreManifest:
        stamp = store.manifest_stamp(self.data_dir)
        cached = self._manifest
        if stamp and cached is not None and cached[0] == stamp:
            return cached[1]
        if self.auto_demo:
            manifest = ensure_store(self.data_dir)
            stamp = store.manifest_stamp(self.data_dir)
        else:
            manifest = store.read_manifest(self.data_dir)
        self._manifest = (stamp, manifest)
        return manifest

    def snapshot(self) -> Snapshot:
        return self._retrying(self._snapshot_now)

    def load(self, end: object, bars: int) -> Panel:
        return self._retrying(lambda: self._load_now(end, bars))

    def load_rows(self, end: object, symbols: Sequence[str]) -> Panel:
        """`symbols`' whole history up to `end` (every session from the store's first), read
        one row group at a time so memory follows the rows asked for; cached like windows."""
        return self._retrying(lambda: self._load_rows_now(end, symbols))

    def _load_rows_now(self, end: object, symbols: Sequence[str]) -> Panel:
        snap = self._snapshot_now()
        stop = snap.session_at(end)
        rows = snap.rows(symbols)
        if (rows < 0).any():
            missing = list(np.asarray(symbols)[rows < 0])
            raise store.StoreError(f"symbols not in the store: {missing}")
        key = (snap.data_version, stop, "rows", hashlib.blake2b(rows.tobytes()).hexdigest())
        with self._lock:
            found = self._panels.get(key)
            if found is not None:
                return found
        panel = store.load_panel(self.data_dir, end=snap.sessions[stop], manifest=snap.manifest,
                                 rows=rows)
        self._keep(key, panel)
        return panel

    def load_block(self, first: int, last: int, rows: np.ndarray) -> Panel:
        """Sessions `first`..`last` (indices on the snapshot's axis) of the universe `rows`,
        read one row group at a time and never cached: a replay's block, whose memory is gone
        once the block is measured."""
        def read() -> Panel:
            snap = self._snapshot_now()
            return store.load_panel(self.data_dir, end=snap.sessions[last],
                                    bars=last - first + 1, manifest=snap.manifest,
                                    rows=np.asarray(rows, dtype=np.int64))
        return self._retrying(read)

    def present(self, stop: int, rows: np.ndarray) -> np.ndarray:
        """(len(rows), stop + 1) bool: which of `rows` has a bar at each session up to `stop`
        (the close column only, store.read_present)."""
        def read() -> np.ndarray:
            snap = self._snapshot_now()
            manifest = snap.manifest or self.manifest()
            with store.locate(self.data_dir).guard("reading the bars of"):
                return store.read_present(self.data_dir, manifest, stop, rows)
        return self._retrying(read)

    def release(self, keep_bars: int) -> int:
        """Drop the cached Panels longer than `keep_bars` sessions (what a validation, an
        explain or a long expression loaded; a scan's window stays), so an idle process does
        not hold a whole history; how many were dropped."""
        with self._lock:
            gone = [k for k, p in self._panels.items() if p.n_sessions > keep_bars]
            for key in gone:
                del self._panels[key]
        return len(gone)

    def cached_sessions(self) -> list[int]:
        """Sessions of each cached Panel, least recently used first."""
        with self._lock:
            return [p.n_sessions for p in self._panels.values()]

    def _keep(self, key: tuple, panel: Panel) -> None:
        with self._lock:
            for old in [k for k in self._panels if k[0] != panel.data_version]:
                del self._panels[old]  # a replaced store
            self._panels[key] = panel  # the least recently used window out past `size`

    def _retrying(self, read: Callable[[], T]) -> T:
        """`read()`, again (backing off) while the store is replaced under it (module doc)."""
        for attempt in range(RETRIES):
            try:
                return read()
            except store.StoreFileGone:
                self._manifest = None
                if attempt == RETRIES - 1:
                    raise store.StoreError(
                        f"the store at {store.store_location(self.data_dir)} kept changing "
                        "while it was read; try again") from None
                time.sleep(min(0.001 * 2 ** attempt, 0.05))
        raise AssertionError("unreachable")

    def _snapshot_now(self) -> Snapshot:
        manifest = self.manifest()
        cached = self._snapshot
        if cached is not None and cached.data_version == manifest.data_version:
            return cached
        uni = store.read_universe(self.data_dir, manifest)
        sessions = store.read_sessions(self.data_dir, manifest)
        snap = Snapshot(manifest.data_version, manifest.source, uni, sessions,
                        pd.Index(uni["symbol"]), manifest)
        self._snapshot = snap
        return snap

    def _load_now(self, end: object, bars: int) -> Panel:
        snap = self._snapshot_now()
        stop = snap.session_at(end)
        bars = min(int(bars), stop + 1)  # more than there is: the same window, one cache entry
        key = (snap.data_version, stop, bars)
        with self._lock:
            found = self._panels.get(key)
            if found is not None:
                return found
        panel = store.load_panel(self.data_dir, end=snap.sessions[stop], bars=bars,
                                 manifest=snap.manifest)
        self._keep(key, panel)
        return panel

    def rows(self, panel: Panel, symbols: Sequence[str]) -> np.ndarray:
        """Row positions of `symbols` in `panel` (all windows of a version share its order)."""
        snap = self._snapshot
        if snap is not None and snap.data_version == panel.data_version:
            return snap.rows(symbols)
        return pd.Index(panel.symbols).get_indexer(list(symbols))


def with_listing_dates(panel: Panel) -> pd.DataFrame:
    """The panel's universe with each symbol's first and last session with a bar (what a
    store's universe table records), NaT for a symbol without bars."""
    present = np.isfinite(panel.close)
    has = present.any(axis=1)
    first = np.where(has, present.argmax(axis=1), 0)
    last = np.where(has, panel.n_sessions - 1 - present[:, ::-1].argmax(axis=1), 0)
    uni = panel.universe.copy()
    nat = np.datetime64("NaT", "ns")
    sessions = panel.sessions.values
    uni["first_session"] = pd.DatetimeIndex(np.where(has, sessions[first], nat))
    uni["last_session"] = pd.DatetimeIndex(np.where(has, sessions[last], nat))
    return uni


class PanelSource:
    """A reader over a Panel already in memory (tests, notebooks)."""

    def __init__(self, panel: Panel):
        if not {"first_session", "last_session"} <= set(panel.universe.columns):
            panel = replace(panel, universe=with_listing_dates(panel))
        self.panel = panel
        self._snapshot = Snapshot(panel.data_version, panel.source, panel.universe,
                                  panel.sessions, pd.Index(panel.symbols))

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def load(self, end: object, bars: int) -> Panel:
        stop = self._snapshot.session_at(end)
        if stop == self.panel.n_sessions - 1 and bars >= self.panel.n_sessions:
            return self.panel
        return self.panel.window(stop, bars)

    def rows(self, panel: Panel, symbols: Sequence[str]) -> np.ndarray:
        return pd.Index(panel.symbols).get_indexer(list(symbols))

    def load_block(self, first: int, last: int, rows: np.ndarray) -> Panel:
        """Sessions `first`..`last` of the universe `rows` (StoreReader.load_block)."""
        return self.panel.take(np.asarray(rows, dtype=np.int64)).window(last, last - first + 1)

    def present(self, stop: int, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` has a bar at each session up to `stop`."""
        return np.isfinite(self.panel.close[np.asarray(rows, dtype=np.int64), : stop + 1])

    def load_rows(self, end: object, symbols: Sequence[str]) -> Panel:
        """`symbols`' whole history up to `end`."""
        stop = self._snapshot.session_at(end)
        return self.panel.take(self._snapshot.rows(symbols)).window(stop, stop + 1)
