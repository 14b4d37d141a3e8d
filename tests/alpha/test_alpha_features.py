"""Alpha features, labels and the time split: nothing at session t reads a bar it should not.

Also the cross-sectional statistics and the evaluation report, on inputs with known answers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from technic_v4 import cross_section
from technic_v4.alpha import evaluate, features
from technic_v4.alpha.train import TrainConfig, time_split
from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.panel import FIELDS, Panel

SPEC = DemoSpec(n_symbols=80, start="2024-01-02", end="2025-06-30")


@pytest.fixture(scope="module")
def panel() -> Panel:
    p = generate_demo_market(SPEC).to_panel()
    # Symbol 0 misses 4 sessions in the middle: its labels must count its own bars.
    arrays = {f: getattr(p, f).copy() for f in FIELDS}
    for f in FIELDS:
        arrays[f][0, 200:204] = np.nan
    return replace(p, **arrays)


def _perturb_after(p: Panel, t: int, rows: slice = slice(None)) -> Panel:
    """Every bar after session t scaled by a random factor (bars stay consistent)."""
    rng = np.random.default_rng(7)
    arrays = {f: getattr(p, f).copy() for f in FIELDS}
    scale = rng.uniform(0.5, 1.5, arrays["close"][rows, t + 1 :].shape)
    for f in FIELDS:
        arrays[f][rows, t + 1 :] *= scale if f != "volume" else scale**2
    return replace(p, **arrays)


@pytest.mark.parametrize("t", [60, 250])
def test_features_at_t_ignore_every_later_bar(panel: Panel, t: int) -> None:
    before = features.feature_history(panel)
    after = features.feature_history(_perturb_after(panel, t))
    for name in features.ALL_FEATURES:
        a, b = before[name], after[name]
        assert np.array_equal(a[:, : t + 1], b[:, : t + 1], equal_nan=True), name
        assert not np.allclose(a[:, t + 1 :], b[:, t + 1 :], equal_nan=True), name  # can fail


@pytest.mark.parametrize("h", [5, 10])
def test_labels_read_exactly_the_hth_next_own_bar(panel: Panel, h: int) -> None:
    fwd, end = features.forward_returns(panel.close, h)
    c = panel.close
    for i in (0, 1, 17):
        bars = np.flatnonzero(np.isfinite(c[i]))
        for j in range(len(bars) - h):
            t0, t1 = bars[j], bars[j + h]
            assert end[i, t0] == t1
            assert fwd[i, t0] == pytest.approx(np.log(c[i, t1] / c[i, t0]), rel=1e-12)
        assert np.isnan(fwd[i, bars[-h:]]).all() and (end[i, bars[-h:]] == -1).all()
    assert (end[0, 190:200] > np.arange(190, 200) + h).any()  # the gap pushes label ends out
    assert np.isnan(fwd[0, 200:204]).all()  # no bar, no label
    # Changing bars after a label's end leaves it alone; changing the end bar changes it.
    t = 250
    fwd2, _ = features.forward_returns(_perturb_after(panel, t).close, h)
    settled = (end >= 0) & (end <= t)
    assert np.array_equal(fwd[settled], fwd2[settled])
    reaching = (end > t) & (np.arange(c.shape[1])[None, :] <= t)
    assert reaching.any() and not np.isclose(fwd[reaching], fwd2[reaching]).all()


def test_excess_target_is_demeaned_and_winsorized() -> None:
    rng = np.random.default_rng(0)
    label = rng.standard_normal((400, 30)) * 0.02
    label[0, 3] = 5.0  # an outlier
    label[5:, 7] = np.nan
    target = features.excess_target(label)
    assert np.nanmean(target[:, [0, 1, 2, 4]], axis=0) == pytest.approx(0.0, abs=1e-3)
    assert target[0, 3] < 0.5
    assert np.isnan(target[5:, 7]).all() and np.isfinite(target[:5, 7]).all()


def test_split_embargo_and_purge_keep_labels_inside_their_segment(panel: Panel) -> None:
    ds = features.build_dataset(panel, (5,))
    cfg = TrainConfig(horizon=5, embargo=10, fractions=(0.6, 0.2, 0.2))
    split = time_split(ds, cfg)
    (a0, a1), (v0, v1), (t0, t1) = (split.bounds[k] for k in ("train", "valid", "test"))
    assert a1 + cfg.embargo == v0 and v1 + cfg.embargo == t0
    end = ds.label_end[5]
    col = np.broadcast_to(np.arange(end.shape[1]), end.shape)
    assert (end[split.cells["train"]] < v0).all() and (col[split.cells["train"]] < a1).all()
    assert (end[split.cells["valid"]] < t0).all()
    assert (col[split.cells["valid"]] >= v0).all() and (col[split.cells["test"]] >= t0).all()
    # A symbol with missing days near the boundary: its last train rows reach past v0 -> purged.
    arrays = {f: getattr(panel, f).copy() for f in FIELDS}
    for f in FIELDS:
        arrays[f][3, a1 : a1 + 12] = np.nan
    gappy = features.build_dataset(replace(panel, **arrays), (5,))
    cells = time_split(gappy, cfg).cells["train"]
    reach = (gappy.label_end[5][3] >= v0) & (np.arange(end.shape[1]) < a1)
    assert reach.any() and not cells[3, reach].any()
    assert (gappy.label_end[5][cells] < v0).all()
    with pytest.raises(ValueError, match="embargo 3 < horizon 5"):
        time_split(ds, TrainConfig(horizon=5, embargo=3))


def test_rank_ic_pearson_ic_and_ties() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 200, 6))
    y[:, 2] += x[:, 2]
    x[::9, 1] = np.nan
    got = cross_section.rank_ic(x, y)
    for t in range(6):
        ok = np.isfinite(x[:, t])
        ref = pd.Series(x[ok, t]).corr(pd.Series(y[ok, t]), method="spearman")
        assert got[t] == pytest.approx(ref, abs=1e-12)
    assert got[2] > 0.5
    coarse = np.round(x, 0)  # few distinct values: ties share their average rank
    ref = pd.Series(coarse[:, 0]).corr(pd.Series(y[:, 0]), method="spearman")
    assert cross_section.rank_ic(coarse, y)[0] == pytest.approx(ref, abs=1e-12)
    pic = cross_section.pearson_ic(x, y)
    assert pic[0] == pytest.approx(np.corrcoef(x[:, 0], y[:, 0])[0, 1], abs=1e-12)
    top = cross_section.top_fraction(x, 0.1)
    assert (top[:, 0].sum(), top[:, 1].sum()) == (20, int(np.isfinite(x[:, 1]).sum() * 0.1))
    assert x[top[:, 0], 0].min() > x[~top[:, 0], 0].max()


def test_evaluate_known_answers() -> None:
    rng = np.random.default_rng(2)
    fwd = rng.standard_normal((300, 120)) * 0.03
    perfect = evaluate.evaluate(fwd.copy(), fwd, 5, np.repeat(["A", "B", "C"], 100))
    assert perfect["rank_ic"]["mean"] == pytest.approx(1.0)
    assert perfect["hit_rate"] == 1.0 and perfect["ic_positive_share"] == 1.0
    assert perfect["top_decile_excess"]["mean"] > 0.04
    assert set(perfect["by_sector"]) == {"A", "B", "C"}
    noise = evaluate.evaluate(rng.standard_normal(fwd.shape), fwd, 5)
    assert abs(noise["rank_ic"]["mean"]) < 0.02 and abs(noise["rank_ic"]["t_stat"]) < 3
    assert 0.45 < noise["hit_rate"] < 0.55 and noise["top_decile_turnover"] > 0.8
    sticky = np.repeat(rng.standard_normal((300, 1)), 120, axis=1)
    assert evaluate.evaluate(sticky, fwd, 5)["top_decile_turnover"] == 0.0


def test_newey_west_t_widens_for_overlapping_sums() -> None:
    rng = np.random.default_rng(3)
    daily = rng.standard_normal(20_000) + 0.02
    overlapping = np.convolve(daily, np.ones(5), mode="valid")  # 5-day sums, overlap 4
    naive = overlapping.mean() / overlapping.std() * np.sqrt(len(overlapping))
    nw = evaluate.newey_west_t(overlapping, 10)
    exact = daily.mean() / daily.std() * np.sqrt(len(daily))
    assert nw == pytest.approx(exact, rel=0.1) and naive > 1.8 * nw
