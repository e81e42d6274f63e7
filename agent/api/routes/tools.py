"""``POST /tools/{name}`` for every registered tool (:mod:`tools.registry`): the request is the tool's input
(plus ``video_id`` when it works on a video), the response its output; the tool runs on the model worker."""

from __future__ import annotations

import inspect
import threading

from fastapi import APIRouter
from pydantic import BaseModel

from agent.api.deps import RuntimeDep
from agent.api.schemas import EXAMPLE_ID
from agent.api.storage import check_id
from artemis_model.types import validate_box, validate_frame_idx
from tools.registry import ToolRegistry, ToolSpec
from tools.schemas import BoxArgs

BUSY = {503: {"description": "The model worker is busy (Retry-After)"}}


def tools_router(tools: ToolRegistry) -> APIRouter:
    """One POST route per tool, documented with its request and response models."""
    router = APIRouter(prefix="/tools", tags=["tools"])
    for spec in tools:
        router.add_api_route(
            f"/{spec.name}",
            _endpoint(spec),
            methods=["POST"],
            response_model=spec.output,
            responses=BUSY,
            summary=spec.description.rstrip("."),
            name=f"{spec.name}_tool",
        )
    return router


def _endpoint(spec: ToolSpec):
    body_model = spec.input_model(
        f"{spec.title}In",
        video_field="video_id",
        video_description="The video (from POST /videos)",
        video_example=EXAMPLE_ID,
    )

    async def endpoint(body: BaseModel, rt: RuntimeDep) -> BaseModel:
        args = spec.input.model_validate(body.model_dump(exclude={"video_id"}))
        video_id = None
        if "video" in spec.needs:
            rec = rt.store.get_video(check_id(body.video_id, "video id"))
            video_id = rec.id
            if isinstance(args, BoxArgs):  # a bad box or frame is a 4xx before the job is queued
                validate_frame_idx(args.frame_idx, rec.num_frames)
                validate_box(args.box, rec.width, rec.height)

        def job(cancel: threading.Event) -> BaseModel:
            video = rt.open_video(video_id) if video_id is not None else None
            return spec.run(args, video=video, deps=rt.deps)

        return await rt.worker.run(spec.name, job)

    # FastAPI reads the request body's model (and so the OpenAPI schema) from the signature
    params = list(inspect.signature(endpoint).parameters.values())
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [params[0].replace(annotation=body_model), params[1].replace(annotation=RuntimeDep)],
        return_annotation=spec.output,
    )
    endpoint.__name__ = f"{spec.name}_tool"
    return endpoint
