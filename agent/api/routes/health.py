"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from agent.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"description": "Models not loaded yet"}},
    summary="Models are loaded and the worker takes jobs",
)
async def readyz(request: Request):
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return JSONResponse({"status": "starting"}, status_code=503, headers={"Retry-After": "5"})
    return HealthOut(status="ready", model=runtime.model_name, worker=runtime.worker.stats())
