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

from agent.api.deps import CallerDep, ConversationId, FrameIdx, MessageId, RuntimeDep
from agent.api.errors import ConflictError, NotFoundError, UnprocessableError
from agent.api.openapi import errors
from agent.api.runtime import ServiceRuntime
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
from agent.api.turn_runner import begin_turn, checked_box, conversation_video, finish_turn
from agent.api.turns import TurnResult, pending_clarification
from agent.api.worker import Job

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/conversations", tags=["conversations"])


def conversation_out(rec: ConversationRecord) -> ConversationOut:
    return ConversationOut(**rec.__dict__)


@router.post(
    "",
    status_code=201,
    response_model=ConversationOut,
    responses=errors(404),
    summary="Start a conversation about a video",
)
async def create_conversation(body: ConversationIn, rt: RuntimeDep, caller: CallerDep) -> ConversationOut:
    video = rt.store.get_video(check_id(body.video_id, "video id"), caller.scope)
    title = (body.title or "").strip() or f"About {video.filename}"
    return conversation_out(rt.store.add_conversation(video.id, title, owner=caller.name))


@router.get("", response_model=ConversationListOut, summary="List conversations")
async def list_conversations(
    rt: RuntimeDep,
    caller: CallerDep,
    video_id: Annotated[str | None, Query(description="Only those about this video")] = None,
) -> ConversationListOut:
    return ConversationListOut(
        conversations=[conversation_out(c) for c in rt.store.list_conversations(video_id, caller.scope)]
    )


@router.get(
    "/{conversation_id}", response_model=ConversationOut, responses=errors(404), summary="One conversation"
)
async def get_conversation(
    conversation_id: ConversationId, rt: RuntimeDep, caller: CallerDep
) -> ConversationOut:
    return conversation_out(rt.store.get_conversation(conversation_id, caller.scope))


@router.delete(
    "/{conversation_id}",
    response_model=DeletedOut,
    responses=errors(404),
    summary="Delete a conversation and its memory",
)
async def delete_conversation(
    conversation_id: ConversationId, rt: RuntimeDep, caller: CallerDep
) -> DeletedOut:
    rec = rt.store.delete_conversation(conversation_id, caller.scope)
    await run_in_threadpool(rt.graph.checkpointer.delete_thread, rec.id)
    return DeletedOut(id=rec.id)


@router.get(
    "/{conversation_id}/messages",
    response_model=HistoryOut,
    responses=errors(404),
    summary="The whole history",
)
async def history(conversation_id: ConversationId, rt: RuntimeDep, caller: CallerDep) -> HistoryOut:
    rec = rt.store.get_conversation(conversation_id, caller.scope)
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
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "An annotated evidence frame"},
        **errors(404),
    },
    summary="An annotated evidence frame of one answer",
)
async def evidence_frame(
    conversation_id: ConversationId,
    message_id: MessageId,
    frame_idx: FrameIdx,
    rt: RuntimeDep,
    caller: CallerDep,
) -> Response:
    rec = rt.store.get_conversation(conversation_id, caller.scope)
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
            "evidence, tracks, clarification, cancelled, error, done), or a MessageOut with ?stream=false",
            "content": {"text/event-stream": {}},
        },
        **errors(404, 409, 499, 503),
    },
)
async def post_message(
    conversation_id: ConversationId,
    body: MessageIn,
    request: Request,
    rt: RuntimeDep,
    caller: CallerDep,
    stream: Annotated[bool, Query(description="Server-Sent Events (default) or one JSON document")] = True,
):
    conv = rt.store.get_conversation(conversation_id, caller.scope)
    video = conversation_video(rt, conv)
    box = checked_box(video, body.box, body.frame_idx)
    pending = await run_in_threadpool(pending_clarification, rt, conv.id)
    text = body.text
    if body.choice is not None:
        if pending is None:
            raise ConflictError("no clarification is pending in this conversation: 'choice' is not expected")
        n = len(pending.get("candidates", []))
        if body.choice > n:
            raise UnprocessableError(f"choice {body.choice} is not a candidate: choose 1 to {n}")
        text = str(body.choice)
    turn = await begin_turn(
        rt,
        request,
        conv,
        video,
        text=text,
        stored_text=body.text,
        box=box,
        frame_idx=body.frame_idx,
        choice=body.choice,
    )
    if turn.job is None:
        return Response(status_code=499)
    if not stream:
        result, collected = await finish_turn(turn)
        return _message_out(conv.id, turn.message_id, result, collected)
    message_id = turn.message_id
    return EventSourceResponse(_stream(rt, turn.events, turn.job, request, message_id), ping=10)


async def _stream(
    rt: ServiceRuntime, events: asyncio.Queue, job: Job, request: Request, message_id: int
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
