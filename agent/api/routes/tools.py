"""``POST /tools/{name}`` for every registered tool (:mod:`tools.registry`): the request is the tool's input
(plus ``video_id`` when it works on a video), the response its output; the tool runs on the model worker."""

from __future__ import annotations

import inspect
import threading

from fastapi import APIRouter
from pydantic import BaseModel

from agent.api.deps import CallerDep, RuntimeDep
from agent.api.errors import UnprocessableError
from agent.api.openapi import errors
from agent.api.schemas import EXAMPLE_ID, lone_surrogate_at
from agent.api.storage import check_id
from artemis_model.types import validate_box, validate_frame_idx
from tools.registry import ToolRegistry, ToolSpec
from tools.schemas import BoxArgs


def tools_router(tools: ToolRegistry) -> APIRouter:
    """One POST route per tool, documented with its request and response models."""
    router = APIRouter(prefix="/tools", tags=["tools"])
    for spec in tools:
        router.add_api_route(
            f"/{spec.name}",
            _endpoint(spec),
            methods=["POST"],
            response_model=spec.output,
            responses=errors(404, 503),
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

    async def endpoint(body: BaseModel, rt: RuntimeDep, caller: CallerDep) -> BaseModel:
        where = lone_surrogate_at(body.model_dump(mode="python"))
        if where is not None:
            raise UnprocessableError(
                f"{where} contains a lone UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode"
            )
        args = spec.input.model_validate(body.model_dump(exclude={"video_id"}))
        video_id = None
        if "video" in spec.needs:
            rec = rt.store.get_video(check_id(body.video_id, "video id"), caller.scope)
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
        [
            params[0].replace(annotation=body_model),
            params[1].replace(annotation=RuntimeDep),
            params[2].replace(annotation=CallerDep),
        ],
        return_annotation=spec.output,
    )
    endpoint.__name__ = f"{spec.name}_tool"
    return endpoint
