"""The agent's state: one conversation thread, checkpointed after every node.

Per-turn fields (plan, targets, ambiguous, descriptions, answer, evidence) are reset by ``understand``;
``messages`` and ``steps`` accumulate over the whole conversation through their reducers; ``last_targets``,
``last_answer`` and ``mentioned`` carry the conversation's memory from one turn to the next.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field

from artemis_model.types import Box
from tools.memory import MemoryEvent, ObjectMemory, Piece
from tools.queries import MemoryQuestion
from tools.schemas import QueryResult, Target, TargetDescription


class Plan(BaseModel):
    """What the agent will do for one question."""

    target_source: Literal["user_box", "ground", "previous", "answer_entities", "all"] = Field(
        description="user_box: the user's box; ground: find `query` in the video; previous: the targets of "
        "the previous answer; answer_entities: objects named in the previous answer but not yet described; "
        "all: every object in the video"
    )
    query: str | None = Field(default=None, description="Referring phrase to ground, e.g. 'the red objects'")
    long_video: bool = Field(default=False, description="Describe per segment, then summarize")
    num_segments: int = Field(default=4, ge=1, le=16)
    memory_question: MemoryQuestion | None = Field(
        default=None,
        description="Set when the question is answered from the video's object memory (counting, when, which "
        "first, what after an event, relations, why, what if it keeps moving, which part) instead of by "
        "describing the targets",
    )
    question: str = Field(description="The question to ask about each target")
    steps: list[str] = Field(default_factory=list, description="Human-readable plan")


class Step(BaseModel):
    """One thing the agent did: a plan, a tool call and its result, a clarification, an answer."""

    turn: int
    node: str
    tool: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    output: str = ""
    target_id: int | None = None


class Candidate(BaseModel):
    number: int
    label: str
    frame_idx: int
    box: Box


class Clarification(BaseModel):
    """Asked back when a singular reference matches several objects."""

    question: str
    candidates: list[Candidate]


class TargetEvidence(BaseModel):
    """Why the answer says what it says about one target."""

    target_id: int
    label: str
    span: tuple[int, int]
    key_boxes: list[tuple[int, Box]] = Field(description="(frame_idx, box) on key frames")
    said: list[str] = Field(default_factory=list, description="'tool: result' lines about this target")


class Evidence(BaseModel):
    targets: list[TargetEvidence] = Field(default_factory=list)
    frames: list[str] = Field(default_factory=list, description="Annotated JPEG files, when asked for")
    result: QueryResult | None = Field(
        default=None, description="The structured answer of a question answered from the object memory"
    )


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: Annotated[list[Step], operator.add]
    turn: int
    video: str
    question: str
    box: Box | None
    frame_idx: int
    annotate_dir: str | None
    num_frames: int
    plan: Plan | None
    targets: list[Target]
    descriptions: list[TargetDescription]
    clarification: Clarification | None
    answer: str
    evidence: Evidence | None
    last_targets: list[Target]
    last_answer: str
    ambiguous: list[dict[str, Any]]
    """Per singular phrase that matched several targets: {"phrase", "ids"} (ids into ``targets``)."""
    mentioned: list[Target]
    """The objects the conversation talked about, most recent last (see ``agent.references``)."""
    groups: list[list[int]]
    """Per referring phrase of the question, the ids (into ``targets``) of the targets it found, in phrase order."""
    memory: ObjectMemory | None
    """The video's object memory (``tools.memory``), built by the first memory question and kept with the
    conversation."""
    result: QueryResult | None
    """This turn's structured answer, when the memory answered it."""
    note: str
    """What the answer must say about how the turn was bounded ("I looked at the 8 most prominent of 141 ...")."""


STATE_TYPES: tuple[type, ...] = (
    Plan,
    Step,
    Candidate,
    Clarification,
    TargetEvidence,
    Evidence,
    Target,
    TargetDescription,
    QueryResult,
    ObjectMemory,
    MemoryEvent,
    Piece,
    MemoryQuestion,
)
"""Our types stored in checkpoints (registered with the checkpoint serializer)."""
