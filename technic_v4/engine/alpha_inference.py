"""The origin design's alpha module, kept because users' scripts call it: the alpha models by
name (`alpha_5d`, `alpha_10d`) and their forecasts for rows of features.

Models are loaded and verified by `technic_v4.alpha.registry.load_model` (checksum, horizon,
features in order) and held by `technic_v4.alpha.inference.ModelSet`, one per models dir,
which reloads a model only when its files change; forecasts come from `inference.predict_rows`,
the call the scan makes, so `score_alpha_batch` on a scan's feature rows equals its Alpha5d
(`score_alpha_10d_batch`: Alpha10d) wherever the scan shows one. A missing, corrupt or
mismatched model raises the registry's ModelError naming the file: never a 0.0 forecast.
The scan's own judgements over the rows it scored (a model trained on another kind of market,
forecasts that cannot tell the rows apart: `inference.matching` / `distinguishing`) are the
scan's to make; these functions return what the model says.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from technic_v4.alpha import registry
from technic_v4.alpha.features import feature_names
from technic_v4.alpha.inference import HORIZONS, ModelSet, predict_rows
from technic_v4.settings import Settings

ModelsDir = str | os.PathLike[str] | None
NAMES: dict[str, int] = {registry.model_id(h): h for h in HORIZONS}

_sets: dict[Path, ModelSet] = {}
_lock = threading.Lock()


def horizon_of(name: str) -> int:
    """The horizon of model `name`; ValueError listing the valid names."""
    if name not in NAMES:
        raise ValueError(f"unknown alpha model {name!r}; valid: {sorted(NAMES)}")
    return NAMES[name]


def model_set(models_dir: ModelsDir = None) -> ModelSet:
    """The ModelSet of `models_dir` (default: `registry.default_models_dir` of
    TECHNIC_MODELS_DIR, read now: a script using this module starts here) that this module
    shares in the process."""
    root = (Path(models_dir) if models_dir is not None
            else registry.default_models_dir(Settings().models_root())).expanduser().resolve()
    with _lock:
        if root not in _sets:
            _sets[root] = ModelSet(root)
        return _sets[root]


def load_xgb_model(name: str, models_dir: ModelsDir = None) -> registry.LoadedModel:
    """Model `name` read from disk now and verified (`registry.load_model`): the booster, its
    metadata and path. ModelError (not found, corrupt, mismatched) names the file."""
    h = horizon_of(name)
    return registry.load_model(model_set(models_dir).root, name, horizon=h,
                               features=feature_names(h))


def get_model_cached(name: str, models_dir: ModelsDir = None) -> registry.LoadedModel:
    """Model `name` as the scan holds it (`ModelSet.model`): read once, read again only when
    its files change, kept when a changed file fails verification."""
    return model_set(models_dir).model(horizon_of(name))[0]


def score_alpha_batch(df: pd.DataFrame, models_dir: ModelsDir = None) -> pd.Series:
    """The 5-session forecast (the scan's Alpha5d) for each row of `df`, which holds the
    model's feature columns (RSI, MACD, MACD_signal, BB_width, ATR_pct, Volume_ratio,
    mom_21, mom_63); indexed like `df`."""
    return _score("alpha_5d", df, models_dir)


def score_alpha_10d_batch(df: pd.DataFrame, models_dir: ModelsDir = None) -> pd.Series:
    """The 10-session forecast (the scan's Alpha10d): `score_alpha_batch`'s features and
    mom_126."""
    return _score("alpha_10d", df, models_dir)


def _score(name: str, df: pd.DataFrame, models_dir: ModelsDir) -> pd.Series:
    model = get_model_cached(name, models_dir)
    missing = [f for f in model.features if f not in df.columns]
    if missing:
        raise KeyError(f"{name} needs feature columns {missing} that the frame lacks")
    features = {f: df[f].to_numpy(dtype=np.float64) for f in model.features}
    values = predict_rows(model, features, np.ones(len(df), dtype=bool))
    return pd.Series(values, index=df.index, name=f"Alpha{horizon_of(name)}d")
