"""The Parquet store: exact round trip, windows without a pivot, versions, atomic replace."""

import json

import numpy as np
import pandas as pd
import pytest

from technic_v4.data import store
from technic_v4.data.calendar import sessions_between


def _market(n=7, start="2022-01-03", end="2022-12-30", seed=0):
    sessions = sessions_between(start, end)
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, len(sessions))), axis=1))
    close[0, :40] = np.nan  # listed late
    close[1, -30:] = np.nan  # delisted
    close[2, 100:103] = np.nan  # missing days
    uni = pd.DataFrame(
        {"symbol": [f"S{i}" for i in range(n)], "name": "n", "sector": "Energy", "industry": "Oil"}
    )
    vol = np.where(np.isfinite(close), rng.integers(1, 10**6, close.shape), np.nan)
    return dict(
        sessions=sessions,
        universe=uni,
        open=close * 0.99,
        high=close * 1.02,
        low=close * 0.98,
        close=close,
        volume=vol.astype(float),
    )


def test_round_trip_is_exact_including_nan(tmp_path):
    m = _market()
    manifest = store.write_store(tmp_path, source="test", **m)
    panel = store.load_panel(tmp_path)
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(panel, f), m[f])
        assert getattr(panel, f).flags.c_contiguous
    assert list(panel.symbols) == list(m["universe"]["symbol"])
    assert panel.sessions.equals(m["sessions"])
    assert panel.data_version == manifest.data_version and panel.source == "test"
    uni = store.read_universe(tmp_path)
    assert uni.loc[0, "first_session"] == m["sessions"][40]
    assert uni.loc[1, "last_session"] == m["sessions"][-31]


@pytest.mark.parametrize(
    "end,bars",
    [
        (None, 10),
        (None, 21),
        ("2022-06-15", 30),
        ("2022-06-18", 5),
        ("2022-01-03", 50),
        (None, 10_000),
    ],
)
def test_window_reads_match_slices(tmp_path, end, bars):
    m = _market()
    store.write_store(tmp_path, source="test", **m)
    panel = store.load_panel(tmp_path, end=end, bars=bars)
    s = m["sessions"]
    stop = len(s) - 1 if end is None else s.searchsorted(pd.Timestamp(end), side="right") - 1
    start = max(0, stop + 1 - bars)
    np.testing.assert_array_equal(panel.close, m["close"][:, start : stop + 1])
    assert panel.sessions.equals(s[start : stop + 1])
    if end == "2022-06-18":  # a Saturday: the last session on or before it
        assert panel.sessions[-1] == pd.Timestamp("2022-06-17")


def test_as_of_before_store_is_an_error(tmp_path):
    store.write_store(tmp_path, source="test", **_market())
    with pytest.raises(store.StoreError, match="before the store's first session"):
        store.load_panel(tmp_path, end="2021-12-01", bars=5)


def test_data_version_follows_content_and_replace_is_whole(tmp_path):
    m = _market()
    v1 = store.write_store(tmp_path, source="test", **m).data_version
    assert store.write_store(tmp_path, source="test", **m).data_version == v1
    m2 = dict(m, close=m["close"].copy())
    m2["close"][3, -1] += 0.01
    v2 = store.write_store(tmp_path, source="test", **m2).data_version
    assert v2 != v1
    assert store.load_panel(tmp_path).close[3, -1] == m2["close"][3, -1]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "store"]
    assert leftovers == []


def test_missing_and_foreign_stores_are_clear_errors(tmp_path):
    with pytest.raises(store.StoreError, match="no price store"):
        store.load_panel(tmp_path)
    store.write_store(tmp_path, source="test", **_market())
    path = store.store_path(tmp_path) / "manifest.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps(dict(raw, format=99)))
    with pytest.raises(store.StoreError, match="format 99"):
        store.load_panel(tmp_path)


def test_write_rejects_misshapen_input(tmp_path):
    m = _market()
    with pytest.raises(ValueError, match="shape"):
        store.write_store(tmp_path, source="t", **dict(m, close=m["close"][:, 1:]))
    dup = m["universe"].copy()
    dup.loc[1, "symbol"] = "S0"
    with pytest.raises(ValueError, match="unique"):
        store.write_store(tmp_path, source="t", **dict(m, universe=dup))
