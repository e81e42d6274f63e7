"""Pydantic inputs and outputs of the tools. Boxes are ``xyxy`` pixels of the original frame."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from artemis_model.types import Box, Description, Track


class Target(BaseModel):
    """One object found in a video: a label, its per-frame boxes (a track), when it is visible, a score."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(description="Track id, unique within one grounding call")
    label: str = Field(description="Short name, e.g. 'red circle'")
    colour: str | None = None
    shape: str | None = None
    size: str | None = Field(default=None, description="'small', 'medium' or 'large' (area of the frame)")
    boxes: list[Box | None] = Field(description="Box on each frame, None where the target is not seen")
    width: int
    height: int
    score: float = Field(ge=0.0, le=1.0)
    source: str = Field(description="Which tool/backend produced it, e.g. 'offline:colour', 'user_box'")
    key_frame: int | None = Field(
        default=None,
        description="Frame of the key box the describer receives: the user's frame for a user box, the most "
        "confident whole detection for a grounded target (see tools.grounding.key_detection); None: the "
        "first visible frame",
    )

    @model_validator(mode="after")
    def _key_frame_visible(self) -> Target:
        if self.key_frame is not None and self.box_at(self.key_frame) is None:
            vis = [i for i, b in enumerate(self.boxes) if b is not None]
            raise ValueError(
                f"key_frame {self.key_frame} has no box; the target is visible on frames {_ranges(vis)}"
            )
        return self

    @property
    def span(self) -> tuple[int, int]:
        """First and last frame where the target is visible."""
        vis = [i for i, b in enumerate(self.boxes) if b is not None]
        return (vis[0], vis[-1]) if vis else (0, 0)

    @property
    def first_frame(self) -> int:
        return self.span[0]

    def box_at(self, frame_idx: int) -> Box | None:
        return self.boxes[frame_idx] if 0 <= frame_idx < len(self.boxes) else None

    def key_box(self) -> tuple[int, Box]:
        """``(frame_idx, box)`` the describer receives: ``key_frame``'s box, else the first visible frame's."""
        frame = self.key_frame if self.key_frame is not None else self.first_frame
        box = self.box_at(frame)
        if box is None:
            raise ValueError(f"target {self.id} ({self.label!r}) is visible on no frame: nothing to describe")
        return frame, box

    def track(self) -> Track:
        return Track(boxes=tuple(self.boxes), width=self.width, height=self.height)

    def key_frames(self, k: int = 3) -> list[int]:
        """``k`` visible frames spread evenly over the span (first and last included)."""
        vis = [i for i, b in enumerate(self.boxes) if b is not None]
        if len(vis) <= k:
            return vis
        picks = {vis[round(j * (len(vis) - 1) / (k - 1))] for j in range(k)} if k > 1 else {vis[0]}
        return sorted(picks)


MEMORY_EVENTS = (
    "enter",
    "leave",
    "start_moving",
    "stop",
    "turn",
    "speed_up",
    "slow_down",
    "bounce",
    "collide",
    "occluded",
    "reappear",
    "overtake",
)
"""Event kinds of an object memory (``tools.memory``), named as the synthetic world names its events:
``bounce`` = off a frame wall (``side``), ``collide`` = bounce off another object (``other_id``), ``turn`` = any
other change of direction (``turn_back`` of the world included), ``overtake`` = passes ``other_id`` moving the
same way."""

QueryKind = Literal["count", "when", "order", "after", "relation", "why", "future", "part"]


class QueryResult(BaseModel):
    """The structured answer of a query over an object memory; ``text`` says the same in words.

    Objects are named by target id (``target_ids``: the objects the answer names, the answer's object first);
    a time by ``frame`` (of the whole video) and ``time_s``; a span by ``frame`` to ``end_frame`` (inclusive)."""

    model_config = ConfigDict(frozen=True)

    kind: QueryKind
    text: str
    target_ids: list[int] = Field(default_factory=list)
    frame: int | None = None
    time_s: float | None = None
    end_frame: int | None = Field(
        default=None, description="the last frame of a span that starts at frame (when an object is seen)"
    )
    count: int | None = None
    event: str | None = Field(default=None, description="an event kind of MEMORY_EVENTS (what happens)")
    side: str | None = Field(default=None, description="a frame wall: left, right, top or bottom")
    relation: str | None = Field(default=None, description="left_of, right_of, above, below, nearest")
    part: int | None = Field(default=None, description="0-based part (shot or concatenated clip)")


def _ranges(frames: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2, 5'`` (``'none'`` when empty)."""
    if not frames:
        return "none"
    runs: list[list[int]] = [[frames[0], frames[0]]]
    for f in frames[1:]:
        if f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


class Segment(BaseModel):
    """Frames ``[start, end)`` of a video; ``index`` counts from 0."""

    model_config = ConfigDict(frozen=True)

    index: int
    start: int
    end: int


class TargetDescription(BaseModel):
    """What the refer tool said about one target (optionally within one segment)."""

    model_config = ConfigDict(frozen=True)

    target_id: int
    label: str
    text: str
    span: tuple[int, int]
    frame_idx: int = Field(description="Frame of the box that was described")
    box: Box
    selected_frames: list[int] = Field(default_factory=list)
    segment: Segment | None = None
    source: str = "refer"


# ---- inputs and outputs of the registered tools (tools.registry) ---------------------------------------------
def _examples(*examples: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class GroundArgs(BaseModel):
    model_config = _examples({"query": "the red objects"})

    query: str = Field(max_length=500, description="Referring phrase, e.g. 'the red objects'")


class GroundResult(BaseModel):
    targets: list[Target]
    reason: str | None = None
    """Why ``targets`` is empty when the backend can say (e.g. the phrase names nothing its detector knows)."""


class BoxArgs(BaseModel):
    """A box drawn on one frame of the video."""

    model_config = _examples({"box": [10, 10, 60, 60], "frame_idx": 0})

    box: list[float] = Field(
        min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels on frame_idx"
    )
    frame_idx: int = Field(default=0, ge=0)


class TrackResult(BaseModel):
    boxes: list[list[float] | None]
    width: int
    height: int
    span: list[int] | None

    @classmethod
    def from_track(cls, trk: Track) -> TrackResult:
        span = trk.span
        return cls(
            boxes=[list(b) if b is not None else None for b in trk.boxes],
            width=trk.width,
            height=trk.height,
            span=list(span) if span is not None else None,
        )


class DescribeArgs(BoxArgs):
    model_config = _examples({"box": [10, 10, 60, 60], "frame_idx": 0, "question": "What is it doing?"})

    question: str | None = Field(default=None, max_length=2000)


class DescribeResult(BaseModel):
    answer: str
    question: str
    frame_idx: int
    box: list[float]
    track: TrackResult
    selected_frames: list[int]

    @classmethod
    def from_description(cls, d: Description) -> DescribeResult:
        return cls(
            answer=d.answer,
            question=d.question,
            frame_idx=d.frame_idx,
            box=list(d.box),
            track=TrackResult.from_track(d.track),
            selected_frames=list(d.selected_frames),
        )


class SegmentArgs(BaseModel):
    model_config = _examples({"n": 4})

    n: int = Field(default=4, ge=1, description="How many consecutive frame ranges")


class SegmentResult(BaseModel):
    segments: list[Segment]


class SummarizeArgs(BaseModel):
    model_config = _examples(
        {"texts": ["The red circle moves right.", "The blue square falls."], "instruction": "What happens?"}
    )

    texts: list[str] | list[TargetDescription] = Field(max_length=256)
    instruction: str = Field(max_length=2000)


class SummarizeResult(BaseModel):
    text: str
