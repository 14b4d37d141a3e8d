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
from talib import abstract

from technic_v4.data.panel import FIELDS, Panel, panel_from_arrays
from technic_v4.indicators import (
    ALL_OUTPUTS,
    DEFAULT_OUTPUTS,
    REGISTRY,
    compute_indicators,
    required_bars,
)
from technic_v4.indicators.engine import bar_layout
from technic_v4.indicators.market import market_field

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


def _volume(n, avg_name, ratio_name, b):
    avg = talib.SMA(b["volume"], n)
    return {avg_name: avg, ratio_name: _div(b["volume"], avg)}


def _mom(n, b):
    return {f"mom_{n}": talib.ROCR(b["close"], n) - 1.0}


def _sma(n, b):
    return {f"SMA{n}": talib.SMA(b["close"], n)}


def _extreme(field, fn, name, n, suffix, b):
    ext = fn(b[field], n)
    return {f"{name}_{suffix}": ext, f"dist_{name}_{suffix}": _div(b["close"], ext) - 1.0}


def _hlc(b):
    return b["high"], b["low"], b["close"]


def _dmi(b):
    return {
        "ADX": talib.ADX(*_hlc(b), 14),
        "PLUS_DI": talib.PLUS_DI(*_hlc(b), 14),
        "MINUS_DI": talib.MINUS_DI(*_hlc(b), 14),
    }


def _stoch(b):
    k, d = talib.STOCH(*_hlc(b), 14, 3, 0, 3, 0)
    return {"STOCH_K": k, "STOCH_D": d}


def _shifted(x, n):
    return np.concatenate([np.full(min(n, len(x)), np.nan), x[:-n]])


def _roc(b):
    roc = talib.ROC(b["close"], 10)
    return {"ROC": np.where(_shifted(b["close"], 10) == 0.0, np.nan, roc)}  # TA-Lib answers 0


def _gap(b):
    return {"gap_pct": _div(b["open"], _shifted(b["close"], 1)) - 1.0}


def _perf(label, n, b):
    return {f"perf_{label}": talib.ROCR(b["close"], n) - 1.0}


def _days_since(event):
    """Bars since the last True of `event` (0 on it), NaN before the first."""
    idx = np.arange(len(event), dtype=np.float64)
    last = pd.Series(np.where(event, idx, np.nan)).ffill().to_numpy()
    return idx - last


def _cross(b):
    """Golden: SMA50 <= SMA200 on the bar before and > on the bar; death: >= then <."""
    diff = talib.SMA(b["close"], 50) - talib.SMA(b["close"], 200)
    before = _shifted(diff, 1)
    has_sma = ~np.isnan(diff)
    return {
        "days_since_golden_cross": np.where(has_sma, _days_since((diff > 0) & (before <= 0)),
                                            np.nan),
        "days_since_death_cross": np.where(has_sma, _days_since((diff < 0) & (before >= 0)),
                                           np.nan),
    }


def _rs(b):
    r = {n: talib.ROCR(b["close"], n) - 1.0 for n in (63, 126, 189, 252)}
    return {"rs_raw": 0.4 * r[63] + 0.2 * r[126] + 0.2 * r[189] + 0.2 * r[252]}


def _candle(name, b, **params):
    """TA-Lib's integer answer as floats, NaN over TA-Lib's own lookback (it answers 0 there)."""
    out = getattr(talib, name)(b["open"], b["high"], b["low"], b["close"], **params)
    out = out.astype(np.float64)
    out[: abstract.Function(name, **params).lookback] = np.nan
    return {name: out}


CANDLES = {
    "CDLENGULFING": {},
    "CDLHAMMER": {},
    "CDLSHOOTINGSTAR": {},
    "CDLDOJI": {},
    "CDLMORNINGSTAR": {"penetration": 0.3},
    "CDLEVENINGSTAR": {"penetration": 0.3},
    "CDL3WHITESOLDIERS": {},
    "CDL3BLACKCROWS": {},
}

# registry entry -> f(one symbol's compacted bars by field, plus "market") -> {output: values}
REFERENCES = {
    "RSI": lambda b: {"RSI": talib.RSI(b["close"], 14)},
    "MACD": _macd,
    "BBANDS": _bbands,
    "ATR": _atr,
    "VOLUME": partial(_volume, 20, "Volume_SMA20", "Volume_ratio"),
    **{f"mom_{n}": partial(_mom, n) for n in (5, 21, 63, 126)},
    **{f"SMA{n}": partial(_sma, n) for n in (20, 50, 200)},
    "HIGH20": partial(_extreme, "high", talib.MAX, "high", 20, "20"),
    "LOW20": partial(_extreme, "low", talib.MIN, "low", 20, "20"),
    # issue 13
    "ADX": _dmi,
    "STOCH": _stoch,
    "WILLR": lambda b: {"WILLR": talib.WILLR(*_hlc(b), 14)},
    "CCI": lambda b: {"CCI": talib.CCI(*_hlc(b), 20)},
    "MFI": lambda b: {"MFI": talib.MFI(*_hlc(b), b["volume"], 14)},
    "OBV": lambda b: {"OBV": talib.OBV(b["close"], b["volume"])},
    "ROC": _roc,
    **{f"EMA{n}": partial(lambda n, b: {f"EMA{n}": talib.EMA(b["close"], n)}, n)
       for n in (9, 21, 50)},
    "HIGH52W": partial(_extreme, "high", talib.MAX, "high", 252, "52w"),
    "LOW52W": partial(_extreme, "low", talib.MIN, "low", 252, "52w"),
    "GAP": _gap,
    **{f"perf_{label}": partial(_perf, label, n)
       for label, n in (("1w", 5), ("1m", 21), ("3m", 63), ("6m", 126), ("1y", 252))},
    "VOLUME50": partial(_volume, 50, "avg_volume_50", "rel_volume_50"),
    "SMA_CROSS": _cross,
    # the stock's beta to the market: TA-Lib's first input is the regressor (the index; its
    # docs had the roles reversed until 0.8.1, SourceForge bug 98)
    "BETA": lambda b: {"beta_60": talib.BETA(b["market"], b["close"], 60)},
    "RS": _rs,
    **{name: partial(_candle, name, **params) for name, params in CANDLES.items()},
}

# output -> (TA-Lib function, parameters) whose lookback + 1 is the output's min_bars
TALIB_LOOKBACK = {
    "RSI": ("RSI", {"timeperiod": 14}),
    "MACD": ("MACD", {}),
    "BB_upper": ("BBANDS", {"timeperiod": 20}),
    "ATR": ("ATR", {"timeperiod": 14}),
    "Volume_SMA20": ("SMA", {"timeperiod": 20}),
    "SMA200": ("SMA", {"timeperiod": 200}),
    "mom_126": ("ROCR", {"timeperiod": 126}),
    "high_20": ("MAX", {"timeperiod": 20}),
    "ADX": ("ADX", {"timeperiod": 14}),
    "PLUS_DI": ("PLUS_DI", {"timeperiod": 14}),
    "MINUS_DI": ("MINUS_DI", {"timeperiod": 14}),
    "STOCH_K": ("STOCH", {"fastk_period": 14, "slowk_period": 3, "slowd_period": 3}),
    "STOCH_D": ("STOCH", {"fastk_period": 14, "slowk_period": 3, "slowd_period": 3}),
    "WILLR": ("WILLR", {"timeperiod": 14}),
    "CCI": ("CCI", {"timeperiod": 20}),
    "MFI": ("MFI", {"timeperiod": 14}),
    "OBV": ("OBV", {}),
    "ROC": ("ROC", {"timeperiod": 10}),
    **{f"EMA{n}": ("EMA", {"timeperiod": n}) for n in (9, 21, 50)},
    "high_52w": ("MAX", {"timeperiod": 252}),
    "dist_high_52w": ("MAX", {"timeperiod": 252}),
    "low_52w": ("MIN", {"timeperiod": 252}),
    "dist_low_52w": ("MIN", {"timeperiod": 252}),
    "gap_pct": ("ROCR", {"timeperiod": 1}),
    **{f"perf_{label}": ("ROCR", {"timeperiod": n})
       for label, n in (("1w", 5), ("1m", 21), ("3m", 63), ("6m", 126), ("1y", 252))},
    "avg_volume_50": ("SMA", {"timeperiod": 50}),
    "rel_volume_50": ("SMA", {"timeperiod": 50}),
    "beta_60": ("BETA", {"timeperiod": 60}),
    "rs_raw": ("ROCR", {"timeperiod": 252}),
    **{name: (name, params) for name, params in CANDLES.items()},
}
# no single TA-Lib function: a cross needs both SMAs on the bar and on the bar before
CROSSES = ("days_since_golden_cross", "days_since_death_cross")


def extra_for(panel: Panel, entry: str) -> dict[str, np.ndarray]:
    """The extra inputs an entry reads: the market index on every symbol's bars for BETA."""
    return {"market": market_field(panel)} if "market" in REGISTRY[entry].inputs else {}


def expected(panel: Panel, entry: str) -> dict[str, np.ndarray]:
    """TA-Lib on each symbol's own bars, scattered back onto the session axis."""
    outs = {o: np.full(panel.close.shape, np.nan) for o in REGISTRY[entry].outputs}
    arrays = {f: getattr(panel, f) for f in FIELDS} | extra_for(panel, entry)
    for i in range(panel.n_symbols):
        bar = np.isfinite(panel.close[i])
        if not bar.any():
            continue
        bars = {f: np.ascontiguousarray(a[i, bar]) for f, a in arrays.items()}
        ref = REFERENCES[entry](bars)
        assert set(ref) == set(outs), f"reference for {entry} gives {sorted(ref)}"
        for name, values in ref.items():
            outs[name][i, bar] = values
    return outs


def check_entry(panel: Panel, entry: str) -> None:
    """All bars (history) and each symbol's last bar, every output of `entry`, plus flags."""
    spec = REGISTRY[entry]
    table = compute_indicators(panel, spec.outputs, history=True, extra=extra_for(panel, entry))
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
        np.testing.assert_array_equal(table.insufficient[name],
                                      table.bars < spec.bars_needed(name))
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
    needed = {s.bars_needed(o) for s in REGISTRY.values() for o in s.outputs}
    boundaries = sorted({k for n in needed for k in (n - 1, n)})
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


def test_every_output_names_its_talib_lookback():
    assert set(TALIB_LOOKBACK) | set(CROSSES) >= set(ALL_OUTPUTS) - set(DEFAULT_OUTPUTS)


@pytest.mark.parametrize("name", list(TALIB_LOOKBACK))
def test_min_bars_is_the_talib_functions_lookback_plus_one(name):
    function, params = TALIB_LOOKBACK[name]
    spec = next(s for s in REGISTRY.values() if name in s.outputs)
    assert spec.bars_needed(name) == abstract.Function(function, **params).lookback + 1


def crossing_bars(n: int) -> dict[str, np.ndarray]:
    """n flat bars, the last one jumping up: SMA50 = SMA200 up to bar n-2, then above."""
    close = np.full(n, 10.0)
    close[-1] = 11.0
    return {"open": close, "high": close, "low": close, "close": close,
            "volume": np.full(n, 1e6)}


@pytest.mark.parametrize("entry", list(REGISTRY))
def test_min_bars_is_talib_lookback_plus_one(entry):
    """Per output: its min_bars bars give a value (TA-Lib's and ours), one bar fewer none."""
    spec = REGISTRY[entry]
    for k in sorted({spec.bars_needed(o) for o in spec.outputs}):
        names = [o for o in spec.outputs if spec.bars_needed(o) == k]
        b = random_bars(np.random.default_rng(3), 2, k)
        if entry == "SMA_CROSS":  # a cross on the last bar: the earliest bar one can be
            b = {f: np.stack([v, v]) for f, v in crossing_bars(k).items()}
            names = ["days_since_golden_cross"]
        for v in b.values():
            v[1, 0] = np.nan  # row 1 has one bar too few
        sessions = pd.bdate_range("2024-01-01", periods=k)
        panel = panel_from_arrays(["OK", "SHORT"], sessions, **b)
        extra = extra_for(panel, entry)
        enough = {f: v[0] for f, v in b.items()} | {f: v[0] for f, v in extra.items()}
        short = {f: v[1, 1:] for f, v in b.items()} | {f: v[1, 1:] for f, v in extra.items()}
        for name in names:
            assert np.isfinite(REFERENCES[entry](enough)[name][-1]), name
            assert np.isnan(REFERENCES[entry](short)[name]).all(), name
        table = compute_indicators(panel, spec.outputs, extra=extra)
        for name in names:
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
    assert required_bars() == 200  # the default set: SMA200; mom_126 needs 127
    assert required_bars(["RSI"]) == 15
    assert required_bars(["MACD_signal", "mom_5"]) == 34
    assert required_bars(["PLUS_DI"]) == 15 and required_bars(["ADX", "PLUS_DI"]) == 28
    assert required_bars(ALL_OUTPUTS) == 253  # rs_raw and perf_1y: close 252 bars ago


def test_default_outputs_are_the_scans_set_and_all_outputs_everything(real_bars):
    default = compute_indicators(real_bars)
    assert default.outputs == DEFAULT_OUTPUTS and len(DEFAULT_OUTPUTS) == 23
    market = market_field(real_bars)
    everything = compute_indicators(real_bars, ALL_OUTPUTS, extra={"market": market})
    assert everything.outputs == ALL_OUTPUTS
    assert set(ALL_OUTPUTS) == {o for s in REGISTRY.values() for o in s.outputs}
    for name in DEFAULT_OUTPUTS:
        np.testing.assert_array_equal(everything.last[name], default.last[name])


def test_an_extra_input_not_given_is_an_error_naming_it(real_bars):
    with pytest.raises(ValueError, match="beta_60.*'market'.*market_field"):
        compute_indicators(real_bars, ["RSI", "beta_60"])
    with pytest.raises(ValueError, match="shape"):
        compute_indicators(real_bars, ["beta_60"], extra={"market": np.ones(3)})
    compute_indicators(real_bars, ["RSI"], extra={"market": np.ones(3)})  # not read: ignored


@pytest.mark.parametrize("shape", [(0, 30), (3, 0)])
def test_empty_panels(shape):
    sessions = pd.bdate_range("2024-01-01", periods=shape[1])
    panel = panel_from_arrays([f"S{i}" for i in range(shape[0])], sessions, close=np.ones(shape))
    table = compute_indicators(panel, ALL_OUTPUTS, history=True,
                               extra={"market": market_field(panel)})
    assert all(v.shape == (shape[0],) for v in table.last.values())
    assert all(np.isnan(v).all() for v in table.last.values())
    assert all(h.shape == shape for h in table.history.values())


# ---------------------------------------------------------------- candlestick patterns
def candle_bars(rng: np.random.Generator, n: int, t: int) -> dict:
    """OHLC in cents from a vocabulary of candle shapes (dojis, long and short bodies, long
    and missing shadows, gaps), with three white soldiers and three black crows planted now
    and then, so every pattern under test actually occurs (random walks rarely form them)."""
    bars = {f: np.empty((n, t)) for f in ("open", "high", "low", "close")}
    for i in range(n):
        price, k = 50.0, 0
        while k < t:
            if rng.random() < 0.02 and k + 4 <= t:  # planted 3-candle run (+ a lead candle)
                sign = rng.choice([1.0, -1.0])
                body = price * 0.02
                seq = [(price, price - sign * body * 0.3, body * 0.2, body * 0.2)]
                op = price
                for _ in range(3):
                    seq.append((op, op + sign * body, 0.0, body * 0.3))
                    op += sign * body / 2
            else:
                body = price * rng.choice([0.0002, 0.004, 0.012, 0.03])
                op = price * (1.0 + rng.choice([0.0, 0.0, 0.01, -0.01, 0.02, -0.02]))
                seq = [(op, op + rng.choice([1.0, -1.0]) * body,
                        price * rng.choice([0.0, 0.0005, 0.005, 0.03]),
                        price * rng.choice([0.0, 0.0005, 0.005, 0.03]))]
            for op, cl, shadow_a, shadow_b in seq[: t - k]:
                # for a black planted candle the long shadow goes up, the missing one down
                upper, lower = (shadow_a, shadow_b) if cl >= op else (shadow_b, shadow_a)
                bars["open"][i, k], bars["close"][i, k] = op, cl
                bars["high"][i, k] = max(op, cl) + upper
                bars["low"][i, k] = min(op, cl) - lower
                price, k = cl, k + 1
    bars = {f: np.round(v, 2) for f, v in bars.items()}  # cents: ties and equal ends happen
    bars["high"] = np.maximum.reduce([bars["high"], bars["open"], bars["close"]])
    bars["low"] = np.minimum.reduce([bars["low"], bars["open"], bars["close"]])
    bars["volume"] = rng.integers(1_000, 1_000_000, (n, t)).astype(np.float64)
    return bars


@pytest.fixture(scope="module")
def candle_panel() -> Panel:
    rng = np.random.default_rng(13)
    n, t = 12, 700
    b = candle_bars(rng, n, t)
    keep = np.ones((n, t), dtype=bool)
    keep[1] = rng.random(t) > 0.1  # gaps
    keep[2, :400] = False  # IPO
    keep[3, 500:] = False  # delisted
    keep[4, :-12] = False  # 12 bars: short of most lookbacks
    keep[5, :-14] = False  # 14 bars: enough for every pattern
    arrays = {f: np.where(keep, v, np.nan) for f, v in b.items()}
    return panel_from_arrays([f"C{i:02d}" for i in range(n)], pd.bdate_range("2021-01-04",
                             periods=t), **arrays)


@pytest.mark.parametrize("name", list(CANDLES))
def test_candle_patterns_that_occur_match_talib(candle_panel, name):
    check_entry(candle_panel, name)
    values = compute_indicators(candle_panel, [name], history=True).history[name]
    fired = np.nan_to_num(values) != 0.0
    assert fired.sum() >= 20, f"{name} fired {fired.sum()} times: the test would prove little"
    if name == "CDLENGULFING":  # both strengths, both directions
        assert {-100.0, -80.0, 80.0, 100.0} <= set(np.unique(values[fired]))


def test_star_penetration_rounds_as_talib():
    """CDLMORNINGSTAR's close > c2 + body * 0.3 is one fused multiply-add in TA-Lib 0.8.x,
    CDLEVENINGSTAR's close < c2 - body * 0.3 rounds twice: a third close on the boundary
    between the two roundings tells them apart (patterns on 11 flat-bodied candles)."""
    c2, o_morning, o_evening = 20.02, 21.72, 18.32  # first bodies 1.7 (black / white)
    twice_up = c2 + abs(c2 - o_morning) * 0.3  # 20.53, the fused value is 20.529999999999998
    twice_down = c2 - abs(c2 - o_evening) * 0.3  # 19.509999999999998, fused 19.51
    assert twice_up == 20.53 and twice_down < 19.51
    fill_o, fill_c = [22.0] * 11, [22.3] * 11
    opens = np.array([fill_o + [o_morning, 19.90, 19.98], fill_o + [o_evening, 20.10, 20.05]])
    closes = np.array([fill_c + [c2, 19.95, twice_up], fill_c + [c2, 20.15, twice_down]])
    bars = {"open": opens, "close": closes, "high": np.maximum(opens, closes) + 0.05,
            "low": np.minimum(opens, closes) - 0.05}
    panel = panel_from_arrays(["MORNING", "EVENING"], pd.bdate_range("2024-01-01", periods=14),
                              **bars)
    table = compute_indicators(panel, ["CDLMORNINGSTAR", "CDLEVENINGSTAR"])
    talib_morning = talib.CDLMORNINGSTAR(*(bars[f][0] for f in ("open", "high", "low", "close")))
    talib_evening = talib.CDLEVENINGSTAR(*(bars[f][1] for f in ("open", "high", "low", "close")))
    assert table.last["CDLMORNINGSTAR"][0] == talib_morning[-1] == 100  # twice-rounded: 0
    assert table.last["CDLEVENINGSTAR"][1] == talib_evening[-1] == 0  # fused: -100


# ---------------------------------------------------------------- bit-equality of issue 13
ISSUE_13 = [e for e, spec in REGISTRY.items() if not set(spec.outputs) <= set(DEFAULT_OUTPUTS)]


def assert_bit_equal(panel: Panel, entry: str) -> None:
    """The contract is 1e-9; these kernels mirror TA-Lib's C statement by statement, so hold
    them to equality: a last-bit difference means an operation is out of order."""
    table = compute_indicators(panel, REGISTRY[entry].outputs, history=True,
                               extra=extra_for(panel, entry))
    for name, ref in expected(panel, entry).items():
        np.testing.assert_array_equal(table.history[name], ref, err_msg=name)


@pytest.mark.parametrize("entry", ISSUE_13)
def test_issue_13_values_are_bit_equal_to_talib(real_bars, awkward, candle_panel, entry):
    for panel in (real_bars, awkward, candle_panel):
        assert_bit_equal(panel, entry)
