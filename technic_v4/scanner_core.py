"""`run_scan`: one pass through store -> Panel -> indicators -> scores -> alpha -> filter/rank.

The walk-through, all vectorized over symbols (no per-symbol Python loop anywhere):
  1. Resolve the window: max(lookback_days, bars the indicators need), ending at as_of_date.
  2. Load that window (the loader caches it; a warm scan does no I/O).
  3. Select the universe: requested symbols (unknown ones are errors), sectors (aliases
     accepted, unknown names raise), industries.
  4. Compute every indicator for every selected symbol at once, on each symbol's own bars.
  5. Reject, with a reason per symbol: no bars in the window, stale last bar, too few bars,
     price / dollar-volume floors.
  6. Score (scoring.py), add alpha (or mark it unavailable), apply the TechRating and Signal
     filters, sort, cut to max_symbols.
Every symbol attempted ends in exactly one of: kept, rejected (with reason), error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from technic_v4 import scoring
from technic_v4.alpha.inference import AlphaPredictions, predict_alpha
from technic_v4.data.panel import Panel
from technic_v4.data.universe import normalize_sectors, validate_symbol
from technic_v4.data_engine import PanelLoader, StoreLoader
from technic_v4.indicators import compute_indicators, required_bars

ProgressCallback = Callable[[str, int, int], None]

RESULT_COLUMNS = [
    "Symbol", "Sector", "Industry", "Close", "Volume", "RSI", "MACD", "MACD_signal",
    "MACD_hist", "BB_width", "ATR_pct", "Volume_ratio", "mom_21", "mom_63", "mom_126",
    "TechRating", "Signal", "Alpha5d", "Alpha10d",
]
EXTRA_COLUMNS = [
    "Name", "AlphaScore", "mom_5", "SMA20", "SMA50", "SMA200", "dist_high_20", "DollarVolume",
    "Bars", "LastDate", "Incomplete", "Source",
]
SORTABLE = tuple(c for c in RESULT_COLUMNS + EXTRA_COLUMNS
                 if c not in {"Symbol", "Sector", "Industry", "Signal", "Name", "LastDate",
                              "Incomplete", "Source"})
# Indicator outputs that are shown per row; a NaN among them for lack of bars is listed
# in the row's `Incomplete` column.
SHOWN_INDICATORS = ["RSI", "MACD", "MACD_signal", "MACD_hist", "BB_width", "ATR_pct",
                    "Volume_ratio", "mom_5", "mom_21", "mom_63", "mom_126",
                    "SMA20", "SMA50", "SMA200", "dist_high_20"]


@dataclass
class ScanConfig:
    """What to scan. Every field is optional; the defaults scan the whole universe."""

    max_symbols: int | None = None          # rows returned after ranking (None: all)
    lookback_days: int = 150                # sessions of history, raised to what indicators need
    sectors: Sequence[str] | None = None    # GICS names or aliases, case-insensitive
    industries: Sequence[str] | None = None  # exact industry names, case-insensitive
    symbols: Sequence[str] | None = None    # restrict to these symbols
    min_tech_rating: float | None = None
    as_of_date: str | date | None = None    # scan as of this session (bars after it unseen)
    min_price: float | None = None          # on the last close
    min_dollar_volume: float | None = None  # on close x 20-session average volume
    signals: Sequence[str] | None = None    # keep only these Signal values
    min_bars: int = 50                      # fewer bars in the window: rejected
    max_stale_sessions: int = 5             # last bar older than this many sessions: rejected
    sort_by: str = "TechRating"
    ascending: bool = False
    scoring: scoring.ScoringConfig = field(default_factory=scoring.ScoringConfig)

    def validate(self) -> None:
        """Raise ValueError naming the field and the valid values for anything malformed."""
        if self.max_symbols is not None and self.max_symbols < 1:
            raise ValueError("max_symbols must be >= 1 (or None for all)")
        if self.lookback_days < 1:
            raise ValueError("lookback_days must be >= 1")
        if self.min_bars < 1:
            raise ValueError("min_bars must be >= 1")
        if self.max_stale_sessions < 0:
            raise ValueError("max_stale_sessions must be >= 0")
        if self.sort_by not in SORTABLE:
            raise ValueError(
                f"sort_by {self.sort_by!r} is not sortable; valid: {', '.join(SORTABLE)}")
        bad = [s for s in (self.signals or []) if s not in scoring.SIGNALS]
        if bad:
            raise ValueError(f"unknown signals {bad}; valid: {', '.join(scoring.SIGNALS)}")
        if self.sectors is not None:
            normalize_sectors(self.sectors)
        for s in self.symbols or []:
            validate_symbol(s)


@dataclass
class ScanStatus:
    """How the scan went: counts that add up (attempted = kept + rejected + errors) and why."""

    attempted: int = 0
    kept: int = 0
    rejected: int = 0
    errors: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rejections: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["Symbol", "reason", "detail"]))
    error_details: list[dict[str, str]] = field(default_factory=list)
    source: str = ""
    data_version: str = ""
    as_of: str = ""
    window_bars: int = 0
    scoring_version: str = scoring.SCORING_VERSION
    alpha: dict[str, object] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("rejections")
        return d


def run_scan(
    config: ScanConfig | None = None,
    progress_cb: ProgressCallback | None = None,
    *,
    loader: PanelLoader | None = None,
) -> tuple[pd.DataFrame, ScanStatus]:
    """Scan, score and rank; returns (results, status). See the module docstring."""
    cfg = config or ScanConfig()
    cfg.validate()
    loader = loader or _default_loader()
    report = progress_cb or (lambda stage, done, total: None)
    status = ScanStatus()
    clock = _Clock(status.timings_ms)

    window = max(cfg.lookback_days, required_bars(), cfg.min_bars)
    report("load", 0, 1)
    panel = loader.load(cfg.as_of_date, window)
    clock.lap("load")
    report("load", 1, 1)
    status.source, status.data_version = panel.source, panel.data_version
    status.as_of, status.window_bars = str(panel.sessions[-1].date()), panel.n_sessions

    rows, outcome = _select(panel, cfg, status)
    sub = panel if len(rows) == panel.n_symbols else panel.take(rows)
    report("indicators", 0, sub.n_symbols)
    table = compute_indicators(sub)
    clock.lap("indicators")
    report("indicators", sub.n_symbols, sub.n_symbols)

    last = table.last
    last_idx = sub.last_bar_index()
    close, volume = _at_last_bar(sub.close, last_idx), _at_last_bar(sub.volume, last_idx)
    dollar_volume = close * last["Volume_SMA20"]
    stale_limit = sub.n_sessions - 1 - cfg.max_stale_sessions
    checks = [
        ("no data", table.bars == 0, lambda i: "no bar in the scan window"),
        ("stale", last_idx < stale_limit,
         lambda i: f"last bar {sub.sessions[last_idx[i]].date()}"),
        ("too few bars", table.bars < cfg.min_bars,
         lambda i: f"{table.bars[i]} bars < min_bars {cfg.min_bars}"),
    ]
    if cfg.min_price is not None:
        checks.append(("below min price", ~(close >= cfg.min_price),
                       lambda i: f"close {close[i]:.2f} < {cfg.min_price}"))
    if cfg.min_dollar_volume is not None:
        checks.append(("below min dollar volume", ~(dollar_volume >= cfg.min_dollar_volume),
                       lambda i: f"{dollar_volume[i]:,.0f} < {cfg.min_dollar_volume:,.0f}"))
    alive = np.ones(sub.n_symbols, dtype=bool)
    for reason, bad, detail in checks:
        alive = outcome.reject(rows, alive, bad, reason, detail)

    rating, subs = scoring.tech_rating({**last, "Close": close}, cfg.scoring)
    sig = scoring.signal(rating, subs, cfg.scoring)
    clock.lap("score")
    report("score", sub.n_symbols, sub.n_symbols)

    alpha = predict_alpha(last, alive)
    status.alpha = alpha.state
    clock.lap("alpha")
    report("alpha", int(alive.sum()), int(alive.sum()))

    if cfg.min_tech_rating is not None:
        alive = outcome.reject(rows, alive, rating < cfg.min_tech_rating, "below min TechRating",
                               lambda i: f"{rating[i]:.1f} < {cfg.min_tech_rating}")
    if cfg.signals:
        alive = outcome.reject(rows, alive, ~np.isin(sig, list(cfg.signals)), "signal filtered",
                               lambda i: f"signal {sig[i]}")

    frame = _result_frame(sub, table, close, volume, rating, sig, alpha, dollar_volume, last_idx)
    frame = frame[alive].sort_values(cfg.sort_by, ascending=cfg.ascending, na_position="last",
                                     kind="stable")
    if cfg.max_symbols is not None and len(frame) > cfg.max_symbols:
        outcome.reject_global(rows[frame.index[cfg.max_symbols:]], "beyond max_symbols",
                              f"ranked past the top {cfg.max_symbols} by {cfg.sort_by}")
        frame = frame.iloc[: cfg.max_symbols]
    frame = frame.reset_index(drop=True)
    frame.attrs.update(source=panel.source, data_version=panel.data_version, as_of=status.as_of)
    clock.lap("rank")
    report("rank", len(frame), len(frame))

    outcome.finish(status, kept=len(frame))
    return frame, status


def _default_loader() -> StoreLoader:
    global _DEFAULT_LOADER
    if _DEFAULT_LOADER is None:
        _DEFAULT_LOADER = StoreLoader()
    return _DEFAULT_LOADER


_DEFAULT_LOADER: StoreLoader | None = None


class _Clock:
    def __init__(self, sink: dict[str, float]):
        self.sink, self.t = sink, time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.sink[stage] = round((now - self.t) * 1000, 3)
        self.t = now


class _Outcome:
    """Collects rejections (symbol, reason, detail) as the scan narrows its selection."""

    def __init__(self, symbols: np.ndarray):
        self.symbols = symbols
        self.parts: list[pd.DataFrame] = []
        self.errors: list[dict[str, str]] = []
        self.attempted = 0

    def reject(self, rows: np.ndarray, alive: np.ndarray, bad: np.ndarray, reason: str,
               detail: Callable[[int], str]) -> np.ndarray:
        hit = np.flatnonzero(alive & bad)
        if len(hit):
            self.parts.append(pd.DataFrame({
                "Symbol": self.symbols[rows[hit]], "reason": reason,
                "detail": [detail(i) for i in hit]}))
        return alive & ~bad

    def reject_global(self, global_rows: np.ndarray, reason: str, detail: str) -> None:
        if len(global_rows):
            self.parts.append(pd.DataFrame(
                {"Symbol": self.symbols[global_rows], "reason": reason, "detail": detail}))

    def finish(self, status: ScanStatus, kept: int) -> None:
        rej = (pd.concat(self.parts, ignore_index=True) if self.parts
               else pd.DataFrame(columns=["Symbol", "reason", "detail"]))
        status.rejections = rej
        status.rejected = len(rej)
        counts = rej["reason"].value_counts()
        status.rejected_by_reason = {str(k): int(v) for k, v in counts.items()}
        status.error_details = self.errors
        status.errors = len(self.errors)
        status.kept = kept
        status.attempted = self.attempted
        if status.attempted != status.kept + status.rejected + status.errors:
            raise AssertionError(f"scan lost symbols: {status.summary()}")


def _select(panel: Panel, cfg: ScanConfig, status: ScanStatus) -> tuple[np.ndarray, _Outcome]:
    """Rows of the panel to scan, after the symbol, sector and industry filters."""
    outcome = _Outcome(panel.symbols)
    uni = panel.universe
    mask = np.ones(panel.n_symbols, dtype=bool)
    if cfg.symbols is not None:
        wanted = list(dict.fromkeys(validate_symbol(s) for s in cfg.symbols))
        index = pd.Index(panel.symbols)
        pos = index.get_indexer(wanted)
        outcome.errors = [{"symbol": s, "error": "unknown symbol: not in the universe"}
                          for s, p in zip(wanted, pos, strict=True) if p < 0]
        mask = np.zeros(panel.n_symbols, dtype=bool)
        mask[pos[pos >= 0]] = True
        outcome.attempted = len(wanted)
    else:
        outcome.attempted = panel.n_symbols
    all_rows = np.arange(panel.n_symbols)
    if cfg.sectors is not None:
        sectors = normalize_sectors(cfg.sectors)
        bad = ~uni["sector"].isin(sectors).to_numpy()
        mask = outcome.reject(all_rows, mask, bad, "filtered: sector",
                              lambda i: f"sector {uni['sector'].iat[i]}")
    if cfg.industries is not None:
        wanted_ind = {i.strip().lower() for i in cfg.industries}
        bad = ~uni["industry"].str.lower().isin(wanted_ind).to_numpy()
        mask = outcome.reject(all_rows, mask, bad, "filtered: industry",
                              lambda i: f"industry {uni['industry'].iat[i]}")
    return np.flatnonzero(mask), outcome


def _at_last_bar(values: np.ndarray, last_idx: np.ndarray) -> np.ndarray:
    """Each row's value at its own last bar (NaN for a row with no bar)."""
    out = values[np.arange(len(values)), np.maximum(last_idx, 0)]
    return np.where(last_idx >= 0, out, np.nan)


def _result_frame(sub: Panel, table, close, volume, rating, sig, alpha: AlphaPredictions,
                  dollar_volume, last_idx) -> pd.DataFrame:
    last = table.last
    incomplete = np.full(sub.n_symbols, "", dtype=object)
    for name in SHOWN_INDICATORS:
        short = table.insufficient[name]
        if short.any():
            incomplete[short] = incomplete[short] + (name + " ")
    last_dates = np.where(last_idx >= 0, sub.sessions.values[np.maximum(last_idx, 0)],
                          np.datetime64("NaT"))
    cols = {
        "Symbol": sub.symbols,
        "Sector": sub.universe["sector"].to_numpy(),
        "Industry": sub.universe["industry"].to_numpy(),
        "Close": close,
        "Volume": volume,
        **{k: last[k] for k in RESULT_COLUMNS[5:15]},
        "TechRating": rating,
        "Signal": sig,
        "Alpha5d": alpha.alpha5d,
        "Alpha10d": alpha.alpha10d,
        "Name": sub.universe["name"].to_numpy(),
        "AlphaScore": alpha.score,
        **{k: last[k] for k in ["mom_5", "SMA20", "SMA50", "SMA200", "dist_high_20"]},
        "DollarVolume": dollar_volume,
        "Bars": table.bars,
        "LastDate": pd.DatetimeIndex(last_dates),
        "Incomplete": np.char.strip(incomplete.astype(str)).astype(object),
        "Source": sub.source,
    }
    return pd.DataFrame(cols)
