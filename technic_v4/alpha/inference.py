"""`ModelSet`: the alpha models a caller holds, and their forecasts, or why there are none.

A scan owns (or is given) one ModelSet per models dir and calls `predict(features)` with the
model features of the rows it scores. Walk-through:
 1. Models dir: the argument, else env TECHNIC_MODELS_DIR, else the per-user models folder
    when training wrote models there, else the shipped `models/`
    (`registry.default_models_dir`). Horizons come from the feature table
    (`features.FEATURES_BY_HORIZON`): one model per horizon.
 2. For each horizon the set holds the last model that passed `registry.load_model`
    (checksum, horizon, feature list in order) and its stamp: the metadata file's bytes (a few
    hundred, naming the model's sha256) and the model file's size, mtime and inode. Unchanged
    stamp: the held model, no model read. Changed stamp: the files are a *candidate*, loaded
    and verified in full; the swap happens only if it passes, so a model being rewritten,
    half-copied or corrupted on disk never replaces a sound one. A rejected candidate is
    remembered by its stamp (not retried until the files change again) and reported: the set
    keeps the held model and its state says `candidate_error`. With no sound model ever held,
    the error makes that horizon unavailable (5).
 3. One `inplace_predict` per model for all rows: an (rows, features) float32 matrix built
    column by column, the same cast as in training. Row i's forecast depends on row i's
    features only, so a batch equals its rows predicted one by one, and a scan may predict in
    pieces or batched with other scans.
 3b. `contributions(features)` (explain): per model and row, each feature's TreeSHAP
    contribution and the bias (XGBoost `pred_contribs`, the same float32 matrix), beside the
    forecast `predict` gives; contributions + bias = forecast to float32 rounding.
 4. AlphaScore (`alpha_score`) = mean of the cross-sectional z-scores of Alpha5d and Alpha10d
    over the rows a scan keeps: relative to the scanned set, so the scan computes it, not this.
 5. A model that is missing, corrupt or mismatched gives a NaN column (never 0.0, which would
    rank as "neutral") and `state = {"available": False, "reason": <the registry's message,
    with the path>, ...}`; with every model sound, `state["available"]` is True and
    `state["models"]` carries each model's id, version (sha256 prefix), training data and
    out-of-sample rank IC. `state["models_version"]` names the set ("alpha_5d:<sha12>,
    alpha_10d:<sha12>"; "none" for a missing one): what a cached answer is keyed by.
 6. A forecast that cannot tell the scanned symbols apart is no forecast: `distinguishing`
    (called by the scan on the rows it keeps, after `predict`) makes a horizon unavailable,
    NaN column and reason in the state, when at least DEGENERATE_SHARE of its finite forecasts
    over DEGENERATE_MIN_ROWS or more rows are one value. A tree model does that when every row
    falls in the same leaves, e.g. features far outside its training range (a model trained
    on standardised features fed RSI ~50). Fewer rows (a lookup of a few symbols) are not
    judged. The model stays loaded and `models_version` unchanged: the answer was computed by
    those versions; only its column is withheld.
 7. A model forecasts only the kind of market it learned: `matching(forecast, source,
    calendar)` (called by the scan with its store's source and exchange calendar, after
    `predict`) withholds, like step 6, every horizon whose model was trained on another kind
    of data (synthetic vs real: the shipped demo models on a store of real bars, or the
    reverse) or on another exchange calendar (XNYS models on an XKRX store), or whose
    metadata does not say (models trained before technic recorded the calendar). The state's
    reason then says so and what to do: `alpha unavailable: models trained on synthetic data;
    run technic models train`. Real stores of different files on one calendar match: the
    features are scale-free and a model trained on one US store ranks another.
Forecasts are the expected h-session log return in excess of the universe mean (~ a fraction).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xgboost as xgb

from technic_v4.alpha import registry
from technic_v4.alpha.features import FEATURES_BY_HORIZON, feature_names
from technic_v4.cross_section import zscore_1d
from technic_v4.data.panel import Array1D, BoolArray

SYNTHETIC = "synthetic"  # the demo market's source label (data/demo.py)
RETRAIN = "run technic models train"

HORIZONS: tuple[int, ...] = tuple(sorted(FEATURES_BY_HORIZON))
DEGENERATE_MIN_ROWS = 8     # rows a scan must score before its forecasts' spread is judged
DEGENERATE_SHARE = 0.9      # this share of rows on one forecast value: cannot tell them apart
MODEL_FEATURES: tuple[str, ...] = tuple(dict.fromkeys(
    name for h in HORIZONS for name in feature_names(h)))  # what crosses the wire, in order
SCORE_DEFINITION = ("AlphaScore = mean of the cross-sectional z-scores of Alpha5d and Alpha10d "
                    "over the rows scored in this scan; NaN unless both models are available")


@dataclass
class _Slot:
    held: tuple[tuple, registry.LoadedModel] | None = None    # (stamp, sound model)
    rejected: tuple[tuple, registry.ModelError] | None = None  # (stamp, why the files failed)


@dataclass(frozen=True)
class Forecast:
    """One forecast column per horizon for the rows given, and the state that made them."""

    values: dict[int, Array1D]
    state: dict[str, object] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return bool(self.state.get("available"))


class ModelSet:
    """The verified alpha models of one models dir, as this holder sees them (module doc)."""

    def __init__(self, models_dir: str | os.PathLike[str] | None = None):
        root = Path(models_dir) if models_dir is not None else registry.default_models_dir()
        self.root = root.expanduser().resolve()
        self.horizons = HORIZONS
        self.features = MODEL_FEATURES
        self._lock = threading.Lock()
        self._slots = {h: _Slot() for h in HORIZONS}

    def model(self, horizon: int) -> tuple[registry.LoadedModel, registry.ModelError | None]:
        """(model to use, why a newer candidate was rejected or None), step 2; raises the
        candidate's ModelError when there is no sound model to fall back on."""
        mid = registry.model_id(horizon)
        stamp = _stamp(self.root, mid)
        slot = self._slots[horizon]
        with self._lock:
            held, rejected = slot.held, slot.rejected
        if held is not None and held[0] == stamp:
            return held[1], None
        if rejected is not None and rejected[0] == stamp:
            error = rejected[1]
        else:
            try:
                model = registry.load_model(self.root, mid, horizon=horizon,
                                            features=feature_names(horizon))
            except registry.ModelError as exc:
                error = exc
                with self._lock:
                    slot.rejected = (stamp, exc)
            else:
                if _stamp(self.root, mid) == stamp:  # not rewritten while we read it
                    with self._lock:
                        slot.held, slot.rejected = (stamp, model), None
                return model, None
        if held is None:
            raise error
        return held[1], error

    def predict(self, features: Mapping[str, Array1D]) -> Forecast:
        """Forecasts for every row of `features` (name -> (rows,) array) and the state."""
        n = len(next(iter(features.values()))) if features else 0
        held, state = self._held()
        values = {h: np.full(n, np.nan) if model is None else
                  predict_rows(model, features, np.ones(n, dtype=bool))
                  for h, model in held.items()}
        return Forecast(values, state)

    def contributions(self, features: Mapping[str, Array1D]
                      ) -> tuple[dict[int, Contributions | None], dict[str, object]]:
        """Per horizon the model's per-feature contributions for every row of `features`
        (None: the model is unavailable, the state says why), and the state (step 3b)."""
        held, state = self._held()
        return {h: None if model is None else contributions(model, features)
                for h, model in held.items()}, state

    def state(self) -> dict[str, object]:
        """The models' state (module docstring, step 5), loading and verifying them first."""
        return self._held()[1]

    def _held(self) -> tuple[dict[int, registry.LoadedModel | None], dict[str, object]]:
        """Per horizon the model to use (None: unavailable), and the state describing them."""
        held: dict[int, registry.LoadedModel | None] = {}
        models: dict[str, dict[str, object]] = {}
        failures: list[str] = []
        for h in self.horizons:
            mid = registry.model_id(h)
            try:
                model, rejected = self.model(h)
            except (registry.ModelError, OSError) as exc:
                held[h] = None
                models[mid] = {"available": False, "reason": str(exc)}
                failures.append(str(exc))
                continue
            held[h] = model
            models[mid] = _describe(model)
            if rejected is not None:
                models[mid]["candidate_error"] = str(rejected)
        state: dict[str, object] = (
            {"available": False, "reason": "alpha unavailable: " + "; ".join(failures)}
            if failures else {"available": True, "score": SCORE_DEFINITION})
        state.update(models=models, models_dir=str(self.root), models_version=",".join(
            f"{mid}:{m.get('version', 'none')}" for mid, m in models.items()))
        return held, state


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


@dataclass(frozen=True)
class Contributions:
    """One model's forecasts split by feature (step 3b): for row i,
    forecast[i] = values[i].sum() + bias[i], up to float32 rounding."""

    model: str
    version: str
    features: tuple[str, ...]   # the model's order
    values: np.ndarray          # (rows, features) float32
    bias: np.ndarray            # (rows,) float32: base score and tree means
    forecast: np.ndarray        # (rows,) what `predict_rows` gives (the scan's column)


def contributions(model: registry.LoadedModel, features: Mapping[str, Array1D]
                  ) -> Contributions:
    """TreeSHAP contributions of `model` for every row of `features` (step 3b)."""
    n = len(next(iter(features.values()))) if features else 0
    rows = np.ones(n, dtype=bool)
    x = feature_matrix(features, model.features, rows)
    dm = xgb.DMatrix(x, feature_names=list(model.features), nthread=registry.PREDICT_THREADS)
    out = model.booster.predict(dm, pred_contribs=True) if n else np.zeros(
        (0, len(model.features) + 1), dtype=np.float32)
    return Contributions(model.id, model.version, model.features, out[:, :-1], out[:, -1],
                         predict_rows(model, features, rows))


def _describe(model: registry.LoadedModel) -> dict[str, object]:
    meta = model.metadata
    test = meta.get("metrics", {}).get("test", {})
    data = meta.get("data", {})
    return {"available": True, "id": model.id, "version": model.version,
            "trained_at": meta.get("trained_at"), "horizon": meta.get("horizon"),
            "data_source": data.get("source"), "data_version": data.get("data_version"),
            "calendar": data.get("calendar"),
            "test_rank_ic": test.get("rank_ic", {}).get("mean"),
            "test_rank_ic_t": test.get("rank_ic", {}).get("t_stat"),
            "xgboost": meta.get("libraries", {}).get("xgboost")}


def degenerate_reason(mid: str, values: Array1D) -> str | None:
    """Why `values` (one model's forecasts over a scan's rows) cannot rank them, or None
    (step 6)."""
    finite = np.asarray(values, dtype=np.float32)
    finite = finite[np.isfinite(finite)]
    n = len(finite)
    if n < DEGENERATE_MIN_ROWS:
        return None
    uniq, counts = np.unique(finite, return_counts=True)
    top = int(counts.max())
    if top < DEGENERATE_SHARE * n:
        return None
    value = float(uniq[counts.argmax()])
    how = "every scanned symbol" if top == n else f"{top} of {n} scanned symbols"
    return (f"{mid} gives {how} the same forecast ({value:.6g}): it cannot tell them apart "
            "(features outside its training range?)")


def distinguishing(forecast: Forecast) -> Forecast:
    """`forecast` with every horizon whose forecasts cannot tell the rows apart made
    unavailable: NaN values, the reason in the state (step 6)."""
    reasons: dict[int, str] = {}
    for h, values in forecast.values.items():
        why = degenerate_reason(registry.model_id(h), values)
        if why is not None:
            reasons[h] = why
    return withheld(forecast, reasons, "; ".join(reasons[h] for h in sorted(reasons)),
                    degenerate=True)


def data_kind(source: str | None) -> str:
    """"synthetic" for the demo market's source label, "real" for any other."""
    return SYNTHETIC if source == SYNTHETIC else "real"


def mismatch(model: Mapping[str, object], source: str, calendar: str) -> list[str]:
    """Why a model described by `model` (a state's `models` entry: `data_source`, `calendar`)
    must not forecast a store of `source` on `calendar`, in short phrases (step 7); [] when
    it may."""
    trained = model.get("data_source")
    trained_on = model.get("calendar")
    if trained is None or trained_on is None:
        return ["model metadata does not record its training "
                + ("data source" if trained is None else "calendar")
                + " (trained by an older technic)"]
    why = []
    kind = data_kind(str(trained))
    if kind != data_kind(source):
        why.append(f"models trained on {kind} data" + (
            "" if kind == SYNTHETIC else f" ({trained}), the store is synthetic"))
    if str(trained_on) != calendar:
        why.append(f"models trained on {trained_on} sessions, the store is on {calendar}")
    return why


def mismatch_reason(mid: str, model: Mapping[str, object], why: list[str], source: str,
                    calendar: str) -> str:
    """One model's reason to be withheld, from its `mismatch` phrases."""
    return (f"{mid} (trained on {model.get('data_source')}, "
            f"{model.get('calendar') or 'calendar not recorded'}) does not match the store "
            f"({source}, {calendar}): {'; '.join(why)}; {RETRAIN}")


def mismatch_summary(short: list[str]) -> str:
    """The state's reason for withheld models: their distinct phrases, and what to do."""
    return "; ".join(dict.fromkeys(short)) + f"; {RETRAIN}"


def matching(forecast: Forecast, source: str, calendar: str) -> Forecast:
    """`forecast` with every horizon whose model was trained on another kind of data or
    another exchange calendar than the store's made unavailable (step 7)."""
    held = forecast.state.get("models")
    models = held if isinstance(held, dict) else {}
    short: list[str] = []
    reasons: dict[int, str] = {}
    for h in forecast.values:
        mid = registry.model_id(h)
        model = models.get(mid)
        if not isinstance(model, dict) or not model.get("available"):
            continue
        why = mismatch(model, source, calendar)
        if why:
            short.extend(why)
            reasons[h] = mismatch_reason(mid, model, why, source, calendar)
    if not reasons:
        return forecast
    return withheld(forecast, reasons, mismatch_summary(short), mismatched=True)


def withheld(forecast: Forecast, reasons: Mapping[int, str], summary: str,
             **flag: bool) -> Forecast:
    """`forecast` with the horizons in `reasons` made unavailable: NaN values, each model's
    reason and `flag` in the state, `summary` appended to the state's reason."""
    if not reasons:
        return forecast
    kept: dict[int, Array1D] = {h: np.full(len(v), np.nan) if h in reasons else v
                                for h, v in forecast.values.items()}
    state = dict(forecast.state)
    held = state.get("models")
    models = {str(k): dict(v) for k, v in held.items()} if isinstance(held, dict) else {}
    for h, why in reasons.items():
        models.setdefault(registry.model_id(h), {}).update(available=False, reason=why, **flag)
    earlier = f"{state['reason']}; " if state.get("reason") else "alpha unavailable: "
    state.update(available=False, models=models, reason=earlier + summary)
    state.pop("score", None)
    return Forecast(kept, state)


def alpha_score(alpha5d: np.ndarray, alpha10d: np.ndarray) -> np.ndarray:
    """AlphaScore over the rows given: the mean of the two forecasts' cross-sectional z-scores."""
    return (zscore_1d(alpha5d) + zscore_1d(alpha10d)) / 2.0


def predict_many(models: ModelSet, items: list[Mapping[str, Array1D]]) -> list[Forecast]:
    """One `predict` for the rows of many requests (a Serve batch); each gets its own slice.
    A row's forecast depends on its own features only, so this equals predicting each alone."""
    sizes = [len(next(iter(f.values()))) if f else 0 for f in items]
    names = list(items[0]) if items else []
    merged = {k: np.concatenate([np.asarray(f[k], dtype=float) for f in items]) for k in names}
    whole = models.predict(merged)
    out, start = [], 0
    for n in sizes:
        out.append(Forecast({h: v[start:start + n] for h, v in whole.values.items()},
                            whole.state))
        start += n
    return out
