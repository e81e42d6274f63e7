"""Conversations: create, list, delete, post a message (streamed as Server-Sent Events), history, evidence."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from agent.api.deps import ConversationId, RuntimeDep
from agent.api.errors import ConflictError, NotFoundError, ServiceError, UnprocessableError
from agent.api.runtime import Runtime
from agent.api.schemas import (
    ConversationIn,
    ConversationListOut,
    ConversationOut,
    DeletedOut,
    HistoryOut,
    MessageIn,
    MessageOut,
    MessageRecordOut,
)
from agent.api.storage import ConversationRecord, check_id
from agent.api.turns import TurnRequest, TurnResult, pending_clarification, run_turn
from agent.api.worker import Job
from artemis_model.types import validate_box, validate_frame_idx

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/conversations", tags=["conversations"])


def conversation_out(rec: ConversationRecord) -> ConversationOut:
    return ConversationOut(**rec.__dict__)


@router.post(
    "", status_code=201, response_model=ConversationOut, summary="Start a conversation about a video"
)
async def create_conversation(body: ConversationIn, rt: RuntimeDep) -> ConversationOut:
    video = rt.store.get_video(check_id(body.video_id, "video id"))
    title = (body.title or "").strip() or f"About {video.filename}"
    return conversation_out(rt.store.add_conversation(video.id, title))


@router.get("", response_model=ConversationListOut, summary="List conversations")
async def list_conversations(
    rt: RuntimeDep, video_id: Annotated[str | None, Query(description="Only those about this video")] = None
) -> ConversationListOut:
    return ConversationListOut(
        conversations=[conversation_out(c) for c in rt.store.list_conversations(video_id)]
    )


@router.get("/{conversation_id}", response_model=ConversationOut, summary="One conversation")
async def get_conversation(conversation_id: ConversationId, rt: RuntimeDep) -> ConversationOut:
    return conversation_out(rt.store.get_conversation(conversation_id))


@router.delete(
    "/{conversation_id}", response_model=DeletedOut, summary="Delete a conversation and its memory"
)
async def delete_conversation(conversation_id: ConversationId, rt: RuntimeDep) -> DeletedOut:
    rec = rt.store.delete_conversation(conversation_id)
    await run_in_threadpool(rt.graph.checkpointer.delete_thread, rec.id)
    return DeletedOut(id=rec.id)


@router.get("/{conversation_id}/messages", response_model=HistoryOut, summary="The whole history")
async def history(conversation_id: ConversationId, rt: RuntimeDep) -> HistoryOut:
    rec = rt.store.get_conversation(conversation_id)
    state = await run_in_threadpool(rt.graph.get_state, {"configurable": {"thread_id": rec.id}})
    values = state.values or {}
    transcript = [
        {"role": "user" if m.type == "human" else "assistant", "text": str(m.content)}
        for m in values.get("messages", [])
    ]
    steps = [s.model_dump(mode="json") for s in values.get("steps", [])]
    pending = next((i.value for i in state.interrupts if isinstance(i.value, dict)), None)
    return HistoryOut(
        conversation=conversation_out(rec),
        messages=[MessageRecordOut(**m) for m in rt.store.list_messages(rec.id)],
        transcript=transcript,
        steps=steps,
        pending_clarification=pending,
    )


@router.get(
    "/{conversation_id}/messages/{message_id}/evidence/{frame_idx}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "An annotated evidence frame"}},
    summary="An annotated evidence frame of one answer",
)
async def evidence_frame(
    conversation_id: ConversationId, message_id: int, frame_idx: int, rt: RuntimeDep
) -> Response:
    rec = rt.store.get_conversation(conversation_id)
    msg = rt.store.get_message(rec.id, message_id)
    frames = [f["frame_idx"] for f in (msg.get("evidence") or {}).get("frames", [])]
    if frame_idx not in frames:
        raise NotFoundError(f"message {message_id} has no evidence frame {frame_idx}; it has {frames}")
    path = rt.store.evidence_dir(rec.video_id, rec.id, message_id) / f"frame_{frame_idx:05d}.jpg"
    if not path.is_file():
        raise NotFoundError(f"evidence frame {frame_idx} of message {message_id} was deleted with its video")
    return Response(path.read_bytes(), media_type="image/jpeg")


def _sse(event: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": event, "data": json.dumps(data)}


@router.post(
    "/{conversation_id}/messages",
    summary="Ask: stream the agent's events (SSE), or get one JSON document with ?stream=false",
    response_model=MessageOut,
    responses={
        200: {
            "description": "text/event-stream of events (plan, tool_call, tool_result, progress, answer, "
            "evidence, tracks, clarification, error, done), or a MessageOut with ?stream=false",
            "content": {"text/event-stream": {}},
        },
        503: {"description": "The model worker is busy (Retry-After)"},
    },
)
async def post_message(
    conversation_id: ConversationId,
    body: MessageIn,
    request: Request,
    rt: RuntimeDep,
    stream: Annotated[bool, Query(description="Server-Sent Events (default) or one JSON document")] = True,
):
    conv = rt.store.get_conversation(conversation_id)
    try:
        video = rt.store.get_video(conv.video_id)
    except NotFoundError as exc:
        raise ConflictError(f"the video {conv.video_id} of this conversation was deleted") from exc
    box = None
    if body.box is not None:
        validate_frame_idx(body.frame_idx, video.num_frames)
        box = validate_box(body.box, video.width, video.height)
    pending = await run_in_threadpool(pending_clarification, rt, conv.id)
    text = body.text
    if body.choice is not None:
        if pending is None:
            raise ConflictError("no clarification is pending in this conversation: 'choice' is not expected")
        n = len(pending.get("candidates", []))
        if body.choice > n:
            raise UnprocessableError(f"choice {body.choice} is not a candidate: choose 1 to {n}")
        text = str(body.choice)
    message_id = rt.store.add_message(
        conv.id, text=body.text, box=list(box) if box else None, frame_idx=body.frame_idx, choice=body.choice
    )
    req = TurnRequest(
        thread_id=conv.id,
        text=text,
        video_path=rt.store.video_path(video.id),
        box=box,
        frame_idx=body.frame_idx,
        annotate_dir=rt.store.evidence_dir(video.id, conv.id, message_id)
        if rt.settings.annotate_evidence
        else None,
        evidence_url=lambda f: f"/conversations/{conv.id}/messages/{message_id}/evidence/{f}",
    )
    events, job = await start_turn(rt, req, request, message_id=message_id)
    if job is None:
        return Response(status_code=499)
    if not stream:
        collected = []
        while True:
            event, data = await events.get()
            collected.append({"event": event, "data": data})
            if event == "done":
                break
        result: TurnResult = await job.future
        if result.error is not None:
            raise _as_service_error(result.error)
        return _message_out(conv.id, message_id, result, collected)
    return EventSourceResponse(_stream(rt, events, job, request, message_id), ping=10)


async def start_turn(
    rt: Runtime, req: TurnRequest, request: Request, *, message_id: int | None = None
) -> tuple[asyncio.Queue, Job | None]:
    """Queue a turn on the model worker and wait until it starts (503 when busy; None if the client left)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emit(event: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, (event, data))

    def job_fn(cancel):
        result = run_turn(rt, req, emit, cancel)
        if message_id is not None:
            rt.store.finish_message(
                message_id,
                status=result.status,
                turn=result.turn,
                answer=result.answer,
                clarification=result.clarification,
                evidence=result.evidence,
                tracks=result.tracks or None,
            )
        return result

    try:
        job = rt.worker.submit("turn", job_fn)
        waiter = asyncio.ensure_future(rt.worker.wait_started(job))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=0.5)
            if not waiter.done() and await request.is_disconnected():
                waiter.cancel()
                rt.worker.abandon(job)
                _mark(rt, message_id, "cancelled")
                return events, None
        waiter.result()
    except Exception:
        _mark(rt, message_id, "rejected")
        raise
    return events, job


def _mark(rt: Runtime, message_id: int | None, status: str) -> None:
    if message_id is not None:
        rt.store.finish_message(message_id, status=status, turn=0)


async def _stream(
    rt: Runtime, events: asyncio.Queue, job: Job, request: Request, message_id: int
) -> AsyncIterator[dict[str, str]]:
    finished = False
    try:
        yield _sse("message", {"message_id": message_id})
        while True:
            try:
                event, data = await asyncio.wait_for(events.get(), timeout=1.0)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    break
                continue
            yield _sse(event, data)
            if event == "done":
                finished = True
                break
    finally:
        if not finished:
            logger.info("client left message %d: cancelling its run", message_id)
            rt.worker.abandon(job)


def _as_service_error(error: dict[str, Any]) -> ServiceError:
    exc = ServiceError(error["detail"])
    exc.status, exc.code = int(error["status"]), str(error["code"])
    return exc


def _message_out(conversation_id: str, message_id: int, result: TurnResult, events: list) -> MessageOut:
    return MessageOut(
        message_id=message_id,
        conversation_id=conversation_id,
        turn=result.turn,
        status=result.status,
        answer=result.answer,
        clarification=result.clarification,
        evidence=result.evidence,
        tracks=result.tracks,
        events=events,
    )
