"""`run_scan`: one pass through store -> Panel -> indicators -> scores -> alpha -> filter/rank.

The walk-through, all vectorized over symbols (no per-symbol Python loop anywhere):
  1. Resolve the window: max(lookback_days, bars the indicators need), ending at as_of_date.
  2. Load that window (the loader caches it; a warm scan does no I/O).
  3. Select the universe: requested symbols (unknown ones are errors), sectors (aliases
     accepted, unknown names raise), industries.
  4. Compute every indicator for every selected symbol at once, on each symbol's own bars.
  5. Reject, with a reason per symbol: no bars in the window, stale last bar, too few bars,
     price / dollar-volume floors; run the data-quality gate (data/quality.py) over the window
     and put its flags on every row (`quality_flags`), rejecting flagged symbols as
     "quality flagged" only when the config asks (`exclude_flagged` / `exclude_flags`).
  6. Score (scoring.py), add alpha (or mark it unavailable), apply the TechRating and Signal
     filters, sort, cut to max_symbols.
Every symbol attempted ends in exactly one of: kept, rejected (with reason), error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from technic_v4 import scoring
from technic_v4.alpha.inference import AlphaPredictions, predict_alpha
from technic_v4.data.panel import Panel
from technic_v4.data.quality import FLAGS as QUALITY_FLAGS
from technic_v4.data.quality import QUALITY_VERSION, QualityConfig, check_panel
from technic_v4.data.universe import normalize_sectors, validate_symbol
from technic_v4.data_engine import PanelLoader, StoreLoader
from technic_v4.indicators import INDICATORS_VERSION, compute_indicators, required_bars
from technic_v4.scan_result import (  # noqa: F401  (the column names are part of this API)
    EXTRA_COLUMNS,
    RESULT_COLUMNS,
    SHOWN_INDICATORS,
    SORTABLE,
    at_last_bar,
    concat_rejections,
    listing_dates,
    reject_rows,
    result_frame,
)

ProgressCallback = Callable[[str, int, int], None]

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
    exclude_flagged: bool = False           # reject symbols with any quality flag
    exclude_flags: Sequence[str] | None = None  # reject only these flags (see quality.FLAGS)

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
        bad_flags = sorted(set(self.exclude_flags or []) - set(QUALITY_FLAGS))
        if bad_flags:
            raise ValueError(f"unknown quality flags {bad_flags}; valid: "
                             f"{', '.join(QUALITY_FLAGS)}")
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
    indicators_version: str = INDICATORS_VERSION
    quality_version: str = QUALITY_VERSION
    quality_flagged: int = 0                # kept rows that carry a quality flag
    alpha: dict[str, object] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("rejections")
        return d


def scan_window(cfg: ScanConfig) -> int:
    """Sessions of history a scan loads: the config's lookback, raised to what is needed."""
    return max(cfg.lookback_days, required_bars(), cfg.min_bars)


def run_scan(
    config: ScanConfig | None = None,
    progress_cb: ProgressCallback | None = None,
    *,
    loader: PanelLoader | None = None,
) -> tuple[pd.DataFrame, ScanStatus]:
    """Scan, score and rank; returns (results, status). See the module docstring.

    The stages (`plan_scan`, `evaluate_symbols`, `add_alpha`, `finish_scan`) are public so the
    Serve app can run the same path split across deployments.
    """
    cfg = config or ScanConfig()
    cfg.validate()
    loader = loader or _default_loader()
    report = progress_cb or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    clock = _Clock(timings)

    report("load", 0, 1)
    panel = loader.load(cfg.as_of_date, scan_window(cfg))
    clock.lap("load")
    report("load", 1, 1)

    plan = plan_scan(cfg, panel.universe)
    sub = panel if len(plan.rows) == panel.n_symbols else panel.take(plan.rows)
    report("indicators", 0, sub.n_symbols)
    block = evaluate_symbols(sub, cfg, clock)
    report("indicators", sub.n_symbols, sub.n_symbols)
    report("score", sub.n_symbols, sub.n_symbols)

    alpha = predict_alpha(alpha_inputs(block.frame), np.ones(len(block.frame), dtype=bool))
    block = add_alpha(block, alpha)
    clock.lap("alpha")
    report("alpha", len(block.frame), len(block.frame))

    frame, status = finish_scan(cfg, plan, [block], alpha.state)
    clock.lap("rank")
    report("rank", len(frame), len(frame))
    status.timings_ms = timings
    return frame, status


@dataclass
class ScanPlan:
    """Which universe rows to evaluate, and what selection already rejected or refused."""

    rows: np.ndarray
    symbols: np.ndarray
    attempted: int
    rejections: list[pd.DataFrame]
    errors: list[dict[str, str]]


@dataclass
class RowBlock:
    """Evaluated symbols of one chunk: surviving rows (result columns) and the rejected ones."""

    frame: pd.DataFrame
    rejections: pd.DataFrame
    source: str
    data_version: str
    as_of: str
    window_bars: int


def plan_scan(cfg: ScanConfig, universe: pd.DataFrame) -> ScanPlan:
    """Rows of `universe` to scan, after the symbol, sector and industry filters."""
    symbols = universe["symbol"].to_numpy(dtype=object)
    n = len(symbols)
    mask = np.ones(n, dtype=bool)
    errors: list[dict[str, str]] = []
    attempted = n
    if cfg.symbols is not None:
        wanted = list(dict.fromkeys(validate_symbol(s) for s in cfg.symbols))
        pos = pd.Index(symbols).get_indexer(wanted)
        errors = [{"symbol": s, "error": "unknown symbol: not in the universe"}
                  for s, p in zip(wanted, pos, strict=True) if p < 0]
        mask = np.zeros(n, dtype=bool)
        mask[pos[pos >= 0]] = True
        attempted = len(wanted)
    parts: list[pd.DataFrame] = []
    if cfg.sectors is not None:
        sector = universe["sector"].to_numpy(dtype=object)
        bad = ~np.isin(sector, normalize_sectors(cfg.sectors))
        mask = reject_rows(symbols, mask, bad, "filtered: sector", lambda i: f"sector {sector[i]}",
                       parts)
    if cfg.industries is not None:
        industry = universe["industry"].to_numpy(dtype=object)
        wanted_ind = {i.strip().lower() for i in cfg.industries}
        bad = ~pd.Series(industry).str.lower().isin(wanted_ind).to_numpy()
        mask = reject_rows(symbols, mask, bad, "filtered: industry",
                       lambda i: f"industry {industry[i]}", parts)
    return ScanPlan(np.flatnonzero(mask), symbols, attempted, parts, errors)


def evaluate_symbols(sub: Panel, cfg: ScanConfig, clock: _Clock | None = None) -> RowBlock:
    """Indicators, data checks, score and the rating/signal filters for every row of `sub`."""
    clock = clock or _Clock({})
    table = compute_indicators(sub)
    clock.lap("indicators")
    last = table.last
    last_idx = sub.last_bar_index()
    close, volume = at_last_bar(sub.close, last_idx), at_last_bar(sub.volume, last_idx)
    dollar_volume = close * last["Volume_SMA20"]
    stale_limit = sub.n_sessions - 1 - cfg.max_stale_sessions
    first_seen, last_seen = listing_dates(sub, last_idx)
    as_of = sub.sessions[-1]
    checks = [
        ("not listed yet", (table.bars == 0) & (first_seen > as_of),
         lambda i: f"first bar {first_seen[i].date()} is after the as-of session"),
        ("stale", (last_idx < stale_limit) & (last_seen <= as_of),
         lambda i: f"last bar {last_seen[i].date()}, more than {cfg.max_stale_sessions} "
                   "sessions before the as-of session"),
        ("no data", table.bars == 0, lambda i: "no bar in the store"),
        ("too few bars", table.bars < cfg.min_bars,
         lambda i: f"{table.bars[i]} bars < min_bars {cfg.min_bars}"),
    ]
    if cfg.min_price is not None:
        checks.append(("below min price", ~(close >= cfg.min_price),
                       lambda i: f"close {close[i]:.2f} < {cfg.min_price}"))
    if cfg.min_dollar_volume is not None:
        checks.append(("below min dollar volume", ~(dollar_volume >= cfg.min_dollar_volume),
                       lambda i: f"{dollar_volume[i]:,.0f} < {cfg.min_dollar_volume:,.0f}"))
    rating, subs = scoring.tech_rating({**last, "Close": close}, cfg.scoring)
    sig = scoring.signal(rating, subs, cfg.scoring)
    if cfg.min_tech_rating is not None:
        checks.append(("below min TechRating", rating < cfg.min_tech_rating,
                       lambda i: f"{rating[i]:.1f} < {cfg.min_tech_rating}"))
    if cfg.signals:
        checks.append(("signal filtered", ~np.isin(sig, list(cfg.signals)),
                       lambda i: f"signal {sig[i]}"))
    quality = check_panel(sub, QualityConfig(max_stale_sessions=cfg.max_stale_sessions))
    flags = quality.flags
    if cfg.exclude_flagged or cfg.exclude_flags:
        checks.append(("quality flagged", quality.flagged(cfg.exclude_flags),
                       lambda i: f"quality flags: {flags[i]}"))
    parts: list[pd.DataFrame] = []
    alive = np.ones(sub.n_symbols, dtype=bool)
    for reason, bad, detail in checks:
        alive = reject_rows(sub.symbols, alive, bad, reason, detail, parts)
    frame = result_frame(sub, table, close, volume, rating, sig, dollar_volume, last_idx)
    frame["quality_flags"] = flags
    clock.lap("score")
    return RowBlock(frame=frame[alive].reset_index(drop=True), rejections=concat_rejections(parts),
                    source=sub.source, data_version=sub.data_version, as_of=str(as_of.date()),
                    window_bars=sub.n_sessions)


def alpha_inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns alpha models may read, as arrays."""
    return {c: frame[c].to_numpy(dtype=float) for c in SHOWN_INDICATORS if c in frame}


def add_alpha(block: RowBlock, alpha: AlphaPredictions) -> RowBlock:
    """`block` with the Alpha5d / Alpha10d / AlphaScore columns filled from `alpha`."""
    frame = block.frame.copy()
    frame["Alpha5d"], frame["Alpha10d"], frame["AlphaScore"] = (
        alpha.alpha5d, alpha.alpha10d, alpha.score)
    return replace(block, frame=frame)


def finish_scan(
    cfg: ScanConfig, plan: ScanPlan, blocks: Sequence[RowBlock], alpha_state: dict
) -> tuple[pd.DataFrame, ScanStatus]:
    """Merge evaluated chunks, rank, cut to max_symbols; count every symbol exactly once."""
    versions = {(b.data_version, b.as_of, b.window_bars) for b in blocks}
    if len(versions) > 1:
        raise RuntimeError(f"scan chunks came from different data versions: {sorted(versions)}")
    frame = pd.concat([b.frame for b in blocks], ignore_index=True) if blocks else None
    if frame is None:
        raise ValueError("finish_scan needs at least one evaluated block")
    frame = frame.sort_values(cfg.sort_by, ascending=cfg.ascending, na_position="last",
                              kind="stable")
    parts = [*plan.rejections, *(b.rejections for b in blocks)]
    if cfg.max_symbols is not None and len(frame) > cfg.max_symbols:
        beyond = frame["Symbol"].to_numpy()[cfg.max_symbols:]
        parts.append(pd.DataFrame({"Symbol": beyond, "reason": "beyond max_symbols",
                                   "detail": f"ranked past the top {cfg.max_symbols} "
                                             f"by {cfg.sort_by}"}))
        frame = frame.iloc[: cfg.max_symbols]
    frame = frame.reset_index(drop=True)
    first = blocks[0]
    frame.attrs.update(source=first.source, data_version=first.data_version, as_of=first.as_of,
                       scoring_version=scoring.SCORING_VERSION,
                       indicators_version=INDICATORS_VERSION, quality_version=QUALITY_VERSION)
    rejections = concat_rejections(parts)
    counts = rejections["reason"].value_counts()
    status = ScanStatus(
        attempted=plan.attempted, kept=len(frame), rejected=len(rejections),
        errors=len(plan.errors), rejected_by_reason={str(k): int(v) for k, v in counts.items()},
        rejections=rejections, error_details=plan.errors, source=first.source,
        data_version=first.data_version, as_of=first.as_of, window_bars=first.window_bars,
        alpha=alpha_state, quality_flagged=int((frame.get("quality_flags", pd.Series(
            dtype=object)).fillna("") != "").sum()),
    )
    if status.attempted != status.kept + status.rejected + status.errors:
        raise AssertionError(f"scan lost symbols: {status.summary()}")
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
