"""Appending to the store writes only the new sessions: a tail segment, a universe table and
the manifest; loads across base + tails equal a store written in one go, exactly."""

import json

import numpy as np
import pandas as pd
import pytest

from technic_v4.data import append as append_mod
from technic_v4.data import store
from technic_v4.data.append import append_bars
from technic_v4.data.calendar import sessions_between

FIELDS = ("open", "high", "low", "close", "volume")


def _market(n=9, seed=3):
    sessions = sessions_between("2022-01-03", "2022-06-30")
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, len(sessions))), axis=1))
    close[0, :30] = np.nan  # listed late
    close[1, -8:] = np.nan  # delisted near the end
    close[2, 100:103] = np.nan  # missing days inside the tails
    close[:, 110] = np.nan  # a session without any bar
    close[7, :-6] = np.nan  # joins in an append
    close[8, :-2] = np.nan  # joins later
    close[8, -1] = np.nan
    uni = pd.DataFrame({"symbol": [f"S{i}" for i in range(n)], "name": [f"N{i}" for i in range(n)],
                        "sector": "Energy", "industry": "Oil"})
    arrays = {"open": close * 0.99, "high": close * 1.02, "low": close * 0.98, "close": close,
              "volume": np.where(np.isfinite(close), rng.integers(1, 10**6, close.shape), np.nan)}
    return sessions, uni, arrays


def _cut(m, s0, s1, n):
    sessions, uni, arrays = m
    return dict(sessions=sessions[s0:s1], universe=uni.iloc[:n].reset_index(drop=True),
                **{f: a[:n, s0:s1].copy() for f, a in arrays.items()})


# (first session, last session + 1, symbols) of the base and each append
PLAN = [(0, 95, 7), (95, 96, 7), (96, 104, 7), (104, 118, 8), (118, 119, 9), (119, 124, 9)]


def _build(tmp_path, m, plan=PLAN):
    a0, b0, n0 = plan[0]
    store.write_store(tmp_path / "seg", source="t", **_cut(m, a0, b0, n0))
    versions = [store.read_manifest(tmp_path / "seg").data_version]
    for a, b, n in plan[1:]:
        versions.append(store.append_segment(tmp_path / "seg", **_cut(m, a, b, n)).data_version)
    n, t = plan[-1][2], plan[-1][1]
    store.write_store(tmp_path / "one", source="t", **_cut(m, 0, t, n))
    return versions


def _same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert getattr(a, f).flags.c_contiguous
    assert a.sessions.equals(b.sessions) and list(a.symbols) == list(b.symbols)
    pd.testing.assert_frame_equal(a.universe, b.universe)


@pytest.mark.parametrize("end,bars", [(None, None), (None, 1), (None, 3), (None, 30),
                                      ("2022-05-24", 2), ("2022-06-10", 25), ("2022-05-20", 60),
                                      ("2022-02-01", 10), ("2022-06-18", 400)])
def test_windows_across_base_and_tails_equal_a_store_written_at_once(tmp_path, end, bars):
    m = _market()
    versions = _build(tmp_path, m)
    assert len(set(versions)) == len(versions)  # every append changes data_version
    got = store.load_panel(tmp_path / "seg", end=end, bars=bars)
    _same(got, store.load_panel(tmp_path / "one", end=end, bars=bars))
    man = store.read_manifest(tmp_path / "seg")
    assert len(man.segments) == len(PLAN) and man.n_sessions == PLAN[-1][1]
    assert store.read_sessions(tmp_path / "seg").equals(store.read_sessions(tmp_path / "one"))


def test_new_symbols_are_nan_before_they_join(tmp_path):
    m = _market()
    _build(tmp_path, m)
    p = store.load_panel(tmp_path / "seg")
    assert np.isnan(p.close[7, :104]).all() and np.isnan(p.close[8, :118]).all()
    np.testing.assert_array_equal(p.close[7, -6:], m[2]["close"][7, -6:])
    uni = store.read_universe(tmp_path / "seg")
    assert uni.loc[8, "first_session"] == uni.loc[8, "last_session"] == m[0][-2]
    assert uni.loc[1, "last_session"] == m[0][-9]  # kept from an earlier segment


def test_append_writes_only_new_files_and_old_windows_do_not_change(tmp_path):
    m = _market()
    store.write_store(tmp_path, source="t", **_cut(m, 0, 100, 7))
    root = store.store_path(tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir()}
    past = store.load_panel(tmp_path, end="2022-04-01", bars=40)
    v0 = store.read_manifest(tmp_path).data_version
    man = store.append_segment(tmp_path, **_cut(m, 100, 101, 8))
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir()}
    new = set(after) - set(before) - {".append.lock"}
    assert new == {"bars-000001.parquet", "universe-000001.parquet"}
    for name in before.keys() - {"manifest.json"}:
        assert after[name] == before[name], name  # bytes and mtime untouched
    assert man.data_version != v0 and man.universe == "universe-000001.parquet"
    now = store.load_panel(tmp_path, end="2022-04-01", bars=40)
    assert now.sessions.equals(past.sessions)
    for f in FIELDS:  # the old symbols' cells are unchanged, the new symbol's are NaN
        np.testing.assert_array_equal(getattr(now, f)[:7], getattr(past, f))
        assert np.isnan(getattr(now, f)[7]).all()
    # the next append keeps the previous universe table (for readers mid-load), not older ones
    store.append_segment(tmp_path, **_cut(m, 101, 102, 8))
    store.append_segment(tmp_path, **_cut(m, 102, 103, 8))
    names = {p.name for p in root.iterdir()}
    assert {"universe-000002.parquet", "universe-000003.parquet"} <= names
    assert "universe-000001.parquet" not in names and "universe.parquet" in names


def test_a_crash_before_the_manifest_leaves_the_old_store(tmp_path, monkeypatch):
    m = _market()
    store.write_store(tmp_path, source="t", **_cut(m, 0, 100, 7))
    old = store.load_panel(tmp_path)
    with monkeypatch.context() as mp:
        mp.setattr(store, "_dump", lambda _: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            store.append_segment(tmp_path, **_cut(m, 100, 101, 7))
    _same(store.load_panel(tmp_path), old)
    assert store.read_manifest(tmp_path).data_version == old.data_version
    store.append_segment(tmp_path, **_cut(m, 100, 102, 7))  # reuses the orphan's name
    assert store.load_panel(tmp_path).n_sessions == 102


def test_append_rejects_overlap_and_reordered_universe(tmp_path):
    m = _market()
    store.write_store(tmp_path, source="t", **_cut(m, 0, 100, 7))
    with pytest.raises(ValueError, match="follow"):
        store.append_segment(tmp_path, **_cut(m, 99, 101, 7))
    bad = _cut(m, 100, 101, 7)
    bad["universe"] = bad["universe"].iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError, match="start with the store's symbols"):
        store.append_segment(tmp_path, **bad)


def test_compaction_keeps_content_in_one_segment(tmp_path, monkeypatch):
    m = _market()
    sessions, uni, arrays = m
    store.write_store(tmp_path / "seg", source="t", meta={"adjusted": "raw"}, **_cut(m, 0, 118, 8))
    monkeypatch.setattr(append_mod, "MAX_SEGMENTS", 3)
    counts = []
    for s in range(118, 124):  # one append per session; the 4th tail triggers compaction
        day = pd.DataFrame({"symbol": uni["symbol"], "date": sessions[s].strftime("%Y-%m-%d"),
                            **{f: a[:, s] for f, a in arrays.items()}}).dropna()
        rep = append_bars(day, tmp_path / "seg", universe=uni)
        counts.append(len(rep.manifest.segments))
    assert counts == [2, 3, 4, 1, 2, 3]
    man = store.read_manifest(tmp_path / "seg")
    names = {p.name for p in store.store_path(tmp_path / "seg").iterdir()}
    assert {n for n in names if n.startswith("bars")} == {s["file"] for s in man.segments}
    assert "bars-000004.parquet" not in names and "quality.csv" in names  # tails compacted
    store.write_store(tmp_path / "one", source="t", **_cut(m, 0, 124, 9))
    _same(store.load_panel(tmp_path / "seg"), store.load_panel(tmp_path / "one"))
    assert man.meta["adjusted"] == "raw" and len(man.meta["appends"]) == 6


def test_format_1_store_is_still_read(tmp_path):
    m = _market()
    store.write_store(tmp_path, source="t", **_cut(m, 0, 100, 7))
    path = store.store_path(tmp_path) / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["segments"], raw["universe"]
    path.write_text(json.dumps(dict(raw, format=1)))
    got = store.load_panel(tmp_path, bars=5).close
    np.testing.assert_array_equal(got, m[2]["close"][:7, 95:100])
    store.append_segment(tmp_path, **_cut(m, 100, 101, 7))  # and appended to, as format 2
    assert store.read_manifest(tmp_path).format == 2
    np.testing.assert_array_equal(store.load_panel(tmp_path).close, m[2]["close"][:7, :101])
