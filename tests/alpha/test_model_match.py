"""Models forecast only the kind of market they learned (technic_v4/alpha/inference.py, step 7).

Stores: the real-bars fixture (AAPL, FB, GOOG, IBM, MSFT 2000-2013; fixtures/PROVENANCE.md)
ingested into a temporary folder; small demo markets (synthetic, on XNYS or XKRX); and, for
training, the demo generator's bars written with a non-synthetic source label (there are not
50 real symbols in the fixtures).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from technic_v4.alpha import registry
from technic_v4.alpha.inference import Forecast, ModelSet, matching
from technic_v4.cli import app
from technic_v4.data.demo import DemoSpec, build_demo_store, generate_demo_market
from technic_v4.data.ingest import ingest_frame
from technic_v4.data.reader import StoreReader
from technic_v4.data.store import write_store
from technic_v4.errors import ConfigError
from technic_v4.scan.explain import explain
from technic_v4.scanner_core import ScanConfig, run_scan

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHIPPED = Path(__file__).resolve().parents[2] / "models"
SYNTHETIC_REASON = "alpha unavailable: models trained on synthetic data; run technic models train"
ALPHA = ["Alpha5d", "Alpha10d", "AlphaScore"]


@pytest.fixture(scope="module")
def real_store(tmp_path_factory) -> Path:
    """The real-bars fixture ingested as a store (source `ingest:stocks.csv.gz`)."""
    root = tmp_path_factory.mktemp("real") / "data"
    raw = pd.read_csv(FIXTURES / "stocks.csv.gz").rename(columns=str.lower)
    ingest_frame(raw.rename(columns={"ticker": "symbol"}), root, name="stocks.csv.gz")
    return root


def test_real_store_scans_with_null_alpha_and_the_reason(real_store) -> None:
    df, status = run_scan(ScanConfig(), loader=StoreReader(real_store), models_dir=SHIPPED)
    assert len(df) == 5
    assert df[ALPHA].isna().all().all()
    assert status.alpha["available"] is False
    assert status.alpha["reason"] == SYNTHETIC_REASON
    for mid in ("alpha_5d", "alpha_10d"):
        model = status.alpha["models"][mid]
        assert model["available"] is False and model["mismatched"] is True
        assert "ingest:stocks.csv.gz" in model["reason"] and "synthetic" in model["reason"]


@pytest.mark.parametrize("config, field", [
    (ScanConfig(where="Alpha5d > 0"), "where"),
    (ScanConfig(rank="Alpha10d"), "rank"),
    (ScanConfig(sort_by="AlphaScore"), "sort_by"),
])
def test_reading_withheld_alpha_is_an_error_naming_the_reason(real_store, config,
                                                             field) -> None:
    with pytest.raises(ConfigError) as info:
        run_scan(config, loader=StoreReader(real_store), models_dir=SHIPPED)
    assert info.value.field == field and SYNTHETIC_REASON in info.value.message


def test_explain_on_a_real_store_shows_the_models_unavailable(real_store) -> None:
    data = explain(StoreReader(real_store), ModelSet(SHIPPED), "MSFT")
    alpha = data["alpha"]
    assert alpha["available"] is False and alpha["reason"] == SYNTHETIC_REASON
    for model in alpha["models"]:
        assert model["available"] is False and "synthetic" in model["reason"]
        assert "contributions" not in model and "forecast" not in model


def test_a_store_on_another_calendar_does_not_use_xnys_models(tmp_path) -> None:
    root = tmp_path / "krx"
    build_demo_store(root, DemoSpec(n_symbols=50, start="2024-06-03", end="2025-06-30",
                                    calendar="XKRX"))
    df, status = run_scan(ScanConfig(), loader=StoreReader(root), models_dir=SHIPPED)
    assert len(df) > 0 and df[ALPHA].isna().all().all()
    assert status.alpha["reason"] == ("alpha unavailable: models trained on XNYS sessions, the "
                                      "store is on XKRX; run technic models train")


def test_metadata_without_a_calendar_is_a_mismatch_that_says_so(tmp_path) -> None:
    models = tmp_path / "models"
    shutil.copytree(SHIPPED, models)
    meta_path = models / "alpha_5d.meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["data"]["calendar"]
    meta_path.write_text(json.dumps(meta))
    root = tmp_path / "demo"
    build_demo_store(root, DemoSpec(n_symbols=50, start="2024-06-03", end="2025-06-30"))
    df, status = run_scan(ScanConfig(), loader=StoreReader(root), models_dir=models)
    assert df["Alpha5d"].isna().all() and np.isfinite(df["Alpha10d"]).all()
    assert "does not record its training calendar" in status.alpha["reason"]
    assert status.alpha["models"]["alpha_10d"]["available"] is True


def test_a_real_model_is_withheld_on_the_synthetic_market() -> None:
    state = {"available": True, "models": {"alpha_5d": {
        "available": True, "data_source": "ingest:bars.csv", "calendar": "XNYS"}}}
    out = matching(Forecast({5: np.array([0.01, -0.02])}, state), "synthetic", "XNYS")
    assert np.isnan(out.values[5]).all() and not out.available
    assert out.state["reason"] == ("alpha unavailable: models trained on real data "
                                   "(ingest:bars.csv), the store is synthetic; run technic "
                                   "models train")
    same = matching(Forecast({5: np.array([0.01])}, state), "ingest:other.csv", "XNYS")
    assert same.available and same.values[5][0] == 0.01  # another real store, same calendar


def test_models_train_refuses_a_store_too_small_with_the_size_it_needs(real_store,
                                                                       tmp_path) -> None:
    res = CliRunner().invoke(app, ["models", "train", "--data-dir", str(real_store),
                                   "--models-dir", str(tmp_path / "models")])
    assert res.exit_code == 2, res.output
    assert "too few symbols: 5 of the store's 5" in res.output
    assert "needs at least 20 symbols x 0.6 years" in res.output
    assert not (tmp_path / "models").exists()


@pytest.mark.slow  # trains two models (~10 s on 2 cores)
def test_models_train_on_a_real_store_then_scans_use_them(tmp_path, monkeypatch) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    m = generate_demo_market(DemoSpec(n_symbols=50, start="2023-06-01", end="2025-06-30"))
    write_store(data, sessions=m.sessions, universe=m.universe, open=m.open, high=m.high,
                low=m.low, close=m.close, volume=m.volume, source="ingest:fifty.csv")
    monkeypatch.delenv(registry.MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    before, status = run_scan(ScanConfig(), loader=StoreReader(data))
    assert status.alpha["reason"] == SYNTHETIC_REASON and before[ALPHA].isna().all().all()

    res = CliRunner().invoke(app, ["models", "train", "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    user = home / "technic" / "models"
    assert "scans now use these models" in res.output and str(user) in res.output
    assert "out-of-sample metrics" in res.output and "validation" in res.output
    meta = json.loads((user / "alpha_5d.meta.json").read_text())
    assert meta["data"]["source"] == "ingest:fifty.csv" and meta["data"]["calendar"] == "XNYS"
    assert meta["metrics"]["test"]["rank_ic"]["n_dates"] > 0

    df, status = run_scan(ScanConfig(), loader=StoreReader(data))
    assert status.alpha["available"] is True, status.alpha.get("reason")
    assert status.alpha["models_dir"] == str(user.resolve())
    assert status.alpha["models"]["alpha_5d"]["version"] == meta["sha256"][:12]
    assert status.alpha["models"]["alpha_5d"]["data_source"] == "ingest:fifty.csv"
    assert len(df) > 0 and df[ALPHA].notna().all().all()


def test_http_scan_and_explain_carry_the_reason(real_store) -> None:
    from fastapi.testclient import TestClient

    from deployments.api.main import create_app
    from technic_v4.service.inprocess import InProcessBackend

    backend = InProcessBackend(real_store, SHIPPED, warm=False)
    backend.warm()
    with TestClient(create_app(backend, api_keys=())) as c:
        body = c.post("/v1/scan", json={}).json()
        assert body["meta"]["alpha"]["reason"] == SYNTHETIC_REASON
        assert len(body["rows"]) == 5
        assert all(row[col] is None for row in body["rows"] for col in ALPHA)
        bad = c.post("/v1/scan", json={"where": "Alpha5d > 0"})
        assert bad.status_code == 422 and SYNTHETIC_REASON in bad.text
        alpha = c.get("/v1/symbols/IBM/explain").json()["alpha"]
        assert alpha["reason"] == SYNTHETIC_REASON
        assert [m["available"] for m in alpha["models"]] == [False, False]
        assert alpha["models"][0]["data_source"] == "synthetic"


def test_a_watch_reading_withheld_alpha_is_refused_then_skipped_with_the_reason(tmp_path
                                                                              ) -> None:
    """Models trained on real bars, a watch on the synthetic market: a watch whose screen
    reads Alpha5d is refused at creation, naming why (known then, it would never give a
    verdict); one created while its models matched is skipped once they no longer do (no
    evaluation, no events: an empty set is no verdict) and says why; a watch that reads no
    forecast runs as before."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "watch"))
    from serve_support import tiny_models
    from support import run, split_market

    from technic_v4.errors import ConfigError
    from technic_v4.watch.deliver import Policy
    from technic_v4.watch.model import WatchSpec
    from technic_v4.watch.service import local_service

    split = split_market(tmp_path / "data", n_symbols=60, tail=1)
    real = tiny_models(tmp_path / "models-real", source="ingest:us.csv")
    synthetic = tiny_models(tmp_path / "models-synthetic")
    policy = Policy(allow_private=True)
    svc = local_service(tmp_path / "data", real, policy=policy)
    with pytest.raises(ConfigError) as refused:
        run(svc.create(WatchSpec("alpha", definition={"where": "Alpha5d > 0"})))
    assert str(refused.value).startswith("where reads Alpha5d")
    assert "models trained on real data (ingest:us.csv), the store is synthetic" in str(
        refused.value)
    assert run(svc.list()) == []

    matched = local_service(tmp_path / "data", synthetic, policy=policy)
    run(matched.create(WatchSpec("alpha", definition={"where": "Alpha5d > 0"})))
    plain = run(svc.create(WatchSpec("plain", definition={"max_symbols": 10}, initial=True)))
    assert plain["baseline"]["errors"] == {}
    split.append()
    session = run(svc.tick()).runs[0]
    assert session.errors["alpha"].startswith("where reads Alpha5d")
    assert session.evaluated == ["plain"]
    events = [e for _, e in svc.store.events_after(0, 100_000)]
    assert events and {e["watch"] for e in events} == {"plain"}
