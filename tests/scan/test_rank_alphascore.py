"""`rank: "AlphaScore"` (the README allows AlphaScore in `rank` only) runs in a scan and in
`execute_many` (saved screens, watches): the rows come out in AlphaScore order, and history of
it (`AlphaScore[1]`) or AlphaScore in `where` is a ConfigError naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from serve_support import demo_store, tiny_models

from technic_v4.alpha.inference import ModelSet
from technic_v4.data.reader import StoreReader
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.scan.evaluate import evaluate_chunk
from technic_v4.scan.many import execute_many
from technic_v4.scan.run import run_sync

RANKS = ["AlphaScore", "-AlphaScore", "AlphaScore * 2 + RSI / 100"]


@pytest.fixture(scope="module")
def market(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("alphascore")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.mark.parametrize("rank", RANKS)
def test_scan_ranks_by_alphascore(market, rank: str) -> None:  # type: ignore[no-untyped-def]
    data, models = market
    frame, status = run_scan(ScanConfig(rank=rank, max_symbols=25), loader=StoreReader(data),
                             models_dir=models)
    assert len(frame) == 25 and frame["AlphaScore"].notna().all()
    ranked = frame["RankValue"].to_numpy(dtype=float)
    assert np.all(np.diff(ranked) <= 0)  # best first
    if rank == "AlphaScore":
        np.testing.assert_allclose(ranked, frame["AlphaScore"].to_numpy(dtype=float))


def test_execute_many_ranks_by_alphascore_as_run_scan(market) -> None:  # type: ignore[no-untyped-def]
    data, models = market
    reader, model_set = StoreReader(data), ModelSet(models)

    async def evaluate(symbols, spec, version):  # type: ignore[no-untyped-def]
        return evaluate_chunk(reader, symbols, spec, version)

    async def predict(features):  # type: ignore[no-untyped-def]
        return model_set.predict(features)

    cfgs = [ScanConfig(rank=r, where="RSI > 40", max_symbols=20) for r in RANKS]
    selections, _ = run_sync(execute_many(cfgs, reader.snapshot(), evaluate, predict))
    for cfg, sel in zip(cfgs, selections, strict=True):
        frame, _ = run_scan(cfg, loader=reader, models_dir=models)
        assert sel.symbols == frame["Symbol"].tolist()
        np.testing.assert_allclose(sel.rank_values, frame["RankValue"].to_numpy(dtype=float))


@pytest.mark.parametrize(("field", "kw"), [
    ("rank", {"rank": "AlphaScore[1]"}), ("rank", {"rank": "sma(AlphaScore, 5)"}),
    ("rank", {"rank": "W.AlphaScore"}), ("where", {"where": "AlphaScore > 0"})])
def test_alphascore_has_no_history_and_no_where(market, field: str, kw: dict) -> None:  # type: ignore[no-untyped-def]
    data, models = market
    with pytest.raises(ConfigError) as caught:
        run_scan(ScanConfig(**kw), loader=StoreReader(data), models_dir=models)
    assert caught.value.field == field
