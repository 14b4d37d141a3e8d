"""The alpha model deployment: one ModelSet per replica, requests batched.

Each scan sends one request: the model features of the rows it keeps. `predict` is a
`@serve.batch` method: requests that arrive within `batch_wait_timeout_s` of each other (from
concurrent scans), up to `max_batch_size` of them, become ONE XGBoost call per model
(`inference.predict_many`; 5,000 rows in one call ~10 ms, one call per row ~840 ms). Both knobs
come from `user_config` and are applied in `reconfigure`, so they can be tuned in
serve_config.yaml without a redeploy; `max_ongoing_requests` must be at least `max_batch_size`
or batches could never fill (checked in tests). `version()` is what the ingress keys its
result cache on: the versions this replica holds, not the files on disk. `stats()` exposes the
batch counters that tests and /v1/stats read. `explain(features)` splits one row's forecasts
by feature for GET /v1/symbols/{symbol}/explain (one symbol: not batched).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ray import serve

from deployments import metrics
from technic_v4.alpha.inference import Forecast, ModelSet, predict_many
from technic_v4.scan.explain import explain_alpha
from technic_v4.scan.run import Features
from technic_v4.service.backend import BatchStats

log = logging.getLogger("ray.serve")
DEFAULT_BATCH = {"max_batch_size": 16, "batch_wait_timeout_s": 0.005}
MAX_ONGOING = 64


@serve.deployment(
    max_ongoing_requests=MAX_ONGOING,
    ray_actor_options={"num_cpus": 0.25},
    user_config=DEFAULT_BATCH,
)
class AlphaModel:
    def __init__(self, models_dir: str | None = None):
        self.models = ModelSet(models_dir)
        self.batches = BatchStats(metrics.observe_batch)
        self.config = dict(DEFAULT_BATCH)
        self.state = self.models.state()  # load and verify now
        log.info("technic alpha models: available=%s (%s)", self.state.get("available"),
                 self.state.get("reason") or self.models.root)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply `user_config`: max_batch_size (1..MAX_ONGOING), batch_wait_timeout_s (>= 0)."""
        size = int(config.get("max_batch_size", DEFAULT_BATCH["max_batch_size"]))
        wait = float(config.get("batch_wait_timeout_s", DEFAULT_BATCH["batch_wait_timeout_s"]))
        if not 1 <= size <= MAX_ONGOING or wait < 0:
            raise ValueError(f"user_config needs 1 <= max_batch_size <= {MAX_ONGOING} "
                             f"(max_ongoing_requests) and batch_wait_timeout_s >= 0, got {config}")
        self.predict.set_max_batch_size(size)
        self.predict.set_batch_wait_timeout_s(wait)
        self.config = {"max_batch_size": size, "batch_wait_timeout_s": wait}

    @serve.batch(max_batch_size=DEFAULT_BATCH["max_batch_size"],
                 batch_wait_timeout_s=DEFAULT_BATCH["batch_wait_timeout_s"])
    async def predict(self, items: list[Features]) -> list[Forecast]:
        """Forecasts for each request's rows, from one model call for the whole batch."""
        out = predict_many(self.models, items)
        self.batches.record(len(items), sum(len(next(iter(f.values()), [])) for f in items))
        self.state = out[0].state
        return out

    def version(self) -> str:
        """The model versions this replica answers with now (loading a sound new set first)."""
        self.state = self.models.state()
        return str(self.state["models_version"])

    def ready(self) -> dict[str, Any]:
        """Ready once the models were checked; `candidate_errors`: model files on disk that
        failed verification while this replica keeps serving the version it holds."""
        models = self.state.get("models") or {}
        rejected = {mid: m["candidate_error"] for mid, m in models.items()
                    if isinstance(m, dict) and m.get("candidate_error")}
        return {"checked": True, "available": bool(self.state.get("available")),
                "reason": self.state.get("reason"),
                "models_version": self.state.get("models_version"),
                **({"candidate_errors": rejected} if rejected else {}), "pid": os.getpid()}

    def explain(self, features: dict[str, float]) -> dict[str, Any]:
        """One row's forecasts split by feature (`technic_v4.scan.explain.explain_alpha`);
        not batched: one symbol, asked for by a person."""
        return explain_alpha(self.models, features)

    def describe(self) -> dict[str, Any]:
        self.state = self.models.state()
        return self.state

    def stats(self) -> dict[str, Any]:
        return {**self.batches.as_dict(), "config": self.config}
