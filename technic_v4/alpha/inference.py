"""Alpha columns for a scan: model forecasts, or an explicit "alpha unavailable" state.

`predict_alpha(features, rows)` is what `run_scan` calls with the scan's indicator values at
each symbol's last bar and the mask of rows still alive. Walk-through:
 1. Models dir: `models_dir` argument, else env TECHNIC_MODELS_DIR, else `models/` next to the
    package (`registry.default_models_dir`).
 2. For each horizon (5, 10): the model comes from a per-process slot, keyed by the models
    dir and horizon, that holds the last model that passed `registry.load_model` (checksum,
    horizon, feature list in order) and its stamp: the metadata file's bytes (a few hundred,
    naming the model's sha256) and the model file's size, mtime and inode. Unchanged stamp:
    the held model, no model read. Changed stamp: the files are a *candidate*, loaded and
    verified in full; the swap happens only if it passes, so a model being rewritten,
    half-copied or corrupted on disk never replaces a sound one. A rejected candidate is
    remembered by its stamp (not retried until the files change again) and reported: the
    scan keeps the held model and its state says `candidate_error`. With no sound model ever
    loaded in this process, the error makes the column unavailable (5).
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
    out-of-sample rank IC; `state["models_version"]` names the pair ("alpha_5d:<sha12>,
    alpha_10d:<sha12>"; "none" for a missing one), so callers that predict in pieces (the
    Serve app's chunks) can refuse to combine forecasts of different models.
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
_SLOTS: dict[tuple[str, int], _Slot] = {}  # (models dir, horizon) -> held model, rejected stamp


@dataclass
class _Slot:
    held: tuple[tuple, registry.LoadedModel] | None = None    # (stamp, sound model)
    rejected: tuple[tuple, registry.ModelError] | None = None  # (stamp, why the files failed)


@dataclass(frozen=True)
class AlphaPredictions:
    alpha5d: Array1D
    alpha10d: Array1D
    score: Array1D
    state: dict[str, object] = field(default_factory=dict)


def _stamp(models_dir: Path, mid: str) -> tuple:
    """The metadata's bytes and the model file's size, mtime and inode: a new version changes
    the metadata (its sha256), a rewrite or rename of the model file changes its stat."""
    model_path, meta_path = registry.paths(models_dir, mid)
    try:
        meta = meta_path.read_bytes()
    except OSError:
        meta = None
    try:
        st = model_path.stat()
        model = (st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        model = None
    return meta, model


def _slot_model(models_dir: str | os.PathLike[str], horizon: int
                ) -> tuple[registry.LoadedModel, registry.ModelError | None]:
    """(model to use, why a newer candidate was rejected or None), step 2; raises the
    candidate's ModelError when there is no sound model to fall back on."""
    root = Path(models_dir).resolve()
    mid = registry.model_id(horizon)
    stamp = _stamp(root, mid)
    with _LOCK:
        slot = _SLOTS.setdefault((str(root), horizon), _Slot())
        held, rejected = slot.held, slot.rejected
    if held is not None and held[0] == stamp:
        return held[1], None
    if rejected is not None and rejected[0] == stamp:
        error = rejected[1]
    else:
        try:
            model = registry.load_model(root, mid, horizon=horizon,
                                        features=feature_names(horizon))
        except registry.ModelError as exc:
            error = exc
            with _LOCK:
                slot.rejected = (stamp, exc)
        else:
            if _stamp(root, mid) == stamp:  # not rewritten while we read it
                with _LOCK:
                    slot.held, slot.rejected = (stamp, model), None
            return model, None
    if held is None:
        raise error
    return held[1], error


def get_model(models_dir: str | os.PathLike[str], horizon: int) -> registry.LoadedModel:
    """The verified model for `horizon`: the held one, or a sound candidate (step 2)."""
    return _slot_model(models_dir, horizon)[0]


def clear_cache() -> None:
    with _LOCK:
        _SLOTS.clear()


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
            model, rejected = _slot_model(root, h)
            preds[h] = predict_rows(model, features, rows)
            models[mid] = _describe(model)
            if rejected is not None:
                models[mid]["candidate_error"] = str(rejected)
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
    state.update(models=models, models_dir=str(root), models_version=",".join(
        f"{mid}:{m.get('version', 'none')}" for mid, m in models.items()))
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
