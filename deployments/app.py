"""The app builder `serve_config.yaml` points at: `deployments.app:build_app` with typed args.

    args: {data_dir, models_dir, chunk_size, max_batch_size, batch_wait_timeout_s}
data_dir defaults to $TECHNIC_DATA_DIR / the per-user folder, and an empty one gets the
synthetic demo market here, once, before any replica starts (replicas never build it). It may be
an object-store URI (`s3://bucket/prefix?region=...`, technic_v4/data/store_fs.py), so the nodes
of a cluster read one store without a shared filesystem; an empty URI is refused, not filled.
models_dir defaults to $TECHNIC_MODELS_DIR / the per-user models / the shipped models/. The
Watcher (one replica: watches, their outbox and delivery) shares the Indicators and AlphaModel
replicas.
The two batch knobs, when given, override the alpha deployment's user_config
(serve_config.yaml sets it directly).
No `from __future__ import annotations` here: Serve reads the builder's annotation at run time
to validate `args` into AppArgs, and a string annotation would hand it a plain dict.
"""

from pathlib import Path

from pydantic import BaseModel, Field
from ray.serve import Application

from deployments.alpha import DEFAULT_BATCH, AlphaModel
from deployments.indicators import Indicators
from deployments.ingress import Ingress
from deployments.watcher import Watcher
from technic_v4.data.reader import ensure_store
from technic_v4.data.store_fs import data_root
from technic_v4.settings import Settings


class AppArgs(BaseModel):
    data_dir: str | None = None
    models_dir: str | None = None
    chunk_size: int = Field(2500, ge=16, le=100_000, description="Symbols per indicator call.")
    max_batch_size: int | None = Field(None, ge=1)
    batch_wait_timeout_s: float | None = Field(None, ge=0)


def build_app(args: AppArgs) -> Application:
    args = AppArgs.model_validate(args) if isinstance(args, dict) else args
    settings = Settings()
    data_dir = data_root(args.data_dir) if args.data_dir else settings.data_root()
    if isinstance(data_dir, Path):
        data_dir = data_dir.resolve()
    ensure_store(data_dir)
    models = Path(args.models_dir) if args.models_dir else settings.models_root()
    models_dir = str(models.expanduser().resolve()) if models else None
    alpha = AlphaModel
    if args.max_batch_size is not None or args.batch_wait_timeout_s is not None:
        batch = dict(DEFAULT_BATCH)
        if args.max_batch_size is not None:
            batch["max_batch_size"] = args.max_batch_size
        if args.batch_wait_timeout_s is not None:
            batch["batch_wait_timeout_s"] = args.batch_wait_timeout_s
        alpha = AlphaModel.options(user_config=batch)
    indicators = Indicators.bind(str(data_dir), settings.validate_block_sessions,
                                 settings.validate_memory_mb, settings.validate_tasks)
    model = alpha.bind(models_dir)
    watcher = Watcher.bind(indicators, model, str(data_dir), models_dir, args.chunk_size)
    return Ingress.bind(indicators, model, str(data_dir), models_dir, args.chunk_size, watcher)
