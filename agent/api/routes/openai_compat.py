"""``POST /v1/chat/completions``: the agent behind the OpenAI chat API (streaming and not).

The video and the optional box travel as extra top-level fields (``extra_body`` in the ``openai`` client)::

    client.chat.completions.create(
        model="artemis",
        messages=[{"role": "user", "content": "What is the boxed object doing?"}],
        extra_body={"video_id": "<id from POST /videos>", "box": [x1, y1, x2, y2], "frame_idx": 0},
    )

Each call without ``conversation_id`` starts a conversation (returned as ``conversation_id``); pass it in
``extra_body`` to ask follow-ups or answer a clarification ("2", "the left one"). The reply's content is
the answer (or the clarification question); ``artemis`` carries status, evidence, tracks and candidates.
Streaming sends the agent's events as chunks with an empty delta and an ``artemis_event`` field, then
the answer as content deltas, then ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.api.deps import CallerDep, RuntimeDep
from agent.api.errors import ConflictError, UnprocessableError, error_body
from agent.api.openapi import errors
from agent.api.runtime import ServiceRuntime
from agent.api.schemas import (
    MAX_FRAME_IDX,
    MAX_QUESTION_CHARS,
    check_frame_needs_box,
    lone_surrogate_at,
)
from agent.api.storage import check_id
from agent.api.turn_runner import begin_turn, checked_box, conversation_video, finish_turn
from agent.api.turns import TurnResult

router = APIRouter(prefix="/v1", tags=["openai"])
MODEL_NAME = "artemis"


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionIn(BaseModel):
    """The OpenAI request; sampling fields are accepted and ignored (the agent is deterministic)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": MODEL_NAME,
                    "messages": [{"role": "user", "content": "What is the boxed object doing?"}],
                    "video_id": "0123456789abcdef0123456789abcdef",
                    "box": [10, 10, 60, 60],
                    "frame_idx": 0,
                }
            ]
        },
    )

    model: str = MODEL_NAME
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    video_id: str | None = Field(default=None, description="Video to ask about (from POST /videos)")
    box: list[float] | None = Field(default=None, min_length=4, max_length=4, description="[x1, y1, x2, y2]")
    frame_idx: int = Field(default=0, ge=0, le=MAX_FRAME_IDX, description="Frame the box is drawn on")
    conversation_id: str | None = Field(default=None, description="Continue this conversation")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = lone_surrogate_at(data)
        if where is not None:
            raise ValueError(f"{where} contains a lone UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode")
        return data

    @model_validator(mode="after")
    def _frame_with_box(self) -> ChatCompletionIn:
        check_frame_needs_box(self.box, self.frame_idx, self.model_fields_set)
        return self


def _question(messages: list[ChatMessageIn]) -> str:
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise UnprocessableError("messages need at least one message with role 'user' (the question)")
    content = users[-1].content
    if isinstance(content, str):
        text = content
    else:
        parts = content or []
        bad = sorted({str(p.get("type")) for p in parts if p.get("type") != "text"})
        if bad:
            raise UnprocessableError(
                f"content parts of type {bad} are not supported: upload the video (POST /videos) and pass "
                "its video_id; only 'text' parts are read"
            )
        text = " ".join(str(p.get("text", "")) for p in parts)
    if not text.strip():
        raise UnprocessableError("the last user message is empty (or only whitespace)")
    if len(text.strip()) > MAX_QUESTION_CHARS:
        raise UnprocessableError(
            f"the last user message has {len(text.strip())} characters; at most {MAX_QUESTION_CHARS} are allowed"
        )
    return text.strip()


@router.get("/models", summary="The models (OpenAI format)")
async def list_models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "artemis"}],
    }


@router.post(
    "/chat/completions",
    summary="OpenAI-compatible chat completion (video_id, box, frame_idx, conversation_id as extra fields)",
    responses={
        200: {"content": {"application/json": {}, "text/event-stream": {}}},
        **errors(404, 409, 499, 503),
    },
)
async def chat_completions(body: ChatCompletionIn, request: Request, rt: RuntimeDep, caller: CallerDep):
    question = _question(body.messages)
    if body.conversation_id is not None:
        conv = rt.store.get_conversation(check_id(body.conversation_id, "conversation_id"), caller.scope)
        if body.video_id is not None and body.video_id != conv.video_id:
            raise ConflictError(f"conversation {conv.id} is about video {conv.video_id}, not {body.video_id}")
    elif body.video_id is None:
        raise UnprocessableError(
            "video_id is required (pass extra_body={'video_id': ...}) unless conversation_id continues one"
        )
    else:
        video = rt.store.get_video(check_id(body.video_id, "video_id"), caller.scope)
        checked_box(video, body.box, body.frame_idx)  # a bad request leaves no conversation behind
        conv = rt.store.add_conversation(video.id, f"OpenAI: {question[:60]}", owner=caller.name)
    video = conversation_video(rt, conv)
    box = checked_box(video, body.box, body.frame_idx)
    turn = await begin_turn(
        rt, request, conv, video, text=question, stored_text=question, box=box, frame_idx=body.frame_idx
    )
    if turn.job is None:
        return Response(status_code=499)
    message_id = turn.message_id
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    meta = {"conversation_id": conv.id, "message_id": message_id}
    if body.stream:
        return StreamingResponse(
            _stream(rt, turn.events, turn.job, completion_id, body.model, meta),
            media_type="text/event-stream",
        )
    result, _ = await finish_turn(turn)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _content(result)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        **meta,
        "artemis": _artemis(result, meta),
    }


def _content(result: TurnResult) -> str:
    if result.clarification is not None:
        return str(result.clarification.get("question", ""))
    return result.answer


def _artemis(result: TurnResult, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "status": result.status,
        "turn": result.turn,
        "clarification": result.clarification,
        "evidence": result.evidence,
        "tracks": result.tracks,
    }


async def _stream(
    rt: ServiceRuntime, events, job, completion_id: str, model: str, meta: dict[str, Any]
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **meta,
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    finished = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            event, data = await events.get()
            if event == "done":
                break
            yield chunk({}, artemis_event={"event": event, "data": data})
        finished = True
        result: TurnResult = await job.future
        if result.error is not None:
            err = error_body(result.error["status"], result.error["code"], result.error["detail"])
            yield f"data: {json.dumps({'error': err['error']})}\n\n"
            return
        words = _content(result).split(" ")
        for i in range(0, len(words), 4):
            piece = " ".join(words[i : i + 4])
            yield chunk({"content": piece if i == 0 else " " + piece})
        yield chunk({}, "stop", artemis=_artemis(result, meta))
        yield "data: [DONE]\n\n"
    finally:
        if not finished:
            rt.worker.abandon(job)
