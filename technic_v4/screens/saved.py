"""Saved screens: named, versioned screen definitions in an embedded SQLite database.

A screen's *definition* is the ScanConfig fields a user set (filters, `where`, `rank`,
`ascending`, `max_symbols`, `sort_by`, ...): the exposed fields that differ from their defaults,
in the canonical form of `ScanConfig.normalized()` (`definition_of`). A scan that names a
screen (`ScanConfig.screen`) starts from the definition and overrides it with every field the
request sets to something other than its default (`resolve_screen`, called once by the engine,
technic_v4/scan/run.py, so the library, the CLI and HTTP answer alike). A consequence: a
request cannot set a field *back* to its default over a screen (`ascending: false` over a
screen saved with `ascending: true`); save another screen for that.

Walk-through of `ScreenStore`:
  1. Where: `<state dir>/technic.sqlite` (`ScreenStore.for_data_dir`): the data dir when it is
     local, so screens live next to the data they were written for; else (an object-store data
     dir) the per-user state folder; `TECHNIC_STATE_DIR` overrides both (settings.py). The file
     is created by the first save; until then every read sees no saved screens.
  2. Tables (component `screens` of technic.sqlite, technic_v4/statedb.py, which keeps the
     connections and schema versions; the watches, technic_v4/watch/, share the file):
        screens(owner, name, latest, deleted)    one row per name an owner ever saved: the
                                                 last version number given, so a number is
                                                 never reused, not even after a delete
        screen_versions(owner, name, version, definition, created)
     `owner` is the saving API key's fingerprint ("" = the open namespace; rows saved before
     owners existed are moved there by migration 2). A store is seen through a `Scope`
     (technic_v4/tenancy.py; `scoped`): its own namespace, or every owner's for an admin.
  3. Writes (`save`, `delete`) each run in one `BEGIN IMMEDIATE` transaction: the write lock is
     taken before anything is read, so two processes saving the same name at once get
     consecutive versions and neither is lost. WAL mode lets readers go on while a writer
     writes; `busy_timeout_s` is how long a writer waits for another. Connections are per
     thread (statedb.py), so a store is safe to share between threads and processes.
  4. `save` validates first (a ScanConfig built from the definition and `validate()`d: a bad
     `where` is the ConfigError with its line and column), refuses preset names, and gives a
     new version only when the canonical definition differs from the latest one.
Presets (presets.py) are part of what a store shows: `list()`, `get()` and `versions()` include
them, marked `preset`; `save` and `delete` refuse them (ReadOnlyScreenError).
SQLite needs a filesystem with working locks: keep the state dir off NFS-like mounts.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from technic_v4.data.store_fs import DataRoot, StoreError
from technic_v4.errors import ConfigError, ReadOnlyScreenError, UnknownScreenError
from technic_v4.scan.config import ScanConfig, check_screen_name, options
from technic_v4.screens.presets import PRESETS, Preset
from technic_v4.statedb import DB_NAME, StateDB, state_path
from technic_v4.tenancy import OPEN, Scope, pick

COMPONENT = "screens"
SCHEMA = """
CREATE TABLE IF NOT EXISTS screens (
    name TEXT PRIMARY KEY,
    latest INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS screen_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"""
OWNERS = """
CREATE TABLE screens_owned (
    owner TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    latest INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, name)
);
INSERT INTO screens_owned (owner, name, latest, deleted)
    SELECT '', name, latest, deleted FROM screens;
DROP TABLE screens;
ALTER TABLE screens_owned RENAME TO screens;
CREATE TABLE screen_versions_owned (
    owner TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (owner, name, version)
);
INSERT INTO screen_versions_owned (owner, name, version, definition, created)
    SELECT '', name, version, definition, created FROM screen_versions;
DROP TABLE screen_versions;
ALTER TABLE screen_versions_owned RENAME TO screen_versions
"""
MIGRATIONS = [SCHEMA, OWNERS]
SCHEMA_VERSION = len(MIGRATIONS)
Screens = list["SavedScreen"]  # aliases: ScreenStore.list shadows `list` in the class body
Versions = list["ScreenVersion"]
_DEFAULTS = ScanConfig()
DEFINITION_FIELDS = tuple(name for name, o in options().items() if o.exposed and name != "screen")
_FLOAT_FIELDS = {f.name for f in fields(ScanConfig) if str(f.type).startswith("float")}


class ScreenDatabaseError(StoreError):
    """technic.sqlite cannot be used: unreadable, corrupt, or written by a newer technic."""


@dataclass(frozen=True)
class SavedScreen:
    """One version of a screen (a preset has `preset=True` and no `created`); `owner`: the
    fingerprint of the key that saved it ("" = the open namespace, and presets)."""

    name: str
    version: int
    definition: dict[str, Any]
    created: str | None = None
    preset: bool = False
    title: str = ""
    description: str = ""
    owner: str = ""

    def ref(self) -> dict[str, Any]:
        """What a scan's status records of the screen it ran."""
        return {"name": self.name, "version": self.version, "preset": self.preset}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "preset": self.preset,
                "title": self.title, "description": self.description,
                "definition": dict(self.definition), "created": self.created}


@dataclass(frozen=True)
class ScreenVersion:
    version: int
    created: str | None


# --- definitions --------------------------------------------------------------------------
def definition_of(cfg: ScanConfig) -> dict[str, Any]:
    """The exposed fields of `cfg` that differ from the defaults, normalised, as JSON data
    (floats as floats, sequences as lists); `screen` is never part of a definition."""
    norm = cfg.normalized()
    out: dict[str, Any] = {}
    for name in DEFINITION_FIELDS:
        value = getattr(norm, name)
        if value == getattr(_DEFAULTS, name):
            continue
        if isinstance(value, list | tuple):
            value = list(value)
        elif name in _FLOAT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[name] = value
    return out


def config_of(definition: Mapping[str, Any]) -> ScanConfig:
    """The ScanConfig of a definition, validated (ConfigError naming the field: an unknown
    field lists the valid ones; a bad `where` points at its line and column)."""
    if not isinstance(definition, Mapping):
        raise ConfigError("definition", "a screen definition is an object of scan fields, got "
                          f"{type(definition).__name__}")
    unknown = sorted(str(k) for k in definition if k not in DEFINITION_FIELDS)
    if unknown:
        why = ("a screen cannot be based on another screen" if unknown == ["screen"]
               else f"unknown field(s) {', '.join(unknown)}")
        raise ConfigError(unknown[0], f"{why}; a definition may set: "
                          f"{', '.join(DEFINITION_FIELDS)}", list(DEFINITION_FIELDS))
    cfg = ScanConfig(**dict(definition))
    cfg.validate()
    return cfg


def canonical(definition: Mapping[str, Any]) -> str:
    """The definition as the JSON text stored and compared (keys sorted, no spaces)."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def preset_screen(preset: Preset) -> SavedScreen:
    return SavedScreen(preset.name, preset.version, dict(preset.definition), None, True,
                       preset.title, preset.description)


# --- resolution (the engine calls this once per scan) --------------------------------------
def resolve_screen(cfg: ScanConfig, screens: ScreenStore | None
                   ) -> tuple[ScanConfig, dict[str, Any] | None]:
    """(the config to run, the screen's ref for the status). Without `cfg.screen`: `cfg` as it
    is. Otherwise the named screen's latest version (from `screens`; None: presets only) with
    every field `cfg` sets away from its default on top; an unknown name is ConfigError
    ("screen", ..., valid=[every name])."""
    if cfg.screen is None:
        return cfg, None
    name = check_screen_name(cfg.screen)
    try:
        saved = screens.get(name) if screens is not None else _preset(name)
    except UnknownScreenError as exc:
        raise ConfigError("screen", f"{exc}; valid: {', '.join(exc.valid or [])}",
                          exc.valid) from None
    overrides = {n: getattr(cfg, n) for n in DEFINITION_FIELDS
                 if getattr(cfg, n) != getattr(_DEFAULTS, n)}
    merged = replace(ScanConfig(**saved.definition), **overrides, scoring=cfg.scoring,
                     screen=name)
    try:
        merged.validate()
    except ConfigError as exc:
        if exc.field in overrides:
            raise
        raise ConfigError(exc.field, f"screen {name} v{saved.version}: {exc.message}",
                          exc.valid, exc.details) from None
    return merged, saved.ref()


def _preset(name: str) -> SavedScreen:
    if name not in PRESETS:
        raise UnknownScreenError(f"unknown screen {name!r}", sorted(PRESETS))
    return preset_screen(PRESETS[name])


# --- the store ----------------------------------------------------------------------------
class ScreenStore:
    """Saved screens and the presets (module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0,
                 scope: Scope = OPEN):
        self.path = Path(path).expanduser()
        self.busy_timeout_s = busy_timeout_s
        self.scope = scope
        self._db = StateDB(self.path, COMPONENT, MIGRATIONS, ScreenDatabaseError, "screens",
                           busy_timeout_s)

    def scoped(self, scope: Scope) -> ScreenStore:
        """This store as `scope` sees it (technic_v4/tenancy.py); the connections are shared."""
        view = copy.copy(self)
        view.scope = scope
        return view

    @classmethod
    def for_data_dir(cls, data_dir: DataRoot, state_dir: str | os.PathLike[str] | None = None
                     ) -> ScreenStore:
        """The store for scans of `data_dir`: in `state_dir` when given, else where Settings
        say (TECHNIC_STATE_DIR, else the data dir when local, else the per-user state dir)."""
        return cls(state_path(data_dir, state_dir))

    def __repr__(self) -> str:
        return f"ScreenStore({str(self.path)!r})"

    # -- reads ---------------------------------------------------------------------------
    def list(self) -> Screens:
        """Every screen's latest version: the presets, then the saved screens by name."""
        out = [preset_screen(p) for p in PRESETS.values()]
        seen, args = self.scope.where("s.owner")
        with self._read() as db:
            if db is not None:
                rows = db.execute(
                    "SELECT v.name, v.version, v.definition, v.created, v.owner FROM "
                    "screen_versions v JOIN screens s ON s.owner = v.owner AND s.name = v.name "
                    f"AND s.latest = v.version WHERE s.deleted = 0 AND {seen} "
                    "ORDER BY v.name, v.owner", args).fetchall()
                out += [_row(r) for r in rows]
        return out

    def names(self) -> Sequence[str]:
        return [s.name for s in self.list()]

    def get(self, name: str, version: int | None = None) -> SavedScreen:
        """The screen's latest version (or `version`); UnknownScreenError when there is none."""
        check_screen_name(name)
        if name in PRESETS:
            preset = preset_screen(PRESETS[name])
            if version not in (None, preset.version):
                raise UnknownScreenError(f"preset {name!r} has only version {preset.version}",
                                         [str(preset.version)])
            return preset
        with self._read() as db:
            row = None
            if db is not None:
                owner = self._owner(db, name)
                row = None if owner is None else db.execute(
                    "SELECT v.name, v.version, v.definition, v.created, v.owner FROM "
                    "screen_versions v JOIN screens s ON s.owner = v.owner AND s.name = v.name "
                    "WHERE s.deleted = 0 AND v.owner = ? AND v.name = ? "
                    "AND v.version = COALESCE(?, s.latest)", (owner, name, version)).fetchone()
                if row is None and version is not None and owner is not None:
                    have = [str(v.version) for v in self._versions(db, owner, name)]
                    if have:
                        raise UnknownScreenError(f"screen {name!r} has no version {version}; "
                                                 f"versions: {', '.join(have)}", have)
        if row is None:
            raise UnknownScreenError(f"unknown screen {name!r}", self.names())
        return _row(row)

    def versions(self, name: str) -> Versions:
        """The screen's versions, oldest first; UnknownScreenError when there is none."""
        check_screen_name(name)
        if name in PRESETS:
            return [ScreenVersion(PRESETS[name].version, None)]
        with self._read() as db:
            owner = None if db is None else self._owner(db, name)
            found = [] if db is None or owner is None else self._versions(db, owner, name)
        if not found:
            raise UnknownScreenError(f"unknown screen {name!r}", self.names())
        return found

    def _owner(self, db: sqlite3.Connection, name: str) -> str | None:
        """The owner of the saved screen `name` this scope means (None: none it sees)."""
        seen, args = self.scope.where()
        rows = db.execute(f"SELECT owner FROM screens WHERE name = ? AND deleted = 0 AND {seen} "
                          "ORDER BY owner", (name, *args)).fetchall()
        found = pick(rows, self.scope, "screen", name)
        return None if found is None else str(found[0])

    @staticmethod
    def _versions(db: sqlite3.Connection, owner: str, name: str) -> Versions:
        rows = db.execute(
            "SELECT v.version, v.created FROM screen_versions v JOIN screens s "
            "ON s.owner = v.owner AND s.name = v.name WHERE s.deleted = 0 AND v.owner = ? "
            "AND v.name = ? ORDER BY v.version", (owner, name)).fetchall()
        return [ScreenVersion(int(v), c) for v, c in rows]

    # -- writes --------------------------------------------------------------------------
    def save(self, name: str, definition: Mapping[str, Any] | ScanConfig) -> int:
        """Save `definition` (scan fields, or a ScanConfig) as `name`'s next version and
        return it; an identical definition returns the latest version unchanged."""
        return self.put(name, definition)[0]

    def put(self, name: str, definition: Mapping[str, Any] | ScanConfig) -> tuple[int, bool]:
        """`save`, also saying whether a new version was written (False: identical)."""
        check_screen_name(name)
        if name in PRESETS:
            raise ReadOnlyScreenError(f"{name!r} is a preset (read-only): save the screen "
                                      "under another name")
        cfg = definition if isinstance(definition, ScanConfig) else config_of(definition)
        if isinstance(definition, ScanConfig):
            if cfg.screen is not None:
                raise ConfigError("screen", "a screen cannot be based on another screen: "
                                  "leave screen unset in a definition")
            cfg.validate()
        text = canonical(definition_of(cfg))
        owner = self.scope.owner  # saved in the caller's own namespace, admins' too
        with self._write() as db:
            head = db.execute("SELECT latest, deleted FROM screens WHERE owner = ? AND "
                              "name = ?", (owner, name)).fetchone()
            if head is not None and not head[1]:
                same = db.execute("SELECT definition FROM screen_versions WHERE owner = ? AND "
                                  "name = ? AND version = ?", (owner, name, head[0])).fetchone()
                if same is not None and same[0] == text:
                    return int(head[0]), False
            version = 1 if head is None else int(head[0]) + 1
            db.execute("INSERT INTO screens (owner, name, latest, deleted) VALUES (?, ?, ?, 0) "
                       "ON CONFLICT(owner, name) DO UPDATE SET latest = excluded.latest, "
                       "deleted = 0", (owner, name, version))
            db.execute("INSERT INTO screen_versions (owner, name, version, definition, "
                       "created) VALUES (?, ?, ?, ?, ?)", (owner, name, version, text, _now()))
            return version, True

    def delete(self, name: str) -> None:
        """Delete every version of `name`; its version numbers are not given again."""
        check_screen_name(name)
        if name in PRESETS:
            raise ReadOnlyScreenError(f"{name!r} is a preset (read-only) and cannot be deleted")
        gone = False
        if self.path.exists():
            with self._write() as db:
                owner = self._owner(db, name)
                if owner is not None:
                    gone = db.execute("UPDATE screens SET deleted = 1 WHERE owner = ? AND "
                                      "name = ? AND deleted = 0", (owner, name)).rowcount > 0
                    db.execute("DELETE FROM screen_versions WHERE owner = ? AND name = ?",
                               (owner, name))
        if not gone:
            raise UnknownScreenError(f"unknown screen {name!r}", self.names())

    # -- connections (technic_v4/statedb.py) -------------------------------------------
    def close(self) -> None:
        """Close this thread's connection (others close with their threads' garbage)."""
        self._db.close()

    def _read(self) -> AbstractContextManager[sqlite3.Connection | None]:
        return self._db.read()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.write()


def _row(row: tuple) -> SavedScreen:
    name, version, text, created, owner = row
    return SavedScreen(name, int(version), json.loads(text), created, owner=owner)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["DB_NAME", "DEFINITION_FIELDS", "SCHEMA_VERSION", "SavedScreen", "ScreenDatabaseError",
           "ScreenStore", "ScreenVersion", "canonical", "config_of", "definition_of",
           "preset_screen", "resolve_screen"]
