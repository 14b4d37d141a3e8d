"""The market regime in scans: the status's regime_tags, the screen columns, the seed's
`_run_symbol_scans(config, universe, regime_tags, ...)`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from panels import small_panel

from technic_v4.data.reader import PanelSource
from technic_v4.errors import ConfigError
from technic_v4.regimes import regime_series
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.run import run_scan


@pytest.fixture(scope="module")
def source() -> PanelSource:
    return PanelSource(small_panel())


@pytest.mark.parametrize("as_of", [None, "2024-02-15"])
def test_the_status_carries_the_regime_of_the_scans_session(source, as_of) -> None:
    frame, status = run_scan(ScanConfig(as_of_date=as_of), loader=source)
    series = regime_series(source.panel)
    expected = series.tags_at(series.index_of(status.as_of))
    assert status.regime_tags == expected
    assert expected["regime"] != "unknown" and expected["session"] == status.as_of
    assert status.summary()["regime_tags"] == expected  # the JSON meta


def test_regime_and_its_numbers_are_screen_columns(source) -> None:
    everyone, status = run_scan(ScanConfig(), loader=source)
    tags = status.regime_tags
    trend, vol = tags["trend"], tags["volatility"]
    breadth = tags["numbers"]["breadth_50"]
    same, _ = run_scan(ScanConfig(where=f'regime == "{trend}" and regime == "{vol}"'),
                       loader=source)
    assert sorted(same["Symbol"]) == sorted(everyone["Symbol"])
    assert set(same["regime"]) == {tags["regime"]}  # a column read is a column shown
    other, _ = run_scan(ScanConfig(where=f'regime != "{tags["regime"]}"'), loader=source)
    assert other.empty
    above, _ = run_scan(ScanConfig(where=f"breadth_50 > {breadth - 1e-3}"), loader=source)
    below, _ = run_scan(ScanConfig(where=f"breadth_50 > {breadth + 1e-3}"), loader=source)
    assert len(above) == len(everyone) and below.empty
    np.testing.assert_allclose(above["breadth_50"], breadth)


def test_unknown_regimes_and_benchmarks_are_errors_naming_the_valid_ones(source) -> None:
    with pytest.raises(ConfigError, match="regimes are trend_up/calm") as exc:
        run_scan(ScanConfig(where='regime == "bull"'), loader=source)
    assert exc.value.field == "where"
    with pytest.raises(ConfigError, match="not a symbol in the store") as exc:
        run_scan(ScanConfig(regime_benchmark="ZZZZ"), loader=source)
    assert exc.value.field == "regime_benchmark"
    _, status = run_scan(ScanConfig(regime_benchmark="SAC"), loader=source)
    series = regime_series(source.panel, "SAC")
    assert status.regime_tags == series.tags_at(series.index_of(status.as_of))


def test_the_seeds_run_symbol_scans_signature_is_accepted(source) -> None:
    from technic_v4.scanner_core import _run_symbol_scans

    universe = [SimpleNamespace(symbol=s, sector="", industry="") for s in
                source.panel.symbols[6:20]]
    frame, stats = _run_symbol_scans(ScanConfig(), universe, {"benchmark": "SAC"}, 200,
                                     None, None, loader=source)
    _, status = run_scan(ScanConfig(symbols=list(source.panel.symbols[6:20]),
                                    lookback_days=200, regime_benchmark="SAC"), loader=source)
    assert stats["attempted"] == 14 and stats["kept"] == len(frame) == status.kept
    assert stats["regime_tags"] == status.regime_tags
    assert stats["regime_tags"]["benchmark"] == "SAC"
    with pytest.raises(ConfigError, match="ingest"):
        _run_symbol_scans(ScanConfig(), universe, None, 150, None, None,
                          {"X": frame}, loader=source)


def test_two_unversioned_panels_never_share_a_regime_series() -> None:
    one, two = PanelSource(small_panel(seed=1)), PanelSource(small_panel(seed=7))
    for src in (one, two, one):
        _, status = run_scan(ScanConfig(), loader=src)
        series = regime_series(src.panel)
        assert status.regime_tags == series.tags_at(series.index_of(status.as_of))
    assert regime_series(one.panel).numbers["breadth_50"][-1] != \
        regime_series(two.panel).numbers["breadth_50"][-1]
