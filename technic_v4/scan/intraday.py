"""An intraday scan: a screen with timeframe prefixes evaluated at a minute `at`.

The same compiled screen (screens/) as the daily scan, over an Env whose series come per
timeframe (full recompute, closed bars only):
  1. `compile_expressions` compiles `where` / `rank`; `series_needed` gives {(column,
     timeframe): bars}. Weekly columns and last-bar-only columns (TechRating, Alpha5d, ...)
     are refused here with the reason.
  2. Minute bars: the stored sessions up to `at`'s session, enough of them for each intraday
     series to settle (a column's convergence bars x the timeframe's minutes / 390, plus one),
     all of them when fewer are stored (then the values are TA-Lib's on every stored bar);
     only the fields the screen's columns read (`fields_needed`).
  3. Each intraday timeframe's bars (resample.py), cut to the bars closed by `at`; bars and
     indicator outputs on them by `packed_series` (each symbol's own bars, right-aligned, as
     a daily scan packs daily bars); the intraday columns (indicators/intraday.py) on the
     minutes, read at each bar's close.
  4. Daily columns (`D.x`, or a bare name) on the daily store's sessions closed by `at`: the
     previous session's bar during a session, that session's once it has closed.
  5. The screen runs over that Env at width 1; a coarser timeframe is read on the finest one
     of its expression as the value in effect (`TimeframesOnBars`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.data.intraday import (
    IntradayError,
    IntradayPanel,
    load_intraday,
    parse_date,
    store_calendar,
    stored_sessions,
)
from technic_v4.data.panel import FIELDS, Panel
from technic_v4.data.resample import TIMEFRAME_MINUTES, closed_through, resample
from technic_v4.data.store import load_panel, read_universe
from technic_v4.data.store_fs import DataDir
from technic_v4.errors import ConfigError
from technic_v4.indicators import intraday as columns
from technic_v4.indicators.engine import packed_series
from technic_v4.scan.evaluate import _first_values, _settle, fields_read
from technic_v4.scan.expressions import BARS, HISTORY_COLUMNS, compile_expressions, series_needed
from technic_v4.screens.env import TimeframesOnBars
from technic_v4.screens.nodes import INTRADAY_NUMBERS

SESSION_MINUTES = 390
MAX_SESSIONS = 60  # minute sessions an intraday scan may load


@dataclass(frozen=True)
class IntradayScan:
    """Rows kept (Symbol, Sector, Industry, then each column read, named as in the screen),
    and what the evaluation saw: `at`, each timeframe's last closed bar start, the sessions."""

    rows: pd.DataFrame
    at: pd.Timestamp
    last_bars: dict[str, str]
    sessions: list[str]
    source: str


def parse_at(at: object, data_dir: DataDir) -> pd.Timestamp:
    """`at` ("2026-10-30 14:35", exchange-local unless it carries a zone) as UTC, on a
    minute; None: the close of the newest stored minute bar's session's last bar."""
    if at is None:
        stored = stored_sessions(data_dir)
        if not len(stored):
            raise IntradayError("no intraday bars stored: `technic data intraday demo` builds "
                                "the demo market's")
        from technic_v4.data.intraday import session_bounds

        return session_bounds(stored[-1], store_calendar(data_dir), "regular")[1]
    try:
        ts = pd.Timestamp(at)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise IntradayError(f"--at {str(at)[:40]!r} is not a time (expected YYYY-MM-DD HH:MM)")
    if ts.tzinfo is None:
        from technic_v4.data.calendar import calendar_tz

        ts = ts.tz_localize(calendar_tz(store_calendar(data_dir)))
    return ts.tz_convert("UTC").floor("min")


def is_intraday(where: str | None) -> bool:
    """Whether `where` reads an intraday timeframe (M1. ... H1.); ConfigError if invalid."""
    if where is None:
        return False
    screen = compile_expressions(where, None, intraday=True).where
    return bool(screen is not None and screen.intraday_columns)


def scan_intraday(data_dir: DataDir, where: str, at: object = None,
                  symbols: Sequence[str] | None = None) -> IntradayScan:
    """Evaluate `where` at `at` over the store's symbols (or `symbols`) (module docstring)."""
    exprs = compile_expressions(where, None, intraday=True)
    screen = exprs.where
    assert screen is not None
    needs = series_needed(screen)
    for (name, tf), _ in needs.items():
        if tf == "W":
            raise ConfigError("where", f"where: W.{name}: weekly columns are not available in "
                              "an intraday scan (use D. or an intraday timeframe)")
        if tf != "text" and name not in HISTORY_COLUMNS and name not in INTRADAY_NUMBERS:
            raise ConfigError("where", f"where: {name} has no value per bar: an intraday scan "
                              "reads bars, indicators and the intraday columns")
        if tf != "text" and name == "TechRating":
            raise ConfigError("where", "where: TechRating is scored on daily scans only")
    when = parse_at(at, data_dir)
    universe = read_universe(data_dir)
    if symbols is not None:
        from technic_v4.data.universe import validate_symbol

        wanted = [validate_symbol(s) for s in symbols]
        universe = universe[universe["symbol"].isin(wanted)].reset_index(drop=True)
    names = list(universe["symbol"])
    series, last_bars, sessions = _intraday_series(data_dir, needs, when, names)
    daily, daily_last = _daily_series(data_dir, needs, when, names)
    series |= daily
    if daily_last:
        last_bars["D"] = daily_last
    text = {"Symbol": np.asarray(names, dtype=object),
            "Sector": universe["sector"].to_numpy(dtype=object),
            "Industry": universe["industry"].to_numpy(dtype=object),
            "Name": universe["name"].to_numpy(dtype=object)}
    env = IntradayEnv(series, text, np.ones(len(names), dtype=bool))
    keep = screen.evaluate(env, 1)[:, -1]
    out = pd.DataFrame({k: text[k] for k in ("Symbol", "Sector", "Industry")})
    for (name, tf), values in sorted(series.items()):
        out[name if tf == "D" else f"{tf}.{name}"] = values[:, -1]
    return IntradayScan(out[keep].reset_index(drop=True), when, last_bars, sessions,
                        "intraday")


class IntradayEnv(TimeframesOnBars):
    """The Env of an intraday scan: {(column, timeframe): (N, w)} packed series, text columns
    by name, ranks among the rows marked in `universe`."""

    def __init__(self, series: Mapping[tuple[str, str], np.ndarray],
                 text: Mapping[str, np.ndarray], universe: np.ndarray) -> None:
        self.series, self.text_columns = series, text
        self.universe = universe
        self.n_rows = len(universe)

    def number(self, name: str, width: int, timeframe: str = "D") -> np.ndarray:
        source = self.series[(name, timeframe)]
        have = source.shape[1]
        if width <= have:
            return source[:, have - width:]
        return np.concatenate([np.full((self.n_rows, width - have), np.nan), source], axis=1)

    def text(self, name: str) -> np.ndarray:
        if name not in self.text_columns:
            raise ConfigError("where", f"where: {name} is not available in an intraday scan "
                              f"(text columns: {', '.join(self.text_columns)})")
        return self.text_columns[name]

    def groups(self, name: str) -> np.ndarray:
        return pd.factorize(self.text(name))[0].astype(np.int64)


def _bars_needed(name: str, width: int) -> int:
    if name in INTRADAY_NUMBERS or name in BARS:
        return width
    return _settle(name, width) or _first_values(name, width)


def _intraday_series(data_dir: DataDir, needs: Mapping[tuple[str, str], int],
                     at: pd.Timestamp, symbols: list[str]
                     ) -> tuple[dict[tuple[str, str], np.ndarray], dict[str, str], list[str]]:
    wanted = {(n, tf): w for (n, tf), w in needs.items() if tf in TIMEFRAME_MINUTES}
    if not wanted:
        return {}, {}, []
    sessions = 1 + max(math.ceil(_bars_needed(n, w) * TIMEFRAME_MINUTES[tf] / SESSION_MINUTES)
                       for (n, tf), w in wanted.items())
    if any(n == "RVOL" for n, _ in wanted):
        sessions = max(sessions, columns.RVOL_SESSIONS + 1)
    minutes = load_intraday(data_dir, symbols=symbols, end=_local_day(data_dir, at),
                            sessions=min(sessions, MAX_SESSIONS),
                            fields=fields_needed({n for n, _ in wanted}))
    extra = _intraday_columns(data_dir, minutes, {n for n, _ in wanted})
    out: dict[tuple[str, str], np.ndarray] = {}
    last_bars: dict[str, str] = {}
    for tf in sorted({tf for _, tf in wanted}, key=list(TIMEFRAME_MINUTES).index):
        bars = resample(minutes, tf)
        closed = closed_through(bars, at)
        if closed == 0:
            raise IntradayError(f"no {tf} bar has closed by {at} in the stored sessions")
        last_bars[tf] = str(bars.times[closed - 1])
        panel = _as_panel(bars, closed)
        names = [n for n, t in wanted if t == tf]
        width = max(w for (n, t), w in wanted.items() if t == tf)
        plain = sorted({BARS.get(n, n) for n in names if n not in INTRADAY_NUMBERS})
        got = packed_series(panel, plain, width) if plain else {}
        present = np.isfinite(panel.close)
        for n in names:
            if n in INTRADAY_NUMBERS:
                values = columns.at_bar_close(extra[n], minutes, bars)[:, :closed]
                out[(n, tf)] = _pack(values, present, wanted[(n, tf)])
            else:
                out[(n, tf)] = np.ascontiguousarray(got[BARS.get(n, n)][:, -wanted[(n, tf)]:])
    return out, last_bars, [str(d.date()) for d in minutes.sessions]


INTRADAY_FIELDS = {"VWAP": ("high", "low", "close", "volume"), "OR_high": ("high", "low"),
                   "OR_low": ("high", "low"), "Gap": ("open", "close"),
                   "Premarket_gap": ("open", "close"), "RVOL": ("close", "volume")}


def fields_needed(names: set[str]) -> tuple[str, ...]:
    """The minute-bar fields the intraday columns and outputs `names` read: a scan loads
    only these (the others stay NaN and are never read)."""
    plain = {BARS.get(n, n) for n in names if n not in INTRADAY_NUMBERS}
    read = set(fields_read(plain)) | {f for n in names & INTRADAY_FIELDS.keys()
                                      for f in INTRADAY_FIELDS[n]}
    return tuple(f for f in FIELDS if f in read)


def _intraday_columns(data_dir: DataDir, minutes: IntradayPanel, names: set[str]
                      ) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if "VWAP" in names:
        out["VWAP"] = columns.vwap(minutes)
    if names & {"OR_high", "OR_low"}:
        out["OR_high"], out["OR_low"] = columns.opening_range(minutes)
    if names & {"Gap", "Premarket_gap"}:
        out["Gap"], out["Premarket_gap"] = columns.gaps(minutes, previous_closes(data_dir,
                                                                                 minutes))
    if "RVOL" in names:
        out["RVOL"] = columns.rvol(minutes)
    return out


def previous_closes(data_dir: DataDir, minutes: IntradayPanel) -> np.ndarray:
    """(N, sessions): each symbol's daily close on the store session before each of the
    panel's sessions (NaN when it had no bar there)."""
    daily = load_panel(data_dir, end=minutes.sessions[-1], bars=len(minutes.sessions) + 10)
    rows = pd.Index(daily.symbols).get_indexer(minutes.symbols)
    before = daily.sessions.searchsorted(minutes.sessions) - 1
    out = np.full((minutes.n_symbols, len(minutes.sessions)), np.nan)
    ok_r = rows >= 0
    for s, col in enumerate(before):
        if col >= 0:
            out[ok_r, s] = daily.close[rows[ok_r], col]
    return out


def _daily_series(data_dir: DataDir, needs: Mapping[tuple[str, str], int], at: pd.Timestamp,
                  symbols: list[str]) -> tuple[dict[tuple[str, str], np.ndarray], str]:
    wanted = {n: w for (n, tf), w in needs.items() if tf == "D"}
    if not wanted:
        return {}, ""
    from technic_v4.data.intraday import session_bounds

    day = _local_day(data_dir, at)
    closes_at = session_bounds(day, store_calendar(data_dir))[1] if _is_session(
        data_dir, day) else None
    end = day if closes_at is not None and at >= closes_at else day - pd.Timedelta(days=1)
    bars = max(_bars_needed(n, w) for n, w in wanted.items())
    daily = load_panel(data_dir, end=end, bars=bars)
    rows = pd.Index(daily.symbols).get_indexer(symbols)
    if (rows < 0).any():
        raise IntradayError(f"{int((rows < 0).sum())} symbol(s) are not in the daily store")
    panel = daily.take(rows)
    width = max(wanted.values())
    got = packed_series(panel, sorted({BARS.get(n, n) for n in wanted}), width)
    return ({(n, "D"): np.ascontiguousarray(got[BARS.get(n, n)][:, -w:])
             for n, w in wanted.items()}, str(panel.sessions[-1].date()))


def _local_day(data_dir: DataDir, at: pd.Timestamp) -> pd.Timestamp:
    """The exchange-local date of `at` (tz-naive midnight)."""
    from technic_v4.data.calendar import calendar_tz

    return parse_date(at.tz_convert(calendar_tz(store_calendar(data_dir))).date())


def _is_session(data_dir: DataDir, day: pd.Timestamp) -> bool:
    from technic_v4.data.calendar import get_calendar

    return bool(get_calendar(store_calendar(data_dir)).is_session(day))


def _as_panel(bars: IntradayPanel, closed: int) -> Panel:
    """The first `closed` bars as a Panel (bars for sessions), for the indicator engine."""
    symbols = bars.symbols
    universe = pd.DataFrame({"symbol": symbols, "name": symbols, "sector": "", "industry": ""})
    arrays: dict[str, Any] = {f: np.ascontiguousarray(getattr(bars, f)[:, :closed])
                              for f in FIELDS}
    return Panel(symbols=symbols, sessions=pd.DatetimeIndex(bars.times[:closed]),
                 universe=universe, source="intraday", **arrays)


def _pack(values: np.ndarray, present: np.ndarray, width: int) -> np.ndarray:
    """The last `width` values at each row's own bars (`present`), right-aligned, NaN-padded."""
    out = np.full((values.shape[0], width), np.nan)
    for i in range(values.shape[0]):
        mine = values[i, present[i]][-width:]
        if len(mine):
            out[i, width - len(mine):] = mine
    return out
