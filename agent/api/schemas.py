"""Request and response bodies of the HTTP API (kept apart: ``*In`` are requests, ``*Out`` responses); the tools'
bodies come from their input and output models (:mod:`agent.api.routes.tools`).

Boxes are ``[x1, y1, x2, y2]`` in pixels of the original frame ``frame_idx`` (0-based).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

BoxIn = list[float]


EXAMPLE_ID = "0123456789abcdef0123456789abcdef"
MAX_FRAME_IDX = 2**31 - 1
"""Largest frame index the API takes (any real video has far fewer frames; SQLite integers are 64-bit)."""
MAX_ROW_ID = 2**63 - 1
"""Largest message id (SQLite's INTEGER PRIMARY KEY)."""
MAX_QUESTION_CHARS = 4000
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def lone_surrogate_at(value: Any, where: str = "body") -> str | None:
    """Where in ``value`` (a JSON document: str, list, dict) a lone UTF-16 surrogate sits, else ``None``.

    JSON allows ``"\\ud800"``; such a string cannot be encoded as UTF-8 (SQLite, logs, the models)."""
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = lone_surrogate_at(k, f"{where} (a key)") or lone_surrogate_at(v, f"{where}.{k}")
            if found:
                return found
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = lone_surrogate_at(v, f"{where}[{i}]")
            if found:
                return found
    return None


def _clean_text(value: str) -> str:
    if _SURROGATE.search(value):
        raise ValueError("contains a lone UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode text")
    return value


def _question(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty or only whitespace: ask a question")
    return _clean_text(value)


CleanText = Annotated[str, AfterValidator(_clean_text)]
"""A string without lone surrogates (422 otherwise)."""
Question = Annotated[str, AfterValidator(_question)]
"""A question: not blank, no lone surrogates."""


def check_frame_needs_box(box: object, frame_idx: int, fields_set: set[str]) -> None:
    """``frame_idx`` is the frame the box is drawn on: without a box it must be left out (or 0)."""
    if box is None and "frame_idx" in fields_set and frame_idx != 0:
        raise ValueError(
            f"frame_idx {frame_idx} was given without a box: frame_idx is the frame the box is drawn on; "
            "send a box with it or leave it out"
        )


# ---- errors -------------------------------------------------------------------------------------------------
class ErrorDetailOut(BaseModel):
    """The error in the OpenAI shape (so OpenAI clients show the message)."""

    message: str
    type: str
    code: int


class ErrorOut(BaseModel):
    """Every error response (4xx and 5xx) has this body."""

    detail: str = Field(description="What is wrong, naming the bad value and the allowed ones")
    code: str = Field(description="A stable machine-readable code, e.g. 'invalid_request', 'not_found'")
    status: int
    request_id: str = Field(description="The X-Request-ID of the call (also in the server's log lines)")
    error: ErrorDetailOut
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors (422 invalid_request only): [{loc, msg, type}]"
    )


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
    title: CleanText | None = Field(default=None, max_length=200)


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

    text: Question = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="The question (or the reply to a clarification); not blank",
    )
    box: BoxIn | None = Field(default=None, min_length=4, max_length=4, description="[x1, y1, x2, y2] pixels")
    frame_idx: int = Field(
        default=0, ge=0, le=MAX_FRAME_IDX, description="Frame the box is drawn on (only with a box)"
    )
    choice: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FRAME_IDX,
        description="Answer to a pending clarification: the candidate's number",
    )

    @model_validator(mode="after")
    def _frame_with_box(self) -> MessageIn:
        check_frame_needs_box(self.box, self.frame_idx, self.model_fields_set)
        return self


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
    status: Literal["done", "clarification", "cancelled", "timed_out", "error"]
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
    status: Literal[
        "running", "done", "clarification", "cancelled", "timed_out", "error", "rejected", "interrupted"
    ] = Field(
        description="running (its turn runs now), done, clarification (waits on a choice), cancelled (the "
        "client left), timed_out (over the turn's wall-time budget), error, rejected (busy: never ran), "
        "interrupted (the service stopped while it ran)"
    )
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


# ---- users (admin) ------------------------------------------------------------------------------------------
class UserIn(_In):
    model_config = _examples({"name": "alice"})

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="1-64 of A-Z a-z 0-9 _ . - (not 'local')"
    )


class UserOut(BaseModel):
    name: str
    created_at: float


class NewUserOut(UserOut):
    api_key: str = Field(description="The user's API key: shown this once (only its SHA-256 is stored)")


class UserListOut(BaseModel):
    users: list[UserOut]
