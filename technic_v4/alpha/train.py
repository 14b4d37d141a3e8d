"""Train an alpha model honestly: a time split with embargoes, early stopping, a sealed test.

Walk-through of `train_model(panel, config)` (`train_models` does both horizons on one dataset):
 1. Dataset (`features.build_dataset`): every feature as of every session, forward returns per
    horizon, and the session each label reads (`label_end`).
 2. Split (`time_split`): the sessions that have labels are cut, in time order, into
        train | embargo | validation | embargo | test
    by `fractions` of that span; each embargo is `embargo` sessions (>= the horizon, checked).
    A row is kept in a segment only if its label is read before the next segment starts
    (`label_end` < next start: symbols with missing days reach further than t + h), so no
    training label overlaps a validation or test label.
 3. Rows: train and validation rows are every (symbol, session) with a bar, a label and the
    segment's session; when there are more than `max_train_rows` / `max_valid_rows`, a seeded
    uniform sample of them (recorded in the metadata as `subsample`).
 4. Fit: XGBoost `reg:squarederror` on the excess-return target (`features.excess_target`),
    histogram trees, early stopping on validation RMSE; the saved booster keeps only the trees
    up to the best iteration. Every random choice comes from `seed`.
 5. Test: the model scores every test row once; `evaluate.evaluate` reports IC, rank IC,
    top-decile excess return, hit rate, turnover and per-sector figures against the raw
    forward log returns. The test segment is touched only here, after training is final.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xgboost as xgb

from technic_v4.alpha import evaluate, features
from technic_v4.data.calendar import DEFAULT_CALENDAR
from technic_v4.data.panel import Panel

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "reg:squarederror",
    "eval_metric": "rmse",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.7,
    "colsample_bytree": 0.9,
    "min_child_weight": 500.0,
    "lambda": 10.0,
    "max_bin": 128,
    # One thread: a second brought 24.2 -> 22.4 s on the default demo market (2 cores, passive
    # OpenMP waiting) and 6x slower without passive waiting, numba's OpenMP pool spinning
    # against XGBoost's; see technic_v4/alpha/__init__.py.
    "nthread": 1,
}


MIN_SESSION_SYMBOLS = 20   # a session enters the split when this many symbols have a label
MIN_SEGMENT_SESSIONS = 20  # sessions in each of train, validation and test
SESSIONS_PER_YEAR = 252
RECOMMENDED_SIZE = "50+ symbols x 3+ years"  # ~150 test sessions x 50 symbols per IC


class TrainDataError(ValueError):
    """The store cannot train a model; the message says which it lacks: symbols or history."""


@dataclass(frozen=True)
class TrainConfig:
    horizon: int = 5
    seed: int = 0
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, validation, test
    embargo: int = 21  # sessions between segments; must be >= horizon
    max_train_rows: int = 1_500_000
    max_valid_rows: int = 500_000
    num_boost_round: int = 1000
    early_stopping_rounds: int = 50
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))

    def validate(self) -> None:
        features.feature_names(self.horizon)
        if self.embargo < self.horizon:
            raise ValueError(f"embargo {self.embargo} < horizon {self.horizon}: "
                             "training labels would overlap validation ones")
        if len(self.fractions) != 3 or min(self.fractions) <= 0:
            raise ValueError(f"fractions must be three positive numbers, got {self.fractions}")


@dataclass(frozen=True)
class Split:
    """Session index ranges [start, stop) of each segment, and the row masks after purging."""

    bounds: dict[str, tuple[int, int]]
    cells: dict[str, np.ndarray]  # segment -> (N, T) bool


@dataclass
class TrainedModel:
    booster: xgb.Booster
    metadata: dict
    test_pred: np.ndarray  # (N, T) forecasts on the test segment, NaN elsewhere


def time_split(ds: features.Dataset, cfg: TrainConfig) -> Split:
    """Step 2: train | embargo | validation | embargo | test, purged by label end."""
    cfg.validate()
    label, end = ds.labels[cfg.horizon], ds.label_end[cfg.horizon]
    labelled = np.isfinite(label)
    per_session = labelled.sum(0)
    dates = np.flatnonzero(per_session >= MIN_SESSION_SYMBOLS)
    if len(dates) == 0:
        symbols = int(labelled.any(1).sum())
        if symbols < MIN_SESSION_SYMBOLS:
            raise TrainDataError(
                f"too few symbols: {symbols} of the store's {label.shape[0]} have a "
                f"{cfg.horizon}-session forward return (a bar {cfg.horizon}+ bars before their "
                f"last); training needs at least {MIN_SESSION_SYMBOLS} on the same sessions, "
                f"since every statistic is across symbols: {needed_size(cfg)}")
        raise TrainDataError(
            f"too little overlapping history: {symbols} symbols have labels, but never "
            f"{MIN_SESSION_SYMBOLS} on the same session (at most {int(per_session.max())}); "
            f"training needs that many side by side: {needed_size(cfg)}")
    first, stop = int(dates[0]), int(dates[-1]) + 1
    usable = stop - first - 2 * cfg.embargo
    n_train, n_valid = _segment_sizes(usable, cfg.fractions)
    if not _split_fits(usable, cfg.fractions):
        needed = min_labelled_sessions(cfg)
        raise TrainDataError(
            f"too little history: {stop - first} sessions have labels for "
            f"{MIN_SESSION_SYMBOLS}+ symbols; a train/validation/test split needs at least "
            f"{needed} ({MIN_SEGMENT_SESSIONS}+ sessions per segment and two "
            f"{cfg.embargo}-session embargoes): {needed_size(cfg)}")
    v0 = first + n_train + cfg.embargo
    t0 = v0 + n_valid + cfg.embargo
    bounds = {"train": (first, first + n_train), "valid": (v0, v0 + n_valid),
              "test": (t0, stop)}
    next_start = {"train": v0, "valid": t0, "test": label.shape[1]}
    col = np.arange(label.shape[1])[None, :]
    cells = {}
    for name, (a, b) in bounds.items():
        cells[name] = labelled & (col >= a) & (col < b) & (end < next_start[name])
    return Split(bounds, cells)


def _segment_sizes(usable: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    w = np.asarray(fractions, dtype=np.float64)
    n_train, n_valid = (np.floor(usable * w[:2] / w.sum())).astype(int)
    return int(n_train), int(n_valid)


def _split_fits(usable: int, fractions: tuple[float, float, float]) -> bool:
    n_train, n_valid = _segment_sizes(usable, fractions)
    return usable >= 60 and min(n_train, n_valid, usable - n_train - n_valid) >= (
        MIN_SEGMENT_SESSIONS)


def min_labelled_sessions(cfg: TrainConfig) -> int:
    """The fewest sessions with labels for MIN_SESSION_SYMBOLS+ symbols a split needs."""
    usable = 60
    while not _split_fits(usable, cfg.fractions):
        usable += 1
    return usable + 2 * cfg.embargo


def needed_size(cfg: TrainConfig) -> str:
    """The smallest store `cfg` trains on, in symbols x years of bars on the same sessions."""
    sessions = min_labelled_sessions(cfg) + cfg.horizon
    return (f"the store needs at least {MIN_SESSION_SYMBOLS} symbols x "
            f"{sessions / SESSIONS_PER_YEAR:.1f} years ({sessions} sessions) of daily bars "
            f"on the same sessions; {RECOMMENDED_SIZE} recommended for metrics worth reading")


def _sample(cells: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Keep at most `limit` of the True cells, chosen uniformly (step 3)."""
    idx = np.flatnonzero(cells)
    if len(idx) <= limit:
        return cells
    out = np.zeros(cells.size, dtype=bool)
    out[np.sort(rng.choice(idx, size=limit, replace=False))] = True
    return out.reshape(cells.shape)


def train_model(panel: Panel, cfg: TrainConfig, ds: features.Dataset | None = None
                ) -> TrainedModel:
    """Steps 1-5 for one horizon; `ds` may be passed to share the dataset between horizons."""
    cfg.validate()
    t_start = time.perf_counter()
    ds = ds or features.build_dataset(panel, (cfg.horizon,))
    names = features.feature_names(cfg.horizon)
    split = time_split(ds, cfg)
    rng = np.random.default_rng(cfg.seed)
    target = features.excess_target(ds.labels[cfg.horizon])
    fit_cells = {"train": _sample(split.cells["train"], cfg.max_train_rows, rng),
                 "valid": _sample(split.cells["valid"], cfg.max_valid_rows, rng)}
    dtrain = xgb.QuantileDMatrix(ds.matrix(names, fit_cells["train"]),
                                 label=target[fit_cells["train"]], feature_names=list(names),
                                 max_bin=int(cfg.params.get("max_bin", 256)))
    dvalid = xgb.DMatrix(ds.matrix(names, fit_cells["valid"]),
                         label=target[fit_cells["valid"]], feature_names=list(names))
    params = {**cfg.params, "seed": cfg.seed}
    full = xgb.train(params, dtrain, num_boost_round=cfg.num_boost_round,
                     evals=[(dvalid, "valid")], early_stopping_rounds=cfg.early_stopping_rounds,
                     verbose_eval=False)
    best = int(full.best_iteration)
    booster = full[: best + 1]

    test_cells = split.cells["test"]
    test_pred = np.full(test_cells.shape, np.nan)
    test_pred[test_cells] = booster.inplace_predict(ds.matrix(names, test_cells))
    sectors = panel.universe["sector"].to_numpy()
    test_report = evaluate.evaluate(test_pred, ds.labels[cfg.horizon], cfg.horizon, sectors,
                                    panel.sessions)
    valid_pred = np.full(test_cells.shape, np.nan)
    valid_pred[split.cells["valid"]] = booster.inplace_predict(
        ds.matrix(names, split.cells["valid"]))
    valid_report = evaluate.evaluate(valid_pred, ds.labels[cfg.horizon], cfg.horizon)
    valid_report.pop("by_sector")

    day = [str(d.date()) for d in panel.sessions]
    metadata = {
        "id": f"alpha_{cfg.horizon}d",
        "features": list(names),
        "horizon": cfg.horizon,
        "label": f"forward {cfg.horizon}-session close-to-close log return on the symbol's own "
                 "bars: log(close of its h-th next bar / close at the feature session)",
        "target": "label minus its session's cross-sectional mean, winsorized at the "
                  f"session's median +- {features.TARGET_CLIP_SD} robust SD (1.4826 x MAD)",
        "training_window": {
            name: {"first": day[a], "last": day[b - 1], "sessions": int(b - a),
                   "rows": int(split.cells[name].sum())}
            for name, (a, b) in split.bounds.items()
        },
        "embargo_sessions": cfg.embargo,
        "subsample": {
            "train_rows_used": int(fit_cells["train"].sum()),
            "valid_rows_used": int(fit_cells["valid"].sum()),
            "rule": f"uniform seeded sample when a segment has more than {cfg.max_train_rows} "
                    f"(train) / {cfg.max_valid_rows} (validation) rows",
        },
        "data": {"source": panel.source, "data_version": panel.data_version,
                 "calendar": str(panel.meta.get("calendar", DEFAULT_CALENDAR)),
                 "symbols": panel.n_symbols, "sessions": panel.n_sessions,
                 "first": day[0], "last": day[-1]},
        "xgboost": {"params": params, "best_iteration": best, "trees": best + 1,
                    "early_stopping_rounds": cfg.early_stopping_rounds,
                    "best_valid_rmse": round(float(full.best_score), 8)},
        "config": {k: v for k, v in asdict(cfg).items() if k != "params"},
        "libraries": library_versions(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "train_seconds": round(time.perf_counter() - t_start, 2),
        "metrics": {"test": test_report, "validation": valid_report},
    }
    return TrainedModel(booster, metadata, test_pred)


def train_models(panel: Panel, horizons: tuple[int, ...] = (5, 10), seed: int = 0,
                 **overrides: Any) -> dict[int, TrainedModel]:
    """One model per horizon on one shared dataset (features are computed once);
    `overrides` are further TrainConfig fields."""
    ds = features.build_dataset(panel, horizons)
    return {h: train_model(panel, TrainConfig(horizon=h, seed=seed, **overrides), ds)
            for h in horizons}


def library_versions() -> dict[str, str]:
    import numba

    import technic_v4

    return {"xgboost": xgb.__version__, "numpy": np.__version__, "numba": numba.__version__,
            "technic": getattr(technic_v4, "__version__", "unknown"),
            "python": platform.python_version()}
