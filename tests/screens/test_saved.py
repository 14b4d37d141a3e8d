"""Saved screens (technic_v4/screens/saved.py): the store's round trip and versions, names and
definitions refused with the field to blame, writers in several processes at once, and scans by
name in the library: the same rows as the same fields inline, request fields on top."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
import screen_workers
from serve_support import demo_store, tiny_models

from technic_v4.data.reader import PanelSource, StoreReader
from technic_v4.errors import ConfigError, ReadOnlyScreenError, UnknownScreenError
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.screens.presets import PRESETS
from technic_v4.screens.saved import (
    DB_NAME,
    SCHEMA_VERSION,
    ScreenDatabaseError,
    ScreenStore,
    config_of,
    definition_of,
    resolve_screen,
)
from technic_v4.settings import Settings


@pytest.fixture()
def store(tmp_path) -> ScreenStore:
    return ScreenStore(tmp_path / DB_NAME)


# --- the store ------------------------------------------------------------------------------
def test_round_trip_versions_and_identical_saves(store):
    assert not store.path.exists() and [s.name for s in store.list()] == list(PRESETS)
    v1 = store.save("rsi-tech", {"where": "RSI<30", "sectors": ["tech"], "min_price": 5})
    assert v1 == 1 and store.path.exists()
    got = store.get("rsi-tech")
    assert got.definition == {"where": "RSI < 30", "sectors": ["Information Technology"],
                              "min_price": 5.0}
    assert (got.version, got.preset) == (1, False) and got.created
    # the same definition spelled differently: no new version
    same = {"min_price": 5.0, "where": "RSI  <  30", "sectors": ["Information Technology"],
            "lookback_days": 150}
    assert store.put("rsi-tech", same) == (1, False)
    assert store.save("rsi-tech", {"where": "RSI < 25"}) == 2
    assert store.get("rsi-tech").definition == {"where": "RSI < 25"}
    assert store.get("rsi-tech", 1).definition == got.definition
    assert [v.version for v in store.versions("rsi-tech")] == [1, 2]
    assert store.save("rsi-tech", got.definition) == 3  # back to v1's text: a new version
    listed = {s.name: s for s in store.list()}
    assert listed["rsi-tech"].version == 3 and listed["golden-cross"].preset
    assert [s.name for s in store.list()][:len(PRESETS)] == list(PRESETS)


def test_delete_and_numbers_never_reused(store):
    store.save("a", {"where": "RSI < 30"})
    store.save("a", {"where": "RSI < 31"})
    store.save("b", {"max_symbols": 3})
    store.delete("a")
    with pytest.raises(UnknownScreenError) as info:
        store.get("a")
    assert "b" in info.value.valid and "a" not in info.value.valid
    with pytest.raises(UnknownScreenError):
        store.delete("a")
    with pytest.raises(UnknownScreenError):
        store.versions("a")
    assert store.save("a", {"where": "RSI < 30"}) == 3  # v1, v2 named other definitions
    assert [v.version for v in store.versions("a")] == [3]
    assert store.get("b").version == 1


def test_unknown_names_and_versions(store):
    with pytest.raises(UnknownScreenError) as info:
        store.get("nope")
    assert info.value.field == "screen" and "golden-cross" in info.value.valid
    store.save("x", {"where": "RSI < 30"})
    with pytest.raises(UnknownScreenError, match="has no version 7; versions: 1"):
        store.get("x", 7)
    with pytest.raises(UnknownScreenError, match="only version 1"):
        store.get("golden-cross", 2)
    assert store.get("golden-cross", 1).preset
    assert [v.version for v in store.versions("golden-cross")] == [1]


@pytest.mark.parametrize("name", ["", "Golden", "-x", "_x", "a b", "a/b", "../x", "x\n",
                                  "a" * 65, "é", "a.b", "a\x00"])
def test_bad_names_are_config_errors(store, name):
    for call in (lambda: store.save(name, {}), lambda: store.get(name),
                 lambda: store.delete(name), lambda: ScanConfig(screen=name).validate()):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.field == "screen" and "not valid" in str(info.value)
    assert not store.path.exists()


def test_presets_are_read_only(store):
    with pytest.raises(ReadOnlyScreenError, match="preset"):
        store.save("golden-cross", {"where": "RSI < 30"})
    with pytest.raises(ReadOnlyScreenError, match="cannot be deleted"):
        store.delete("squeeze")
    assert "golden-cross" not in [s.name for s in store.list() if not s.preset]


def test_definitions_are_validated_before_saving(store):
    with pytest.raises(ConfigError) as info:
        store.save("bad", {"where": "RSI < 30 and\n  Clsoe > 1"})
    assert info.value.field == "where"
    assert (info.value.details["line"], info.value.details["column"]) == (2, 3)
    assert "did you mean Close" in str(info.value)
    for definition, field in [({"sectors": ["Crypto"]}, "sectors"), ({"max_symbols": 0},
                              "max_symbols"), ({"rank": "Sector"}, "rank"),
                              ({"wher": "RSI < 3"}, "wher"), ({"screen": "x"}, "screen"),
                              ({"scoring": {}}, "scoring")]:
        with pytest.raises(ConfigError) as info:
            store.save("bad", definition)
        assert info.value.field == field, definition
    with pytest.raises(ConfigError, match="another screen"):
        store.save("bad", ScanConfig(screen="golden-cross"))
    assert not store.path.exists()  # nothing was written


def test_defaults_are_not_stored_and_configs_round_trip():
    cfg = ScanConfig(where="RSI<30", sort_by="TechRating", lookback_days=150, ascending=True,
                     max_symbols=20, symbols=["aapl", "AAPL"], as_of_date="2024-03-28",
                     min_tech_rating=20)
    d = definition_of(cfg)
    assert d == {"where": "RSI < 30", "ascending": True, "max_symbols": 20,
                 "symbols": ["AAPL"], "as_of_date": "2024-03-28", "min_tech_rating": 20.0}
    assert definition_of(config_of(d)) == d


def test_database_schema_and_wal(store):
    store.save("x", {"where": "RSI < 30"})
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT component, version FROM schema_version").fetchall() == [
        ("screens", SCHEMA_VERSION)]
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(ScreenDatabaseError, match="newer than this technic"):
        store.list()


def test_where_the_database_lives(tmp_path, monkeypatch):
    monkeypatch.delenv("TECHNIC_STATE_DIR", raising=False)
    assert ScreenStore.for_data_dir(tmp_path).path == tmp_path / DB_NAME
    assert Settings().state_root("s3://bucket/prefix").name == "technic"
    monkeypatch.setenv("TECHNIC_STATE_DIR", str(tmp_path / "state"))
    settings = Settings()  # as a process starts: the state dir is passed down from there
    assert ScreenStore.for_data_dir(tmp_path).path == tmp_path / DB_NAME
    assert ScreenStore.for_data_dir(tmp_path, settings.state_dir).path == \
        settings.state_root(tmp_path) / DB_NAME == tmp_path / "state" / DB_NAME


# --- several processes at once --------------------------------------------------------------
WRITERS = 4


def test_concurrent_writers_never_lose_a_version(tmp_path):
    """Several processes save the same name (and their own) at once, on a database none of
    them has created yet, while another reads: every save gets its own version, none is lost,
    the file passes SQLite's integrity check."""
    # fork: the children run only SQLite and plain Python, and start without importing
    # technic again (seconds on a busy 2-core box)
    ctx = multiprocessing.get_context("fork")
    path = str(tmp_path / DB_NAME)
    start, stop, out, seen = ctx.Barrier(WRITERS + 1), ctx.Event(), ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=screen_workers.reader, args=(path, start, stop, seen))
    writers = [ctx.Process(target=screen_workers.writer, args=(path, k, start, out))
               for k in range(WRITERS)]
    for p in (reader, *writers):
        p.start()
    results = [out.get(timeout=120) for _ in writers]
    stop.set()
    reads, errors = seen.get(timeout=60)
    for p in (reader, *writers):
        p.join(60)
        assert p.exitcode == 0
    assert not errors and reads > 0
    given = sorted(v for got in results for v, _ in got)
    assert given == list(range(1, WRITERS * screen_workers.SAVES + 1))  # each save its own number
    store = ScreenStore(path)
    assert [v.version for v in store.versions("shared")] == given
    for got in results:
        for version, limit in got:
            assert store.get("shared", version).definition["max_symbols"] == limit
    for k in range(WRITERS):
        assert store.get(f"own-{k}").version == screen_workers.SAVES
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


# --- scans by name ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.fixture()
def reader(data, monkeypatch):
    monkeypatch.delenv("TECHNIC_STATE_DIR", raising=False)
    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(data[1]))
    return StoreReader(data[0])


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_scan_by_name_equals_the_same_fields_inline(reader, data):
    store = ScreenStore.for_data_dir(data[0])  # what run_scan opens for this reader
    fields = {"where": "RSI > 55 and Close > SMA50", "rank": "mom_63 / ATR_pct",
              "max_symbols": 7, "sectors": ["Technology", "Health Care"],
              "columns": ["ADX", "EMA21", "Sector"]}
    version = store.save("lib-test", fields)
    by_name, status = run_scan(ScanConfig(screen="lib-test"), loader=reader)
    inline, plain = run_scan(ScanConfig(**fields), loader=reader)
    _same(by_name, inline)
    assert list(by_name.columns) == ["Symbol", "ADX", "EMA21", "Sector", "RSI", "Close",
                                     "SMA50", "mom_63", "ATR_pct", "RankValue"]
    assert status.screen == {"name": "lib-test", "version": version, "preset": False}
    assert plain.screen is None and status.summary()["screen"] == status.screen
    assert status.rejected_by_reason == plain.rejected_by_reason


def test_request_fields_override_the_saved_ones(reader, data):
    store = ScreenStore.for_data_dir(data[0])
    store.save("lib-override", {"where": "RSI > 50", "max_symbols": 10, "sort_by": "RSI"})
    frame, status = run_scan(ScanConfig(screen="lib-override", max_symbols=3,
                                        sort_by="mom_21", min_price=5), loader=reader)
    inline, _ = run_scan(ScanConfig(where="RSI > 50", max_symbols=3, sort_by="mom_21",
                                    min_price=5), loader=reader)
    _same(frame, inline)
    resolved, ref = resolve_screen(ScanConfig(screen="lib-override", where="RSI < 40"), store)
    assert (resolved.where, resolved.max_symbols, resolved.sort_by) == ("RSI < 40", 10, "RSI")
    assert ref is not None and ref["name"] == "lib-override"


def test_scan_errors_name_the_screen_field(reader, data):
    with pytest.raises(ConfigError) as info:
        run_scan(ScanConfig(screen="no-such-screen"), loader=reader)
    assert info.value.field == "screen" and type(info.value) is ConfigError
    assert "golden-cross" in info.value.valid and "valid: " in str(info.value)
    with pytest.raises(ConfigError) as info:
        run_scan(ScanConfig(screen="Bad Name"), loader=reader)
    assert info.value.field == "screen"
    store = ScreenStore.for_data_dir(data[0])
    store.save("lib-broken-override", {"where": "RSI > 50"})
    with pytest.raises(ConfigError) as info:  # a bad request field is the request's error
        run_scan(ScanConfig(screen="lib-broken-override", rank="Sector"), loader=reader)
    assert info.value.field == "rank" and "lib-broken-override" not in str(info.value)


def test_presets_run_without_a_data_dir(tmp_path, monkeypatch):
    """A loader with no data dir (a Panel in memory) still knows the presets."""
    from panels import small_panel

    monkeypatch.setenv("TECHNIC_MODELS_DIR", str(tiny_models(tmp_path / "models")))
    source = PanelSource(small_panel(seed=3))
    frame, status = run_scan(ScanConfig(screen="squeeze"), loader=source)
    inline, _ = run_scan(ScanConfig(**PRESETS["squeeze"].definition), loader=source)
    pd.testing.assert_frame_equal(frame, inline, check_exact=True)
    assert status.screen == {"name": "squeeze", "version": 1, "preset": True}
    store = ScreenStore(tmp_path / DB_NAME)
    store.save("mine", {"max_symbols": 2})
    frame, status = run_scan(ScanConfig(screen="mine"), loader=source, screens=store)
    assert len(frame) == 2 and status.screen["name"] == "mine"


def test_resolution_reads_the_latest_version(tmp_path):
    store = ScreenStore(tmp_path / DB_NAME)
    store.save("moving", {"max_symbols": 3})
    first, ref1 = resolve_screen(ScanConfig(screen="moving"), store)
    time.sleep(0.01)
    store.save("moving", {"max_symbols": 4})
    second, ref2 = resolve_screen(ScanConfig(screen="moving"), store)
    assert (first.max_symbols, ref1["version"]) == (3, 1)
    assert (second.max_symbols, ref2["version"]) == (4, 2)
    assert Path(store.path).exists()
