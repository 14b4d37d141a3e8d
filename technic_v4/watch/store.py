"""The durable side of watches: definitions, evaluations, the event outbox, deliveries.

`WatchStore` is the interface (what evaluation, delivery and the service need); the one
implementation here keeps it in technic.sqlite beside the saved screens (component
`watches`, statedb.py: WAL, one transaction per write, migrations). A Postgres store would
implement the same methods with the same transactions (`SELECT ... FOR UPDATE SKIP LOCKED`
where this one relies on SQLite's single writer).

Tables:
  watches(id, name, options JSON, secret, created, owner)   UNIQUE (owner, name)
  watch_targets(id, watch_id, kind, url, failures, open_until, last_error)  + breaker state
  watch_evaluations(watch_id, session, data_version, screen JSON, symbols JSON, baseline,
                    events, evaluated_at)          PRIMARY KEY (watch_id, session)
  watch_events(seq, id UNIQUE, watch_id, watch, session, symbol, kind, payload JSON, created)
                                                   the outbox; seq is the SSE event id
  watch_deliveries(id, key UNIQUE, target_id, watch_id, event_seq, session, state, attempts,
                   next_at, lease_owner, lease_until, created, delivered_at, last_status,
                   last_error)                     one row per (event, webhook target) and per
                                                   (watch, session, apprise target)
  watch_delivery_log(delivery_id, attempt, outcome, status, error, owner, at)  append-only
  watch_failures(watch_id, session, reason, failures, first_at, last_at)
                                                   a watch whose last evaluation failed (the
                                                   session it failed at, why); cleared by its
                                                   next recorded evaluation

Owners (technic_v4/tenancy.py): a store is seen through a `Scope` (`scoped`). Each watch has
the owner that created it ("" = the open namespace, where migration 2 puts watches made
before owners existed); names are unique per owner; lookups by name, listings, `status`,
`redeliver` and the outbox reads (`events_after`, `last_seq`) see only the scope's own
watches (every owner's for an admin scope). Evaluation and delivery see every watch: the
store's default scope is OPEN (an admin's view); the service scopes what callers ask for.

The guarantees, and where they are made:
  - `record` writes evaluations, their events and their deliveries in ONE transaction,
    and only when no evaluation of that (watch, session) exists: evaluating a
    session twice writes nothing the second time, and an event id (deterministic) is UNIQUE.
  - `claim` leases due deliveries to one owner (BEGIN IMMEDIATE: two deliverers never get
    the same row) and counts the attempt before anything is sent; `settle` records the
    outcome only while the caller still holds the lease, so an acknowledgement is written
    once (outcomes are recorded in small groups: one transaction, one fsync, for
    several). A delivered row is never claimed again. A process killed mid-send leaves a lease
    that expires (or that `release_orphans` frees at once when its owner's process is gone
    on this host), and the row is sent again: at-least-once.
"""

from __future__ import annotations

import builtins
import copy
import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from technic_v4.data.store_fs import DataRoot, StoreError
from technic_v4.errors import ConfigError
from technic_v4.statedb import StateDB, state_path
from technic_v4.tenancy import OPEN, Scope, pick
from technic_v4.watch.clock import SYSTEM, Clock
from technic_v4.watch.model import Target, Watch, WatchSpec, new_secret, new_watch_id

COMPONENT = "watches"
MIGRATIONS = ["""
CREATE TABLE watches (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    options TEXT NOT NULL,
    secret TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE watch_targets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    watch_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    trips INTEGER NOT NULL DEFAULT 0,
    open_until REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE watch_evaluations (
    watch_id TEXT NOT NULL,
    session TEXT NOT NULL,
    data_version TEXT NOT NULL,
    screen TEXT NOT NULL,
    symbols TEXT NOT NULL,
    baseline INTEGER NOT NULL,
    events INTEGER NOT NULL,
    evaluated_at TEXT NOT NULL,
    PRIMARY KEY (watch_id, session)
);
CREATE TABLE watch_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    watch_id TEXT NOT NULL,
    watch TEXT NOT NULL,
    session TEXT NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX watch_events_by_watch ON watch_events (watch_id, session);
CREATE TABLE watch_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    target_id INTEGER NOT NULL,
    watch_id TEXT NOT NULL,
    event_seq INTEGER,
    session TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    delivered_at REAL,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX watch_deliveries_due ON watch_deliveries (state, next_at);
CREATE INDEX watch_deliveries_by_watch ON watch_deliveries (watch_id, state);
CREATE TABLE watch_delivery_log (
    delivery_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    owner TEXT,
    at REAL NOT NULL
);
CREATE INDEX watch_delivery_log_by_delivery ON watch_delivery_log (delivery_id)
""", """
CREATE TABLE watches_owned (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    options TEXT NOT NULL,
    secret TEXT NOT NULL,
    created TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    UNIQUE (owner, name)
);
INSERT INTO watches_owned (id, name, options, secret, created, owner)
    SELECT id, name, options, secret, created, '' FROM watches;
DROP TABLE watches;
ALTER TABLE watches_owned RENAME TO watches
""", """
CREATE TABLE watch_failures (
    watch_id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    reason TEXT NOT NULL,
    failures INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL
);
CREATE INDEX watch_deliveries_by_event ON watch_deliveries (event_seq);
CREATE INDEX watch_events_by_created ON watch_events (created)
"""]
SCHEMA_VERSION = len(MIGRATIONS)
DEAD_SHOWN = 50


class WatchDatabaseError(StoreError):
    """technic.sqlite cannot hold watches: unreadable, corrupt, or from a newer technic."""


class UnknownWatchError(ConfigError):
    """No watch of this name; `valid`: the names there are."""

    def __init__(self, name: str, valid: Sequence[str]):
        super().__init__("name", f"unknown watch {name!r}", list(valid))


class WatchExistsError(ConfigError):
    """A watch of this name exists already (remove it first)."""

    def __init__(self, name: str):
        super().__init__("name", f"a watch named {name!r} exists already: remove it first "
                         "(`technic watch remove`, DELETE /v1/watches/NAME)")


@dataclass(frozen=True)
class Evaluation:
    """One watch's screen at one session (what the next session is compared with)."""

    watch_id: str
    session: str
    data_version: str
    screen: dict[str, Any]
    symbols: list[str]  # ranked, best first
    baseline: bool = False
    events: int = 0
    evaluated_at: str = ""


@dataclass(frozen=True)
class Claimed:
    """A leased delivery and what sending it needs."""

    id: int
    kind: str            # webhook | apprise
    url: str = field(repr=False)
    secret: str = field(repr=False)
    target_id: int
    watch: str
    session: str
    attempt: int         # this attempt's number (1 = first)
    created: float
    events: list[dict[str, Any]]  # one for a webhook, the session's events for apprise
    claimed_at: float = 0.0


@dataclass(frozen=True)
class Settlement:
    """One attempt's outcome, for `settle`."""

    claimed: Claimed
    ok: bool
    status: int | None = None
    error: str | None = None
    next_at: float | None = None
    dead: bool = False


# aliases: `list` is a method name in the classes below
Watches = list[Watch]
Events = list[tuple[int, dict[str, Any]]]
Claims = list[Claimed]
Rows = list[dict[str, Any]]


class WatchStore(Protocol):
    """What evaluation, delivery and the service ask of a watch store (module docstring)."""

    clock: Clock  # the time every lease, retry, breaker and retention is measured by

    def scoped(self, scope: Scope) -> WatchStore: ...
    def create(self, spec: WatchSpec) -> tuple[Watch, str]: ...
    def list(self) -> Watches: ...
    def get(self, name: str) -> Watch: ...
    def delete(self, name: str) -> None: ...
    def last_evaluation(self, watch_id: str) -> Evaluation | None: ...
    def record(self, batch: Sequence[tuple[Watch, Evaluation, Sequence[dict[str, Any]]]]
               ) -> int: ...
    def events_after(self, seq: int, limit: int = 100, watch: str | None = None
                     ) -> Events: ...
    def last_seq(self) -> int: ...
    def claim(self, owner: str, limit: int, lease_s: float, max_age_s: float,
              now: float | None = None) -> Claims: ...
    def settle(self, owner: str, results: Sequence[Settlement],
               breaker: tuple[int, float] = (5, 60.0)) -> builtins.list[bool]: ...
    def target_breaker(self, target_id: int) -> tuple[int, float]: ...
    def release_orphans(self) -> int: ...
    def redeliver(self, name: str, ids: Sequence[int] | None = None) -> int: ...
    def status(self, name: str | None = None) -> dict[str, Any]: ...
    def next_due(self) -> float | None: ...
    def record_failures(self, failures: Mapping[str, tuple[str, str]]) -> None: ...
    def prune(self, now: float, retention_s: float) -> dict[str, int]: ...
    def outbox_size(self) -> dict[str, int]: ...


def lease_owner() -> str:
    """host:pid:random — `release_orphans` frees the leases of dead processes on this host."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return True  # another host's process: wait for its lease to expire
    try:
        os.kill(int(rest.split(":")[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def dumps_fast(value: Any) -> str:
    """`dumps` for the outbox's bulk (events and their rows, symbol lists): orjson, ~6x
    faster; the same JSON data (keys sorted, compact) but for non-finite floats, which
    become null (the rows' convention) instead of an error."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
                        ).decode()


class SqliteWatchStore:
    """WatchStore in technic.sqlite (module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0,
                 scope: Scope = OPEN, clock: Clock = SYSTEM):
        self.path = Path(path).expanduser()
        self.scope = scope
        self.clock = clock  # every timestamp written or compared (leases, breakers, ages)
        self._db = StateDB(self.path, COMPONENT, MIGRATIONS, WatchDatabaseError, "watches",
                           busy_timeout_s)

    def scoped(self, scope: Scope) -> SqliteWatchStore:
        """This store as `scope` sees it (module docstring); the connections are shared."""
        view = copy.copy(self)
        view.scope = scope
        return view

    @classmethod
    def for_data_dir(cls, data_dir: DataRoot, state_dir: str | os.PathLike[str] | None = None,
                     *, clock: Clock = SYSTEM) -> SqliteWatchStore:
        """The store beside `data_dir`'s saved screens (ScreenStore.for_data_dir's file)."""
        return cls(state_path(data_dir, state_dir), clock=clock)

    def __repr__(self) -> str:
        return f"SqliteWatchStore({str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    # -- watches -------------------------------------------------------------------------
    def create(self, spec: WatchSpec) -> tuple[Watch, str]:
        """Store a checked spec; (the watch, its secret: shown to the user once)."""
        spec.check()
        secret, wid, created = new_secret(), new_watch_id(), _iso(self.clock.now())
        owner = self.scope.owner  # created in the caller's own namespace, admins' too
        with self._db.write() as db:
            if db.execute("SELECT 1 FROM watches WHERE owner = ? AND name = ?",
                          (owner, spec.name)).fetchone():
                raise WatchExistsError(spec.name)
            db.execute("INSERT INTO watches (id, name, options, secret, created, owner) VALUES "
                       "(?, ?, ?, ?, ?, ?)", (wid, spec.name, dumps(spec.options()), secret,
                                              created, owner))
            for target in spec.targets():
                db.execute("INSERT INTO watch_targets (watch_id, kind, url) VALUES (?, ?, ?)",
                           (wid, target.kind, target.url))
        return self.scoped(Scope(owner)).get(spec.name), secret

    def list(self) -> Watches:
        seen, args = self.scope.where()
        with self._db.read() as db:
            if db is None:
                return []
            rows = db.execute(f"SELECT owner, id, name, options, secret, created FROM watches "
                              f"WHERE {seen} ORDER BY name, owner", args).fetchall()
            return [self._watch(db, row) for row in rows]

    def get(self, name: str) -> Watch:
        seen, args = self.scope.where()
        with self._db.read() as db:
            rows = [] if db is None else db.execute(
                f"SELECT owner, id, name, options, secret, created FROM watches WHERE name = ? "
                f"AND {seen} ORDER BY owner", (name, *args)).fetchall()
            row = pick(rows, self.scope, "watch", name)
            if row is not None:
                return self._watch(db, row)
        raise UnknownWatchError(name, [w.name for w in self.list()])

    @staticmethod
    def _watch(db: Any, row: tuple) -> Watch:
        owner, wid, name, options, secret, created = row
        targets = tuple(Target(kind, url, int(tid)) for tid, kind, url in db.execute(
            "SELECT id, kind, url FROM watch_targets WHERE watch_id = ? ORDER BY id", (wid,)))
        return Watch(wid, name, json.loads(options), targets, created, secret, owner)

    def delete(self, name: str) -> None:
        """The watch, its targets, evaluations, events and deliveries: all gone."""
        watch = self.get(name)
        with self._db.write() as db:
            db.execute("DELETE FROM watch_delivery_log WHERE delivery_id IN (SELECT id FROM "
                       "watch_deliveries WHERE watch_id = ?)", (watch.id,))
            for table in ("watch_deliveries", "watch_events", "watch_evaluations",
                          "watch_targets", "watch_failures"):
                db.execute(f"DELETE FROM {table} WHERE watch_id = ?", (watch.id,))
            db.execute("DELETE FROM watches WHERE id = ?", (watch.id,))
        self.reclaim()

    # -- evaluations and the outbox -------------------------------------------------------
    def last_evaluation(self, watch_id: str) -> Evaluation | None:
        with self._db.read() as db:
            row = None if db is None else db.execute(
                "SELECT watch_id, session, data_version, screen, symbols, baseline, events, "
                "evaluated_at FROM watch_evaluations WHERE watch_id = ? ORDER BY session DESC "
                "LIMIT 1", (watch_id,)).fetchone()
        if row is None:
            return None
        wid, session, version, screen, symbols, baseline, events, at = row
        return Evaluation(wid, session, version, json.loads(screen), json.loads(symbols),
                          bool(baseline), int(events), at)

    def record(self, batch: Sequence[tuple[Watch, Evaluation, Sequence[dict[str, Any]]]]
               ) -> int:
        """Evaluations with their events and deliveries (one per (event, webhook target),
        one per (watch, session, apprise target)), all in one transaction. A (watch, session)
        evaluated already, or a watch removed meanwhile, writes nothing. Returns the number
        of events written."""
        now = self.clock.now()
        created = _iso(now)
        written = 0
        with self._db.write() as db:
            for watch, evaluation, events in batch:
                if db.execute("SELECT 1 FROM watches WHERE id = ?",
                              (watch.id,)).fetchone() is None:
                    continue
                cur = db.execute(
                    "INSERT OR IGNORE INTO watch_evaluations (watch_id, session, data_version, "
                    "screen, symbols, baseline, events, evaluated_at) VALUES (?, ?, ?, ?, ?, ?, "
                    "?, ?)", (watch.id, evaluation.session, evaluation.data_version,
                              dumps(evaluation.screen), dumps_fast(evaluation.symbols),
                              int(evaluation.baseline), len(events), created))
                if cur.rowcount:
                    db.execute("DELETE FROM watch_failures WHERE watch_id = ?", (watch.id,))
                    written += self._outbox(db, watch, evaluation.session, events, now, created)
        return written

    def record_failures(self, failures: Mapping[str, tuple[str, str]]) -> None:
        """{watch id: (session, reason)}: these watches' evaluations failed (a watch removed
        meanwhile is left out); shown by `status` until an evaluation of it is recorded."""
        at = _iso(self.clock.now())
        with self._db.write() as db:
            for wid, (session, reason) in failures.items():
                if db.execute("SELECT 1 FROM watches WHERE id = ?", (wid,)).fetchone():
                    db.execute(
                        "INSERT INTO watch_failures (watch_id, session, reason, failures, "
                        "first_at, last_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (watch_id) "
                        "DO UPDATE SET session = excluded.session, reason = excluded.reason, "
                        "failures = failures + 1, last_at = excluded.last_at",
                        (wid, session, reason, at, at))

    def _outbox(self, db: Any, watch: Watch, session: str, events: Sequence[dict[str, Any]],
                now: float, created: str) -> int:
        written = 0
        for event in events:
            cur = db.execute(
                "INSERT OR IGNORE INTO watch_events (id, watch_id, watch, session, symbol, "
                "kind, payload, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event["id"], watch.id, watch.name, session, event["symbol"], event["kind"],
                 dumps_fast(event), created))
            if cur.rowcount == 0:
                continue
            written += 1
            for target in watch.targets:
                if target.kind == "webhook":
                    self._add_delivery(db, f"{event['id']}:{target.id}", target.id, watch.id,
                                       cur.lastrowid, session, now)
        if written:
            for target in watch.targets:
                if target.kind == "apprise":
                    self._add_delivery(db, f"{watch.id}:{session}:{target.id}", target.id,
                                       watch.id, None, session, now)
        return written

    @staticmethod
    def _add_delivery(db: Any, key: str, target_id: int, watch_id: str, seq: int | None,
                      session: str, now: float) -> None:
        db.execute("INSERT OR IGNORE INTO watch_deliveries (key, target_id, watch_id, "
                   "event_seq, session, state, next_at, created) VALUES (?, ?, ?, ?, ?, "
                   "'pending', ?, ?)", (key, target_id, watch_id, seq, session, now, now))

    def events_after(self, seq: int, limit: int = 100, watch: str | None = None
                     ) -> Events:
        """Outbox events with seq > `seq`, oldest first (the SSE stream and `watch tail`), of
        the scope's watches (and of the watch named `watch` among them)."""
        seen, args = self._owned()
        with self._db.read() as db:
            if db is None:
                return []
            rows = db.execute(
                "SELECT seq, payload FROM watch_events WHERE seq > ? AND (? IS NULL OR watch = ?) "
                f"AND {seen} ORDER BY seq LIMIT ?", (seq, watch, watch, *args, limit)).fetchall()
        return [(int(s), json.loads(p)) for s, p in rows]

    def last_seq(self) -> int:
        """The newest outbox sequence among the scope's watches' events (0: none)."""
        seen, args = self._owned()
        with self._db.read() as db:
            row = None if db is None else db.execute(
                f"SELECT MAX(seq) FROM watch_events WHERE {seen}", args).fetchone()
        return int(row[0] or 0) if row else 0

    def _owned(self) -> tuple[str, tuple[Any, ...]]:
        """An SQL condition on a row's `watch_id`: a watch the scope sees."""
        seen, args = self.scope.where()
        return f"(? OR watch_id IN (SELECT id FROM watches WHERE {seen}))", (
            int(self.scope.admin), *args)

    # -- delivery ------------------------------------------------------------------------
    def claim(self, owner: str, limit: int, lease_s: float, max_age_s: float,
              now: float | None = None) -> Claims:
        """Lease up to `limit` due deliveries to `owner` (module docstring). Rows older than
        `max_age_s` are dead-lettered here; a target whose breaker is open is skipped, and
        one whose breaker is half-open (open_until passed, failures not reset) gets one."""
        now = self.clock.now() if now is None else now
        with self._db.write() as db:
            expired = db.execute(
                "SELECT id, attempts FROM watch_deliveries WHERE state = 'pending' AND "
                "created < ? AND lease_until <= ?", (now - max_age_s, now)).fetchall()
            for did, attempts in expired:
                why = f"expired: not delivered within {max_age_s:g} s"
                db.execute("UPDATE watch_deliveries SET state = 'dead', last_error = ? WHERE "
                           "id = ?", (why, did))
                self._log(db, did, attempts, "dead", None, why, owner, now)
            rows = db.execute(
                "SELECT d.id, d.target_id, t.open_until FROM watch_deliveries d "
                "JOIN watch_targets t ON t.id = d.target_id WHERE d.state = 'pending' AND "
                "d.next_at <= ? AND d.lease_until <= ? AND t.open_until <= ? ORDER BY d.id "
                "LIMIT ?", (now, now, now, limit * 4)).fetchall()
            picked, probing = [], set()
            for did, tid, open_until in rows:
                if open_until > 0:  # half-open: one trial per target
                    if tid in probing:
                        continue
                    probing.add(tid)
                picked.append(did)
                if len(picked) == limit:
                    break
            out = []
            for did in picked:
                db.execute("UPDATE watch_deliveries SET lease_owner = ?, lease_until = ?, "
                           "attempts = attempts + 1 WHERE id = ?", (owner, now + lease_s, did))
                out.append(replace(self._claimed(db, did), claimed_at=now))
            return out

    @staticmethod
    def _claimed(db: Any, did: int) -> Claimed:
        row = db.execute(
            "SELECT d.id, t.kind, t.url, w.secret, d.target_id, w.name, d.session, d.attempts, "
            "d.created, d.event_seq, d.watch_id FROM watch_deliveries d JOIN watch_targets t "
            "ON t.id = d.target_id JOIN watches w ON w.id = d.watch_id WHERE d.id = ?",
            (did,)).fetchone()
        *head, seq, wid = row
        if seq is not None:
            payloads = db.execute("SELECT payload FROM watch_events WHERE seq = ?", (seq,))
        else:
            payloads = db.execute("SELECT payload FROM watch_events WHERE watch_id = ? AND "
                                  "session = ? ORDER BY seq", (wid, head[6]))
        events = [json.loads(p) for (p,) in payloads]
        return Claimed(int(head[0]), head[1], head[2], head[3], int(head[4]), head[5], head[6],
                       int(head[7]), float(head[8]), events)

    def settle(self, owner: str, results: Sequence[Settlement],
               breaker: tuple[int, float] = (5, 60.0)) -> builtins.list[bool]:
        """Record attempts' outcomes, in one transaction, each only while `owner` still
        holds its lease (else nothing: False for it). ok → delivered (the acknowledgement,
        written once); not ok → pending again at `next_at`, or dead. Each target's breaker,
        `breaker` = (failures that open it, first cool-down in s), is updated in the same
        transaction: closed by a success; opened after that many failures in a row, for a
        cool-down that doubles each time a trial after it fails (at most 1 hour); failures
        of requests already under way when it opened do not extend it."""
        now = self.clock.now()
        with self._db.write() as db:
            return [self._settle(db, owner, r, breaker, now) for r in results]

    def _settle(self, db: Any, owner: str, r: Settlement, breaker: tuple[int, float],
                now: float) -> bool:
        claimed = r.claimed
        state = "delivered" if r.ok else ("dead" if r.dead else "pending")
        cur = db.execute(
            "UPDATE watch_deliveries SET state = ?, lease_owner = NULL, lease_until = 0, "
            "next_at = COALESCE(?, next_at), delivered_at = ?, last_status = ?, "
            "last_error = ? WHERE id = ? AND lease_owner = ? AND state = 'pending'",
            (state, r.next_at, now if r.ok else None, r.status, r.error, claimed.id, owner))
        if cur.rowcount == 0:
            return False
        outcome = "delivered" if r.ok else ("dead" if r.dead else "failed")
        self._log(db, claimed.id, claimed.attempt, outcome, r.status, r.error, owner, now)
        if r.ok:
            db.execute("UPDATE watch_targets SET failures = 0, trips = 0, open_until = 0 "
                       "WHERE id = ?", (claimed.target_id,))
            return True
        failures, trips, open_until = db.execute(
            "SELECT failures + 1, trips, open_until FROM watch_targets WHERE id = ?",
            (claimed.target_id,)).fetchone()
        threshold, cooldown = breaker
        if failures < threshold:
            open_until = 0.0
        elif open_until == 0 or claimed.claimed_at >= open_until:
            # the threshold reached, or a trial sent while half-open failed
            open_until = now + min(3600.0, cooldown * 2 ** min(trips, 6))
            trips += 1
        db.execute("UPDATE watch_targets SET failures = ?, trips = ?, open_until = ?, "
                   "last_error = ? WHERE id = ?",
                   (failures, trips, open_until, r.error, claimed.target_id))
        return True

    def target_breaker(self, target_id: int) -> tuple[int, float]:
        with self._db.read() as db:
            row = None if db is None else db.execute(
                "SELECT failures, open_until FROM watch_targets WHERE id = ?",
                (target_id,)).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    @staticmethod
    def _log(db: Any, did: int, attempt: int, outcome: str, status: int | None,
             error: str | None, owner: str | None, at: float) -> None:
        db.execute("INSERT INTO watch_delivery_log (delivery_id, attempt, outcome, status, "
                   "error, owner, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (did, attempt, outcome, status, error, owner, at))

    def release_orphans(self) -> int:
        """Free the leases of processes on this host that are gone (after a crash), so their
        deliveries are sent again now rather than when the lease runs out."""
        now = self.clock.now()
        with self._db.write() as db:
            owners = [o for (o,) in db.execute(
                "SELECT DISTINCT lease_owner FROM watch_deliveries WHERE state = 'pending' AND "
                "lease_owner IS NOT NULL AND lease_until > ?", (now,))]
            freed = 0
            for owner in owners:
                if not _alive(owner):
                    freed += db.execute("UPDATE watch_deliveries SET lease_owner = NULL, "
                                        "lease_until = 0 WHERE lease_owner = ? AND state = "
                                        "'pending'", (owner,)).rowcount
            return freed

    def redeliver(self, name: str, ids: Sequence[int] | None = None) -> int:
        """Dead deliveries of watch `name` (or just `ids` of them) pending again, now, with
        fresh attempts and age, and the targets' breakers closed. Returns how many."""
        watch = self.get(name)
        now = self.clock.now()
        with self._db.write() as db:
            rows = [did for (did,) in db.execute(
                "SELECT id FROM watch_deliveries WHERE watch_id = ? AND state = 'dead'",
                (watch.id,)) if ids is None or did in set(ids)]
            for did in rows:
                db.execute("UPDATE watch_deliveries SET state = 'pending', attempts = 0, "
                           "next_at = ?, created = ?, lease_owner = NULL, lease_until = 0 "
                           "WHERE id = ?", (now, now, did))
                self._log(db, did, 0, "redeliver", None, None, None, now)
            db.execute("UPDATE watch_targets SET failures = 0, trips = 0, open_until = 0 "
                       "WHERE watch_id = ?", (watch.id,))
            return len(rows)

    def next_due(self) -> float | None:
        """When the earliest pending delivery may be tried (None: nothing pending)."""
        with self._db.read() as db:
            row = None if db is None else db.execute(
                "SELECT MIN(MAX(d.next_at, d.lease_until, t.open_until)) FROM watch_deliveries "
                "d JOIN watch_targets t ON t.id = d.target_id WHERE d.state = 'pending'"
            ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # -- state ---------------------------------------------------------------------------
    def status(self, name: str | None = None) -> dict[str, Any]:
        """Counts by delivery state, per target (breaker), the last evaluation and the dead
        letters (newest DEAD_SHOWN), for one watch or (name None) all of them."""
        watches = [self.get(name)] if name is not None else self.list()
        out: dict[str, Any] = {"watches": []}
        with self._db.read() as db:
            for w in watches:
                out["watches"].append(self._status(db, w) if db is not None else {})
        if name is None:
            out["outbox"] = self.outbox_size()
        return out

    def _status(self, db: Any, watch: Watch) -> dict[str, Any]:
        counts = dict.fromkeys(("pending", "delivered", "dead"), 0)
        counts.update({s: int(n) for s, n in db.execute(
            "SELECT state, COUNT(*) FROM watch_deliveries WHERE watch_id = ? GROUP BY state",
            (watch.id,))})
        targets = []
        for target in watch.targets:
            failures, open_until, last_error = db.execute(
                "SELECT failures, open_until, last_error FROM watch_targets WHERE id = ?",
                (target.id,)).fetchone()
            per = dict.fromkeys(("pending", "delivered", "dead"), 0)
            per.update({s: int(n) for s, n in db.execute(
                "SELECT state, COUNT(*) FROM watch_deliveries WHERE target_id = ? GROUP BY "
                "state", (target.id,))})
            breaker = ("open" if open_until > self.clock.now() else
                       "half-open" if open_until > 0 else "closed")
            targets.append({**target.public(), "deliveries": per, "breaker": breaker,
                            "consecutive_failures": int(failures),
                            "open_until": _iso(open_until) if open_until else None,
                            "last_error": last_error})
        dead = [{"delivery": int(did), "target": int(tid), "session": session,
                 "event": eid, "attempts": int(attempts), "last_status": status,
                 "last_error": error}
                for did, tid, session, eid, attempts, status, error in db.execute(
                    "SELECT d.id, d.target_id, d.session, e.id, d.attempts, d.last_status, "
                    "d.last_error FROM watch_deliveries d LEFT JOIN watch_events e ON e.seq = "
                    "d.event_seq WHERE d.watch_id = ? AND d.state = 'dead' ORDER BY d.id DESC "
                    "LIMIT ?", (watch.id, DEAD_SHOWN))]
        last = db.execute("SELECT session, data_version, screen, symbols, baseline, events, "
                          "evaluated_at FROM watch_evaluations WHERE watch_id = ? ORDER BY "
                          "session DESC LIMIT 1", (watch.id,)).fetchone()
        evaluation = None if last is None else {
            "session": last[0], "data_version": last[1], "screen": json.loads(last[2]),
            "symbols": len(json.loads(last[3])), "baseline": bool(last[4]), "events": last[5],
            "evaluated_at": last[6]}
        n_events = db.execute("SELECT COUNT(*) FROM watch_events WHERE watch_id = ?",
                              (watch.id,)).fetchone()[0]
        failed = db.execute("SELECT session, reason, failures, first_at, last_at FROM "
                            "watch_failures WHERE watch_id = ?", (watch.id,)).fetchone()
        return {"name": watch.name, "id": watch.id, "deliveries": counts, "events": int(n_events),
                "targets": targets, "last_evaluation": evaluation, "dead_letters": dead,
                "failed": None if failed is None else dict(zip(
                    ("session", "reason", "failures", "first_at", "last_at"), failed,
                    strict=True))}

    # -- bounds --------------------------------------------------------------------------
    def prune(self, now: float, retention_s: float) -> dict[str, int]:
        """Drop what the retention no longer keeps (module docstring), then `reclaim`.
        Returns how many rows of each kind went."""
        cutoff_ts = now - retention_s
        cutoff = _iso(cutoff_ts)
        gone: dict[str, int] = {}
        with self._db.write() as db:
            # events with no delivery still pending (all acknowledged or dead, or none)
            old = [seq for (seq,) in db.execute(
                "SELECT e.seq FROM watch_events e WHERE e.created < ? AND NOT EXISTS (SELECT 1 "
                "FROM watch_deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending')",
                (cutoff,))]
            gone["events"] = gone["deliveries"] = 0
            for i in range(0, len(old), 500):
                chunk = old[i:i + 500]
                marks = ",".join("?" * len(chunk))
                db.execute("DELETE FROM watch_delivery_log WHERE delivery_id IN (SELECT id FROM "
                           f"watch_deliveries WHERE event_seq IN ({marks}))", chunk)
                gone["deliveries"] += db.execute(
                    f"DELETE FROM watch_deliveries WHERE event_seq IN ({marks})",
                    chunk).rowcount
                gone["events"] += db.execute(
                    f"DELETE FROM watch_events WHERE seq IN ({marks})", chunk).rowcount
            # finished apprise summaries (one per watch and session, no event of their own)
            db.execute("DELETE FROM watch_delivery_log WHERE delivery_id IN (SELECT id FROM "
                       "watch_deliveries WHERE event_seq IS NULL AND state != 'pending' AND "
                       "created < ?)", (cutoff_ts,))
            gone["deliveries"] += db.execute(
                "DELETE FROM watch_deliveries WHERE event_seq IS NULL AND state != 'pending' "
                "AND created < ?", (cutoff_ts,)).rowcount
            gone["evaluations"] = db.execute(
                "DELETE FROM watch_evaluations WHERE evaluated_at < ? AND session < (SELECT "
                "MAX(session) FROM watch_evaluations l WHERE l.watch_id = "
                "watch_evaluations.watch_id)", (cutoff,)).rowcount
        if any(gone.values()):
            self.reclaim()
        return gone

    def reclaim(self) -> None:
        """Give the file's free pages back to the filesystem: incremental vacuum (turned on,
        once, by a VACUUM for a file made without it) and a truncating WAL checkpoint."""
        with self._db.read() as db:
            if db is None:
                return
        db = self._db.connection()  # outside any transaction: VACUUM cannot run in one
        try:
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                db.execute("VACUUM")
            else:
                db.executescript("PRAGMA incremental_vacuum;")  # run to the end (execute:
                # one step, one page)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise WatchDatabaseError(f"cannot reclaim space in {self.path}: {exc}") from exc

    def outbox_size(self) -> dict[str, int]:
        """The outbox's rows and the file's bytes (database and WAL; `free_bytes`: pages
        free inside it)."""
        with self._db.read() as db:
            if db is None:
                return {"events": 0, "deliveries": 0, "evaluations": 0, "bytes": 0,
                        "free_bytes": 0}
            counts = {t: int(db.execute(f"SELECT COUNT(*) FROM watch_{t}").fetchone()[0])
                      for t in ("events", "deliveries", "evaluations")}
            page = int(db.execute("PRAGMA page_size").fetchone()[0])
            free = int(db.execute("PRAGMA freelist_count").fetchone()[0]) * page
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                   if p.exists())
        return {**counts, "bytes": size, "free_bytes": free}

    def delivery_log(self, delivery_ids: Iterable[int] | None = None) -> Rows:
        """The append-only attempt log (tests and `watch show --log`)."""
        with self._db.read() as db:
            if db is None:
                return []
            rows = db.execute("SELECT delivery_id, attempt, outcome, status, error, owner, at "
                              "FROM watch_delivery_log ORDER BY rowid").fetchall()
        wanted = set(delivery_ids) if delivery_ids is not None else None
        return [{"delivery": d, "attempt": a, "outcome": o, "status": s, "error": e,
                 "owner": w, "at": t} for d, a, o, s, e, w, t in rows
                if wanted is None or d in wanted]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
