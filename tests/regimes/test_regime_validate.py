"""Validation by market regime: every statistic within each regime, a screen that reads the
regime evaluated as of each session, the regime label in the daily series."""

from __future__ import annotations

import numpy as np
import pytest

from technic_v4.data.demo import DemoSpec, generate_demo_market
from technic_v4.data.reader import PanelSource
from technic_v4.regimes import REGIMES, UNKNOWN, regime_series
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.run import run_scan
from technic_v4.validate import ValidateOptions, validate


@pytest.fixture(scope="module")
def source() -> PanelSource:
    return PanelSource(generate_demo_market(DemoSpec(n_symbols=80, start="2022-01-03",
                                                     end="2024-06-28")).to_panel())


@pytest.fixture(scope="module")
def momentum(source):
    return validate(ScanConfig(screen="momentum-leaders"), source,
                    ValidateOptions(horizons=(1, 5)))


def test_by_regime_means_weighted_by_sessions_equal_the_overall_mean(momentum) -> None:
    report = momentum.report
    for h, stats in report["horizons"].items():
        cells = stats["by_regime"]
        assert set(cells) <= {*REGIMES, UNKNOWN} and len(cells) >= 3
        n = sum(c["passing_excess"]["n_sessions"] for c in cells.values())
        assert n == stats["passing_excess"]["n_sessions"]
        weighted = sum(c["passing_excess"]["mean"] * c["passing_excess"]["n_sessions"]
                       for c in cells.values() if c["passing_excess"]["n_sessions"]) / n
        # the report rounds each mean to 6 decimals; the daily series holds them exactly
        assert weighted == pytest.approx(stats["passing_excess"]["mean"], abs=1e-6)
        daily = momentum.daily[f"excess_{h}d"].to_numpy()
        exact = sum(np.nansum(daily[momentum.daily["regime"] == r]) for r in cells)
        assert exact / n == pytest.approx(np.nanmean(daily), rel=1e-12)
        ic_n = sum(c["rank_ic"]["n_sessions"] for c in cells.values())
        assert ic_n == stats["rank_ic"]["n_sessions"]
        assert sum(c["sessions"] for c in cells.values()) == report["data"][
            "sessions_evaluated"], h
        assert all(c["hit_rate"] is None or 0 <= c["hit_rate"] <= 1 for c in cells.values())


def test_the_daily_series_carries_each_sessions_regime(momentum, source) -> None:
    series = regime_series(source.panel)
    daily = momentum.daily
    at = series.sessions.get_indexer(daily["session"].astype("datetime64[ns]"))
    assert list(daily["regime"]) == list(series.regime[at])
    sessions = momentum.report["regimes"]["sessions"]
    assert sum(v["sessions"] for v in sessions.values()) == len(daily)
    assert sessions == {r: {"sessions": int((daily["regime"] == r).sum()),
                            "share": sessions[r]["share"]} for r in sessions}


def test_a_screen_reading_the_regime_sees_each_sessions_own(source) -> None:
    series = regime_series(source.panel)
    report = validate(ScanConfig(where='regime == "trend_up" and breadth_50 > 0.5'), source,
                      ValidateOptions(horizons=(1,)))
    daily = report.daily
    at = series.sessions.get_indexer(daily["session"].astype("datetime64[ns]"))
    on = np.array([r.startswith("trend_up/") for r in series.regime[at]]) & (
        series.numbers["breadth_50"][at] > 0.5)
    assert on.any() and (~on).any()
    assert (daily["passing"].to_numpy()[~on] == 0).all()
    assert (daily["passing"].to_numpy()[on] == daily["universe"].to_numpy()[on]).all()
    # the same as a scan as of one of those sessions
    day = daily["session"][np.flatnonzero(on)[0]]
    frame, status = run_scan(ScanConfig(where='regime == "trend_up" and breadth_50 > 0.5',
                                        as_of_date=day), loader=source)
    assert status.regime_tags["regime"].startswith("trend_up/")
    assert len(frame) == daily["passing"][np.flatnonzero(on)[0]]
