"""The deterministic synthetic demo market: a plausible US equity universe from one seed.

When no real store exists, the scanner builds this market so every scan, model and benchmark
has data that behaves like the real thing (labelled `source: synthetic` wherever shown).
Same `DemoSpec` -> bit-identical arrays (one `numpy.random.default_rng(seed)`, drawn in a fixed
order). The arrays follow the Panel convention: (N symbols, T sessions) float64, NaN where no bar.

How it is built (`generate_demo_market`):
 1. Sessions: the sessions of `calendar` (default XNYS; any exchange_calendars name) in
    [start, end] (`calendar.sessions_between`).
 2. Universe (`demo_names`): N companies over the 11 GICS sectors in count shares close to the
    US listed universe, 5-8 GICS industries each, names like "Northwind Semiconductor Corp",
    tickers derived from the names (1-5 capital letters; a handful of "XXXX.B" class shares).
 3. Events (`_plan_events`): ~3% IPOs (first bar after the start; a quarter of them list in the
    last 60 sessions, so they have < 60 bars), ~2% delistings (NaN after the last bar), a few
    trading halts (1-5 sessions of zero volume, OHLC flat at the previous close), a few
    missing-bar gaps (1-5 NaN sessions inside a history), a few penny stocks (last close under
    $1) and a few illiquid names (3k-40k shares a day; the others' base volume is 50k-50M).
    An IPO's first session trades ~5x its usual volume.
 4. Prices (`demo_sim`): close-to-close log returns from a factor model, market + sector +
    idiosyncratic, each GARCH(1,1) with Student-t(5) shocks; sector-specific betas and
    volatilities (Utilities calm; Energy, Biotechnology, Metals & Mining wild); earnings-like
    mean-zero jumps. Each path is scaled so its FIRST listed close is a log-normal price level
    (median ~$35, clipped to $2-$800; ~70% of last closes end in $10-$200); its listed history
    then stays above $1 ($0.02 for penny stocks) and, unless its range is wider than that
    allows, below $1,500 ($0.99 for penny stocks). Anchoring the first close, not the last,
    keeps price levels free of the future: with the last close fixed, a low price meant a rise
    still to come (rank IC of log price vs the next 5 sessions' return -0.047, t -19, with the
    planted effect off; see `demo_sim.assemble_ohlcv`).
 5. Bars: the open gaps from the prior close (the jump and a quarter of the move happen
    overnight), highs/lows extend beyond the body in proportion to the day's volatility; prices
    round to cents ($0.0001 below $1), volume to whole shares, scaling with the volatility
    regime and |return|.

The planted predictable component (`planted_alpha`, 0 switches it off): each symbol's expected
next-day log return is

    planted_alpha * sigma_it * (clip(z21_it, +-3) - 1.25 * clip(z5_it, +-3))

with sigma_it its conditional idiosyncratic daily volatility and z21 / z5 the cross-sectional
z-scores (over symbols listed >= 21 sessions) of its trailing 21- and 5-session log returns:
medium-term momentum plus short-term reversal, so `planted_alpha` is a daily information ratio
per unit of signal. Measured on the default spec (`planted_ic`: Spearman per date against the
next 5-session return; t over non-overlapping dates): mom_21 IC +0.032 (t 12.6), 5-session
return IC -0.019 (t -7.0). With planted_alpha = 0: -0.003 (t -0.5) and -0.003 (t -1.2); no
symbol's future return then depends on its past, since every remaining term is mean-zero given
the history and volatility clustering moves only the scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from technic_v4.cross_section import rank_ic
from technic_v4.data import demo_sim
from technic_v4.data.calendar import DEFAULT_CALENDAR, canonical_calendar, sessions_between
from technic_v4.data.demo_names import build_universe
from technic_v4.data.panel import UNIVERSE_COLUMNS, Array2D, Panel

if TYPE_CHECKING:
    import os

    from technic_v4.data.store import StoreManifest

DEMO_SEED = 20240601
DEFAULT_PLANTED_ALPHA = 0.035  # daily information ratio per unit of the planted signal
IPO_SHARE, DELIST_SHARE, SHORT_IPO_BARS = 0.03, 0.02, 60
MIN_SESSIONS = 130
MIN_SYMBOLS = 50
IPO_DAY_VOLUME = 5.0  # an IPO's first session trades ~5x its usual volume


@dataclass(frozen=True)
class DemoSpec:
    n_symbols: int = 5000
    start: str = "2021-01-04"
    end: str = "2026-10-30"
    seed: int = DEMO_SEED
    planted_alpha: float = DEFAULT_PLANTED_ALPHA  # 0 switches the planted effect off
    calendar: str = DEFAULT_CALENDAR  # the exchange whose sessions the bars trade on


@dataclass(frozen=True)
class DemoMarket:
    sessions: pd.DatetimeIndex
    universe: pd.DataFrame  # symbol, name, sector, industry; sorted by symbol
    open: Array2D
    high: Array2D
    low: Array2D
    close: Array2D
    volume: Array2D
    notes: dict = field(default_factory=dict)
    calendar: str = DEFAULT_CALENDAR

    @property
    def symbols(self) -> np.ndarray:
        return self.universe["symbol"].to_numpy(dtype=object)

    def to_panel(self) -> Panel:
        """The market as a Panel (source "synthetic"), without going through a store."""
        return Panel(symbols=self.symbols, sessions=self.sessions, open=self.open,
                     high=self.high, low=self.low, close=self.close, volume=self.volume,
                     universe=self.universe, source="synthetic",
                     meta={"notes": self.notes, "calendar": self.calendar})


def generate_demo_market(spec: DemoSpec = DemoSpec()) -> DemoMarket:
    """Build the demo market described in the module docstring, deterministically from `spec`."""
    calendar = canonical_calendar(spec.calendar)
    sessions = sessions_between(spec.start, spec.end, calendar)
    t_len, n = len(sessions), spec.n_symbols
    if t_len < MIN_SESSIONS or n < MIN_SYMBOLS:
        raise ValueError(f"the demo market needs at least {MIN_SYMBOLS} symbols and "
                         f"{MIN_SESSIONS} sessions, got {n} symbols and {t_len} {calendar} "
                         f"sessions ({spec.start}..{spec.end})")
    rng = np.random.default_rng(spec.seed)
    uni = build_universe(rng, n)
    ev = _plan_events(rng, n, t_len)
    params = demo_sim.draw_params(rng, uni["sector_idx"].to_numpy(),
                                  uni["industry_idx"].to_numpy(), ev["penny"], ev["illiquid"])
    paths = demo_sim.simulate(rng, params, t_len, ev["first"], ev["last"], spec.planted_alpha)
    opn, high, low, close, volume = demo_sim.assemble_ohlcv(paths, params, ev["first"],
                                                           ev["penny"])
    del paths
    _round_prices(opn, high, low, close)
    _apply_events(ev, opn, high, low, close, volume)
    universe = uni.loc[:, list(UNIVERSE_COLUMNS)]
    notes = _notes(spec, ev, universe["symbol"].to_numpy(dtype=object), sessions)
    return DemoMarket(sessions, universe, opn, high, low, close, volume, notes, calendar)


def build_demo_store(data_dir: str | os.PathLike[str],
                     spec: DemoSpec = DemoSpec()) -> StoreManifest:
    """Generate the demo market and write it as the store in `data_dir` (source "synthetic")."""
    from technic_v4.data.store import write_store

    m = generate_demo_market(spec)
    return write_store(data_dir, sessions=m.sessions, universe=m.universe, open=m.open,
                       high=m.high, low=m.low, close=m.close, volume=m.volume,
                       source="synthetic", meta={"demo_spec": asdict(spec), "notes": m.notes},
                       calendar=m.calendar)


def _plan_events(rng: np.random.Generator, n: int, t_len: int) -> dict[str, np.ndarray]:
    """Which rows list late, delist early, halt, miss bars, trade pennies or barely trade."""
    n_ipo, n_delist = max(2, round(IPO_SHARE * n)), max(2, round(DELIST_SHARE * n))
    n_halt, n_gap, n_penny = max(3, n // 500), max(3, n // 1000), max(3, n // 250)
    sizes = [n_ipo, n_delist, n_halt, n_gap, n_penny, n_penny]
    cuts = np.cumsum(sizes)
    rows = np.split(rng.permutation(n)[: cuts[-1]], cuts[:-1])
    ipo, delist, halt, gap, penny, illiquid = (np.sort(r) for r in rows)

    first, last = np.zeros(n, dtype=np.int64), np.full(n, t_len - 1, dtype=np.int64)
    n_short = max(1, n_ipo // 4)
    first[ipo[:n_short]] = rng.integers(t_len - SHORT_IPO_BARS + 1, t_len - 4, n_short)
    first[ipo[n_short:]] = rng.integers(1, t_len - SHORT_IPO_BARS, n_ipo - n_short)
    last[delist] = rng.integers(t_len // 5, t_len - 1, n_delist)
    # Halts and gaps sit well inside a full history: after >= 30 bars, before the last 10.
    halt_len, gap_len = rng.integers(1, 6, n_halt), rng.integers(1, 6, n_gap)
    halt_start = rng.integers(30, t_len - 15, n_halt)
    gap_start = rng.integers(30, t_len - 15, n_gap)
    return {"first": first, "last": last, "ipo": ipo, "delist": delist, "penny": penny,
            "illiquid": illiquid, "halt": halt, "halt_start": halt_start, "halt_len": halt_len,
            "gap": gap, "gap_start": gap_start, "gap_len": gap_len}


def _round_prices(*arrays: Array2D) -> None:
    """Round in place to the tick of each bar: $0.01, or $0.0001 for bars whose low is under $1.

    One tick per bar keeps high >= max(open, close) >= min(open, close) >= low after rounding.
    """
    low = arrays[2]
    per_dollar = np.where(low >= 1.0, 100.0, 10_000.0)
    for arr in arrays:
        arr *= per_dollar
        np.round(arr, out=arr)
        arr /= per_dollar
    np.maximum(low, 1.0 / per_dollar, out=low)


def _apply_events(ev: dict[str, np.ndarray], *fields: Array2D) -> None:
    """Blank sessions outside each listing and inside gaps; freeze halts; busy IPO days."""
    opn, high, low, close, volume = fields
    t_idx = np.arange(close.shape[1])
    unlisted = (t_idx[None, :] < ev["first"][:, None]) | (t_idx[None, :] > ev["last"][:, None])
    volume[ev["ipo"], ev["first"][ev["ipo"]]] *= IPO_DAY_VOLUME
    for i, s, k in zip(ev["halt"], ev["halt_start"], ev["halt_len"], strict=True):
        for arr in (opn, high, low, close):
            arr[i, s : s + k] = close[i, s - 1]
        volume[i, s : s + k] = 0.0
    for i, s, k in zip(ev["gap"], ev["gap_start"], ev["gap_len"], strict=True):
        unlisted[i, s : s + k] = True
    for arr in fields:
        arr[unlisted] = np.nan


def _notes(spec: DemoSpec, ev: dict[str, np.ndarray], symbols: np.ndarray,
           sessions: pd.DatetimeIndex) -> dict:
    """What was planted, JSON-serialisable (symbols and session dates, not row numbers)."""
    day = [str(d.date()) for d in sessions]
    t_len = len(sessions)

    def runs(key: str) -> list[dict]:
        return [{"symbol": symbols[i], "start": day[s], "sessions": int(k)}
                for i, s, k in zip(ev[key], ev[f"{key}_start"], ev[f"{key}_len"], strict=True)]

    return {
        "source": "synthetic",
        "model": "market + sector + idiosyncratic log returns, each GARCH(1,1) with Student-t(5) "
                 "shocks, mean-zero jumps; see technic_v4/data/demo.py",
        "ipos": [{"symbol": symbols[i], "first_session": day[ev["first"][i]],
                  "bars": int(t_len - ev["first"][i])} for i in ev["ipo"]],
        "delistings": [{"symbol": symbols[i], "last_session": day[ev["last"][i]]}
                       for i in ev["delist"]],
        "halts": runs("halt"),
        "gaps": runs("gap"),
        "penny_stocks": [symbols[i] for i in ev["penny"]],
        "illiquid": [symbols[i] for i in ev["illiquid"]],
        "class_shares": [s for s in symbols if "." in s],
        "planted_alpha": {
            "strength": spec.planted_alpha,
            "enabled": bool(spec.planted_alpha),
            "definition": "E[r_t+1 | past] += planted_alpha * sigma_idio * (clip(z21, 3) - "
                          f"{demo_sim.REVERSAL_WEIGHT} * clip(z5, 3)); zN = cross-sectional "
                          "z-score of the trailing N-session log return over symbols listed "
                          f">= {demo_sim.MOMENTUM_WINDOW} sessions",
            "momentum_window": demo_sim.MOMENTUM_WINDOW,
            "reversal_window": demo_sim.REVERSAL_WINDOW,
            "reversal_weight": demo_sim.REVERSAL_WEIGHT,
        },
    }


def planted_ic(market: DemoMarket, horizon: int = 5) -> dict[str, dict[str, float]]:
    """Mean rank IC of mom_21 and the 5-session return against the next `horizon` sessions.

    `t_stat` uses non-overlapping dates (every `horizon`-th), so overlap does not inflate it.
    """
    c = market.close
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        fwd = np.full_like(c, np.nan)
        fwd[:, :-horizon] = c[:, horizon:] / c[:, :-horizon] - 1.0
        for name, lag in (("mom_21", 21), ("ret_5", 5)):
            sig = np.full_like(c, np.nan)
            sig[:, lag:] = c[:, lag:] / c[:, :-lag] - 1.0
            ic = rank_ic(sig, fwd)
            spaced = ic[np.isfinite(ic)][::horizon]
            out[name] = {"mean": float(np.nanmean(ic)),
                         "t_stat": float(spaced.mean() / spaced.std(ddof=1) * np.sqrt(len(spaced))),
                         "n_dates": int(np.isfinite(ic).sum())}
    return out
