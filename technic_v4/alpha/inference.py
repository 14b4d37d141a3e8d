"""Alpha columns for a scan: model forecasts, or an explicit "alpha unavailable" state.

`predict_alpha(features, rows)` is what `run_scan` calls with the scan's indicator values at
each symbol's last bar and the mask of rows still alive. Walk-through:
 1. Models dir: `models_dir` argument, else env TECHNIC_MODELS_DIR, else `models/` next to the
    package (`registry.default_models_dir`).
 2. For each horizon (5, 10): read the small metadata file; the model itself comes from a
    per-process cache keyed by the model file's path + the sha256 in its metadata (+ size and
    mtime, so a file rewritten in place is re-verified). A miss loads and verifies it
    (`registry.load_model`: checksum, horizon, feature list in order).
 3. One `inplace_predict` per model for all rows at once: an (rows, features) float32 matrix
    built column by column from `features`, the same cast as in training. Row i's forecast
    depends on row i's features only, so a batch equals its rows predicted one by one.
 4. AlphaScore = mean of the cross-sectional z-scores of Alpha5d and Alpha10d over the rows
    scored in this call: 0 = average of this scan, +1 = one standard deviation better. It is
    relative to the scanned set (a sector-filtered scan normalises within the sector); NaN
    unless both models are available.
 5. A model that is missing, corrupt or mismatched leaves its column NaN (never 0.0, which
    would rank as "neutral") and `state = {"available": False, "reason": <the registry's
    message, with the path>, ...}`; when both load, `state["available"]` is True and
    `state["models"]` carries each model's id, version (sha256 prefix), training data and
    out-of-sample rank IC.
Forecasts are the expected h-session log return in excess of the universe mean (~ a fraction).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from technic_v4.alpha import registry
from technic_v4.alpha.features import feature_names
from technic_v4.cross_section import zscore_1d
from technic_v4.data.panel import Array1D, BoolArray

HORIZONS = (5, 10)
SCORE_DEFINITION = ("AlphaScore = mean of the cross-sectional z-scores of Alpha5d and Alpha10d "
                    "over the rows scored in this scan; NaN unless both models are available")

_LOCK = threading.Lock()
_CACHE: dict[str, tuple[tuple, registry.LoadedModel]] = {}  # model path -> (key, model)


@dataclass(frozen=True)
class AlphaPredictions:
    alpha5d: Array1D
    alpha10d: Array1D
    score: Array1D
    state: dict[str, object] = field(default_factory=dict)


def get_model(models_dir: str | os.PathLike[str], horizon: int) -> registry.LoadedModel:
    """The verified model for `horizon`, from the per-process cache when unchanged (step 2)."""
    mid = registry.model_id(horizon)
    meta = registry.read_metadata(models_dir, mid)
    model_path = (Path(models_dir) / str(meta["model_file"])).resolve()
    try:
        st = model_path.stat()
        key: tuple = (meta["sha256"], st.st_size, st.st_mtime_ns)
    except OSError:
        key = ()
    with _LOCK:
        hit = _CACHE.get(str(model_path))
    if key and hit is not None and hit[0] == key:
        return hit[1]
    model = registry.load_model(models_dir, mid, horizon=horizon,
                                features=feature_names(horizon), meta=meta)
    with _LOCK:
        _CACHE[str(model_path)] = (key, model)
    return model


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def feature_matrix(features: Mapping[str, Array1D], names: tuple[str, ...],
                   rows: BoolArray) -> np.ndarray:
    """(rows.sum(), len(names)) float32, columns in the model's order (step 3)."""
    missing = [n for n in names if n not in features]
    if missing:
        raise KeyError(f"the scan's indicator table lacks model features {missing}")
    out = np.empty((int(rows.sum()), len(names)), dtype=np.float32)
    for k, name in enumerate(names):
        out[:, k] = np.asarray(features[name])[rows]
    return out


def predict_rows(model: registry.LoadedModel, features: Mapping[str, Array1D],
                 rows: BoolArray) -> Array1D:
    """(N,) forecasts of one model: one inplace_predict for all `rows`, NaN elsewhere."""
    missing = [n for n in model.features if n not in features]
    if missing:
        raise registry.ModelMismatchError(
            f"alpha model {model.id!r} ({model.path}) needs features {missing} that the scan's "
            "indicator table does not have", model.path)
    out = np.full(len(rows), np.nan)
    if rows.any():
        x = feature_matrix(features, model.features, rows)
        out[rows] = model.booster.inplace_predict(x)
    return out


def predict_alpha(features: Mapping[str, Array1D], rows: BoolArray,
                  models_dir: str | os.PathLike[str] | None = None) -> AlphaPredictions:
    """Alpha5d, Alpha10d, AlphaScore for `rows` (NaN elsewhere) and the state (module doc)."""
    rows = np.asarray(rows, dtype=bool)
    root = Path(models_dir) if models_dir is not None else registry.default_models_dir()
    preds: dict[int, Array1D] = {}
    models: dict[str, dict[str, object]] = {}
    failures: list[str] = []
    for h in HORIZONS:
        mid = registry.model_id(h)
        try:
            model = get_model(root, h)
            preds[h] = predict_rows(model, features, rows)
            models[mid] = _describe(model)
        except (registry.ModelError, OSError) as exc:
            reason = str(exc)
            preds[h] = np.full(len(rows), np.nan)
            models[mid] = {"available": False, "reason": reason}
            failures.append(reason)
    if failures:
        score = np.full(len(rows), np.nan)
        state: dict[str, object] = {"available": False,
                                    "reason": "alpha unavailable: " + "; ".join(failures)}
    else:
        score = np.full(len(rows), np.nan)
        score[rows] = alpha_score(preds[5][rows], preds[10][rows])
        state = {"available": True, "score": SCORE_DEFINITION}
    state.update(models=models, models_dir=str(root))
    return AlphaPredictions(preds[5], preds[10], score, state)


def _describe(model: registry.LoadedModel) -> dict[str, object]:
    meta = model.metadata
    test = meta.get("metrics", {}).get("test", {})
    data = meta.get("data", {})
    return {"available": True, "id": model.id, "version": model.version,
            "trained_at": meta.get("trained_at"), "horizon": meta.get("horizon"),
            "data_source": data.get("source"), "data_version": data.get("data_version"),
            "test_rank_ic": test.get("rank_ic", {}).get("mean"),
            "test_rank_ic_t": test.get("rank_ic", {}).get("t_stat"),
            "xgboost": meta.get("libraries", {}).get("xgboost")}


def alpha_score(alpha5d: np.ndarray, alpha10d: np.ndarray) -> np.ndarray:
    """AlphaScore over the rows given: the mean of the two forecasts' cross-sectional z-scores."""
    return (zscore_1d(alpha5d) + zscore_1d(alpha10d)) / 2.0
