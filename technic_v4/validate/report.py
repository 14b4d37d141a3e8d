"""`validate(cfg, reader, options)`: would this screen have worked? One report, honestly stated.

Walk-through:
  1. `replay` (replay.py): the screen at every evaluated session, as the scan would have run
     it that day, from bars up to that day only.
  2. Forward returns per horizon on each symbol's own next bars, in excess of the day's
     equal-weighted universe (returns.py).
  3. Statistics (stats.py): passing symbols per day; the passing set's mean excess with a
     Newey-West t and hit rate; the ranking's daily rank IC, IC IR and mean excess by decile;
     a top-N portfolio rebalanced every k sessions, its cumulative and annualised excess both
     net of a cost per side and both over the replay's calendar span (gross beside); by
     sector, by year and by market regime (the regime as of each session, regimes.py).
  4. How each figure is defined, in its `conventions` (entry, exit, excess, Newey-West lags,
     span, net/gross), where the bars came from (`data.source`, `data.notice`: SYNTHETIC on
     the demo market), and what the report cannot know, in its `assumptions`: no costs unless
     given, no borrow (long only), close-to-close fills, survivorship (whether the store holds
     delisted symbols), and statistics with fewer than 30 independent observations marked.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from technic_v4 import __version__, cancel
from technic_v4.errors import ConfigError, StaleDataError
from technic_v4.regimes import REGIME_CACHE, REGIME_VERSION, REGIMES, UNKNOWN
from technic_v4.scan.config import ScanConfig
from technic_v4.screens.cost import Budget
from technic_v4.screens.saved import ScreenStore, resolve_screen
from technic_v4.validate import stats
from technic_v4.validate.measure import Measure, Runner, merge, run_blocks, sector_codes
from technic_v4.validate.replay import Progress, plan_replay

DEFAULT_HORIZONS = (1, 5, 10, 21)
SYNTHETIC = "synthetic"  # the demo market's source (technic_v4/data/demo.py)


@dataclass(frozen=True)
class ValidateOptions:
    """How to replay and what to measure (the screen itself is the ScanConfig)."""

    start: str | None = None          # first session (default: the first with enough history)
    end: str | None = None            # last session (default: the store's last)
    every: int = 1                    # evaluate every k-th session
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    top: int = 20                     # portfolio size (default: max_symbols when set)
    rebalance: int = 5                # evaluated sessions between portfolio rebalances
    cost_bps: float = 0.0             # cost per side, basis points

    def check(self) -> None:
        dates = {}
        for name in ("start", "end"):
            text = getattr(self, name)
            if text is None:
                continue
            try:
                dates[name] = date.fromisoformat(str(text))
            except ValueError:
                raise ConfigError(name, f"{name} must be a date YYYY-MM-DD, got {text!r}"
                                  ) from None
        if len(dates) == 2 and dates["end"] < dates["start"]:
            raise ConfigError("end", f"end {dates['end']} is before start {dates['start']}")
        if not self.horizons or any(not 1 <= h <= 252 for h in self.horizons):
            raise ConfigError("horizons", f"horizons must be 1..252 sessions, got "
                              f"{list(self.horizons)}")
        for name, value, lo, hi in (("every", self.every, 1, 252), ("top", self.top, 1, 5000),
                                    ("rebalance", self.rebalance, 1, 252)):
            if not lo <= value <= hi:
                raise ConfigError(name, f"{name} must be {lo}..{hi}, got {value}")
        if not 0 <= self.cost_bps <= 1000:
            raise ConfigError("cost_bps", f"cost_bps must be 0..1000, got {self.cost_bps}")


@dataclass
class ValidationReport:
    report: dict[str, Any]
    daily: pd.DataFrame = field(repr=False)

    def daily_bytes(self, fmt: str) -> bytes:
        """The daily series as a file: "csv" or "parquet" (the CLI's and the API's)."""
        if fmt == "csv":
            return self.daily.to_csv(index=False).encode()
        if fmt == "parquet":
            buf = io.BytesIO()
            self.daily.to_parquet(buf, index=False)
            return buf.getvalue()
        raise ValueError(f"daily series as {fmt!r}: expected 'csv' or 'parquet'")


def _screen(cfg: ScanConfig) -> dict[str, Any]:
    """The screen's fields that differ from a default scan (what defines it)."""
    default = ScanConfig().to_dict()
    return {k: v for k, v in cfg.normalized().to_dict().items()
            if k != "scoring" and v != default[k]}


def source_notice(source: str) -> str:
    """The line every validation output leads with: where the bars came from, and that they
    are generated when they are (the demo market's figures say nothing about real stocks)."""
    if source == SYNTHETIC:
        return ("SYNTHETIC DATA: the demo market's prices are generated, not real; these "
                "figures say nothing about real stocks (load real bars: technic data ingest)")
    return f"data source: {source}"


def conventions(opts: ValidateOptions, portfolio: dict[str, Any],
                sessions: pd.DatetimeIndex) -> dict[str, Any]:
    """How every figure of the report is defined (the README's "Conventions" says the same)."""
    return {
        "entry": "at the close of the session the screen ran (the signal session)",
        "exit": "at the close of the symbol's h-th next bar (its own bars: a session it did not "
                "trade is not a bar)",
        "horizons": list(opts.horizons),
        "excess_vs": "the equal-weighted mean return of the day's universe: the symbols "
                     "passing the scan's data checks that day that have a forward return",
        "statistics": "passing_excess, hit_rate, deciles, by_sector and by_year use log "
                      "returns; simple_excess and the portfolio simple returns; rank_ic is "
                      "the daily Spearman correlation of the rank with the forward return "
                      "(ranks are the same for simple, log and excess returns; computed on "
                      "simple ones, so equal returns tie, as in alphalens)",
        "newey_west": "Bartlett kernel; lags ceil(2h / every) for h > every (overlapping "
                      "returns), 0 for h <= every (h = 1, every session: 0); a series that is "
                      "exactly 0 has t = 0",
        "newey_west_lags": {str(h): stats.newey_west_lags(h, opts.every)
                            for h in opts.horizons},
        "portfolio": f"top {portfolio['top']} by rank, equal weight, rebalanced every "
                     f"{opts.rebalance} evaluated sessions, held from each evaluated session's "
                     f"close to the next one's (every {opts.every}); each step earns its "
                     "picks' mean simple return less the universe's (a session with nothing "
                     "held earns 0); the last step, which would end after the data, is not "
                     "taken",
        "costs": f"{opts.cost_bps:g} bps per side on the names traded at each rebalance, "
                 "subtracted from that step's excess",
        "span": {"first_session": str(sessions[0].date()),
                 "last_session": str(sessions[-1].date()),
                 "calendar_days": portfolio["calendar_days"]},
        "cumulative": "net of costs: the product of (1 + step excess) over the span, less 1 "
                      "(cumulative_excess_gross: before costs)",
        "annualised": "net of costs, over the same span: (1 + cumulative) ** (365.25 / "
                      "calendar_days) - 1 (annualised_excess_gross: the same from the gross "
                      "cumulative)",
        "volatility": "standard deviation of the net step excess over the span's steps (0 "
                      "where nothing was held) times the square root of steps per year",
        "per_held_step": "mean net (and gross) excess of the steps in which something was "
                         "held, not annualised, with its t (0 lags: steps do not overlap)",
    }


def session_regimes(reader: Any, cfg: ScanConfig, panel: Any, sessions: pd.DatetimeIndex
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """The market regime as of each evaluated session (technic_v4/regimes.py: bars up to that
    session only), and the report's `regimes` section: benchmark, version, sessions and share
    per regime over the evaluated sessions."""
    series = REGIME_CACHE.get(reader, cfg.regime_benchmark)
    if series.data_version != panel.data_version:
        raise StaleDataError(f"regimes computed on data_version {series.data_version}, the "
                             f"replay read {panel.data_version}")
    at = series.sessions.get_indexer(sessions)
    labels = np.where(at >= 0, series.regime[np.maximum(at, 0)], UNKNOWN).astype(object)
    counts = {r: int((labels == r).sum()) for r in (*REGIMES, UNKNOWN)}
    known = max(len(labels) - counts[UNKNOWN], 1)
    return labels, {
        "benchmark": series.benchmark, "version": REGIME_VERSION,
        "rule": "docs/guides/regimes.md (technic_v4/regimes.py)",
        "sessions": {r: {"sessions": n, "share": round(n / known, 4) if r != UNKNOWN else None}
                     for r, n in counts.items() if n},
    }


def validate(cfg: ScanConfig, reader: Any, options: ValidateOptions | None = None,
             progress: Progress | None = None, *, screens: ScreenStore | None = None,
             budget: Budget | None = None, cancel_token: cancel.CancelToken | None = None,
             block_sessions: int = 0, memory_mb: int = 0,
             runner: Runner | None = None) -> ValidationReport:
    """Replay `cfg` over history and measure what its picks did next (module docstring).
    `cfg.screen` names a saved screen or preset, looked up in `screens` (default: the saved
    screens of the reader's data dir, as run_scan); `budget`: what the expressions may cost
    over every replayed session (replay). `cancel_token`: checked between sessions,
    expression nodes and horizons (technic_v4/cancel.py); Cancelled once set.
    `block_sessions`: sessions per block of the replay, or `memory_mb`: the memory a block
    may take, from which its sessions are chosen (replay.block_size; 0: the default; front
    ends pass TECHNIC_VALIDATE_BLOCK_SESSIONS / TECHNIC_VALIDATE_MEMORY_MB). `runner` runs
    the blocks (default: one after the other in this process, measure.run_blocks)."""
    with cancel.active(cancel_token):
        return _validate(cfg, reader, options, progress, screens, budget, block_sessions,
                         memory_mb, runner)


def _validate(cfg: ScanConfig, reader: Any, options: ValidateOptions | None,
              progress: Progress | None, screens: ScreenStore | None,
              budget: Budget | None, block_sessions: int, memory_mb: int,
              runner: Runner | None) -> ValidationReport:
    opts = options or ValidateOptions()
    opts.check()
    ref = None
    if cfg.screen is not None:
        if screens is None and getattr(reader, "data_dir", None):
            screens = ScreenStore.for_data_dir(reader.data_dir)
        cfg, ref = resolve_screen(cfg, screens)
    t0 = time.perf_counter()
    top = cfg.max_symbols or opts.top
    plan = plan_replay(cfg, reader, opts.start, opts.end, opts.every, budget=budget,
                       block_sessions=block_sessions, memory_mb=memory_mb,
                       ahead=max(*opts.horizons, opts.every), align=opts.rebalance)
    what = Measure(tuple(opts.horizons), opts.every, top, opts.rebalance)
    run = runner or partial(run_blocks, reader)
    merged = merge(run(plan, what, progress))
    n_sessions = len(plan.columns)
    if progress:
        progress("replay", n_sessions, n_sessions)
    t_replay = time.perf_counter()
    sessions = plan.sessions[plan.columns]
    daily = pd.DataFrame({"session": sessions.strftime("%Y-%m-%d"),
                          "universe": merged.universe, "passing": merged.passing})
    labels, regime_info = session_regimes(reader, cfg, plan, sessions)
    daily["regime"] = labels
    _, sector_names = sector_codes(plan)
    horizons: dict[str, Any] = {}
    for h in opts.horizons:
        cancel.check()
        got = merged.horizons[h]
        daily[f"excess_{h}d"], daily[f"rank_ic_{h}d"] = got.mean, got.ic
        ic_ok = got.ic[np.isfinite(got.ic)]
        horizons[str(h)] = {
            "passing_excess": stats.summary(got.mean, h, opts.every),
            "hit_rate": stats.hit_rate(got.hit, got.cells),
            "simple_excess": stats._num(float(stats._nanmean(got.simple, 0)))
            if merged.passing.any() else None,
            "truncated_by_delisting": got.truncated,
            "rank_ic": {**stats.summary(got.ic, h, opts.every),
                        "ic_ir": stats._num(float(ic_ok.mean() / ic_ok.std()))
                        if ic_ok.size > 1 and ic_ok.std() > 0 else None},
            "deciles": stats.deciles(got.deciles),
            "by_sector": stats.by_group(sector_names, got.sectors, h, opts.every),
            "by_year": stats.by_year(sessions, got.mean, h, opts.every),
            "by_regime": stats.by_regime(labels, got.mean, got.ic, got.hit, got.cells, h,
                                         opts.every, (*REGIMES, UNKNOWN)),
        }
    cancel.check()
    taken = plan.columns + opts.every <= plan.stop  # the step ends inside the data
    days = float((sessions[-1] - sessions[0]).days)
    summary, series = stats.portfolio(merged.picks, merged.gross, top, opts.rebalance,
                                      opts.cost_bps, taken, days)
    daily = pd.concat([daily, series], axis=1)
    has_delisted = bool(plan.delisted.any())
    report = {
        "screen": _screen(cfg),
        "saved_screen": ref,
        "options": asdict(opts) | {"top": top},
        "data": {"data_version": plan.data_version, "source": plan.source,
                 "synthetic": plan.source == SYNTHETIC, "notice": source_notice(plan.source),
                 "first_session": str(sessions[0].date()),
                 "last_session": str(sessions[-1].date()),
                 "sessions_evaluated": n_sessions, "symbols": len(plan.rows),
                 "window_bars": plan.window_bars, "history_needed": plan.lookback,
                 "blocks": len(plan.blocks)},
        "passing": {"mean_per_session": stats._num(float(merged.passing.mean())),
                    "sessions_with_none": int((merged.passing == 0).sum())},
        "conventions": conventions(opts, summary, sessions),
        "regimes": regime_info,
        "horizons": horizons,
        "portfolio": summary,
        "assumptions": {
            "survivorship": ("the store holds delisted symbols; they are in each day's "
                             "universe while they traded" if has_delisted else
                             "survivorship: universe is today's listings (the store holds no "
                             "delisted symbols), so past results are flattered"),
            "fills": "close to close: bought at the close of the session the screen ran",
            "costs": (f"{opts.cost_bps:g} bps per side on the portfolio's trades" if
                      opts.cost_bps else "no transaction costs (give cost_bps)"),
            "borrow": "long only; no shorting or borrow costs",
            "returns": "log returns on each symbol's own next bars, in excess of the day's "
                       "equal-weighted universe (simple_excess: the same in simple returns, "
                       "which favour volatile names even where nothing is predictable); the "
                       "portfolio earns simple returns; a symbol delisted inside the horizon "
                       "returns to its last bar",
            "significance": f"statistics with fewer than {stats.MIN_INDEPENDENT} independent "
                            "observations are marked meaningful: false",
        },
        "timings_ms": {"replay": round((t_replay - t0) * 1000, 1),
                       "total": round((time.perf_counter() - t0) * 1000, 1)},
        "version": __version__,
    }
    return ValidationReport(report, daily)
