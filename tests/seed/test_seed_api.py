"""The origin design's public modules called as its users' scripts call them, on a demo store
and tiny models in a temporary folder (named by TECHNIC_DATA_DIR / TECHNIC_MODELS_DIR, as a
user's shell would): each facade's answer equals the scan's for the same bars and models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from serve_support import demo_store, tiny_models

from technic_v4.alpha import registry
from technic_v4.alpha.features import FEATURES_5D, FEATURES_10D
from technic_v4.data.reader import StoreReader
from technic_v4.data.universe import InvalidSymbolError
from technic_v4.errors import UnknownSymbolError
from technic_v4.scan import SHOWN_INDICATORS

SEED_CONFIG = {"max_symbols": 100, "lookback_days": 150, "sectors": ["Technology", "Healthcare"]}


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """The store and models under a temporary folder, the environment naming them, and the
    seed script's scan (`run_scan(ScanConfig(...))`, nothing else passed)."""
    root = tmp_path_factory.mktemp("seed")
    data, models = demo_store(root / "data"), tiny_models(root / "models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TECHNIC_DATA_DIR", str(data))
        mp.setenv("TECHNIC_MODELS_DIR", str(models))
        from technic_v4 import data_engine  # noqa: F401  (the seed script's import)
        from technic_v4.scanner_core import ScanConfig, run_scan

        results, status = run_scan(ScanConfig(**SEED_CONFIG))
        yield {"data": data, "models": models, "results": results, "status": status}


def test_the_seed_scan_runs_as_its_script_calls_it(seed):
    results, status = seed["results"], seed["status"]
    assert 0 < len(results) <= 100
    assert {"Symbol", "TechRating", "Signal", "Close", "Volume", "RSI", "MACD",
            "ATR_pct"} <= set(results.columns)
    assert results["TechRating"].notna().all() and results["Close"].notna().all()
    assert set(results["Sector"]) == {"Information Technology", "Health Care"}
    assert status.kept == len(results) and status.alpha["available"] is True
    assert results["Alpha5d"].notna().all() and results["Alpha10d"].notna().all()


def test_data_engine_reads_the_store_the_scan_reads(seed):
    from technic_v4 import data_engine

    results, status = seed["results"], seed["status"]
    universe = data_engine.get_universe()
    snap = StoreReader(seed["data"]).snapshot()
    pd.testing.assert_frame_equal(universe, snap.universe)
    sym = results["Symbol"].iloc[0]
    hist = data_engine.get_price_history(sym.lower(), days=150, freq="daily")
    assert list(hist.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert len(hist) == 150 and hist.index.is_monotonic_increasing
    assert str(hist.index[-1].date()) == status.as_of
    assert list(hist.index) == list(snap.sessions[-150:])
    row = results.set_index("Symbol").loc[sym]
    assert hist["Close"].iloc[-1] == row["Close"] and hist["Volume"].iloc[-1] == row["Volume"]
    assert data_engine.load_panel(150).n_sessions == 150
    with pytest.raises(UnknownSymbolError, match="ZZZZZZ"):
        data_engine.get_price_history("ZZZZZZ", 10)
    with pytest.raises(InvalidSymbolError):
        data_engine.get_price_history("../etc", 10)
    with pytest.raises(ValueError, match="days must be"):
        data_engine.get_price_history(sym, 0)
    with pytest.raises(ValueError, match="freq"):
        data_engine.get_price_history(sym, 10, freq="hourly")


def test_process_batch_equals_the_scan_on_each_symbols_history(seed):
    from technic_v4 import data_engine
    from technic_v4.engine.batch_processor import BatchProcessor
    from technic_v4.scanner_core import ScanConfig

    results = seed["results"].set_index("Symbol")
    sessions = len(StoreReader(seed["data"]).snapshot().sessions)
    frames = data_engine.get_price_history_batch(list(results.index), sessions)
    rows = BatchProcessor().process_batch(frames, ScanConfig(**SEED_CONFIG))
    assert [r["Symbol"] for r in rows] == list(results.index)
    got = pd.DataFrame(rows).set_index("Symbol")
    for name in ("Close", "Volume"):  # (Bars: the scan counts its window's)
        np.testing.assert_array_equal(got[name], results[name])
    for name in [*SHOWN_INDICATORS, "TechRating"]:
        np.testing.assert_allclose(got[name], results[name], rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    assert (got["Signal"] == results["Signal"]).all()
    assert (got["LastDate"] == results["LastDate"]).all()


def test_process_batch_takes_frames_as_scripts_hold_them(seed):
    from technic_v4 import data_engine
    from technic_v4.engine.batch_processor import BatchProcessor
    from technic_v4.scanner_core import ScanConfig

    sym = seed["results"]["Symbol"].iloc[0]
    frame = data_engine.get_price_history(sym, 300)
    lower = frame.rename(columns=str.lower)
    rows = BatchProcessor().process_batch({sym: frame, "new": None, "short": frame.iloc[-20:],
                                           "lower": lower})
    by = {r["Symbol"]: r for r in rows}
    assert list(by) == [sym, "NEW", "SHORT", "LOWER"]
    assert by["NEW"]["Bars"] == 0 and np.isnan(by["NEW"]["Close"])
    assert np.isnan(by["NEW"]["TechRating"]) and by["NEW"]["Signal"] is None
    assert BatchProcessor().process_batch({}) == []
    assert BatchProcessor().process_batch({"new": None})[0]["Incomplete"] == \
        by["NEW"]["Incomplete"]
    assert by["NEW"]["Incomplete"].split() == SHOWN_INDICATORS
    assert by["SHORT"]["Bars"] == 20 and np.isfinite(by["SHORT"]["RSI"])
    assert np.isnan(by["SHORT"]["SMA50"]) and "SMA50" in by["SHORT"]["Incomplete"]
    assert {k: v for k, v in by["LOWER"].items() if k != "Symbol"} == \
        {k: v for k, v in by[sym].items() if k != "Symbol"}
    cut = frame.index[-40]
    as_of = BatchProcessor().process_batch({sym: frame}, ScanConfig(as_of_date=str(cut.date())))
    assert as_of == BatchProcessor().process_batch({sym: frame.loc[:cut]})
    assert as_of[0]["LastDate"] == cut and as_of != [by[sym]]
    with pytest.raises(ValueError, match=r"lacks columns \['Volume'\]"):
        BatchProcessor().process_batch({sym: frame.drop(columns="Volume")})
    with pytest.raises(ValueError, match="twice"):
        BatchProcessor().process_batch({sym: pd.concat([frame, frame.iloc[-1:]])})
    with pytest.raises(InvalidSymbolError):
        BatchProcessor().process_batch({"no way": frame})
    with pytest.raises(ValueError, match="not a number"):
        BatchProcessor().process_batch({sym: frame.assign(Close="n/a")})


def test_alpha_functions_equal_the_scans_forecasts(seed):
    from technic_v4.engine import alpha_inference as ai

    results = seed["results"]
    a5 = ai.score_alpha_batch(results[list(FEATURES_5D)])
    a10 = ai.score_alpha_10d_batch(results[list(FEATURES_10D)])
    np.testing.assert_array_equal(a5.to_numpy(), results["Alpha5d"].to_numpy())
    np.testing.assert_array_equal(a10.to_numpy(), results["Alpha10d"].to_numpy())
    assert a5.index.equals(results.index) and a5.name == "Alpha5d"
    held = ai.get_model_cached("alpha_5d")
    assert ai.get_model_cached("alpha_5d") is held
    fresh = ai.load_xgb_model("alpha_5d")
    assert fresh is not held and fresh.sha256 == held.sha256
    assert fresh.features == FEATURES_5D
    with pytest.raises(KeyError, match="mom_126"):
        ai.score_alpha_10d_batch(results[list(FEATURES_5D)])
    with pytest.raises(ValueError, match="alpha_5d"):
        ai.load_xgb_model("alpha_7d")


def test_a_missing_or_mismatched_model_is_an_error_not_a_forecast(seed, tmp_path):
    from technic_v4.engine import alpha_inference as ai

    features = seed["results"][list(FEATURES_10D)]
    with pytest.raises(registry.ModelNotFoundError, match="alpha_5d"):
        ai.score_alpha_batch(features, models_dir=tmp_path / "none")
    swapped = tiny_models(tmp_path / "swapped")
    (swapped / "alpha_5d.meta.json").write_bytes((swapped / "alpha_10d.meta.json").read_bytes())
    (swapped / "alpha_5d.ubj").write_bytes((swapped / "alpha_10d.ubj").read_bytes())
    with pytest.raises(registry.ModelMismatchError):
        ai.score_alpha_batch(features, models_dir=swapped)
    with pytest.raises(registry.ModelMismatchError):
        ai.load_xgb_model("alpha_5d", models_dir=swapped)


def test_the_facades_import_without_ray() -> None:
    code = ("import sys\nfrom technic_v4 import data_engine, scanner_core\n"
            "from technic_v4.engine import alpha_inference, batch_processor, ray_runner\n"
            "print('RAY', 'ray' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "RAY False" in proc.stdout, proc.stdout + proc.stderr
