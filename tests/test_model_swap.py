"""Models replaced or corrupted on disk while scans run: never a half-loaded or mixed answer.

In-process (no Ray):
1. A corrupt candidate never replaces the held model: forecasts stay those of the held
   version, the state says `candidate_error`; a sound new version is then swapped in.
2. A writer thread replaces both models over and over (atomic per-file saves, and raw
   in-place overwrites that leave truncated files for a moment) while a reader predicts: every
   answer equals, row for row, the forecasts of the versions its state names.
3. `combine_alpha` refuses chunks forecast by different versions.
On the real Serve app (`serve.run`, HTTP): WORKERS clients scan while alpha_5d.ubj is
corrupted in place and then a new model set is installed: 0 failed scans, every answer's
frame equals `run_scan` with the model versions its `X-Technic-Models` header names, and the
answers during the corruption name the held versions.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serve_support import parquet_frame, running_app, tiny_models

from deployments.pipeline import StaleDataError, combine_alpha
from technic_v4.alpha import inference, registry
from technic_v4.alpha.features import feature_names

N_ROWS = 300


def features(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    names = dict.fromkeys([*feature_names(5), *feature_names(10)])
    return {n: rng.normal(size=N_ROWS) for n in names}


def versions_of(root: Path) -> str:
    return ",".join(f"{registry.model_id(h)}:{registry.sha256_file(root / f'alpha_{h}d.ubj')[:12]}"
                    for h in inference.HORIZONS)


def reference(root: Path, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Forecasts of the models in `root`, loaded fresh (not through the slots)."""
    out = {}
    for h in inference.HORIZONS:
        model = registry.load_model(root, registry.model_id(h))
        out[registry.model_id(h)] = inference.predict_rows(model, feats, np.ones(N_ROWS, bool))
    return out


@pytest.fixture()
def two_sets(tmp_path):
    """Model sets A (seed 0) and B (seed 1) in their own folders, and `live` holding A."""
    a, b = tiny_models(tmp_path / "a", seed=0), tiny_models(tmp_path / "b", seed=1)
    live = shutil.copytree(a, tmp_path / "live")
    inference.clear_cache()
    yield a, b, live
    inference.clear_cache()


def corrupt_in_place(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_corrupt_candidate_never_replaces_the_held_model(two_sets):
    a, b, live = two_sets
    feats, rows = features(), np.ones(N_ROWS, dtype=bool)
    ref_a, ref_b = reference(a, feats), reference(b, feats)
    first = inference.predict_alpha(feats, rows, live)
    assert first.state["models_version"] == versions_of(a)
    np.testing.assert_array_equal(first.alpha5d, ref_a["alpha_5d"])

    corrupt_in_place(live / "alpha_5d.ubj")
    with pytest.raises(registry.ModelCorruptError):  # a fresh loader sees the corruption...
        registry.load_model(live, "alpha_5d")
    held = inference.predict_alpha(feats, rows, live)  # ...the running process keeps A
    assert held.state["available"] is True
    assert held.state["models_version"] == versions_of(a)
    assert "fails its checksum" in held.state["models"]["alpha_5d"]["candidate_error"]
    assert "candidate_error" not in held.state["models"]["alpha_10d"]
    np.testing.assert_array_equal(held.alpha5d, ref_a["alpha_5d"])
    np.testing.assert_array_equal(held.alpha10d, ref_a["alpha_10d"])

    for h in inference.HORIZONS:  # a sound new version (model file first, metadata last)
        mid = registry.model_id(h)
        shutil.copyfile(b / f"{mid}.ubj", live / f"{mid}.ubj")
        shutil.copyfile(b / f"{mid}.meta.json", live / f"{mid}.meta.json")
    new = inference.predict_alpha(feats, rows, live)
    assert new.state["models_version"] == versions_of(b)
    assert "candidate_error" not in new.state["models"]["alpha_5d"]
    np.testing.assert_array_equal(new.alpha5d, ref_b["alpha_5d"])
    np.testing.assert_array_equal(new.alpha10d, ref_b["alpha_10d"])


def test_no_process_model_means_unavailable_not_stale(two_sets, tmp_path):
    """Without a sound model ever held, a corrupt file is an error: nothing to fall back on."""
    _, _, live = two_sets
    corrupt_in_place(live / "alpha_5d.ubj")
    pred = inference.predict_alpha(features(), np.ones(N_ROWS, dtype=bool), live)
    assert pred.state["available"] is False and "fails its checksum" in pred.state["reason"]
    assert np.isnan(pred.alpha5d).all() and np.isfinite(pred.alpha10d).all()
    assert pred.state["models_version"].startswith("alpha_5d:none,alpha_10d:")


def test_rewrites_during_predictions_never_mix(two_sets):
    a, b, live = two_sets
    feats, rows = features(), np.ones(N_ROWS, dtype=bool)
    refs = {}
    for src in (a, b):
        ref = reference(src, feats)
        for h in inference.HORIZONS:
            mid = registry.model_id(h)
            refs[(mid, registry.sha256_file(src / f"{mid}.ubj")[:12])] = ref[mid]
    stop, writes = threading.Event(), Counter()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            src = (a, b)[k % 2]
            for h in inference.HORIZONS:
                mid = registry.model_id(h)
                if k % 3 == 2:  # raw overwrite in place: readers may see a truncated file
                    (live / f"{mid}.ubj").write_bytes((src / f"{mid}.ubj").read_bytes())
                    (live / f"{mid}.meta.json").write_bytes(
                        (src / f"{mid}.meta.json").read_bytes())
                else:  # the registry's own save: atomic renames, model first
                    model = registry.load_model(src, mid)
                    registry.save_model(model.booster, model.metadata, live)
            writes["sets"] += 1
            k += 1
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: Counter = Counter()
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            pred = inference.predict_alpha(feats, rows, live)
            assert pred.state["available"] is True, pred.state.get("reason")
            for mid, col in (("alpha_5d", pred.alpha5d), ("alpha_10d", pred.alpha10d)):
                version = pred.state["models"][mid]["version"]
                np.testing.assert_array_equal(col, refs[(mid, version)])
                seen[version] += 1
                seen["candidate_error"] += "candidate_error" in pred.state["models"][mid]
    finally:
        stop.set()
        thread.join()
    assert writes["sets"] >= 20 and len([k for k in seen if k != "candidate_error"]) == 4, seen


def test_combine_refuses_chunks_from_different_model_versions():
    def part(version: str) -> dict:
        return {"alpha5d": np.zeros(3), "alpha10d": np.zeros(3),
                "state": {"available": True, "models_version": version}}

    combined = combine_alpha([part("alpha_5d:aaa,alpha_10d:bbb")] * 2)
    assert len(combined.alpha5d) == 6
    with pytest.raises(StaleDataError, match="alpha models changed during the scan"):
        combine_alpha([part("alpha_5d:aaa,alpha_10d:bbb"), part("alpha_5d:ccc,alpha_10d:bbb")])


# --- the real Serve app ------------------------------------------------------------------------

ray = pytest.importorskip("ray")
ENV = {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE"}
WORKERS = 3


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("swap"), ENV, "technic", chunk_size=128) as a:
        yield a


def test_model_swap_under_load_on_serve(app, tmp_path, monkeypatch):
    import httpx

    from technic_v4.data_engine import StoreLoader
    from technic_v4.scanner_core import ScanConfig, run_scan

    live = app["models"]
    old = shutil.copytree(live, tmp_path / "old")
    new = tiny_models(tmp_path / "new", seed=1)
    refs = {}
    for src in (old, new):
        monkeypatch.setenv(registry.MODELS_DIR_ENV, str(src))
        frame, status = run_scan(ScanConfig(), loader=StoreLoader(app["data"]))
        refs[status.alpha["models_version"]] = frame
    v_old, v_new = versions_of(old), versions_of(new)
    assert set(refs) == {v_old, v_new}

    results: list[tuple[float, int, str, bytes]] = []
    stop, lock = threading.Event(), threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=app["url"], timeout=90) as c:
            while not stop.is_set():
                r = c.post("/v1/scan", json={"format": "parquet"},
                           headers={"Cache-Control": "no-cache"})
                with lock:
                    results.append((time.monotonic(), r.status_code,
                                    r.headers.get("x-technic-models", ""), r.content))

    threads = [threading.Thread(target=client) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        corrupt_in_place(live / "alpha_5d.ubj")
        t_corrupt = time.monotonic()
        time.sleep(3.0)
        t_install = time.monotonic()
        for h in inference.HORIZONS:  # as `technic models train` would: model, then metadata
            model = registry.load_model(new, registry.model_id(h))
            registry.save_model(model.booster, model.metadata, live)
        time.sleep(3.0)
    finally:
        stop.set()
        for t in threads:
            t.join(120)

    failed = [(code, body[:200]) for _, code, _, body in results if code != 200]
    assert not failed, failed[:3]
    by_version: Counter = Counter()
    for t, _, version, body in results:
        assert version in refs, version
        pd.testing.assert_frame_equal(parquet_frame(body), refs[version], check_exact=True)
        by_version["old" if version == v_old else "new"] += 1
        if t_corrupt + 0.5 < t < t_install:  # corrupt on disk: the held (old) models answer
            assert version == v_old
    last = results[-1]
    assert last[2] == v_new
    print(f"\nmodel_swap: {len(results)} scans, 0 failed, by version {dict(by_version)}")
    assert by_version["old"] >= WORKERS and by_version["new"] >= 1
