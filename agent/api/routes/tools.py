"""The tools over HTTP: ground, track, describe, summarize (the Python functions' pydantic I/O)."""

from __future__ import annotations

from fastapi import APIRouter

from agent.api.deps import RuntimeDep
from agent.api.runtime import Runtime
from agent.api.schemas import (
    DescribeIn,
    DescribeOut,
    GroundIn,
    GroundOut,
    SummarizeIn,
    SummarizeOut,
    TrackIn,
    TrackResultOut,
)
from agent.api.storage import check_id
from artemis_model.types import Track, validate_box, validate_frame_idx
from tools.grounding import ground
from tools.refer import refer
from tools.summarize import summarize
from tools.track import track

router = APIRouter(prefix="/tools", tags=["tools"])
BUSY = {503: {"description": "The model worker is busy (Retry-After)"}}


def _track_out(trk: Track) -> TrackResultOut:
    span = trk.span
    return TrackResultOut(
        boxes=[list(b) if b is not None else None for b in trk.boxes],
        width=trk.width,
        height=trk.height,
        span=list(span) if span is not None else None,
    )


def _checked(rt: Runtime, video_id: str, box: list[float], frame_idx: int):
    """The opened video plus the validated box and frame (4xx before the job is queued)."""
    rec = rt.store.get_video(check_id(video_id, "video id"))
    validate_frame_idx(frame_idx, rec.num_frames)
    return rec, validate_box(box, rec.width, rec.height)


@router.post("/ground", response_model=GroundOut, responses=BUSY, summary="Find the objects a phrase names")
async def ground_tool(body: GroundIn, rt: RuntimeDep) -> GroundOut:
    rec = rt.store.get_video(check_id(body.video_id, "video id"))

    def job(cancel) -> GroundOut:
        video = rt.open_video(rec.id)
        return GroundOut(
            targets=ground(
                video, body.query, backend=rt.deps.grounding_backend, settings=rt.deps.grounding_settings
            )
        )

    return await rt.worker.run("ground", job)


@router.post("/track", response_model=TrackResultOut, responses=BUSY, summary="Track a box over the video")
async def track_tool(body: TrackIn, rt: RuntimeDep) -> TrackResultOut:
    rec, box = _checked(rt, body.video_id, body.box, body.frame_idx)
    return await rt.worker.run(
        "track", lambda cancel: _track_out(track(rt.open_video(rec.id), box, frame_idx=body.frame_idx))
    )


@router.post(
    "/describe", response_model=DescribeOut, responses=BUSY, summary="Describe what the boxed target does"
)
async def describe_tool(body: DescribeIn, rt: RuntimeDep) -> DescribeOut:
    rec, box = _checked(rt, body.video_id, body.box, body.frame_idx)

    def job(cancel) -> DescribeOut:
        d = refer(
            rt.open_video(rec.id),
            box,
            frame_idx=body.frame_idx,
            question=body.question,
            describer=rt.describer,
        )
        return DescribeOut(
            answer=d.answer,
            question=d.question,
            frame_idx=d.frame_idx,
            box=list(d.box),
            track=_track_out(d.track),
            selected_frames=list(d.selected_frames),
        )

    return await rt.worker.run("describe", job)


@router.post(
    "/summarize", response_model=SummarizeOut, responses=BUSY, summary="Summarize descriptions faithfully"
)
async def summarize_tool(body: SummarizeIn, rt: RuntimeDep) -> SummarizeOut:
    return await rt.worker.run(
        "summarize",
        lambda cancel: SummarizeOut(text=summarize(body.texts, body.instruction, llm=rt.deps.summarizer)),
    )
