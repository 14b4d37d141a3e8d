"""Every indicator output against TA-Lib: real bars, windows of them, and awkward panels.

The reference for a symbol is TA-Lib run on that symbol's own bars (its NaN sessions dropped),
which is what "a missing day is not a bar" means. Reference parameters are the contract's
(DESIGN.md), written out here rather than read from the registry, so a registry that drifts
from the contract fails. A registry entry without a reference here fails too.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
import talib

from technic_v4.data.panel import FIELDS, Panel, panel_from_arrays
from technic_v4.indicators import REGISTRY, compute_indicators, required_bars
from technic_v4.indicators.engine import bar_layout

RTOL = 1e-9


def _div(a, b):
    """a / b, NaN where b is 0 (the engine's documented answer for an undefined ratio)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0.0, np.nan, a / b)


def _macd(b):
    macd, signal, hist = talib.MACD(b["close"], 12, 26, 9)
    return {"MACD": macd, "MACD_signal": signal, "MACD_hist": hist}


def _bbands(b):
    up, mid, lo = talib.BBANDS(b["close"], 20, 2.0, 2.0, 0)
    return {"BB_upper": up, "BB_middle": mid, "BB_lower": lo, "BB_width": _div(up - lo, mid)}


def _atr(b):
    atr = talib.ATR(b["high"], b["low"], b["close"], 14)
    return {"ATR": atr, "ATR_pct": _div(atr, b["close"])}


def _volume(b):
    avg = talib.SMA(b["volume"], 20)
    return {"Volume_SMA20": avg, "Volume_ratio": _div(b["volume"], avg)}


def _mom(n, b):
    return {f"mom_{n}": talib.ROCR(b["close"], n) - 1.0}


def _sma(n, b):
    return {f"SMA{n}": talib.SMA(b["close"], n)}


def _extreme(field, fn, name, b):
    ext = fn(b[field], 20)
    return {f"{name}_20": ext, f"dist_{name}_20": _div(b["close"], ext) - 1.0}


# registry entry -> f(one symbol's compacted bars by field) -> {output: values}
REFERENCES = {
    "RSI": lambda b: {"RSI": talib.RSI(b["close"], 14)},
    "MACD": _macd,
    "BBANDS": _bbands,
    "ATR": _atr,
    "VOLUME": _volume,
    **{f"mom_{n}": partial(_mom, n) for n in (5, 21, 63, 126)},
    **{f"SMA{n}": partial(_sma, n) for n in (20, 50, 200)},
    "HIGH20": partial(_extreme, "high", talib.MAX, "high"),
    "LOW20": partial(_extreme, "low", talib.MIN, "low"),
}


def expected(panel: Panel, entry: str) -> dict[str, np.ndarray]:
    """TA-Lib on each symbol's own bars, scattered back onto the session axis."""
    outs = {o: np.full(panel.close.shape, np.nan) for o in REGISTRY[entry].outputs}
    for i in range(panel.n_symbols):
        bar = np.isfinite(panel.close[i])
        if not bar.any():
            continue
        bars = {f: np.ascontiguousarray(getattr(panel, f)[i, bar]) for f in FIELDS}
        ref = REFERENCES[entry](bars)
        assert set(ref) == set(outs), f"reference for {entry} gives {sorted(ref)}"
        for name, values in ref.items():
            outs[name][i, bar] = values
    return outs


def check_entry(panel: Panel, entry: str) -> None:
    """All bars (history) and each symbol's last bar, every output of `entry`, plus flags."""
    spec = REGISTRY[entry]
    table = compute_indicators(panel, spec.outputs, history=True)
    ref = expected(panel, entry)
    last = panel.last_bar_index()
    has_bar = last >= 0
    np.testing.assert_array_equal(table.bars, panel.bar_counts())
    np.testing.assert_array_equal(table.last_bar, last)
    for name in spec.outputs:
        np.testing.assert_allclose(
            table.history[name], ref[name], rtol=RTOL, atol=0, equal_nan=True, err_msg=name
        )
        ref_last = np.where(has_bar, ref[name][np.arange(panel.n_symbols), last], np.nan)
        np.testing.assert_allclose(
            table.last[name], ref_last, rtol=RTOL, atol=0, equal_nan=True, err_msg=name
        )
        np.testing.assert_array_equal(table.insufficient[name], table.bars < spec.min_bars)
        assert np.isnan(table.last[name][table.insufficient[name]]).all()


def test_every_registry_entry_has_a_talib_reference():
    assert set(REFERENCES) == set(REGISTRY)


# ---------------------------------------------------------------- real bars
WINDOWS = {
    "full": (None, None),
    "last150": (None, 150),
    "last252": (None, 252),
    "last300": (None, 300),
    "fb_young": ("2012-08-01", 252),  # FB has ~50 bars: MACD yes, SMA200 no
}


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("entry", list(REGISTRY))
def test_real_bars_match_talib(real_bars, entry, window):
    end_date, bars = WINDOWS[window]
    end = real_bars.n_sessions - 1
    if end_date is not None:
        end = int(real_bars.sessions.searchsorted(pd.Timestamp(end_date), side="right")) - 1
    panel = real_bars.window(end, bars or real_bars.n_sessions)
    check_entry(panel, entry)


@pytest.mark.parametrize("entry", list(REGISTRY))
def test_real_bars_with_missing_days_match_talib(real_bars, entry):
    rng = np.random.default_rng(7)
    holes = rng.random(real_bars.close.shape) < 0.03
    panel = real_bars.window(real_bars.n_sessions - 1, 400)
    arrays = {f: np.where(holes[:, -400:], np.nan, getattr(panel, f)) for f in FIELDS}
    check_entry(panel_from_arrays(panel.symbols, panel.sessions, **arrays), entry)


# ---------------------------------------------------------------- awkward synthetic panels
def random_bars(rng: np.random.Generator, n: int, t: int, start: float = 50.0) -> dict:
    """Random-walk OHLCV whose opens gap away from the previous close (true range uses it)."""
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n, t)), axis=1))
    open_ = np.roll(close, 1, axis=1) * (1.0 + rng.normal(0.0, 0.01, (n, t)))
    spread = 1.0 + np.abs(rng.normal(0.0, 0.01, (n, t)))
    return {
        "open": open_,
        "high": np.maximum(open_, close) * spread,
        "low": np.minimum(open_, close) / spread,
        "close": close,
        "volume": rng.integers(100_000, 10_000_000, (n, t)).astype(np.float64),
    }


def awkward_panel(layout: str) -> Panel:
    """Rows that stress the bar layout and TA-Lib's edge cases; see the comments per row."""
    t = 320
    boundaries = sorted({k for s in REGISTRY.values() for k in (s.min_bars - 1, s.min_bars)})
    n_rows = 12 + len(boundaries) + (40 if layout == "mixed" else 0)
    rng = np.random.default_rng(11)
    b = random_bars(rng, n_rows, t)
    keep = np.ones((n_rows, t), dtype=bool)
    keep[1] = rng.random(t) > 0.1  # gaps in the middle
    keep[2, :120] = False  # IPO
    keep[3, 250:] = False  # delisted
    keep[4] = (rng.random(t) > 0.2) & (np.arange(t) >= 60) & (np.arange(t) < 300)
    keep[5] = False  # no bars at all
    keep[6, :-10] = False  # 10 bars, at the end
    keep[7] = (np.arange(t) >= 100) & (np.arange(t) < 110)  # 10 bars, then delisted
    for f in ("open", "high", "low", "close"):
        b[f][8] = 20.0  # flat: RSI 0, zero std, zero true range
        b[f][9] = 100.0 + 1e-7 * (np.arange(t) % 2)  # fine tick: tiny but real variance
    for f in ("open", "high", "low", "close"):
        b[f][10] *= 1e-5  # sub-penny quotes
    b["volume"][11, -30:] = 0.0  # no volume: SMA 0, Volume_ratio undefined
    for j, k in enumerate(boundaries):  # exactly min_bars - 1 and min_bars bars
        keep[12 + j, : t - k] = False
    if layout == "gapped":  # knock one bar out of every row with bars: all rows need packing
        for i in range(n_rows):
            idx = np.flatnonzero(keep[i])
            if len(idx) > 2:
                keep[i, idx[len(idx) // 2]] = False
    arrays = {f: np.where(keep, v, np.nan) for f, v in b.items()}
    sessions = pd.bdate_range("2020-01-01", periods=t)
    return panel_from_arrays([f"S{i:03d}" for i in range(n_rows)], sessions, **arrays)


@pytest.fixture(scope="module", params=["mixed", "gapped"])
def awkward(request) -> Panel:
    panel = awkward_panel(request.param)
    unpacked = int((~bar_layout(panel.close)[2]).sum())
    # "mixed" runs in place + a packed block; "gapped" packs every row: both engine paths
    assert (2 * unpacked > panel.n_symbols) == (request.param == "gapped")
    return panel


@pytest.mark.parametrize("entry", list(REGISTRY))
def test_awkward_panels_match_talib(awkward, entry):
    check_entry(awkward, entry)


def test_documented_edge_answers(awkward):
    table = compute_indicators(awkward)
    flat, no_volume = 8, 11
    assert table.last["RSI"][flat] == 0.0  # TA-Lib's answer for a flat window
    assert table.last["BB_width"][flat] == 0.0
    assert table.last["ATR_pct"][flat] == 0.0
    assert np.isnan(table.last["Volume_ratio"][no_volume])
    assert not table.insufficient["Volume_ratio"][no_volume]
    assert np.isnan(table.to_frame().loc["S005"]).all()  # no bars: NaN everywhere, flagged
    assert all(table.insufficient[o][5] for o in table.outputs)


@pytest.mark.parametrize("entry", list(REGISTRY))
def test_min_bars_is_talib_lookback_plus_one(entry):
    spec = REGISTRY[entry]
    b = random_bars(np.random.default_rng(3), 2, spec.min_bars)
    for v in b.values():
        v[1, 0] = np.nan  # row 1 has one bar too few
    enough = {f: v[0] for f, v in b.items()}
    short = {f: v[1, 1:] for f, v in b.items()}
    for name in spec.outputs:
        assert np.isfinite(REFERENCES[entry](enough)[name][-1]), name
        assert np.isnan(REFERENCES[entry](short)[name]).all(), name
    sessions = pd.bdate_range("2024-01-01", periods=spec.min_bars)
    panel = panel_from_arrays(["OK", "SHORT"], sessions, **b)
    table = compute_indicators(panel, spec.outputs)
    for name in spec.outputs:
        assert np.isfinite(table.last[name][0]) and not table.insufficient[name][0]
        assert np.isnan(table.last[name][1]) and table.insufficient[name][1]


# ---------------------------------------------------------------- engine surface
def test_subset_of_outputs_is_the_same_numbers(real_bars):
    everything = compute_indicators(real_bars)
    some = compute_indicators(real_bars, ["MACD_hist", "RSI", "MACD_hist"])
    assert some.outputs == ("MACD_hist", "RSI")
    assert list(some.to_frame().columns) == ["MACD_hist", "RSI"]
    for name in some.outputs:
        np.testing.assert_array_equal(some.last[name], everything.last[name])
    frame = everything.to_frame()
    assert frame.index.name == "symbol" and list(frame.index) == list(real_bars.symbols)
    assert list(frame.columns) == list(everything.outputs)


def test_unknown_output_is_an_error_naming_valid_ones(real_bars):
    with pytest.raises(KeyError, match="valid"):
        compute_indicators(real_bars, ["RSI", "rsi_14"])


def test_required_bars():
    assert required_bars() == 200  # SMA200; mom_126 needs 127
    assert required_bars(["RSI"]) == 15
    assert required_bars(["MACD_signal", "mom_5"]) == 34


@pytest.mark.parametrize("shape", [(0, 30), (3, 0)])
def test_empty_panels(shape):
    sessions = pd.bdate_range("2024-01-01", periods=shape[1])
    panel = panel_from_arrays([f"S{i}" for i in range(shape[0])], sessions, close=np.ones(shape))
    table = compute_indicators(panel, history=True)
    assert all(v.shape == (shape[0],) for v in table.last.values())
    assert all(np.isnan(v).all() for v in table.last.values())
    assert all(h.shape == shape for h in table.history.values())
