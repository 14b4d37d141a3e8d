"""Validation replays the scan exactly, sees no future, finds what is there and nothing else.

- Equivalence: at sampled sessions, the replay's passing set and order equal
  `run_scan(as_of_date=d)` with the same screen, for filters, lags, windows, weekly bars and
  cross-sectional functions.
- No look-ahead: bars after d rewritten, d's membership and ranks unchanged.
- Forward returns equal a plain pandas computation on each symbol's own bars, delistings
  inside the horizon included.
- On the demo market the planted momentum/reversal screen is significant (t > 3) in the
  expected direction; with the effect off, the share of random screens with |t| > 2 stays in
  the 95% binomial band around 5%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from serve_support import demo_store

from technic_v4.data.demo import DemoSpec, build_demo_store, generate_demo_market
from technic_v4.data.panel import Panel
from technic_v4.data.reader import PanelSource, StoreReader
from technic_v4.errors import ConfigError
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.scan.result import rank_order
from technic_v4.validate import ValidateOptions, replay, validate

SCREENS = [
    {"where": "RSI < 45 and Close > SMA50", "rank": "mom_63 / ATR_pct", "min_price": 5},
    {"where": "pct_rank(mom_21) > 0.7", "min_tech_rating": 0,
     "signals": ["Long", "Strong Long", "Avoid"]},
    {"where": "crosses_above(MACD, MACD_signal, within=5) or Close > highest(High, 20)[1]",
     "rank": "RSI", "ascending": True},
    {"where": "W.RSI > 50 and RSI < 60", "sectors": ["Technology", "Energy"]},
    {"min_dollar_volume": 1e7, "sort_by": "mom_21"},
]
PLANTED = "pct_rank(mom_21) - 1.25 * pct_rank(mom_5)"


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    return StoreReader(demo_store(tmp_path_factory.mktemp("validate") / "data"))


def _order_at(rep, k: int) -> list[str]:
    ok = rep.passing[:, k]
    order = rank_order(np.where(ok, rep.rank[:, k], np.nan), rep.ascending)
    return list(rep.panel.symbols[order[: int(ok.sum())]])


@pytest.mark.parametrize("kw", SCREENS, ids=[str(i) for i in range(len(SCREENS))])
def test_replay_equals_run_scan_at_sampled_sessions(reader, kw):
    """Replay holds with the scan at the first and the last session and one drawn between."""
    cfg = ScanConfig(**kw)
    rep = replay(cfg, reader)
    sample = np.random.default_rng(len(str(kw))).choice(len(rep.columns), 1, replace=False)
    found = 0
    for k in sorted({0, len(rep.columns) - 1, *sample}):
        day = str(rep.sessions[k].date())
        frame, _ = run_scan(ScanConfig(**kw, as_of_date=day), loader=reader)
        assert _order_at(rep, k) == list(frame["Symbol"]), day
        key = "RankValue" if cfg.rank else cfg.sort_by
        got = rep.rank[:, k][rep.passing[:, k]]
        np.testing.assert_allclose(np.sort(got), np.sort(frame[key].to_numpy(float)),
                                   rtol=1e-9)  # EMA seeds: 400 bars vs all
        found += len(frame)
    assert found > 0, "the sampled sessions should pass some symbols"


def test_no_look_ahead(reader):
    cfg = ScanConfig(where="W.RSI > 45 and RSI > RSI[2]", rank="pct_rank(mom_21)")
    full = reader.load(None, len(reader.snapshot().sessions))
    cut = full.n_sessions - 120
    changed = Panel(symbols=full.symbols, sessions=full.sessions, universe=full.universe,
                    source=full.source, **{f: getattr(full, f).copy() for f in
                                           ("open", "high", "low", "close", "volume")})
    for f in ("open", "high", "low", "close"):
        getattr(changed, f)[:, cut + 1:] *= np.exp(np.random.default_rng(1).normal(
            0, 0.2, (full.n_symbols, full.n_sessions - cut - 1)))
    end = str(full.sessions[cut].date())
    a = replay(cfg, PanelSource(full), end=end)
    b = replay(cfg, PanelSource(changed), end=end)
    np.testing.assert_array_equal(a.passing, b.passing)
    np.testing.assert_array_equal(a.rank, b.rank)
    whole = replay(cfg, PanelSource(changed))
    k = len(a.columns)
    np.testing.assert_array_equal(whole.passing[:, :k], a.passing)


def test_forward_returns_equal_pandas_on_own_bars(tmp_path):
    market = generate_demo_market(DemoSpec(n_symbols=120, start="2023-01-03", seed=5))
    panel = market.to_panel()
    close = panel.close.copy()
    close[3, -30:] = np.nan  # delisted 30 sessions before the end
    close[4, -200:-190] = np.nan  # a halt
    panel = Panel(symbols=panel.symbols, sessions=panel.sessions, universe=panel.universe,
                  open=panel.open, high=panel.high, low=panel.low, close=close,
                  volume=np.where(np.isfinite(close), panel.volume, np.nan))
    rep = validate(ScanConfig(), PanelSource(panel), ValidateOptions(horizons=(1, 5, 21)))
    daily = rep.daily
    assert len(daily) == len(rep.daily["session"])
    from technic_v4.validate.returns import forward_returns
    r = replay(ScanConfig(), PanelSource(panel))
    last = np.isfinite(panel.close).sum(1)
    delisted = np.zeros(panel.n_symbols, bool)
    delisted[3] = True
    rng = np.random.default_rng(2)
    for h in (1, 5, 21):
        fwd = forward_returns(r.history.axes["D"], r.columns, r.valid, h, delisted)
        for i in [3, 4, *rng.choice(panel.n_symbols, 6, replace=False)]:
            s = pd.Series(panel.close[i], index=panel.sessions).dropna()
            for k in rng.choice(len(r.columns), 25, replace=False):
                t = panel.sessions[r.columns[k]]
                past = s[s.index <= t]
                if past.empty:
                    assert np.isnan(fwd.raw[i, k])
                    continue
                j = len(past) - 1
                if j + h < len(s):
                    want = s.iloc[j + h] / s.iloc[j] - 1
                elif i == 3:
                    want = s.iloc[-1] / s.iloc[j] - 1
                else:
                    want = np.nan
                if np.isnan(want):
                    assert np.isnan(fwd.raw[i, k]), (i, t, h)
                else:
                    assert fwd.raw[i, k] == pytest.approx(want, rel=1e-12), (i, t, h)
    assert last[3] < last[5]


def test_planted_effect_is_found(tmp_path):
    root = tmp_path / "planted"
    build_demo_store(root, DemoSpec(n_symbols=600, start="2022-01-03"))
    rep = validate(ScanConfig(rank=PLANTED), StoreReader(root),
                   ValidateOptions(horizons=(5,), top=50))
    ic = rep.report["horizons"]["5"]["rank_ic"]
    assert ic["mean"] > 0 and ic["t_stat"] > 3, ic
    where = validate(ScanConfig(where=f"{PLANTED} > 0.4"), StoreReader(root),
                     ValidateOptions(horizons=(5,)))
    excess = where.report["horizons"]["5"]["passing_excess"]
    assert excess["mean"] > 0 and excess["t_stat"] > 3, excess


@pytest.mark.slow
def test_nothing_is_found_when_nothing_is_there(tmp_path):
    root = tmp_path / "null"
    build_demo_store(root, DemoSpec(n_symbols=300, start="2022-01-03", planted_alpha=0.0))
    reader = StoreReader(root)
    rng = np.random.default_rng(11)
    columns = ["RSI", "mom_21", "mom_63", "ATR_pct", "BB_width", "Volume_ratio", "MACD_hist",
               "mom_5", "dist_high_20", "TechRating"]
    significant = 0
    for _ in range(40):
        a, b = rng.choice(columns, 2, replace=False)
        where = f"pct_rank({a}) > {rng.uniform(0.5, 0.8):.2f} and pct_rank({b}) < " \
                f"{rng.uniform(0.4, 0.9):.2f}"
        rep = validate(ScanConfig(where=where), reader, ValidateOptions(horizons=(5,)))
        t = rep.report["horizons"]["5"]["passing_excess"]["t_stat"]
        significant += abs(t) > 2
    print(f"\n{significant} of 40 random screens had |t| > 2 on the null market")
    assert significant <= 5, f"{significant} of 40 random screens had |t| > 2"  # binomial 95%


def test_the_report_says_what_it_cannot_know(reader, tmp_path):
    rep = validate(ScanConfig(where="RSI < 30"), reader,
                   ValidateOptions(horizons=(1, 21), every=5, cost_bps=10))
    a = rep.report["assumptions"]
    assert "delisted" in a["survivorship"] and "10 bps" in a["costs"]
    assert "close to close" in a["fills"] and "long only" in a["borrow"]
    assert rep.report["horizons"]["21"]["passing_excess"]["independent"] < \
        rep.report["horizons"]["1"]["passing_excess"]["independent"]
    short = validate(ScanConfig(where="RSI < 30"), reader,
                     ValidateOptions(horizons=(21,), start="2026-06-01"))
    assert short.report["horizons"]["21"]["passing_excess"]["meaningful"] is False
    survivors = tmp_path / "survivors"
    m = generate_demo_market(DemoSpec(n_symbols=60, start="2025-01-02"))
    keep = np.isfinite(m.close[:, -1])
    from technic_v4.data.store import write_store
    write_store(survivors, sessions=m.sessions, universe=m.universe[keep], open=m.open[keep],
                high=m.high[keep], low=m.low[keep], close=m.close[keep],
                volume=m.volume[keep], source="synthetic")
    rep = validate(ScanConfig(), StoreReader(survivors), ValidateOptions(horizons=(5,)))
    assert "survivorship: universe is today's listings" in \
        rep.report["assumptions"]["survivorship"]


@pytest.mark.parametrize("kw, field", [({"where": "Alpha5d > 0"}, "where"),
                                       ({"exclude_flagged": True}, "exclude_flagged"),
                                       ({"as_of_date": "2024-03-28"}, "as_of_date")])
def test_what_cannot_be_validated_is_refused(reader, kw, field):
    with pytest.raises(ConfigError) as info:
        validate(ScanConfig(**kw), reader)
    assert info.value.field == field
