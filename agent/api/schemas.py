"""Request and response bodies of the HTTP API (kept apart: ``*In`` are requests, ``*Out`` responses); the tools'
bodies come from their input and output models (:mod:`agent.api.routes.tools`).

Boxes are ``[x1, y1, x2, y2]`` in pixels of the original frame ``frame_idx`` (0-based).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

BoxIn = list[float]


EXAMPLE_ID = "0123456789abcdef0123456789abcdef"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


# ---- videos -------------------------------------------------------------------------------------------------
class VideoOut(BaseModel):
    id: str
    filename: str = Field(description="The uploaded file's name (display only)")
    size_bytes: int
    num_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    created_at: float
    frame_url: str = Field(description="URL template of one frame as JPEG: replace {frame_idx}")
    file_url: str


class VideoListOut(BaseModel):
    videos: list[VideoOut]
    used_bytes: int
    quota_bytes: int


class DeletedOut(BaseModel):
    id: str
    deleted: bool = True


# ---- conversations ------------------------------------------------------------------------------------------
class ConversationIn(_In):
    model_config = _examples({"video_id": EXAMPLE_ID, "title": "The red circle"})

    video_id: str = Field(description="The video the conversation is about (from POST /videos)")
    title: str | None = Field(default=None, max_length=200)


class ConversationOut(BaseModel):
    id: str
    video_id: str
    title: str
    created_at: float
    updated_at: float


class ConversationListOut(BaseModel):
    conversations: list[ConversationOut]


class MessageIn(_In):
    model_config = _examples(
        {"text": "What is the boxed object doing?", "box": [10, 10, 60, 60], "frame_idx": 0},
        {"text": "What are the red objects doing?"},
        {"text": "the left one", "choice": 1},
    )

    text: str = Field(
        min_length=1, max_length=4000, description="The question (or the reply to a clarification)"
    )
    box: BoxIn | None = Field(default=None, min_length=4, max_length=4, description="[x1, y1, x2, y2] pixels")
    frame_idx: int = Field(default=0, ge=0, description="Frame the box is drawn on")
    choice: int | None = Field(
        default=None, ge=1, description="Answer to a pending clarification: the candidate's number"
    )


class EventOut(BaseModel):
    event: str
    data: dict[str, Any]


class TrackOut(BaseModel):
    target_id: int
    label: str
    boxes: list[list[float] | None] = Field(description="Box on every frame (null where unseen)")


class MessageOut(BaseModel):
    """A finished message: the same content as the streamed events, as one JSON document."""

    message_id: int
    conversation_id: str
    turn: int
    status: Literal["done", "clarification", "cancelled", "error"]
    answer: str
    clarification: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    tracks: list[TrackOut] = Field(default_factory=list)
    events: list[EventOut] = Field(default_factory=list)


class MessageRecordOut(BaseModel):
    id: int
    turn: int
    text: str
    box: list[float] | None
    frame_idx: int | None
    choice: int | None
    status: str
    answer: str
    clarification: dict[str, Any] | None
    evidence: dict[str, Any] | None
    tracks: list[TrackOut] | None
    created_at: float


class HistoryOut(BaseModel):
    conversation: ConversationOut
    messages: list[MessageRecordOut] = Field(description="Every user message and how it ended")
    transcript: list[dict[str, str]] = Field(description="The agent's memory: [{role, text}]")
    steps: list[dict[str, Any]] = Field(description="Every step the agent took (plan, tool calls, answers)")
    pending_clarification: dict[str, Any] | None


# ---- health -------------------------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: str
    model: str | None = None
    worker: dict[str, Any] | None = None
