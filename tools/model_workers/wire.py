"""The wire format between the service and the model workers: pydantic models, JSON over HTTP.

A :class:`DescribeRequest` names one video by its path **inside the shared data store** (relative to the
store's root, which the service replicas and the workers each mount, maybe at different places), optionally a
segment of it (``start``/``end``: what :class:`tools.video.SubVideo` describes), one question and the targets
(key box in pixels on ``frame_idx`` of the segment, and the track when the caller already has it). A
:class:`DescribeResponse` carries one :class:`DescriptionOut` per target (the fields of
:class:`artemis_model.types.Description`) plus which worker served it and the size of the batch it ran in. A
refused request gets a :class:`WorkerErrorOut` with the status of its HTTP response.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from artemis_model.types import Box, Description, Track

MAX_TARGETS = 64
"""Targets one request may carry."""

ErrorCode = Literal[
    "invalid_box",
    "frame_out_of_range",
    "video_decode_error",
    "invalid_input",
    "outside_store",
    "video_not_found",
    "deadline_passed",
    "internal_error",
]


class TargetIn(BaseModel):
    """One boxed target: ``box`` (xyxy pixels) on ``frame_idx``; ``track`` in the data sets' ``track_list``
    format (``[x1, y1, x2, y2]`` or ``[]`` per frame of the segment) when the caller has it (else the worker
    tracks the box)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    box: tuple[float, float, float, float]
    frame_idx: int = Field(ge=0)
    track: list[list[float]] | None = None

    @field_validator("track")
    @classmethod
    def _track_entries(cls, track: list[list[float]] | None) -> list[list[float]] | None:
        for i, entry in enumerate(track or []):
            if len(entry) not in (0, 4) or not all(math.isfinite(v) for v in entry):
                raise ValueError(f"track entry {i} is {entry!r}: need [] or 4 finite numbers x1, y1, x2, y2")
        return track

    def to_track(self, width: int, height: int) -> Track | None:
        """The track (boxes as given: the caller's tracker or grounding made them), or ``None``."""
        if self.track is None:
            return None
        boxes: list[Box | None] = [tuple(b) if b else None for b in self.track]  # type: ignore[misc]
        return Track(boxes=tuple(boxes), width=width, height=height)


class DescribeRequest(BaseModel):
    """Describe ``targets`` of the video at ``video`` (frames ``[start, end)`` of it when ``end`` is given)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    video: str = Field(
        min_length=1, description="Path of the video relative to the shared data store's root."
    )
    start: int = Field(default=0, ge=0)
    end: int | None = Field(default=None, ge=1)
    question: str | None = None
    targets: list[TargetIn] = Field(min_length=1, max_length=MAX_TARGETS)
    budget_s: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Seconds the caller still waits for the answer (its turn's wall-time budget left); a worker "
        "that reaches the request later drops it unanswered (408 deadline_passed) instead of spending the model "
        "on it. Seconds, not a time: the machines' clocks need not agree.",
    )

    @model_validator(mode="after")
    def _segment(self) -> DescribeRequest:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"segment [{self.start}, {self.end}) is empty: need start < end")
        return self


class TrackOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    boxes: list[list[float]]
    """``[x1, y1, x2, y2]`` or ``[]`` per frame."""
    width: int
    height: int

    @classmethod
    def from_track(cls, track: Track) -> TrackOut:
        return cls(boxes=track.to_track_list(), width=track.width, height=track.height)

    def to_track(self) -> Track:
        boxes: list[Box | None] = [tuple(b) if b else None for b in self.boxes]  # type: ignore[misc]
        return Track(boxes=tuple(boxes), width=self.width, height=self.height)


class DescriptionOut(BaseModel):
    """The fields of :class:`artemis_model.types.Description`."""

    model_config = ConfigDict(frozen=True)

    answer: str
    question: str
    frame_idx: int
    box: tuple[float, float, float, float]
    track: TrackOut
    selected_frames: list[int]
    timings: dict[str, float] = Field(default_factory=dict)
    hit_token_limit: bool = False

    @classmethod
    def from_description(cls, d: Description) -> DescriptionOut:
        return cls(
            answer=d.answer,
            question=d.question,
            frame_idx=d.frame_idx,
            box=tuple(float(v) for v in d.box),  # type: ignore[arg-type]
            track=TrackOut.from_track(d.track),
            selected_frames=[int(f) for f in d.selected_frames],
            timings=dict(d.timings),
            hit_token_limit=d.hit_token_limit,
        )

    def to_description(self) -> Description:
        return Description(
            answer=self.answer,
            question=self.question,
            frame_idx=self.frame_idx,
            box=self.box,
            track=self.track.to_track(),
            selected_frames=tuple(self.selected_frames),
            timings=dict(self.timings),
            hit_token_limit=self.hit_token_limit,
        )


class DescribeResponse(BaseModel):
    """One description per target, in order; ``worker``: the replica that served it; ``batch_requests`` and
    ``batch_targets``: how many requests (of any conversation or API replica) and targets its batch held."""

    descriptions: list[DescriptionOut]
    worker: str
    batch_requests: int
    batch_targets: int


class WorkerErrorOut(BaseModel):
    """A refused request: HTTP ``status``, a stable ``code`` and a message naming the bad value."""

    status: int
    code: ErrorCode
    detail: str
    worker: str = ""
