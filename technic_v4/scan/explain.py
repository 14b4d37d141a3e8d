"""Why this rating: one symbol's TechRating, Signal and alpha forecasts, taken apart.

`explain(reader, models, symbol, as_of=None)` answers for one symbol at one session (default
the latest) with the numbers a scan as of that session shows for it, from the scan's own code:
  1. `explain_spec`: the symbol checked (malformed: InvalidSymbolError, a ConfigError; not in
     the universe: UnknownSymbolError) and the as-of date resolved to a session as a scan
     resolves it (ConfigError before the store's first session); the WindowSpec is the one
     a default scan as of that session evaluates with (`WindowSpec.of`, as run.py builds it).
  2. `explain_indicators`: the scan's window loaded from `reader`, the symbol's row taken out
     and measured by `measure` (the scan's row: TechRating, Signal, the model features); the
     scoring inputs are `compute_indicators` on that same one-row Panel (`measure`'s call;
     each symbol is computed on its own bars, so a one-row Panel gives the row's values).
     `scoring.explain_scores` turns them into sub-scores, rules, weighted sum, risk factor,
     TechRating and Signal; its TechRating must equal the measured one (checked). The default
     scan's screen says whether the symbol would be kept, or why not (stale, too few bars ...).
  3. `explain_alpha`: each model's per-feature contributions (TreeSHAP, `ModelSet.
     contributions`) for the row's model features, or why the model is unavailable.
  4. `combine`: the two parts as one dict (the JSON of the API and of `technic explain`);
     a model trained on another kind of data or calendar than the store's is shown
     unavailable, with the reason (`matching_explained`), never its contributions.
Under Serve, step 2 runs on an Indicators replica (it holds the window) and step 3 on the
AlphaModel replica (it holds the models); the ingress combines them (deployments/).
AlphaScore is not explained: it is a z-score over the rows of a scan, not a property of one
symbol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from technic_v4 import scoring
from technic_v4.alpha.inference import (
    HORIZONS,
    MODEL_FEATURES,
    ModelSet,
    mismatch,
    mismatch_reason,
    mismatch_summary,
)
from technic_v4.alpha.registry import model_id
from technic_v4.data.calendar import DEFAULT_CALENDAR
from technic_v4.data.reader import Snapshot
from technic_v4.data.universe import validate_symbol
from technic_v4.errors import StaleDataError, UnknownSymbolError
from technic_v4.indicators import compute_indicators
from technic_v4.scan.config import ScanConfig
from technic_v4.scan.evaluate import WindowSpec, at_last_bar, measure
from technic_v4.scan.plan import check_against
from technic_v4.scan.screen import concat_rejections, screen

ALPHA_SCORE_NOTE = ("AlphaScore is the mean z-score of Alpha5d and Alpha10d over the rows of a "
                    "scan: relative to the scanned set, so not explained for one symbol")


def explain_spec(snapshot: Snapshot, symbol: str, as_of: object = None,
                 scoring_cfg: scoring.ScoringConfig | None = None
                 ) -> tuple[str, WindowSpec, pd.Timestamp, ScanConfig]:
    """(symbol normalised, the scan's WindowSpec, the as-of session, the default scan's
    config) for `symbol` as of `as_of` (step 1); raises InvalidSymbolError, ConfigError,
    UnknownSymbolError."""
    symbol = validate_symbol(symbol)
    cfg = ScanConfig(as_of_date=None if as_of is None else str(as_of),
                     scoring=scoring_cfg or scoring.ScoringConfig())
    cfg.validate()
    session = check_against(cfg, snapshot)
    if snapshot.rows([symbol])[0] < 0:
        raise UnknownSymbolError(f"unknown symbol {symbol!r}: not in the universe "
                                 f"(data_version {snapshot.data_version})")
    latest = session == snapshot.sessions[-1]
    spec = replace(WindowSpec.of(cfg), as_of=None if latest else str(session.date()))
    return symbol, spec, session, cfg


def explain_indicators(reader: Any, symbol: str, as_of: object = None,
                       scoring_cfg: scoring.ScoringConfig | None = None) -> dict[str, Any]:
    """Step 2 for `symbol` on `reader` (a StoreReader or PanelSource): everything but the
    alpha contributions; `features` holds the model features for `explain_alpha`."""
    snap = reader.snapshot()
    symbol, spec, session, cfg = explain_spec(snap, symbol, as_of, scoring_cfg)
    panel = reader.load(spec.as_of, spec.bars)
    if panel.data_version != snap.data_version:
        raise StaleDataError(f"the store changed while explaining {symbol}: planned on "
                             f"{snap.data_version}, loaded {panel.data_version}; retry")
    rows = reader.rows(panel, [symbol])
    if rows[0] < 0:
        raise StaleDataError(f"symbol {symbol!r} is not in store version {panel.data_version}")
    one = panel.select(rows)
    block = measure(one, spec)
    row = block.frame.iloc[0]
    table = compute_indicators(one)
    close = at_last_bar(one.close, one.last_bar_index())
    inputs = {k: np.asarray(table.last[k], dtype=float) for k in scoring.SCORING_INPUTS
              if k != "Close"}
    rating = scoring.explain_scores({**inputs, "Close": close}, spec.scoring)[0]
    if rating["value"] != row["TechRating"] or rating["signal"]["value"] != row["Signal"]:
        raise AssertionError(f"explain disagrees with the scan for {symbol}: "
                             f"{rating['value']} {rating['signal']['value']} vs "
                             f"{row['TechRating']} {row['Signal']}")
    _, alive, parts = screen(cfg, block.frame, session)
    rejected = concat_rejections(parts)
    last_bar = row["LastDate"]
    return {
        "meta": {"data_version": block.data_version, "source": block.source,
                 "calendar": snap.manifest.calendar if snap.manifest is not None
                 else DEFAULT_CALENDAR,
                 "as_of": block.as_of, "window_bars": block.window_bars,
                 "scoring_version": scoring.SCORING_VERSION},
        "symbol": symbol, "name": str(row["Name"]), "sector": str(row["Sector"]),
        "industry": str(row["Industry"]),
        "last_bar": None if pd.isna(last_bar) else str(pd.Timestamp(last_bar).date()),
        "bars": int(row["Bars"]), "close": float(row["Close"]),
        "incomplete": str(row["Incomplete"]).split(),
        "quality_flags": str(row["quality_flags"]).split(),
        "scan": {"kept": bool(alive[0]),
                 "reason": None if alive[0] else str(rejected["reason"].iloc[0]),
                 "detail": None if alive[0] else str(rejected["detail"].iloc[0])},
        "tech_rating": rating,
        "features": {name: float(row[name]) for name in MODEL_FEATURES},
    }


def explain_alpha(models: ModelSet, features: Mapping[str, float]) -> dict[str, Any]:
    """Step 3: each model's forecast for one row of model features, split by feature."""
    split, state = models.contributions({k: np.array([v], dtype=float)
                                         for k, v in features.items()})
    states = state.get("models") or {}
    out = []
    for h in HORIZONS:
        mid = model_id(h)
        c = split.get(h)
        if c is None:
            why = states.get(mid, {}) if isinstance(states, dict) else {}
            out.append({"id": mid, "horizon": h, "column": f"Alpha{h}d", "available": False,
                        "reason": str(why.get("reason") or state.get("reason"))})
            continue
        values = [float(v) for v in c.values[0]]
        bias = float(c.bias[0])
        held = states.get(mid) if isinstance(states, dict) else None
        trained = held if isinstance(held, dict) else {}
        out.append({
            "id": mid, "horizon": h, "column": f"Alpha{h}d", "available": True,
            "version": c.version, "forecast": float(c.forecast[0]), "bias": bias,
            "data_source": trained.get("data_source"), "calendar": trained.get("calendar"),
            "sum": float(np.sum(values, dtype=np.float64) + bias),
            "contributions": [{"feature": f, "value": float(features[f]), "contribution": v}
                              for f, v in zip(c.features, values, strict=True)],
        })
    return {"available": bool(state.get("available")),
            "reason": state.get("reason"), "models_version": state.get("models_version"),
            "models": out, "alpha_score": ALPHA_SCORE_NOTE}


def combine(indicators: dict[str, Any], alpha: dict[str, Any]) -> dict[str, Any]:
    """Step 4: one answer from the two parts (the indicator part's `features` move under
    `alpha`); a model trained on another kind of data or calendar than the store's is shown
    unavailable with the reason, its contributions withheld (inference.py, step 7)."""
    out = dict(indicators)
    features = out.pop("features")
    alpha = matching_explained(alpha, out["meta"]["source"], out["meta"]["calendar"])
    out["meta"] = {**out["meta"], "models_version": alpha.get("models_version")}
    out["alpha"] = {**alpha, "features": features}
    return out


def matching_explained(alpha: dict[str, Any], source: str, calendar: str) -> dict[str, Any]:
    """`explain_alpha`'s answer with each model that does not match the store (source kind,
    calendar) made unavailable: no forecast, no contributions, the reason."""
    short: list[str] = []
    models = []
    for m in alpha["models"]:
        why = mismatch(m, source, calendar) if m["available"] else []
        if why:
            short.extend(why)
            m = {**{k: m[k] for k in ("id", "horizon", "column", "version", "data_source",
                                      "calendar")}, "available": False,
                 "reason": mismatch_reason(m["id"], m, why, source, calendar)}
        models.append(m)
    if not short:
        return alpha
    earlier = f"{alpha['reason']}; " if alpha.get("reason") else "alpha unavailable: "
    return {**alpha, "available": False, "models": models,
            "reason": earlier + mismatch_summary(short)}


def explain(reader: Any, models: ModelSet, symbol: str, as_of: object = None,
            scoring_cfg: scoring.ScoringConfig | None = None) -> dict[str, Any]:
    """Why `symbol` has its TechRating, Signal and alpha forecasts as of `as_of` (module
    docstring), as one JSON-ready dict (NaN where a value is missing)."""
    part = explain_indicators(reader, symbol, as_of, scoring_cfg)
    return combine(part, explain_alpha(models, part["features"]))
