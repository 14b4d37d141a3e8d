"""Plan: which universe rows a scan evaluates, decided from the universe table alone.

`check_against(cfg, snapshot, budget)` runs the checks that need the data but not its
prices: the as-of date inside the store, every industry known (also those a `where` compares
Industry with), the where / rank expressions' cost (screens/cost.py) over the rows the request
may select within the budget. `plan_scan` then selects rows by symbols (unknown ones become
errors), sectors and industries (the others become "filtered: ..." rejections). Neither reads
a price: the Serve ingress plans while prices stay on replicas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from technic_v4.data.panel import memberships
from technic_v4.data.reader import Snapshot
from technic_v4.data.universe import normalize_sectors, validate_symbol
from technic_v4.errors import ConfigError
from technic_v4.scan.config import MAX_SYMBOLS, ScanConfig, as_of_timestamp, index_id_shape
from technic_v4.scan.expressions import compile_expressions, industries_read
from technic_v4.scan.screen import reject_rows
from technic_v4.screens.cost import Budget


@dataclass(frozen=True)
class ScanPlan:
    """Universe rows to evaluate (in universe order) and what selection already decided."""

    rows: np.ndarray
    symbols: np.ndarray           # the whole universe's symbols
    attempted: int
    rejections: list[pd.DataFrame]
    errors: list[dict[str, str]]
    as_of: pd.Timestamp           # the session the scan is as of

    @property
    def selected(self) -> list[str]:
        return self.symbols[self.rows].tolist()


def check_against(cfg: ScanConfig, snapshot: Snapshot, budget: Budget | None = None
                  ) -> pd.Timestamp:
    """The as-of session, after checking `cfg` against the store: ConfigError when the as-of
    date is before the store's first session, an industry is unknown, or the expressions
    cost more than `budget` (default: Budget()) over the symbols it may select."""
    sessions = snapshot.sessions
    if not len(sessions):
        raise ConfigError("as_of_date", "the store has no sessions")
    as_of = sessions[-1]
    if cfg.as_of_date is not None:
        wanted = as_of_timestamp(cfg.as_of_date)
        if wanted < sessions[0]:
            raise ConfigError("as_of_date", f"as_of_date {wanted.date()} is before the store's "
                              f"first session {sessions[0].date()}; the store covers "
                              f"{sessions[0].date()} to {sessions[-1].date()}")
        as_of = sessions[sessions.searchsorted(wanted, side="right") - 1]
    known_indexes = store_memberships(snapshot.universe)
    if cfg.where is not None or cfg.rank is not None:
        industries_read(cfg.where, cfg.rank,
                        sorted(set(snapshot.universe["industry"].dropna().astype(str))),
                        known_indexes)
    if cfg.indexes:
        bad = [i for i in cfg.indexes if index_id_shape(i) not in known_indexes]
        if bad:
            raise ConfigError("indexes", f"no symbol of the store is in index {bad}: " + (
                f"its memberships are {', '.join(known_indexes)}" if known_indexes else
                "it has no index memberships; build it with a universe from `technic data "
                "universe LIST --out FILE`"), known_indexes)
    if cfg.industries:
        known = sorted(set(snapshot.universe["industry"].astype(str)))
        bad = [i for i in cfg.industries if not industry_matches(known, [i]).any()]
        if bad:
            raise ConfigError("industries", f"unknown industries {bad}; see the valid values "
                              "(GET /v1/sectors, `technic data info`)", known)
    if cfg.regime_benchmark is not None and cfg.regime_benchmark not in snapshot.index:
        raise ConfigError("regime_benchmark", f"regime_benchmark {cfg.regime_benchmark!r} is "
                          "not a symbol in the store; omit it for the equal-weighted universe")
    check_cost(cfg, snapshot, budget)
    return as_of


def check_cost(cfg: ScanConfig, snapshot: Snapshot | None, budget: Budget | None = None,
               sessions: int = 1, at_once: bool = False) -> None:
    """ConfigError when `cfg`'s where / rank over the rows it may select (its symbols, else
    its sectors' rows, else the universe) at `sessions` sessions exceed `budget`. Without a
    snapshot (no store yet), the universe is taken as MAX_SYMBOLS rows."""
    exprs = compile_expressions(cfg.where, cfg.rank)
    if exprs.where is None and exprs.rank is None:
        return
    if snapshot is None:
        rows = len(set(cfg.symbols)) if cfg.symbols is not None else MAX_SYMBOLS
    elif cfg.symbols is not None:
        wanted = {validate_symbol(s) for s in cfg.symbols}
        rows = int((snapshot.index.get_indexer(list(wanted)) >= 0).sum())
    elif cfg.sectors is not None:
        rows = int(np.isin(snapshot.universe["sector"].to_numpy(dtype=object),
                           normalize_sectors(cfg.sectors)).sum())
    else:
        rows = len(snapshot.universe)
    exprs.check_cost(budget or Budget(), max(rows, 1), sessions, at_once)


def store_memberships(universe: pd.DataFrame) -> list[str]:
    """Every index id some symbol of `universe` is a member of, sorted."""
    return sorted({i for m in set(memberships(universe)) for i in m.split(",") if i})


def plan_scan(cfg: ScanConfig, snapshot: Snapshot, records: bool = True,
              budget: Budget | None = None) -> ScanPlan:
    """Rows of the universe to scan, after the symbol, sector, index and industry filters.
    `records=False`: the same rows without the rejection tables (execute_many's plans);
    `budget`: what the expressions may cost (check_against)."""
    as_of = check_against(cfg, snapshot, budget)
    universe = snapshot.universe
    symbols = universe["symbol"].to_numpy(dtype=object)
    n = len(symbols)
    mask = np.ones(n, dtype=bool)
    errors: list[dict[str, str]] = []
    attempted = n
    if cfg.symbols is not None:
        wanted = list(dict.fromkeys(validate_symbol(s) for s in cfg.symbols))
        pos = snapshot.index.get_indexer(wanted)
        errors = [{"symbol": s, "error": "unknown symbol: not in the universe"}
                  for s, p in zip(wanted, pos, strict=True) if p < 0]
        mask = np.zeros(n, dtype=bool)
        mask[pos[pos >= 0]] = True
        attempted = len(wanted)
    parts: list[pd.DataFrame] = []
    drop = reject_rows if records else _drop
    if cfg.sectors is not None:
        sector = universe["sector"].to_numpy(dtype=object)
        bad = ~np.isin(sector, normalize_sectors(cfg.sectors))
        mask = drop(symbols, mask, bad, "filtered: sector",
                           lambda i: "sector " + sector[i].astype(str).astype(object), parts)
    if cfg.indexes is not None:
        member = memberships(universe)
        wanted_idx = {index_id_shape(i) for i in cfg.indexes}
        bad = np.fromiter((wanted_idx.isdisjoint(m.split(",")) for m in member), bool, n)
        mask = drop(symbols, mask, bad, "filtered: index",
                    lambda i: "indexes " + np.where(member[i] == "", "none",
                                                    member[i]).astype(object), parts)
    if cfg.industries is not None:
        industry = universe["industry"].to_numpy(dtype=object)
        bad = ~industry_matches(industry, cfg.industries)
        mask = drop(symbols, mask, bad, "filtered: industry",
                           lambda i: "industry " + industry[i].astype(str).astype(object), parts)
    return ScanPlan(np.flatnonzero(mask), symbols, attempted, parts, errors, as_of)


def industry_matches(industries: Any, names: Iterable[str]) -> np.ndarray:
    """Which of `industries` (the universe's column) is one of `names`: case-insensitive,
    runs of spaces in a name as one (the scan's filter and GET /v1/universe?industry=)."""
    wanted = {" ".join(name.split()).lower() for name in names}
    return pd.Series(np.asarray(industries, dtype=object)).str.lower().isin(wanted).to_numpy()


def _drop(symbols: np.ndarray, alive: np.ndarray, bad: np.ndarray, reason: str,
          detail: Any, parts: list[pd.DataFrame]) -> np.ndarray:
    """`reject_rows` without recording the rejections."""
    return alive & ~bad
