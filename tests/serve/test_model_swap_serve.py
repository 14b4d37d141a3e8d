"""Models replaced or corrupted on disk while the real Serve app (`serve.run`, HTTP) scans.

WORKERS clients scan while alpha_5d.ubj is corrupted in place and then a new model set is
installed (each phase lasts until the clients have answers from it): 0 failed scans, every
answer's frame equals `run_scan` with the model versions its `X-Technic-Models` header
names, and the answers asked and given during the corruption name the held versions.
(In-process, the same guarantees: tests/alpha/test_model_swap.py.)
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter

import pandas as pd
import pytest
from serve_support import parquet_frame, running_app, tiny_models

from technic_v4.alpha import inference, registry


def versions_of(root) -> str:  # type: ignore[no-untyped-def]
    return ",".join(f"{registry.model_id(h)}:{registry.sha256_file(root / f'alpha_{h}d.ubj')[:12]}"
                    for h in inference.HORIZONS)


def corrupt_in_place(path) -> None:  # type: ignore[no-untyped-def]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


ray = pytest.importorskip("ray")
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
WORKERS = 3
HANG_GUARD_S = 600  # a wait this long is a hang; how many scans a second is bench/'s


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("swap"), ENV, "technic", chunk_size=128) as a:
        yield a


def test_model_swap_under_load_on_serve(app, tmp_path, monkeypatch):
    import httpx

    from technic_v4.data.reader import StoreReader
    from technic_v4.scanner_core import ScanConfig, run_scan

    live = app["models"]
    old = shutil.copytree(live, tmp_path / "old")
    new = tiny_models(tmp_path / "new", seed=1)
    refs = {}
    for src in (old, new):
        frame, status = run_scan(ScanConfig(), loader=StoreReader(app["data"]),
                                 models_dir=src)
        refs[status.alpha["models_version"]] = frame
    v_old, v_new = versions_of(old), versions_of(new)
    assert set(refs) == {v_old, v_new}

    # (started, answered, status, models, body); the phases wait for answers, not for time
    results: list[tuple[float, float, int, str, bytes]] = []
    stop, lock = threading.Event(), threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=app["url"], timeout=HANG_GUARD_S) as c:
            while not stop.is_set():
                t0 = time.monotonic()
                r = c.post("/v1/scan", json={"format": "parquet"},
                           headers={"Cache-Control": "no-cache"})
                with lock:
                    results.append((t0, time.monotonic(), r.status_code,
                                    r.headers.get("x-technic-models", ""), r.content))

    def answered_since(t: float) -> list[tuple[float, float, int, str, bytes]]:
        with lock:
            return [r for r in results if r[0] > t]

    def wait_for(what: str, done) -> None:  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        while not done():
            assert time.monotonic() - t0 < HANG_GUARD_S, f"hung waiting for {what}"
            time.sleep(0.1)

    threads = [threading.Thread(target=client) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    try:
        wait_for("answers before the corruption", lambda: len(answered_since(0)) >= WORKERS)
        corrupt_in_place(live / "alpha_5d.ubj")
        t_corrupt = time.monotonic()
        wait_for("answers asked while the file is corrupt",
                 lambda: len(answered_since(t_corrupt)) >= WORKERS)
        t_install = time.monotonic()
        for h in inference.HORIZONS:  # as `technic models train` would: model, then metadata
            model = registry.load_model(new, registry.model_id(h))
            registry.save_model(model.booster, model.metadata, live)
        wait_for("an answer from the new models",
                 lambda: any(r[3] == v_new for r in answered_since(t_install)))
    finally:
        stop.set()
        for t in threads:
            t.join(HANG_GUARD_S)

    failed = [(code, body[:200]) for _, _, code, _, body in results if code != 200]
    assert not failed, failed[:3]
    by_version: Counter = Counter()
    during = 0
    for t0, t1, _, version, body in results:
        assert version in refs, version
        pd.testing.assert_frame_equal(parquet_frame(body), refs[version], check_exact=True)
        by_version["old" if version == v_old else "new"] += 1
        if t_corrupt < t0 and t1 < t_install:  # corrupt on disk: the held (old) models answer
            assert version == v_old
            during += 1
    print(f"\nmodel_swap: {len(results)} scans, 0 failed, by version {dict(by_version)}, "
          f"{during} while corrupt")
    assert during >= 1 and by_version["old"] >= WORKERS and by_version["new"] >= 1
