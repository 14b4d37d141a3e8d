"""Owners in the stores (technic_v4/tenancy.py): the outbox read per owner, names per owner,
and a state file from before owners existed migrated into the open namespace."""

from __future__ import annotations

import sqlite3

import pytest

from technic_v4.errors import UnknownScreenError
from technic_v4.screens import saved
from technic_v4.screens.saved import DB_NAME, ScreenStore
from technic_v4.statedb import StateDB
from technic_v4.tenancy import OPEN, AmbiguousNameError, Scope
from technic_v4.watch import store as watch_store
from technic_v4.watch.model import WatchSpec, event_id
from technic_v4.watch.store import (
    Evaluation,
    SqliteWatchStore,
    UnknownWatchError,
    WatchDatabaseError,
)

K1, K2 = Scope("sha256:" + "1" * 64), Scope("sha256:" + "2" * 64)
ADMIN = Scope("sha256:" + "a" * 64, admin=True)
SESSION = "2026-10-30"


def _record(store: SqliteWatchStore, scope: Scope, name: str, symbols: list[str]) -> str:
    watch, _ = store.scoped(scope).create(WatchSpec(name, screen="squeeze"))
    events = [{"id": event_id(watch.id, SESSION, s, "entered"), "kind": "entered",
               "symbol": s, "session": SESSION, "watch": name, "row": {}} for s in symbols]
    store.record([(watch, Evaluation(watch.id, SESSION, "v", {"name": "squeeze",
                                                               "version": 1}, symbols), events)])
    return watch.id


def test_outbox_and_names_per_owner(tmp_path):
    store = SqliteWatchStore(tmp_path / DB_NAME)
    one = _record(store, K1, "same", ["A", "B"])
    two = _record(store, K2, "same", ["C"])
    assert one != two
    for scope, symbols in ((K1, ["A", "B"]), (K2, ["C"])):
        view = store.scoped(scope)
        assert [e["symbol"] for _, e in view.events_after(0)] == symbols
        assert [e["symbol"] for _, e in view.events_after(0, watch="same")] == symbols
        assert view.get("same").owner == scope.owner
        assert [w.name for w in view.list()] == ["same"]
        assert view.last_seq() == max(s for s, _ in view.events_after(0))
    # the store's own (the watcher's) view and an admin's: every owner's
    assert len(store.events_after(0)) == len(store.scoped(ADMIN).events_after(0)) == 3
    with pytest.raises(AmbiguousNameError) as exc:
        store.scoped(ADMIN).get("same")
    assert sorted(exc.value.valid or []) == [K1.owner, K2.owner]
    assert store.scoped(Scope(ADMIN.owner)).events_after(0) == []
    # removing one key's watch leaves the other's
    store.scoped(K2).delete("same")
    with pytest.raises(UnknownWatchError):
        store.scoped(K2).get("same")
    assert store.scoped(K1).get("same").id == one
    assert store.scoped(ADMIN).get("same").id == one  # the only one left


def test_state_from_before_owners_is_the_open_namespace(tmp_path):
    path = tmp_path / DB_NAME
    old_screens = StateDB(path, "screens", saved.MIGRATIONS[:1], saved.ScreenDatabaseError,
                          "screens")
    with old_screens.write() as db:
        db.execute("INSERT INTO screens (name, latest, deleted) VALUES ('old', 1, 0)")
        db.execute("INSERT INTO screen_versions (name, version, definition, created) VALUES "
                   "('old', 1, '{\"where\":\"RSI > 50\"}', '2026-01-01T00:00:00+00:00')")
    old_watches = StateDB(path, "watches", watch_store.MIGRATIONS[:1], WatchDatabaseError,
                          "watches")
    with old_watches.write() as db:
        db.execute("INSERT INTO watches (id, name, options, secret, created) VALUES "
                   "('w_old', 'oldw', '{\"screen\":\"old\"}', 'whsec_x', '2026-01-01')")
        db.execute("INSERT INTO watch_events (id, watch_id, watch, session, symbol, kind, "
                   "payload, created) VALUES ('evt_1', 'w_old', 'oldw', ?, 'A', 'entered', "
                   "'{}', '2026-01-01')", (SESSION,))
    screens, watches = ScreenStore(path), SqliteWatchStore(path)
    # open mode (and an admin) see them, in the open namespace; a key does not
    assert screens.get("old").owner == "" and watches.get("oldw").owner == ""
    assert screens.scoped(ADMIN).get("old").definition == {"where": "RSI > 50"}
    assert watches.scoped(ADMIN).get("oldw").id == "w_old"
    with pytest.raises(UnknownScreenError):
        screens.scoped(K1).get("old")
    with pytest.raises(UnknownWatchError):
        watches.scoped(K1).get("oldw")
    assert watches.scoped(K1).events_after(0) == [] and watches.scoped(K1).last_seq() == 0
    assert len(watches.scoped(OPEN).events_after(0)) == 1
    # the old watch's screen resolves in its owner's (the open) namespace
    assert watches.get("oldw").config(screens.scoped(K1))[1]["name"] == "old"
    versions = dict(sqlite3.connect(path).execute(
        "SELECT component, version FROM schema_version").fetchall())
    assert versions == {"screens": saved.SCHEMA_VERSION,
                        "watches": watch_store.SCHEMA_VERSION}
    # a key saving the same name makes its own, beside the open one
    assert screens.scoped(K1).save("old", {"where": "RSI < 10"}) == 1
    assert screens.get("old").definition == {"where": "RSI > 50"}
