"""Where Panels come from: the data directory, the store, and the loaders the scan calls.

A scan asks a `PanelLoader` for "the last `bars` sessions up to `end`" and nothing else, so the
scanner never knows whether bars came from disk (`StoreLoader`) or a test (`PanelSource`).
`StoreLoader` keeps the last Panel it read and re-reads only when the store's data_version or the
window changes, which is what makes a warm scan cost milliseconds.

A data dir is a local path or an object-store URI (`s3://bucket/prefix?...`; store_fs.py). An
empty local dir gets the synthetic demo market; an empty object-store location is refused
instead: there an empty prefix is far likelier a typo or a missing upload than a wish for ~200 MB
of made-up prices in a bucket, and a cluster would silently scan them. Write one on purpose with
`technic data demo --data-dir URI` (or ingest real data there).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import pandas as pd
import platformdirs

from technic_v4.data import store
from technic_v4.data.panel import Panel
from technic_v4.data.store_fs import DataDir, DataRoot, data_root, shown

log = logging.getLogger("technic.data")

DATA_DIR_ENV = "TECHNIC_DATA_DIR"


class PanelLoader(Protocol):
    def load(self, end: pd.Timestamp | str | None, bars: int) -> Panel:
        """The last `bars` sessions up to `end` (None: the latest)."""
        ...


def default_data_dir() -> DataRoot:
    """$TECHNIC_DATA_DIR (a path or an object-store URI), else the per-user data folder
    (e.g. ~/.local/share/technic)."""
    env = os.environ.get(DATA_DIR_ENV)
    return data_root(env) if env else Path(platformdirs.user_data_dir("technic"))


def ensure_store(data_dir: DataDir | None = None) -> store.StoreManifest:
    """The store's manifest; builds the synthetic demo market first when a local data dir
    holds no store (an object-store one is refused: module docstring)."""
    root = data_root(data_dir) if data_dir is not None else default_data_dir()
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


class StoreLoader:
    """Loads windows of the store, caching the last one read (thread-safe)."""

    def __init__(self, data_dir: DataDir | None = None, *, auto_demo: bool = True):
        self.data_dir = data_root(data_dir) if data_dir is not None else default_data_dir()
        self.auto_demo = auto_demo
        self._lock = threading.Lock()
        self._cached: tuple[tuple, Panel] | None = None

    def manifest(self) -> store.StoreManifest:
        if self.auto_demo:
            return ensure_store(self.data_dir)
        return store.read_manifest(self.data_dir)

    def load(self, end: pd.Timestamp | str | None, bars: int) -> Panel:
        manifest = self.manifest()
        key = (manifest.data_version, None if end is None else pd.Timestamp(end), int(bars))
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            panel = store.load_panel(self.data_dir, end=end, bars=bars)
            self._cached = (key, panel)
            return panel


class PanelSource:
    """A loader over a Panel already in memory (tests, notebooks, the Serve replicas)."""

    def __init__(self, panel: Panel):
        self.panel = panel

    def load(self, end: pd.Timestamp | str | None, bars: int) -> Panel:
        stop = self.panel.n_sessions - 1
        if end is not None:
            stop = int(self.panel.sessions.searchsorted(pd.Timestamp(end), side="right")) - 1
            if stop < 0:
                raise store.StoreError(
                    f"as-of date {pd.Timestamp(end).date()} is before the panel's first session "
                    f"{self.panel.sessions[0].date()}"
                )
        if stop == self.panel.n_sessions - 1 and bars >= self.panel.n_sessions:
            return self.panel
        return self.panel.window(stop, bars)
