"""Liveness and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from agent.api.deps import given_key, identify
from agent.api.errors import error_response
from agent.api.openapi import errors
from agent.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses=errors(503),
    summary="Models are loaded and the worker takes jobs",
)
async def readyz(request: Request, key: Annotated[str | None, Depends(given_key)]):
    """Ready or not for anyone; the model and the queue only for a known key when keys are on."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return error_response(
            503, "starting", "the service is starting: models are not loaded yet", {"Retry-After": "5"}
        )
    if identify(runtime, key) is None:
        return HealthOut(status="ready")
    return HealthOut(status="ready", model=runtime.model_name, worker=runtime.worker.stats())
