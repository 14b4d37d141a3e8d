"""`execute_many`: many screens at one session from one evaluation give, per screen, exactly
what `run_scan` keeps — the symbols, their order and their rows — including forecasts a
screen's own rows cannot be told apart by (withheld per screen, as a scan does)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from serve_support import demo_store, tiny_models

from technic_v4.alpha.inference import ModelSet
from technic_v4.data.reader import StoreReader
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.scan.evaluate import evaluate_chunk
from technic_v4.scan.many import execute_many
from technic_v4.scan.run import run_sync

SCREENS = [
    ScanConfig(),
    ScanConfig(where="RSI < 45 and Close > SMA50", max_symbols=15),
    ScanConfig(sectors=["Technology"], rank="mom_63 / ATR_pct"),
    ScanConfig(where="crosses_above(MACD, MACD_signal, within=5)", sort_by="MACD_hist"),
    ScanConfig(where="pct_rank(mom_21) > 0.8", sort_by="AlphaScore", ascending=True),
    ScanConfig(where="Close > highest(High, 20)[1] or W.RSI > 60", min_price=5.0),
    ScanConfig(signals=["Strong Long", "Long"], min_dollar_volume=1e6, sort_by="Alpha5d"),
    ScanConfig(industries=["Semiconductors & Semiconductor Equipment"],
               where="Sector in (\"Information Technology\")"),
    ScanConfig(where="CCI > 0 and Sector == \"Tech\"", columns=["RS_rating", "beta_60", "RSI"]),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    return demo_store(root / "data"), root


def _many(reader: StoreReader, models: ModelSet, cfgs: list[ScanConfig]):  # type: ignore[no-untyped-def]
    async def evaluate(symbols, spec, version):  # type: ignore[no-untyped-def]
        return evaluate_chunk(reader, symbols, spec, version)

    async def predict(features):  # type: ignore[no-untyped-def]
        return models.predict(features)

    return run_sync(execute_many(cfgs, reader.snapshot(), evaluate, predict, chunk_size=128))


@pytest.mark.parametrize("realistic, as_of", [(True, None), (False, "2025-03-14")],
                         ids=["models-latest", "constant-models-as-of"])
def test_each_selection_is_run_scan(store, realistic, as_of):
    """Each selection is run_scan's result, or, where run_scan refuses the screen (it ranks
    by a forecast the models cannot give), the same refusal."""
    data, root = store
    models_dir = tiny_models(root / f"models-{realistic}", realistic=realistic)
    reader = StoreReader(data)
    cfgs = [ScanConfig(**{**c.to_dict(), "as_of_date": as_of, "scoring": c.scoring})
            for c in SCREENS]
    scans, accepted = [], []
    for cfg in cfgs:
        try:
            scans.append(run_scan(cfg, loader=reader, models_dir=models_dir))
        except ConfigError as exc:  # a forecast it reads is withheld: refused alike
            with pytest.raises(ConfigError) as refused:
                _many(reader, ModelSet(models_dir), [cfg])
            assert str(refused.value) == str(exc)
        else:
            accepted.append(cfg)
    assert realistic == (len(accepted) == len(cfgs))
    selections, _ = _many(reader, ModelSet(models_dir), accepted)
    assert [s.config for s in selections] == accepted
    for cfg, sel, (frame, status) in zip(accepted, selections, scans, strict=True):
        assert sel.symbols == frame["Symbol"].tolist(), cfg
        assert sel.alpha_state.get("available") == status.alpha.get("available"), cfg
        rows = sel.rows()
        assert list(rows.columns) == list(frame.columns), cfg
        pd.testing.assert_frame_equal(rows, frame, check_dtype=False)
        if not realistic and len(frame) >= 8 and cfg.columns is None:  # constant forecasts:
            # withheld, said why
            assert frame["Alpha5d"].isna().all() and "same forecast" in status.alpha["reason"]
            assert "same forecast" in str(sel.alpha_state.get("reason"))
    assert len(cfgs) - len(accepted) == (0 if realistic else 2)  # sorted by AlphaScore, Alpha5d


def test_one_evaluation_for_all(store):
    """The screens share one evaluation: evaluating 8 costs about what evaluating 1 does."""
    data, root = store
    reader = StoreReader(data)
    calls: list[int] = []

    async def evaluate(symbols, spec, version):  # type: ignore[no-untyped-def]
        calls.append(len(symbols))
        return evaluate_chunk(reader, symbols, spec, version)

    models = ModelSet(tiny_models(root / "models-count"))

    async def predict(features):  # type: ignore[no-untyped-def]
        return models.predict(features)

    run_sync(execute_many(SCREENS, reader.snapshot(), evaluate, predict, chunk_size=10_000))
    groups = {ScanConfig().lookback_days}  # every screen here has the default window
    assert len(calls) == len(groups) and calls[0] == len(reader.snapshot().universe)
    assert np.sum(calls) == len(reader.snapshot().universe)
