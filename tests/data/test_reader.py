"""StoreReader: snapshots and windows always carry the version their bytes came from.

A writer thread rewrites the store back and forth between two versions (A, B, A, ...: the same
content hashes again and again, so a version check alone could not see a mix) while readers
load windows and snapshots through one StoreReader and through fresh ones: every Panel equals,
bit for bit, the reference Panel of the version it is labelled with.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from technic_v4.data import store
from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.reader import PanelSource, StoreReader

BARS = 80


def _write(root, market) -> str:
    return store.write_store(root, sessions=market.sessions, universe=market.universe,
                             open=market.open, high=market.high, low=market.low,
                             close=market.close, volume=market.volume,
                             source="synthetic").data_version


@pytest.mark.slow
def test_windows_under_flips_are_labelled_with_their_own_version(tmp_path):
    a = generate_demo_market(DemoSpec(n_symbols=50, seed=1, start="2025-06-02"))
    b = generate_demo_market(DemoSpec(n_symbols=50, seed=2, start="2025-06-02"))
    root = tmp_path / "data"
    refs = {}
    for m in (a, b):
        _write(root, m)
        refs[store.read_manifest(root).data_version] = store.load_panel(root, bars=BARS)
    assert len(refs) == 2
    stop, flips = threading.Event(), [0]

    def writer() -> None:
        while not stop.is_set():
            _write(root, (a, b)[flips[0] % 2])
            flips[0] += 1
            time.sleep(0.01)

    shared = StoreReader(root, auto_demo=False)
    seen: dict[str, int] = {}
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        t0 = time.monotonic()  # at least 2 s and 20 flips with both versions read (30 s cap:
        while time.monotonic() - t0 < 30 and not (  # a loaded machine flips slower)
                time.monotonic() - t0 > 2 and flips[0] >= 20 and len(seen) == 2):
            for reader in (shared, StoreReader(root, auto_demo=False)):
                panel = reader.load(None, BARS)
                ref = refs[panel.data_version]
                np.testing.assert_array_equal(panel.close, ref.close)
                np.testing.assert_array_equal(panel.volume, ref.volume)
                snap = reader.snapshot()
                assert snap.sessions[-1] == refs[snap.data_version].sessions[-1]
                seen[panel.data_version] = seen.get(panel.data_version, 0) + 1
    finally:
        stop.set()
        thread.join()
    assert flips[0] >= 20 and len(seen) == 2, (flips, seen)
    names = {p.name for p in (root / "store").iterdir()}
    assert {"manifest.json"} <= names and len([n for n in names if n.startswith("bars")]) == 1


def test_file_names_are_never_reused(tmp_path):
    m = generate_demo_market(DemoSpec(n_symbols=50, seed=1, start="2025-06-02"))
    root = tmp_path / "data"
    names = []
    for _ in range(3):
        _write(root, m)
        names.append(store.read_manifest(root).segments[0]["file"])
    assert len(set(names)) == 3, names


def test_panel_source_reads_like_a_store(tmp_path):
    m = generate_demo_market(DemoSpec(n_symbols=50, seed=3, start="2025-06-02"))
    _write(tmp_path / "d", m)
    panel = store.load_panel(tmp_path / "d")
    src, reader = PanelSource(panel), StoreReader(tmp_path / "d", auto_demo=False)
    end = panel.sessions[-20]
    a, b = src.load(end, 30), reader.load(end, 30)
    np.testing.assert_array_equal(a.close, b.close)
    assert a.sessions.equals(b.sessions) and a.sessions[-1] == end
    weekend = pd.Timestamp(end) + pd.Timedelta(days=1)
    assert src.snapshot().session_at(weekend) == reader.snapshot().session_at(weekend)
    symbols = list(panel.symbols[[3, 1]]) + ["NOPE"]
    np.testing.assert_array_equal(src.rows(a, symbols), reader.rows(b, symbols))
