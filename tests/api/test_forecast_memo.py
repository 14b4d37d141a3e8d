"""The backend's forecast memo: byte-identical features under the same models version are
predicted once and answered the same; other features, or a new models version, are predicted
again; a scan's answer is labelled with the version its forecasts came from."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from serve_support import demo_store, tiny_models

from technic_v4.scan import ScanConfig
from technic_v4.service import backend as backend_module
from technic_v4.service.backend import feature_digest
from technic_v4.service.inprocess import InProcessBackend


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("memo")
    b = InProcessBackend(demo_store(root / "data"), tiny_models(root / "models"),
                         chunk_size=10_000, warm=False)
    b.warm()
    return b, root


def test_same_features_predicted_once(setup, monkeypatch):
    b, _ = setup
    calls: list[int] = []
    predict = b.executor.predict

    async def counted(features):  # type: ignore[no-untyped-def]
        calls.append(len(next(iter(features.values()))))
        return await predict(features)

    monkeypatch.setattr(b.executor, "predict", counted)
    first, s1 = _scan(b)
    second, s2 = _scan(b)
    energy, _ = _scan(b, ScanConfig(sectors=["Energy"]))
    assert len(calls) == 2  # the full universe once, Energy once
    np.testing.assert_array_equal(first["Alpha5d"], second["Alpha5d"])
    assert s1.alpha["models_version"] == s2.alpha["models_version"]
    assert set(energy["Sector"]) == {"Energy"}


def _scan(b, cfg=None):  # type: ignore[no-untyped-def]
    from technic_v4.scan.run import run_sync

    return run_sync(b.scan(cfg or ScanConfig()))


def test_new_models_are_predicted_again(setup, monkeypatch):
    b, root = setup
    monkeypatch.setattr(backend_module, "MODELS_VERSION_TTL_S", 0.0)
    before, s1 = _scan(b)
    other = tiny_models(root / "other", seed=7)
    for path in other.iterdir():  # a model update, as an operator copies it in
        shutil.copy(path, b.models_dir / path.name)
    after, s2 = _scan(b)
    assert s1.alpha["models_version"] != s2.alpha["models_version"]
    assert not np.allclose(before["Alpha5d"], after["Alpha5d"], equal_nan=True)


def test_digest_tells_features_apart():
    a = {"RSI": np.array([1.0, 2.0]), "mom_21": np.array([0.1, np.nan])}
    assert feature_digest(a) == feature_digest({k: v.copy() for k, v in a.items()})
    assert feature_digest(a) != feature_digest({**a, "RSI": np.array([1.0, 2.5])})
    assert feature_digest(a) != feature_digest({"RSI": a["mom_21"], "mom_21": a["RSI"]})
