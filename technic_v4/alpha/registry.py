"""The model registry: XGBoost models on disk as native UBJSON plus a metadata file. No pickle.

Layout of a models directory (env TECHNIC_MODELS_DIR, else the per-user models folder when
training wrote there, else the shipped `models/` next to the package: `default_models_dir`):

    alpha_5d.ubj         the booster, XGBoost's own binary JSON format (`Booster.save_raw("ubj")`)
    alpha_5d.meta.json   metadata: id, features in order, label, horizon, training window, data
                         source and version, library versions, evaluation metrics, and the
                         sha256 of alpha_5d.ubj
    alpha_10d.ubj, alpha_10d.meta.json, README.md (model cards)

`save_model` writes the model file first and the metadata last, each through a temporary file
and an atomic rename, so a reader never sees metadata pointing at a half-written model.
`load_model` trusts nothing it reads; in order it checks
    metadata present and parseable        else ModelNotFoundError / ModelCorruptError
    model file present                    else ModelNotFoundError
    sha256 of the model bytes             else ModelCorruptError
    XGBoost can parse the bytes           else ModelCorruptError
    horizon and feature list (metadata, booster, caller's expectation agree, in order)
                                          else ModelMismatchError
Every message names the file and says what to do about it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import xgboost as xgb

MODELS_DIR_ENV = "TECHNIC_MODELS_DIR"
FORMAT = "technic-alpha-model/1"
MODEL_SUFFIX, META_SUFFIX = ".ubj", ".meta.json"
# One thread: 5,000 rows take ~2.5 ms on one core, and numba (the indicators) and XGBoost each
# bring an OpenMP runtime: with XGBoost's default threads and spin-waiting, a 5,000-symbol
# scan's indicator stage went from 19 ms to 350 ms here and the prediction from 2 ms to 28 ms.
PREDICT_THREADS = 1
REQUIRED_KEYS = ("format", "id", "model_file", "sha256", "features", "horizon", "label")


class ModelError(Exception):
    """Base of the registry's errors; `path` is the file at fault."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


class ModelNotFoundError(ModelError):
    """No model (or no metadata) at the expected path."""


class ModelCorruptError(ModelError):
    """The files exist but cannot be trusted: bad checksum, unparsable model or metadata."""


class ModelMismatchError(ModelError):
    """A sound model that does not fit its slot: other horizon or other features."""


@dataclass(frozen=True)
class LoadedModel:
    booster: xgb.Booster
    metadata: dict
    path: Path  # the model file

    @property
    def id(self) -> str:
        return str(self.metadata["id"])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.metadata["features"])

    @property
    def sha256(self) -> str:
        return str(self.metadata["sha256"])

    @property
    def version(self) -> str:
        """Short content version: the first 12 hex digits of the model file's sha256."""
        return self.sha256[:12]


def default_models_dir(configured: Path | None = None) -> Path:
    """The models scans use: `configured` (a process's TECHNIC_MODELS_DIR, settings.py),
    else the per-user models folder once `technic models train` has written a model there,
    else the shipped `models/` (trained on the synthetic demo market)."""
    if configured is not None:
        return configured
    user = user_models_dir()
    return user if list_model_ids(user) else shipped_models_dir()


def shipped_models_dir() -> Path:
    """The models shipped with the code (never written by training by default): the
    repository's `models/` beside the package (a checkout, an editable install), else where a
    wheel installs them, `<prefix>/share/technic/models` (pyproject data-files)."""
    import sys

    import technic_v4

    repo = Path(technic_v4.__file__).resolve().parent.parent / "models"
    if (repo / f"{model_id(5)}{META_SUFFIX}").is_file():
        return repo
    installed = Path(sys.prefix) / "share" / "technic" / "models"
    return installed if (installed / f"{model_id(5)}{META_SUFFIX}").is_file() else repo


def user_models_dir() -> Path:
    """Where `technic models train` writes by default: the per-user data folder's `models/`
    (e.g. ~/.local/share/technic/models), never the shipped models."""
    import platformdirs

    return Path(platformdirs.user_data_dir("technic")) / "models"


def training_models_dir(configured: Path | None = None) -> Path:
    """Where training writes unless told: `configured` (a process's TECHNIC_MODELS_DIR: scans
    read it too), else `user_models_dir()`."""
    return configured or user_models_dir()


def is_shipped(models_dir: str | os.PathLike[str]) -> bool:
    """Whether `models_dir` is the shipped models folder."""
    try:
        return Path(models_dir).expanduser().resolve() == shipped_models_dir()
    except OSError:
        return False


def model_id(horizon: int) -> str:
    return f"alpha_{horizon}d"


def paths(models_dir: str | os.PathLike[str], mid: str) -> tuple[Path, Path]:
    """(model file, metadata file) of model `mid` in `models_dir`."""
    root = Path(models_dir)
    return root / f"{mid}{MODEL_SUFFIX}", root / f"{mid}{META_SUFFIX}"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(booster: xgb.Booster, metadata: dict, models_dir: str | os.PathLike[str]) -> Path:
    """Write `<id>.ubj` then `<id>.meta.json` (with format, file name and sha256 filled in)."""
    mid = str(metadata["id"])
    model_path, meta_path = paths(models_dir, mid)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    raw = bytes(booster.save_raw(raw_format="ubj"))
    meta = {"format": FORMAT, **metadata, "model_file": model_path.name,
            "sha256": hashlib.sha256(raw).hexdigest(), "size_bytes": len(raw)}
    _atomic_write(model_path, raw)
    _atomic_write(meta_path, (json.dumps(meta, indent=2, default=_json_default) + "\n").encode())
    return model_path


def read_metadata(models_dir: str | os.PathLike[str], mid: str) -> dict:
    """The metadata of model `mid`, checked for the keys a loader needs."""
    model_path, meta_path = paths(models_dir, mid)
    if not meta_path.is_file():
        raise ModelNotFoundError(
            f"alpha model {mid!r} not found: no metadata file {meta_path} (train models with "
            "`technic models train`, or point TECHNIC_MODELS_DIR at a models directory)",
            meta_path)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCorruptError(f"alpha model {mid!r}: metadata {meta_path} is not readable "
                                f"JSON ({exc}); retrain or restore it", meta_path) from exc
    missing = [k for k in REQUIRED_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ModelCorruptError(f"alpha model {mid!r}: metadata {meta_path} lacks {missing}; "
                                "retrain or restore it", meta_path)
    if meta["format"] != FORMAT:
        raise ModelMismatchError(f"alpha model {mid!r}: metadata {meta_path} has format "
                                 f"{meta['format']!r}, this version reads {FORMAT!r}", meta_path)
    return meta


def load_model(models_dir: str | os.PathLike[str], mid: str, *, horizon: int | None = None,
               features: tuple[str, ...] | None = None, meta: dict | None = None
               ) -> LoadedModel:
    """Load and verify model `mid` (module docstring); `horizon`/`features`: what the caller
    expects. `meta` may pass metadata already read with `read_metadata`."""
    meta = meta if meta is not None else read_metadata(models_dir, mid)
    model_path = Path(models_dir) / str(meta["model_file"])
    _, meta_path = paths(models_dir, mid)
    if not model_path.is_file():
        raise ModelNotFoundError(f"alpha model {mid!r}: model file {model_path} named by "
                                 f"{meta_path} is missing; retrain or restore it", model_path)
    raw = model_path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != meta["sha256"]:
        raise ModelCorruptError(
            f"alpha model {mid!r}: {model_path} fails its checksum (sha256 {actual[:16]}..., "
            f"expected {str(meta['sha256'])[:16]}... from {meta_path}); the file is corrupt or "
            "was replaced: retrain or restore it", model_path)
    try:
        booster = xgb.Booster(model_file=bytearray(raw))
        booster.set_param({"nthread": PREDICT_THREADS})
    except xgb.core.XGBoostError as exc:
        raise ModelCorruptError(f"alpha model {mid!r}: XGBoost cannot read {model_path}: "
                                f"{str(exc).splitlines()[0]}", model_path) from exc
    listed = tuple(meta["features"])
    checks = [("the booster in " + model_path.name, tuple(booster.feature_names or ()))]
    if features is not None:
        checks.append(("this version of technic", tuple(features)))
    for what, names in checks:
        if names != listed:
            raise ModelMismatchError(
                f"alpha model {mid!r}: features in {meta_path} {list(listed)} differ from "
                f"those of {what} {list(names)}; retrain with `technic models train`", meta_path)
    if horizon is not None and meta["horizon"] != horizon:
        raise ModelMismatchError(f"alpha model {mid!r}: {meta_path} says horizon "
                                 f"{meta['horizon']}, expected {horizon}", meta_path)
    return LoadedModel(booster, meta, model_path)


def list_model_ids(models_dir: str | os.PathLike[str]) -> list[str]:
    """Ids of the models whose metadata files are in `models_dir`, sorted."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p.name[: -len(META_SUFFIX)] for p in root.glob(f"*{META_SUFFIX}"))


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: object) -> object:
    """numpy scalars (and anything else with .item()) as plain Python values."""
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
