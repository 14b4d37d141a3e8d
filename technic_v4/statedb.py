"""technic.sqlite: the one embedded database for technic's own state (saved screens, watches).

Why one file: a watch names a saved screen, and both belong to the data they were written
for, so they live side by side (`Settings.state_root`). Each component (`screens`,
`watches`) owns its tables and its schema version, one row in the shared `schema_version`
table, and brings its schema as a list of migrations: version N is the state after the first
N scripts. Opening a component's write transaction applies the scripts it has not run yet, in
that same transaction; a database written by a newer technic (a version above the scripts
this one knows) is refused, never guessed at.

Connections (`StateDB`):
  - one per thread, opened on first use and kept (opening one per call makes every close a
    WAL checkpoint); a forked child opens its own and leaves the parent's alone;
  - WAL mode (readers go on while a writer writes), `synchronous = FULL` (a committed
    transaction survives a power cut), `busy_timeout_s` for writers waiting on each other;
  - `read()`: one read transaction (a consistent snapshot), or None while the component's
    tables do not exist yet; `write()`: BEGIN IMMEDIATE (the write lock taken before
    anything is read), committed at the end of the block, rolled back on any error.
SQLite needs a filesystem with working locks: keep the state dir off NFS-like mounts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from technic_v4.data.store_fs import StoreError

DB_NAME = "technic.sqlite"
_INHERITED: list[sqlite3.Connection] = []  # connections a forked child got from its parent
VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""


def state_path(data_dir: Any, state_dir: str | os.PathLike[str] | None = None) -> Path:
    """technic.sqlite for scans of `data_dir`: in `state_dir` when given (a process passes
    its settings' TECHNIC_STATE_DIR), else `default_state_root(data_dir)`."""
    if state_dir is None:
        return default_state_root(data_dir) / DB_NAME
    return Path(state_dir) / DB_NAME


def default_state_root(data_dir: Any) -> Path:
    """Where technic keeps its state when no state dir is set: the data dir when it is local,
    else the per-user state folder (~/.local/state/technic)."""
    import platformdirs

    return data_dir if isinstance(data_dir, Path) else Path(platformdirs.user_state_dir("technic"))


class StateDB:
    """One component's view of technic.sqlite (module docstring)."""

    def __init__(self, path: str | os.PathLike[str], component: str,
                 migrations: Sequence[str], error: type[StoreError], noun: str,
                 busy_timeout_s: float = 30.0):
        self.path = Path(path).expanduser()
        self.component, self.migrations = component, tuple(migrations)
        self.error, self.noun = error, noun
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()

    @property
    def version(self) -> int:
        return len(self.migrations)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (module docstring)."""
        local = self._local
        db = getattr(local, "db", None)
        if db is not None and local.pid == os.getpid():
            return db
        if db is not None:  # inherited through fork: the parent's, never used or closed here
            _INHERITED.append(db)
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise self.error(f"cannot open {self.path}: {exc}") from exc
        local.db, local.pid, local.wal = db, os.getpid(), False
        return db

    def close(self) -> None:
        """Close this thread's connection (others close with their threads' garbage)."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local.db = None

    def _wal(self, db: sqlite3.Connection) -> None:
        """Switch the database to WAL (once; it persists in the file). The switch does not
        wait on SQLite's busy handler, so a race with another process's first write is
        retried here, for up to busy_timeout_s."""
        if self._local.wal:
            return
        deadline, wait = time.monotonic() + self.busy_timeout_s, 0.001
        while True:
            try:
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError:
                mode = "locked"
            if str(mode).lower() == "wal":
                self._local.wal = True
                return
            if time.monotonic() > deadline:
                raise self.error(f"cannot switch {self.path} to WAL mode ({mode})")
            time.sleep(wait)
            wait = min(wait * 2, 0.05)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection in one read transaction, or None while the database or this
        component's tables do not exist yet (an older schema is migrated first)."""
        if not self.path.exists():
            yield None
            return
        db = self.connection()
        try:
            db.execute("BEGIN")
            try:
                found = self.schema(db)
            except BaseException:
                db.execute("COMMIT")
                raise
            if found is not None and found < self.version:
                db.execute("COMMIT")
                with self.write():  # migrates
                    pass
                db.execute("BEGIN")
            try:
                yield db if found is not None else None
            finally:
                db.execute("COMMIT")  # a read transaction: ends it either way
        except sqlite3.Error as exc:
            raise self.error(f"cannot read {self.noun} from {self.path}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection in one write transaction (BEGIN IMMEDIATE), committed at the end of
        the block, rolled back on any error; the schema created or migrated first."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.error(f"cannot create {self.path.parent}: {exc}") from exc
        db = self.connection()
        try:
            self._wal(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                self._migrate(db, self.schema(db) or 0)
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self.error(f"cannot save {self.noun} in {self.path}: {exc}") from exc

    def _migrate(self, db: sqlite3.Connection, have: int) -> None:
        if have >= self.version:
            return
        db.execute(VERSION_TABLE)
        for script in self.migrations[have:]:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute("INSERT INTO schema_version (component, version) VALUES (?, ?) "
                   "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                   (self.component, self.version))

    def schema(self, db: sqlite3.Connection) -> int | None:
        """This component's schema version in `db` (None: not created yet); refuses a
        newer one."""
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                      "'schema_version'").fetchone() is None:
            return None
        row = db.execute("SELECT version FROM schema_version WHERE component = ?",
                         (self.component,)).fetchone()
        if row is None:
            return None
        if int(row[0]) > self.version:
            raise self.error(
                f"{self.path} holds {self.noun} in schema version {row[0]}, newer than this "
                f"technic's {self.version}: upgrade technic")
        return int(row[0])
