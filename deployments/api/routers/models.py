"""GET /v1/models: the alpha models' metadata and metrics, or why alpha is unavailable.

`loaded` is what the model replica found when it loaded and verified the models (ids,
versions, out-of-sample rank IC); `metadata` is every metadata file in the models directory.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from deployments.api.dependencies import APIKey, Backend
from deployments.api.responses import JSONBody, meta_headers
from deployments.api.schemas import ModelsResponse

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[APIKey])


@router.get("/models", response_model=ModelsResponse, responses={
    401: {"description": "X-API-Key missing or wrong (when keys are configured)"}})
async def models(backend: Backend) -> JSONBody:
    """Alpha model metadata + metrics, or the explicit "alpha unavailable" state."""
    info = await asyncio.to_thread(backend.data_info)
    found = await backend.models()
    state = found["state"]
    meta = {"data_version": info.data_version, "source": info.source, "as_of": info.as_of}
    return JSONBody({"meta": meta, "available": bool(state.get("available")),
                     "reason": state.get("reason"), "models_dir": state.get("models_dir"),
                     "loaded": state.get("models", {}), "metadata": found["metadata"]},
                    headers=meta_headers(meta))
