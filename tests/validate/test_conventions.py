"""The validation report's figures follow the conventions it names, and add up.

- Cumulative and annualised excess are over the same calendar span and both net of costs:
  (1 + cumulative) ** (365.25 / days) - 1 == annualised, gross likewise, on real bars (the
  Quandl fixture) and on the demo market; the daily cumulative series starts at 0 on the
  first session and ends at the summary's figure.
- The replay starts at the first session where every series the screen reads has its own
  lookback: an RS_rating screen (253 bars) and momentum-leaders have no empty early session,
  and one session earlier RS_rating has no value anywhere.
- The data source is in every output; "synthetic" prominently on the demo market (JSON and
  CLI text), and a real source is named as it is.
- A series that is exactly 0 has t = 0: a screen passing its whole universe has excess 0
  with t 0 at every horizon (not rounding noise); Newey-West lags are as documented.
- Rank IC and mean excess by decile equal alphalens-reloaded's on the same factor and prices
  (no gaps, so own bars are sessions; 100 symbols: alphalens's qcut deciles are the
  rank deciles; simple returns demeaned by the day's mean, as alphalens does) to 1e-9.
"""

from __future__ import annotations

import warnings

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from technic_v4.data.demo import DemoSpec, build_demo_store, generate_demo_market
from technic_v4.data.panel import Panel
from technic_v4.data.reader import PanelSource, StoreReader
from technic_v4.scan import ScanConfig
from technic_v4.validate import ValidateOptions, replay, stats, validate
from technic_v4.validate.returns import Forwards

DAYS_PER_YEAR = 365.25


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("conventions") / "data"
    build_demo_store(root, DemoSpec(n_symbols=300, start="2022-01-03"))
    return root


@pytest.fixture(scope="module")
def real(real_bars):
    """The Quandl fixture with the universe columns a scan reads."""
    uni = real_bars.universe.copy()
    for col, value in (("name", "fixture"), ("sector", "Information Technology"),
                       ("industry", "Software")):
        if col not in uni:
            uni[col] = value
    return PanelSource(Panel(symbols=real_bars.symbols, sessions=real_bars.sessions,
                             universe=uni, source=real_bars.source,
                             **{f: getattr(real_bars, f) for f in
                                ("open", "high", "low", "close", "volume")}))


def _check_span(report: dict, daily: pd.DataFrame) -> None:
    p, span = report["portfolio"], report["conventions"]["span"]
    days = (pd.Timestamp(span["last_session"]) - pd.Timestamp(span["first_session"])).days
    assert span["first_session"] == report["data"]["first_session"] == daily["session"].iloc[0]
    assert span["last_session"] == report["data"]["last_session"] == daily["session"].iloc[-1]
    assert p["calendar_days"] == days > 0
    for suffix in ("", "_gross"):
        cum, ann = p[f"cumulative_excess{suffix}"], p[f"annualised_excess{suffix}"]
        assert ann == pytest.approx((1 + cum) ** (DAYS_PER_YEAR / days) - 1, abs=2e-6), suffix
    cumulative = daily["portfolio_cumulative"].to_numpy()
    assert cumulative[0] == 0.0
    assert cumulative[-1] == pytest.approx(p["cumulative_excess"], abs=1e-6)
    net = daily["portfolio_net"].to_numpy()
    assert np.prod(1 + np.nan_to_num(net)) - 1 == pytest.approx(p["cumulative_excess"],
                                                                 abs=1e-6)
    gross = daily["portfolio_gross"].to_numpy()
    assert np.prod(1 + np.nan_to_num(gross)) - 1 == pytest.approx(
        p["cumulative_excess_gross"], abs=1e-6)


def test_cumulative_and_annualised_agree_over_the_span_on_real_bars(real):
    rep = validate(ScanConfig(rank="mom_21"), real,
                   ValidateOptions(horizons=(5,), top=2, every=5, cost_bps=25))
    _check_span(rep.report, rep.daily)
    p = rep.report["portfolio"]
    assert p["cumulative_excess"] < p["cumulative_excess_gross"]  # costs were taken
    assert p["steps"] == len(rep.daily) - 1  # the last step would end after the data
    assert rep.report["data"]["source"] == "quandl-wiki-fixture"
    assert rep.report["data"]["synthetic"] is False
    assert rep.report["data"]["notice"] == "data source: quandl-wiki-fixture"


def test_cumulative_and_annualised_agree_over_the_span_on_the_demo(demo):
    rep = validate(ScanConfig(where="RSI < 45", rank="mom_63 / ATR_pct"), StoreReader(demo),
                   ValidateOptions(horizons=(1, 5), cost_bps=10))
    _check_span(rep.report, rep.daily)
    conv = rep.report["conventions"]
    assert conv["newey_west_lags"] == {"1": 0, "5": 10}
    assert "close of the session the screen ran" in conv["entry"]
    assert "equal-weighted" in conv["excess_vs"]
    assert "10 bps per side" in conv["costs"]


@pytest.mark.parametrize("kw", [{"where": "RS_rating >= 80"},
                                {"screen": "momentum-leaders"}],
                         ids=["RS_rating", "momentum-leaders"])
def test_the_replay_starts_where_rs_rating_has_its_lookback(demo, kw):
    reader = StoreReader(demo)
    rep = replay(ScanConfig(where=kw.get("where")), reader) if "where" in kw else None
    if rep is not None:
        rs = rep.history.axes["D"].at_all("rs_raw", np.r_[rep.columns[0] - 1, rep.columns[0]])
        assert np.isnan(rs[:, 0]).all() and np.isfinite(rs[:, 1]).any()  # the rule is tight
        assert rep.columns[0] == rep.lookback == 252
    report = validate(ScanConfig(**kw), reader, ValidateOptions(horizons=(5,))).report
    assert report["data"]["history_needed"] == 252
    assert report["passing"]["sessions_with_none"] == 0
    years = report["horizons"]["5"]["by_year"]
    assert all(s["n_sessions"] > 0 for s in years.values()), years


def test_synthetic_is_named_in_the_json_and_the_cli_text(demo):
    from technic_v4.cli import app

    runner = CliRunner()
    args = ["validate", "--where", "RSI < 40", "--horizon", "5", "--every", "5",
            "--data-dir", str(demo)]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    first = table.stdout.splitlines()[0]
    assert first.startswith("SYNTHETIC DATA") and "not real" in first
    as_json = runner.invoke(app, [*args, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = orjson.loads(as_json.stdout)["data"]
    assert data["source"] == "synthetic" and data["synthetic"] is True
    assert data["notice"].startswith("SYNTHETIC DATA")
    assert "SYNTHETIC DATA" in as_json.stderr


def test_an_all_zero_series_has_t_zero(demo):
    assert stats.t_stat(np.zeros(40), 3) == 0.0
    assert stats.t_stat(np.r_[np.zeros(40), np.nan], 0) == 0.0
    assert stats.newey_west_lags(1) == 0 and stats.newey_west_lags(5) == 10
    assert stats.newey_west_lags(5, every=5) == 0 and stats.newey_west_lags(21, 5) == 9
    rep = validate(ScanConfig(), StoreReader(demo), ValidateOptions(horizons=(1, 5, 21)))
    for h, s in rep.report["horizons"].items():
        assert s["passing_excess"]["mean"] == 0.0, h
        assert s["passing_excess"]["t_stat"] == 0.0, h
        assert (rep.daily[f"excess_{h}d"].dropna() == 0.0).all(), h


def _clean_panel() -> Panel:
    """100 demo symbols that trade every session (own bars = sessions, as alphalens reads)."""
    panel = generate_demo_market(DemoSpec(n_symbols=160, start="2025-06-02", seed=9)).to_panel()
    rows = np.flatnonzero(np.isfinite(panel.close).all(1))[:100]
    assert len(rows) == 100
    return panel.select(rows)


@pytest.mark.parametrize("horizon", [1, 5])
def test_rank_ic_and_deciles_equal_alphalens(horizon):
    import alphalens.performance as perf
    import alphalens.utils as al_utils

    panel = _clean_panel()
    rep = replay(ScanConfig(rank="mom_21"), PanelSource(panel))
    assert rep.passing.all()  # every symbol ranked every session: the same cells as alphalens
    delisted = np.zeros(panel.n_symbols, dtype=bool)
    fwd = Forwards(rep.history.axes["D"], rep.columns, rep.valid, delisted).horizon(horizon)
    ranked = stats.Ranked.of(rep.rank, rep.ascending)
    ic = pd.Series(stats.rank_ics(ranked, fwd.raw), index=rep.sessions)  # as the report
    simple = fwd.raw - fwd.raw_mean[None, :]  # alphalens demeans simple returns by the day
    by_day = stats.group_means(ranked.bucket, simple, 10, offset=1)

    utc = rep.sessions.tz_localize("UTC")
    prices = pd.DataFrame(panel.close.T, index=panel.sessions.tz_localize("UTC"),
                          columns=panel.symbols)
    factor = pd.DataFrame(rep.rank.T, index=utc, columns=panel.symbols).stack().dropna()
    factor.index.names = ["date", "asset"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = al_utils.get_clean_factor_and_forward_returns(
            factor, prices, periods=(horizon,), quantiles=10, max_loss=1.0)
        al_ic = perf.factor_information_coefficient(data).iloc[:, 0].dropna()
        al_means, _ = perf.mean_return_by_quantile(data, demeaned=True)
    assert len(al_ic) == len(rep.sessions) - horizon
    ours = ic.reindex(al_ic.index.tz_localize(None))
    np.testing.assert_allclose(ours.to_numpy(), al_ic.to_numpy(), rtol=0, atol=1e-9)

    days = np.isin(rep.sessions, al_ic.index.tz_localize(None))
    ours_deciles = np.array([np.nanmean(by_day[b][days]) for b in range(10)])
    theirs = al_means.iloc[:, 0].to_numpy()  # quantile 1 = lowest factor = our decile 10
    np.testing.assert_allclose(ours_deciles[::-1], theirs, rtol=0, atol=1e-9)
    report_deciles = stats.deciles(stats.group_means(
        ranked.bucket, np.where(days[None, :], simple, np.nan), 10, offset=1))
    np.testing.assert_allclose([d["mean_excess"] for d in report_deciles][::-1], theirs,
                               rtol=0, atol=1e-6)  # the report rounds to 6 digits
