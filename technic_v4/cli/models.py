"""`technic models`: train the alpha models on the price store, and show what is installed.

    technic models train [--data-dir DIR] [--models-dir DIR] [--seed N] [--horizon 5 --horizon 10]
    technic models show [--models-dir DIR] [--json]

`train` reads the whole store, trains one model per horizon (technic_v4/alpha/train.py) and
writes `<id>.ubj` + `<id>.meta.json` into the models directory: --models-dir, else
$TECHNIC_MODELS_DIR, else the per-user models folder (~/.local/share/technic/models), never the
shipped `models/` unless `--overwrite-shipped` says so; it prints where, whether scans now use
them (the per-user folder comes before the shipped models) or how to point scans at them
(`export TECHNIC_MODELS_DIR=...`), and the validation and test metrics. Scans use a model only
on stores of the kind of data and calendar it learned (inference.py, step 7). It refuses a data
dir without a store (it never builds the synthetic demo market to train on: `technic data
demo` does that on purpose) and a store too small to train on, saying whether it lacks symbols
or history and the size it needs (symbols x years). `show` loads every
model in the models directory scans use with the registry's checks and prints its metadata
and out-of-sample metrics; a broken model is reported with the registry's message and exit 2.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from technic_v4.cli.options import console, data_root, err, fail, settings, spinner

if TYPE_CHECKING:
    from technic_v4.alpha import registry

models_app = typer.Typer(help="Train and inspect the alpha models.", no_args_is_help=True)

ModelsDir = Annotated[Path | None, typer.Option(
    "--models-dir", help="Models directory (default: $TECHNIC_MODELS_DIR, else the per-user "
    "models folder once training wrote there, else the shipped models/).")]
TrainModelsDir = Annotated[Path | None, typer.Option(
    "--models-dir", help="Where to write the models (default: $TECHNIC_MODELS_DIR, else the "
    "per-user models folder, e.g. ~/.local/share/technic/models).")]


@models_app.command("train")
def train(
    data_dir: Annotated[str | None, typer.Option(  # str: a path type collapses a URI's //
        "--data-dir", help="Data directory or object-store URI (default: $TECHNIC_DATA_DIR "
        "or the per-user data folder).")] = None,
    models_dir: TrainModelsDir = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice in training.")] = 0,
    horizon: Annotated[list[int] | None, typer.Option(
        help="Horizons to train (repeatable; default 5 and 10).")] = None,
    overwrite_shipped: Annotated[bool, typer.Option(
        help="Allow writing into the shipped models/ folder (maintainers).")] = False,
) -> None:
    """Train the alpha models on the price store and write them into the models directory."""
    from technic_v4.alpha import registry
    from technic_v4.alpha.features import FEATURES_BY_HORIZON
    from technic_v4.alpha.inference import data_kind
    from technic_v4.alpha.train import TrainDataError, train_models
    from technic_v4.data import store
    from technic_v4.data.store_fs import shown

    horizons = tuple(horizon or sorted(FEATURES_BY_HORIZON))
    bad = [h for h in horizons if h not in FEATURES_BY_HORIZON]
    if bad:
        fail(f"no feature set for horizon(s) {bad}; valid: {sorted(FEATURES_BY_HORIZON)}")
    root = data_root(data_dir)
    try:
        has_store = store.store_exists(root)
    except (store.StoreError, ValueError) as exc:
        fail(str(exc))
    if not has_store:
        fail(f"no price store in {shown(root)} to train on: load your bars with `technic data "
             "ingest FILE`, or build the synthetic demo market on purpose with `technic data "
             "demo`, then train")
    out_dir = (models_dir.expanduser() if models_dir is not None
               else registry.training_models_dir(settings().models_root()))
    if registry.is_shipped(out_dir) and not overwrite_shipped:
        fail(f"{out_dir} holds the models shipped with technic; write elsewhere with "
             "--models-dir DIR (or pass --overwrite-shipped to replace them on purpose)")
    t0 = time.perf_counter()
    try:
        manifest = store.read_manifest(root)
        panel = store.load_panel(root)
    except store.StoreError as exc:
        fail(str(exc))
    err.print(f"training on {panel.n_symbols} symbols x {panel.n_sessions} sessions "
              f"({manifest.first_session}..{manifest.last_session}), source {panel.source}, "
              f"data_version {panel.data_version}", highlight=False)
    try:
        with spinner(f"training horizons {list(horizons)} (seed {seed})..."):
            models = train_models(panel, horizons, seed=seed)
    except TrainDataError as exc:
        fail(f"cannot train on the store in {shown(root)}: {exc}")
    try:
        for model in models.values():
            path = registry.save_model(model.booster, model.metadata, out_dir)
            err.print(f"wrote {path}", highlight=False)
    except OSError as exc:
        fail(f"cannot write models to {out_dir}: {exc.strerror or exc}")
    err.print(f"done in {time.perf_counter() - t0:.1f} s", highlight=False)
    scanned = registry.default_models_dir(settings().models_root())
    calendar = panel.meta.get("calendar", manifest.calendar)
    kind = data_kind(panel.source)
    if scanned.expanduser().resolve() != out_dir.resolve():
        err.print(f"scans use the models in {scanned}; to scan with these: export "
                  f"TECHNIC_MODELS_DIR={out_dir}", highlight=False)
    else:
        err.print(f"scans now use these models (from {out_dir}) on stores of {kind} data on "
                  f"{calendar}", highlight=False)
    _print_models(out_dir, [registry.model_id(h) for h in horizons])


@models_app.command("show")
def show(
    models_dir: ModelsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full metadata as JSON.")]
    = False,
) -> None:
    """Load every model in the models directory (checksums, features) and print its metrics."""
    from technic_v4.alpha import registry

    out_dir = models_dir or registry.default_models_dir(settings().models_root())
    ids = sorted(registry.list_model_ids(out_dir),
                 key=lambda s: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)])
    if not ids:
        fail(f"no alpha models in {out_dir}; `technic models train` builds them")
    if as_json:
        loaded = {}
        for mid in ids:
            loaded[mid] = _load(out_dir, mid).metadata
        typer.echo(json.dumps(loaded, indent=2))
        return
    _print_models(out_dir, ids)


def _load(models_dir: Path, mid: str) -> registry.LoadedModel:
    from technic_v4.alpha import registry
    from technic_v4.alpha.features import FEATURES_BY_HORIZON

    try:
        meta = registry.read_metadata(models_dir, mid)
        h = int(meta["horizon"])
        return registry.load_model(models_dir, mid, horizon=h,
                                   features=FEATURES_BY_HORIZON.get(h), meta=meta)
    except (registry.ModelError, ValueError, TypeError) as exc:
        fail(str(exc))


def _print_models(models_dir: Path, ids: list[str]) -> None:
    out = console(stderr=False)
    for mid in ids:
        m = _load(models_dir, mid).metadata
        win, data, xgbm = m["training_window"], m["data"], m["xgboost"]
        out.print(f"[bold]{escape(mid)}[/] version {m['sha256'][:12]}, trained "
                  f"{m['trained_at']} in {m['train_seconds']} s ({m['size_bytes']:,} bytes, "
                  f"{xgbm['trees']} trees)", highlight=False)
        split = ", ".join(f"{k} {v['first']}..{v['last']} ({v['rows']:,} rows)"
                          for k, v in win.items())
        out.print(f"  label: {m['label']}\n  target: {m['target']}\n"
                  f"  features: {', '.join(m['features'])}\n"
                  f"  data: {data['source']} {data['data_version']}, {data['symbols']} symbols "
                  f"x {data['sessions']} sessions ({data['first']}..{data['last']}), calendar "
                  f"{data.get('calendar', 'not recorded')}\n"
                  f"  split: {split}; embargo {m['embargo_sessions']} sessions; train rows used "
                  f"{m['subsample']['train_rows_used']:,}", markup=False, highlight=False)
        out.print(_metrics_table(m), _sector_table(m))


def _metrics_table(meta: dict) -> Table:
    table = Table(title=f"{meta['id']}: out-of-sample metrics, mean (Newey-West t)",
                  header_style="bold")
    for col in ("segment", "IC", "rank IC", "top-decile excess", "hit rate", "turnover",
                "dates"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for seg in ("validation", "test"):
        r = meta["metrics"][seg]
        table.add_row(seg, _mt(r["ic"]), _mt(r["rank_ic"]), _mt(r["top_decile_excess"], True),
                      _f(r["hit_rate"], 3, False), _f(r["top_decile_turnover"], 2, False),
                      str(r["rank_ic"]["n_dates"]))
    return table


def _mt(summary: dict, pct: bool = False) -> str:
    """'mean (t)' of an evaluate._summary."""
    mean = _pct(summary["mean"]) if pct else _f(summary["mean"])
    return f"{mean} ({_f(summary['t_stat'], 1)})"


def _sector_table(meta: dict) -> Table:
    table = Table(title=f"{meta['id']}: test segment by sector", header_style="bold")
    for col in ("sector", "symbols", "rank IC", "top-decile excess"):
        table.add_column(col, justify="left" if col == "sector" else "right")
    for name, r in meta["metrics"]["test"].get("by_sector", {}).items():
        table.add_row(name, str(r["symbols"]), _mt(r["rank_ic"]),
                      _mt(r["top_decile_excess"], True))
    return table


def _f(x: float | None, digits: int = 4, sign: bool = True) -> str:
    return "—" if x is None else f"{x:{'+' if sign else ''}.{digits}f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2%}"

