"""Alpha models end to end: honest skill, no skill without signal, registry errors, inference.

Markets: 800 symbols x ~4.4 years of the demo generator, with its planted component and with
it switched off (planted_alpha=0); trained once per module (~15 s on 2 cores).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from technic_v4.alpha import inference, registry
from technic_v4.alpha.features import FEATURES_5D, FEATURES_10D
from technic_v4.alpha.inference import ModelSet
from technic_v4.alpha.train import TrainConfig, train_model, train_models
from technic_v4.cli import app
from technic_v4.data.demo import DemoSpec, build_demo_store, generate_demo_market
from technic_v4.data.reader import PanelSource
from technic_v4.indicators import compute_indicators
from technic_v4.scanner_core import ScanConfig, run_scan

pytestmark = pytest.mark.slow  # trains models on 800-symbol markets

SPEC = DemoSpec(n_symbols=800, start="2022-06-01")
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def planted():
    panel = generate_demo_market(SPEC).to_panel()
    return panel, train_models(panel, (5, 10), seed=0)


@pytest.fixture(scope="module")
def null():
    panel = generate_demo_market(replace(SPEC, planted_alpha=0.0)).to_panel()
    return panel, train_models(panel, (5, 10), seed=0)


@pytest.fixture(scope="module")
def saved(planted, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for model in planted[1].values():
        registry.save_model(model.booster, model.metadata, root)
    return root


@pytest.fixture
def models_copy(saved, tmp_path, monkeypatch) -> Path:
    """A private copy of the trained models, installed as TECHNIC_MODELS_DIR."""
    root = tmp_path / "models"
    shutil.copytree(saved, root)
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(root))
    return root


@pytest.mark.parametrize("h", [5, 10])
def test_planted_component_is_found_out_of_sample(planted, h) -> None:
    meta = planted[1][h].metadata
    test = meta["metrics"]["test"]
    assert test["rank_ic"]["mean"] > 0.02 and test["rank_ic"]["t_stat"] > 3
    assert test["ic"]["t_stat"] > 3 and test["top_decile_excess"]["mean"] > 0
    assert test["hit_rate"] > 0.5 and test["rank_ic"]["n_dates"] > 150
    assert meta["features"] == list(FEATURES_5D if h == 5 else FEATURES_10D)
    win = meta["training_window"]
    assert win["train"]["last"] < win["valid"]["first"] < win["test"]["first"]
    assert meta["embargo_sessions"] >= h and meta["horizon"] == h


@pytest.mark.parametrize("h", [5, 10])
def test_no_planted_component_no_out_of_sample_skill(null, planted, h) -> None:
    """The leakage test: with nothing to find, any look-ahead would show up as skill here."""
    test = null[1][h].metadata["metrics"]["test"]
    assert abs(test["rank_ic"]["t_stat"]) < 2.5, test["rank_ic"]
    assert abs(test["ic"]["t_stat"]) < 2.5, test["ic"]
    real = planted[1][h].metadata["metrics"]["test"]["rank_ic"]["mean"]
    assert abs(test["rank_ic"]["mean"]) < real / 3


def test_training_is_reproducible_from_the_seed(planted) -> None:
    panel, models = planted
    again = train_model(panel, TrainConfig(horizon=10, seed=0))
    assert again.booster.save_raw("ubj") == models[10].booster.save_raw("ubj")
    other = train_model(panel, TrainConfig(horizon=10, seed=1))
    assert other.booster.save_raw("ubj") != models[10].booster.save_raw("ubj")


def test_batch_prediction_equals_row_by_row(planted, models_copy) -> None:
    panel = planted[0]
    last = compute_indicators(panel).last
    rows = np.zeros(panel.n_symbols, dtype=bool)
    rows[:300] = True
    assert np.isnan(last["mom_126"][rows]).any()  # young symbols: missing features included
    models = ModelSet(models_copy)
    for h in (5, 10):
        model = models.model(h)[0]
        assert models.model(h)[0] is model  # held by the set
        batch = inference.predict_rows(model, last, rows)
        assert np.isnan(batch[~rows]).all() and np.isfinite(batch[rows]).all()
        for i in np.flatnonzero(rows):
            one = np.zeros_like(rows)
            one[i] = True
            assert inference.predict_rows(model, last, one)[i] == batch[i]
    pred = models.predict({k: v[rows] for k, v in last.items()})
    z5, z10 = ((p - p.mean()) / p.std() for p in (pred.values[5], pred.values[10]))
    np.testing.assert_allclose(inference.alpha_score(pred.values[5], pred.values[10]),
                               (z5 + z10) / 2, rtol=1e-12)
    assert pred.state["available"] is True and pred.state["models_dir"] == str(models_copy)
    assert pred.state["models"]["alpha_5d"]["version"] == registry.sha256_file(
        models_copy / "alpha_5d.ubj")[:12]


def _flip_byte(root: Path) -> None:
    path = root / "alpha_5d.ubj"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _edit_meta(root: Path, **changes) -> None:
    path = root / "alpha_5d.meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _reordered_model(root: Path) -> None:
    """A sound, consistent model file whose features are not the 5-day list in order."""
    model = registry.load_model(root, "alpha_5d")
    names = list(reversed(model.features))
    model.booster.feature_names = names
    registry.save_model(model.booster, {**model.metadata, "features": names}, root)


BREAKAGES = {
    "corrupt": (_flip_byte, registry.ModelCorruptError, "alpha_5d.ubj fails its checksum"),
    "missing model": (lambda r: (r / "alpha_5d.ubj").unlink(), registry.ModelNotFoundError,
                      "alpha_5d.ubj named by"),
    "missing metadata": (lambda r: (r / "alpha_5d.meta.json").unlink(),
                         registry.ModelNotFoundError, "no metadata file"),
    "garbage metadata": (lambda r: (r / "alpha_5d.meta.json").write_text("{not json"),
                         registry.ModelCorruptError, "is not readable JSON"),
    "features edited": (lambda r: _edit_meta(r, features=list(reversed(FEATURES_5D))),
                        registry.ModelMismatchError, "differ from those of the booster"),
    "other features": (_reordered_model, registry.ModelMismatchError,
                       "differ from those of this version of technic"),
    "other horizon": (lambda r: _edit_meta(r, horizon=10), registry.ModelMismatchError,
                      "expected 5"),
}


@pytest.mark.parametrize("kind", list(BREAKAGES))
def test_broken_model_is_an_error_at_load_and_unavailable_in_scans(kind, planted,
                                                                   models_copy) -> None:
    breaker, error, words = BREAKAGES[kind]
    breaker(models_copy)
    with pytest.raises(error, match=words) as info:
        ModelSet(models_copy).model(5)
    assert str(models_copy) in str(info.value) and info.value.path.parent == models_copy
    df, status = run_scan(ScanConfig(), loader=PanelSource(planted[0]))
    assert status.alpha["available"] is False
    assert words in status.alpha["reason"] and str(models_copy) in status.alpha["reason"]
    assert status.alpha["models"]["alpha_10d"]["available"] is True
    assert df["Alpha5d"].isna().all() and df["AlphaScore"].isna().all()
    assert np.isfinite(df["Alpha10d"]).all()  # the sound model still forecasts


def test_scan_with_the_shipped_models_fills_alpha(planted, monkeypatch) -> None:
    monkeypatch.delenv(registry.MODELS_DIR_ENV, raising=False)
    assert registry.default_models_dir() == REPO_MODELS
    df, status = run_scan(ScanConfig(), loader=PanelSource(planted[0]))
    assert status.alpha["available"] is True, status.alpha.get("reason")
    assert set(status.alpha["models"]) == {"alpha_5d", "alpha_10d"}
    assert len(df) > 700
    for col in ("Alpha5d", "Alpha10d", "AlphaScore"):
        assert np.isfinite(df[col]).all() and df[col].std() > 0, col
    assert abs(df["AlphaScore"].mean()) < 1e-9
    assert abs(df["Alpha5d"]).max() < 0.2  # a forecast of 5-session excess log return


def test_cli_trains_shows_and_reports_a_broken_model(tmp_path) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    build_demo_store(data, DemoSpec(n_symbols=150, start="2024-01-02", end="2025-06-30"))
    runner = CliRunner()
    res = runner.invoke(app, ["models", "train", "--data-dir", str(data), "--models-dir",
                              str(models), "--seed", "3", "--horizon", "5"])
    assert res.exit_code == 0, res.output
    meta = json.loads((models / "alpha_5d.meta.json").read_text())
    assert meta["config"]["seed"] == 3 and meta["data"]["symbols"] == 150
    assert meta["sha256"] == registry.sha256_file(models / "alpha_5d.ubj")
    res = runner.invoke(app, ["models", "show", "--models-dir", str(models)])
    assert res.exit_code == 0 and "rank IC" in res.output and "alpha_5d" in res.output
    _flip_byte(models)
    res = runner.invoke(app, ["models", "show", "--models-dir", str(models)])
    assert res.exit_code == 2 and "checksum" in res.output
