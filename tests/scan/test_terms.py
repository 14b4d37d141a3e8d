"""A scan computes the indicator outputs something reads, and only those: the score, the
result row, the alpha features, the screen and the chosen columns (technic_v4/scan/terms.py).
What ran is read off the evaluated Block (`computed`), not a mock."""

from __future__ import annotations

import numpy as np
import pytest
import talib
from panels import small_panel

from technic_v4.data.panel import Panel
from technic_v4.data.reader import PanelSource
from technic_v4.indicators.registry import OUTPUTS
from technic_v4.scan import ScanConfig, run_scan
from technic_v4.scan.evaluate import WindowSpec, evaluate_chunk
from technic_v4.scan.terms import SCAN_OUTPUTS

UNREAD = ["ADX", "PLUS_DI", "STOCH_K", "CCI", "MFI", "OBV", "CDLENGULFING", "CDLDOJI",
          "high_52w", "dist_low_52w", "beta_60", "rs_raw", "EMA50", "gap_pct"]


@pytest.fixture(scope="module")
def panel() -> Panel:
    return small_panel(seed=5)


def computed(panel: Panel, cfg: ScanConfig) -> set[str]:
    spec = WindowSpec.of(cfg)
    block = evaluate_chunk(PanelSource(panel), list(panel.symbols), spec)
    return set(block.computed)


def test_default_scan_computes_what_it_reads_only(panel):
    ran = computed(panel, ScanConfig())
    assert ran >= set(SCAN_OUTPUTS)
    assert not ran & set(UNREAD)
    # every output ran belongs to an entry the score, the row or the features read
    entries = {OUTPUTS[n].name for n in SCAN_OUTPUTS}
    assert {OUTPUTS[n].name for n in ran} == entries
    assert set(WindowSpec.of(ScanConfig()).terms().entries) == entries


@pytest.mark.parametrize("cfg, wanted", [
    (ScanConfig(where="ADX > 20"), {"ADX"}),
    (ScanConfig(rank="CCI - MFI"), {"CCI", "MFI"}),
    (ScanConfig(where="W.STOCH_K > 50"), {"STOCH_K"}),
    (ScanConfig(columns=["Symbol", "high_52w", "CDLDOJI"]), {"high_52w", "CDLDOJI"}),
])
def test_a_screen_computes_what_it_reads(panel, cfg, wanted):
    ran = computed(panel, cfg)
    assert wanted <= ran
    assert wanted <= cfg_terms(cfg)
    assert not (ran - wanted - set(SCAN_OUTPUTS)) & set(UNREAD)


def cfg_terms(cfg: ScanConfig) -> set[str]:
    return set(WindowSpec.of(cfg).terms().outputs)


def test_adx_read_by_a_screen_equals_talib(panel):
    frame, status = run_scan(ScanConfig(where="ADX > 0", max_symbols=None),
                             loader=PanelSource(panel))
    assert "ADX" in frame.columns and len(frame) > 10
    for symbol, got in zip(frame["Symbol"], frame["ADX"], strict=True):
        i = int(np.flatnonzero(panel.symbols == symbol)[0])
        bars = np.isfinite(panel.close[i])
        want = talib.ADX(panel.high[i, bars], panel.low[i, bars], panel.close[i, bars], 14)[-1]
        assert got == pytest.approx(want, rel=1e-9), symbol
    default, _ = run_scan(ScanConfig(), loader=PanelSource(panel))
    assert "ADX" not in default.columns
