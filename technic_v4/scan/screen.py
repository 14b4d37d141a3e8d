"""Screen: a request's conditions over measured rows, each rejected row with its reason.

The checks run in this order; a row is rejected by the first it fails, so every symbol has
exactly one reason:
  not listed yet   no bar in the window and the first bar comes after the as-of session
  stale            last bar more than `max_stale_sessions` sessions before the as-of session
  no data          no bar at all
  too few bars     fewer than `min_bars` bars in the window
  below min price / below min dollar volume / below min TechRating / signal filtered
  quality flagged  only with `exclude_flagged` / `exclude_flags`
Everything is a vectorized mask over the frame; a detail string is built for rejected rows only.
The rows that pass the first four (data) checks are the scan's universe: what cross-sectional
expression functions (pct_rank, sector_rank, RS_rating) rank within.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from technic_v4.data.quality import FLAGS as QUALITY_FLAGS
from technic_v4.scan.columns import REJECTION_COLUMNS
from technic_v4.scan.config import ScanConfig

Detail = Callable[[np.ndarray], Sequence[str] | np.ndarray]  # rejected rows -> their details
DATA_CHECKS = 4  # the first four checks: listed, fresh, has bars, enough bars


@dataclass(frozen=True)
class Facts:
    """What the checks read, per symbol: arrays of one shape, (N,) at one session (a scan) or
    (N, T) at every session (a validation); `as_of` a session or (1, T) of them."""

    bars: np.ndarray          # bars in the scan's window
    age: np.ndarray           # sessions since the last bar
    first: np.ndarray         # first bar's date (datetime64; NaT when none)
    last: np.ndarray          # last bar's date (datetime64)
    as_of: np.ndarray | np.datetime64
    close: np.ndarray
    dollar_volume: np.ndarray
    tech_rating: np.ndarray
    signal: np.ndarray        # object
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # quality flag -> bool
    flag_text: np.ndarray | None = None

    @classmethod
    def of(cls, frame: pd.DataFrame, as_of: pd.Timestamp) -> Facts:
        """The facts of a measured frame (evaluate.py) at its as-of session."""
        return cls(frame["Bars"].to_numpy(), frame["_age"].to_numpy(),
                   frame["_first_seen"].to_numpy(dtype="datetime64[ns]"),
                   frame["_last_seen"].to_numpy(dtype="datetime64[ns]"), as_of.to_datetime64(),
                   frame["Close"].to_numpy(), frame["DollarVolume"].to_numpy(),
                   frame["TechRating"].to_numpy(), frame["Signal"].to_numpy(dtype=object),
                   {name: frame[f"_flag_{name}"].to_numpy(dtype=bool) for name in QUALITY_FLAGS},
                   frame["quality_flags"].to_numpy(dtype=object))


def checks(cfg: ScanConfig, f: Facts) -> list[tuple[str, np.ndarray, Detail]]:
    """(reason, failing mask, detail texts of failing rows) in order (module docstring); the
    masks have the facts' shape, the details index (N,) facts (a scan's)."""
    bars, age, first, last = f.bars, f.age, f.first, f.last
    with np.errstate(invalid="ignore"):
        out: list[tuple[str, np.ndarray, Detail]] = [
            ("not listed yet", (bars == 0) & (first > f.as_of),
             lambda i: "first bar " + _days(first[i]) + " is after the as-of session"),
            ("stale", (age > cfg.max_stale_sessions) & (last <= f.as_of),
             lambda i: "last bar " + _days(last[i]) + f", more than {cfg.max_stale_sessions} "
                       "sessions before the as-of session"),
            ("no data", bars == 0,
             lambda i: np.full(len(i), "no bar in the store", dtype=object)),
            ("too few bars", bars < cfg.min_bars,
             lambda i: bars[i].astype(str).astype(object) + f" bars < min_bars {cfg.min_bars}"),
        ]
        if cfg.min_price is not None:
            out.append(("below min price", ~(f.close >= cfg.min_price),
                        lambda i: [f"close {c:.2f} < {cfg.min_price}" for c in f.close[i]]))
        if cfg.min_dollar_volume is not None:
            out.append(("below min dollar volume", ~(f.dollar_volume >= cfg.min_dollar_volume),
                        lambda i: [f"{d:,.0f} < {cfg.min_dollar_volume:,.0f}"
                                   for d in f.dollar_volume[i]]))
        if cfg.min_tech_rating is not None:
            out.append(("below min TechRating", f.tech_rating < cfg.min_tech_rating,
                        lambda i: [f"{r:.1f} < {cfg.min_tech_rating}" for r in f.tech_rating[i]]))
    if cfg.signals:
        out.append(("signal filtered", ~np.isin(f.signal, list(cfg.signals)),
                    lambda i: "signal " + f.signal[i].astype(str).astype(object)))
    if cfg.exclude_flagged or cfg.exclude_flags:
        flagged = np.zeros(np.shape(f.bars), dtype=bool)
        for name in tuple(cfg.exclude_flags or QUALITY_FLAGS):
            flagged |= f.flags[name]
        text = f.flag_text if f.flag_text is not None else np.full(np.shape(f.bars), "")
        out.append(("quality flagged", flagged,
                    lambda i: "quality flags: " + text[i].astype(str).astype(object)))
    return out


def screen(cfg: ScanConfig, frame: pd.DataFrame, as_of: pd.Timestamp
           ) -> tuple[np.ndarray, np.ndarray, list[pd.DataFrame]]:
    """(rows with valid data: the scan's universe, rows that pass every check, rejection
    tables) for the measured `frame` (evaluate.py). The `where` expression is not here: it
    reads the alpha columns, so run.py applies it after the forecasts (`reject_rows`)."""
    symbols = frame["Symbol"].to_numpy(dtype=object)
    parts: list[pd.DataFrame] = []
    alive = np.ones(len(frame), dtype=bool)
    valid = alive
    for k, (reason, bad, detail) in enumerate(checks(cfg, Facts.of(frame, as_of))):
        alive = reject_rows(symbols, alive, bad, reason, detail, parts)
        if k == DATA_CHECKS - 1:
            valid = alive
    return valid, alive, parts


def screen_masks(cfg: ScanConfig, facts: Facts) -> tuple[np.ndarray, np.ndarray]:
    """(valid data, passes every check) for facts of any shape: the scan's screen at many
    sessions at once (validation), without rejection records."""
    alive = np.ones(np.shape(facts.bars), dtype=bool)
    valid = alive
    for k, (_, bad, _) in enumerate(checks(cfg, facts)):
        alive = alive & ~bad
        if k == DATA_CHECKS - 1:
            valid = alive
    return valid, alive




def _days(dates: np.ndarray) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(dates).strftime("%Y-%m-%d"), dtype=object)


def reject_rows(symbols: np.ndarray, alive: np.ndarray, bad: np.ndarray, reason: str,
                detail: Detail, parts: list[pd.DataFrame]) -> np.ndarray:
    """Record the still-alive rows that fail a check (`detail(rows)`: their detail texts, one
    call for all of them); return the rows still alive."""
    hit = np.flatnonzero(alive & bad)
    if len(hit):
        parts.append(pd.DataFrame({"Symbol": symbols[hit], "reason": reason,
                                   "detail": list(detail(hit))}))
    return alive & ~bad


def concat_rejections(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTION_COLUMNS})
    return pd.concat(parts, ignore_index=True)
