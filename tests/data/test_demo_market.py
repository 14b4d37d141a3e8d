"""The synthetic demo market: deterministic, realistic, events planted, alpha switchable."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from technic_v4.data.calendar import is_session, sessions_between
from technic_v4.data.demo import (
    DEMO_SEED,
    DemoMarket,
    DemoSpec,
    build_demo_store,
    generate_demo_market,
    planted_ic,
    rank_ic,
)
from technic_v4.data.demo_names import SECTORS
from technic_v4.data.panel import FIELDS
from technic_v4.data.universe import GICS_SECTORS

SMALL = DemoSpec(n_symbols=300, start="2023-01-03", end="2024-12-31")
# Enough symbols and dates for the planted IC to stand out of per-date noise in a second.
MID = DemoSpec(n_symbols=1500, start="2021-01-04", end="2025-12-31")
TICKER = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")


@pytest.fixture(scope="module")
def small() -> DemoMarket:
    return generate_demo_market(SMALL)


@pytest.fixture(scope="module")
def default() -> DemoMarket:
    return generate_demo_market()


def _row(m: DemoMarket, symbol: str) -> int:
    return int(np.flatnonzero(m.universe["symbol"].to_numpy() == symbol)[0])


def _day(m: DemoMarket, date: str) -> int:
    return int(m.sessions.get_loc(pd.Timestamp(date)))


def test_same_spec_gives_bit_identical_market(small: DemoMarket) -> None:
    again = generate_demo_market(SMALL)
    for f in FIELDS:
        a, b = getattr(small, f), getattr(again, f)
        assert a.tobytes() == b.tobytes(), f
    pd.testing.assert_frame_equal(small.universe, again.universe)
    assert small.notes == again.notes
    other = generate_demo_market(replace(SMALL, seed=DEMO_SEED + 1))
    assert not np.array_equal(small.close, other.close, equal_nan=True)


def test_shapes_sessions_and_universe(small: DemoMarket) -> None:
    sessions = sessions_between(SMALL.start, SMALL.end)
    assert small.sessions.equals(sessions)
    assert is_session(small.sessions).all()
    n, t = SMALL.n_symbols, len(sessions)
    for f in FIELDS:
        arr = getattr(small, f)
        assert arr.shape == (n, t) and arr.dtype == np.float64 and arr.flags.c_contiguous, f
    uni = small.universe
    assert list(uni.columns) == ["symbol", "name", "sector", "industry"]
    assert uni["symbol"].is_unique and uni["symbol"].is_monotonic_increasing
    assert uni["symbol"].map(lambda s: bool(TICKER.match(s))).all()
    assert uni["name"].is_unique and uni["name"].str.len().gt(5).all()
    panel = small.to_panel()
    assert panel.source == "synthetic" and panel.n_symbols == n


@pytest.mark.slow  # the 5,000-symbol default market
def test_sector_table_and_default_universe(default: DemoMarket) -> None:
    assert {s.name for s in SECTORS} == set(GICS_SECTORS)
    assert all(3 <= len(s.industries) <= 8 for s in SECTORS)
    uni = default.universe
    assert len(uni) >= 5000 and default.sessions[-1] - default.sessions[0] >= pd.Timedelta(
        days=5 * 365
    )
    shares = uni["sector"].value_counts(normalize=True)
    assert set(shares.index) == set(GICS_SECTORS)
    assert shares.max() < 0.25 and shares.min() > 0.02
    per_sector = uni.groupby("sector")["industry"].nunique()
    assert per_sector.between(3, 8).all()
    assert uni["symbol"].map(lambda s: bool(TICKER.match(s))).all()
    assert uni["symbol"].str.contains(".", regex=False).sum() >= 1  # class shares


def test_bars_are_consistent(small: DemoMarket) -> None:
    o, h, lo, c, v = (getattr(small, f) for f in FIELDS)
    bar = np.isfinite(c)
    for arr in (o, h, lo, v):
        assert np.array_equal(np.isfinite(arr), bar)  # all five fields NaN together
    assert (h[bar] >= np.maximum(o[bar], c[bar])).all()
    assert (lo[bar] <= np.minimum(o[bar], c[bar])).all()
    assert (lo[bar] > 0).all() and (v[bar] >= 0).all()
    assert np.array_equal(v[bar], np.round(v[bar]))
    dollar = bar & (lo >= 1.0)
    assert np.allclose(c[dollar] * 100, np.round(c[dollar] * 100), rtol=0, atol=1e-6)
    # Opens gap from the prior close; ranges look like daily bars, not like ticks or crashes.
    gaps = np.abs(o[:, 1:] / c[:, :-1] - 1)[bar[:, 1:] & bar[:, :-1]]
    assert 0.001 < np.median(gaps) < 0.03
    hl = ((h - lo) / c)[bar]
    assert 0.01 < np.median(hl) < 0.06


@pytest.mark.slow  # the 5,000-symbol default market
def test_prices_volumes_and_volatility_look_like_us_equities(default: DemoMarket) -> None:
    panel = default.to_panel()
    last = panel.last_bar_index()
    rows = np.arange(panel.n_symbols)
    close = default.close[rows, last]
    assert np.mean((close >= 10) & (close <= 200)) > 0.6
    assert close.max() <= 1500 and np.nanmax(default.high) < 5000
    vol = np.nanmedian(default.volume, axis=1)
    assert np.median(vol) > 1e5 and np.mean(vol >= 5e4) > 0.95
    r = np.diff(np.log(default.close), axis=1)
    ann = pd.Series(np.nanstd(r, axis=1) * np.sqrt(252), index=default.universe["sector"])
    by_sector = ann.groupby(level=0).median()
    assert by_sector.idxmin() == "Utilities"
    assert by_sector["Energy"] > by_sector["Consumer Staples"]
    assert 0.25 < ann.median() < 0.6
    by_industry = pd.Series(ann.to_numpy(), index=default.universe["industry"])
    assert by_industry.groupby(level=0).median().idxmax() == "Biotechnology"


def test_universe_events_are_planted(small: DemoMarket) -> None:
    notes, c, v = small.notes, small.close, small.volume
    json.dumps(notes)  # serialisable as store metadata
    assert notes["ipos"] and notes["delistings"] and notes["halts"] and notes["gaps"]
    assert any(ipo["bars"] < 60 for ipo in notes["ipos"])
    for ipo in notes["ipos"]:
        i, t = _row(small, ipo["symbol"]), _day(small, ipo["first_session"])
        assert t > 0 and np.isnan(c[i, :t]).all() and np.isfinite(c[i, t])
        assert np.isfinite(c[i, t:]).sum() == ipo["bars"]
    for d in notes["delistings"]:
        i, t = _row(small, d["symbol"]), _day(small, d["last_session"])
        assert t < len(small.sessions) - 1 and np.isnan(c[i, t + 1 :]).all()
        assert np.isfinite(c[i, t])
    for halt in notes["halts"]:
        i, t, k = _row(small, halt["symbol"]), _day(small, halt["start"]), halt["sessions"]
        assert 1 <= k <= 5 and (v[i, t : t + k] == 0).all() and v[i, t + k] > 0
        for f in ("open", "high", "low", "close"):
            assert (getattr(small, f)[i, t : t + k] == c[i, t - 1]).all()
    for gap in notes["gaps"]:
        i, t, k = _row(small, gap["symbol"]), _day(small, gap["start"]), gap["sessions"]
        assert np.isnan(c[i, t : t + k]).all()
        assert np.isfinite(c[i, t - 1]) and np.isfinite(c[i, t + k])
    last_close = {
        s: c[_row(small, s)][np.isfinite(c[_row(small, s)])][-1] for s in notes["penny_stocks"]
    }
    assert all(0 < p < 1.0 for p in last_close.values())
    illiquid = [np.nanmedian(v[_row(small, s)]) for s in notes["illiquid"]]
    assert max(illiquid) < 5e4 < np.nanmedian(v)


def test_rank_ic_matches_a_direct_spearman() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 60, 4))
    y[:, 1] += 0.5 * x[:, 1]
    x[::7, 2] = np.nan
    got = rank_ic(x, y)
    for t in range(4):
        ok = np.isfinite(x[:, t]) & np.isfinite(y[:, t])
        ranks = pd.DataFrame({"x": x[ok, t], "y": y[ok, t]}).rank()
        assert got[t] == pytest.approx(np.corrcoef(ranks["x"], ranks["y"])[0, 1], abs=1e-12)
    assert got[1] > 0.3
    assert np.isnan(rank_ic(x[:10], y[:10])).all()  # too few symbols per date


@pytest.mark.parametrize("alpha", [MID.planted_alpha, 0.0])
def test_planted_effect_is_measurable_when_on_and_absent_when_off(alpha: float) -> None:
    market = generate_demo_market(replace(MID, planted_alpha=alpha))
    ic = planted_ic(market)
    assert market.notes["planted_alpha"]["enabled"] is bool(alpha)
    if alpha:
        assert 0.015 < ic["mom_21"]["mean"] < 0.06 and ic["mom_21"]["t_stat"] > 4
        assert ic["ret_5"]["mean"] < -0.005 and ic["ret_5"]["t_stat"] < -3
    else:
        for name in ("mom_21", "ret_5"):
            assert abs(ic[name]["mean"]) < 0.01 and abs(ic[name]["t_stat"]) < 3, name


def test_build_demo_store_round_trips(tmp_path) -> None:
    from technic_v4.data.store import load_panel

    spec = DemoSpec(n_symbols=120, start="2024-01-02", end="2024-12-31")
    manifest = build_demo_store(tmp_path, spec)
    assert manifest.source == "synthetic" and manifest.meta["demo_spec"]["seed"] == spec.seed
    assert manifest.meta["notes"]["planted_alpha"]["strength"] == spec.planted_alpha
    panel, market = load_panel(tmp_path), generate_demo_market(spec)
    assert list(panel.symbols) == list(market.symbols)
    for f in FIELDS:
        assert np.array_equal(getattr(panel, f), getattr(market, f), equal_nan=True), f


def test_rejects_a_spec_too_small_to_be_a_market() -> None:
    with pytest.raises(ValueError, match="sessions"):
        generate_demo_market(DemoSpec(n_symbols=300, start="2024-01-02", end="2024-03-01"))
