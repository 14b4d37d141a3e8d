"""Models replaced or corrupted on disk while scans run: never a half-loaded or mixed answer.

In-process (no Ray):
1. A corrupt candidate never replaces the held model: forecasts stay those of the held
   version, the state says `candidate_error`; a sound new version is then swapped in.
2. A writer thread replaces both models over and over (atomic per-file saves, and raw
   in-place overwrites that leave truncated files for a moment) while a reader predicts: every
   answer equals, row for row, the forecasts of the versions its state names.
3. A scan predicts once, so its forecasts come from one model set (the state names it).
The same under load on the real Serve app: tests/serve/test_model_swap_serve.py.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from serve_support import tiny_models

from technic_v4.alpha import inference, registry
from technic_v4.alpha.features import feature_names
from technic_v4.alpha.inference import ModelSet

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
        rows = np.ones(len(next(iter(feats.values()))), bool)
        out[registry.model_id(h)] = inference.predict_rows(model, feats, rows)
    return out


@pytest.fixture()
def two_sets(tmp_path):
    """Model sets A (seed 0) and B (seed 1) in their own folders, and `live` holding A."""
    a, b = tiny_models(tmp_path / "a", seed=0), tiny_models(tmp_path / "b", seed=1)
    live = shutil.copytree(a, tmp_path / "live")
    yield a, b, live


def corrupt_in_place(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_corrupt_candidate_never_replaces_the_held_model(two_sets):
    a, b, live = two_sets
    feats, models = features(), ModelSet(live)
    ref_a, ref_b = reference(a, feats), reference(b, feats)
    first = models.predict(feats)
    assert first.state["models_version"] == versions_of(a)
    np.testing.assert_array_equal(first.values[5], ref_a["alpha_5d"])

    corrupt_in_place(live / "alpha_5d.ubj")
    with pytest.raises(registry.ModelCorruptError):  # a fresh loader sees the corruption...
        registry.load_model(live, "alpha_5d")
    held = models.predict(feats)  # ...the running process keeps A
    assert held.state["available"] is True
    assert held.state["models_version"] == versions_of(a)
    assert "fails its checksum" in held.state["models"]["alpha_5d"]["candidate_error"]
    assert "candidate_error" not in held.state["models"]["alpha_10d"]
    np.testing.assert_array_equal(held.values[5], ref_a["alpha_5d"])
    np.testing.assert_array_equal(held.values[10], ref_a["alpha_10d"])

    for h in inference.HORIZONS:  # a sound new version (model file first, metadata last)
        mid = registry.model_id(h)
        shutil.copyfile(b / f"{mid}.ubj", live / f"{mid}.ubj")
        shutil.copyfile(b / f"{mid}.meta.json", live / f"{mid}.meta.json")
    new = models.predict(feats)
    assert new.state["models_version"] == versions_of(b)
    assert "candidate_error" not in new.state["models"]["alpha_5d"]
    np.testing.assert_array_equal(new.values[5], ref_b["alpha_5d"])
    np.testing.assert_array_equal(new.values[10], ref_b["alpha_10d"])


def test_no_process_model_means_unavailable_not_stale(two_sets, tmp_path):
    """Without a sound model ever held, a corrupt file is an error: nothing to fall back on."""
    _, _, live = two_sets
    corrupt_in_place(live / "alpha_5d.ubj")
    pred = ModelSet(live).predict(features())
    assert pred.state["available"] is False and "fails its checksum" in pred.state["reason"]
    assert np.isnan(pred.values[5]).all() and np.isfinite(pred.values[10]).all()
    assert pred.state["models_version"].startswith("alpha_5d:none,alpha_10d:")


@pytest.mark.slow
def test_rewrites_during_predictions_never_mix(two_sets):
    a, b, live = two_sets
    feats, models = features(), ModelSet(live)
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
            pred = models.predict(feats)
            assert pred.state["available"] is True, pred.state.get("reason")
            for mid, col in (("alpha_5d", pred.values[5]), ("alpha_10d", pred.values[10])):
                version = pred.state["models"][mid]["version"]
                np.testing.assert_array_equal(col, refs[(mid, version)])
                seen[version] += 1
                seen["candidate_error"] += "candidate_error" in pred.state["models"][mid]
    finally:
        stop.set()
        thread.join()
    assert writes["sets"] >= 20 and len([k for k in seen if k != "candidate_error"]) == 4, seen


def test_a_scan_predicts_once_with_one_model_set(two_sets, monkeypatch):
    """A scan's Alpha columns come from one predict call: its state names one model set."""
    from panels import small_panel

    from technic_v4.data.reader import PanelSource
    from technic_v4.scanner_core import ScanConfig, run_scan

    a, _, live = two_sets
    frame, status = run_scan(ScanConfig(), loader=PanelSource(small_panel()), models_dir=live)
    assert status.alpha["models_version"] == versions_of(a)
    feats = {n: frame[n].to_numpy(dtype=float) for n in inference.MODEL_FEATURES}
    np.testing.assert_array_equal(frame["Alpha5d"], reference(a, feats)["alpha_5d"])
