"""The tools as LangChain tools (the only place they meet LangChain), plus a chat-model -> text-LLM adapter."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent.deps import AgentDeps
from tools.grounding import ground
from tools.refer import refer
from tools.segment import segment
from tools.summarize import summarize
from tools.track import track


class GroundArgs(BaseModel):
    video: str = Field(description="Path of the video")
    query: str = Field(description="Referring phrase, e.g. 'the red objects'")


class BoxArgs(BaseModel):
    video: str
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels on frame_idx")
    frame_idx: int = 0


class ReferArgs(BoxArgs):
    question: str | None = None


class SegmentArgs(BaseModel):
    video: str
    n: int = 4


class SummarizeArgs(BaseModel):
    texts: list[str]
    instruction: str


def as_text_llm(chat_model: BaseChatModel) -> Callable[[str], str]:
    """A LangChain chat model as the ``str -> str`` callable the summarize tool takes."""

    def run(prompt: str) -> str:
        return str(chat_model.invoke([HumanMessage(prompt)]).content)

    return run


def make_langchain_tools(deps: AgentDeps | None = None) -> list[BaseTool]:
    """ground, track, refer, segment and summarize as LangChain StructuredTools with JSON-able results."""
    deps = deps or AgentDeps()

    def _ground(video: str, query: str) -> list[dict]:
        found = ground(
            deps.open_video(video), query, backend=deps.grounding_backend, settings=deps.grounding_settings
        )
        return [
            {
                "id": t.id,
                "label": t.label,
                "span": list(t.span),
                "score": t.score,
                "key_boxes": [[f, list(t.box_at(f))] for f in t.key_frames(3)],
            }
            for t in found
        ]

    def _track(video: str, box: tuple[float, float, float, float], frame_idx: int = 0) -> list[list[float]]:
        return track(deps.open_video(video), box, frame_idx=frame_idx).to_track_list()

    def _refer(
        video: str, box: tuple[float, float, float, float], frame_idx: int = 0, question: str | None = None
    ) -> str:
        return refer(
            deps.open_video(video), box, frame_idx=frame_idx, question=question, describer=deps.describer
        ).answer

    def _segment(video: str, n: int = 4) -> list[list[int]]:
        return [[s.start, s.end] for s in segment(deps.open_video(video), n)]

    def _summarize(texts: list[str], instruction: str) -> str:
        return summarize(texts, instruction, llm=deps.summarizer)

    return [
        StructuredTool.from_function(
            _ground,
            name="ground",
            description="Find and track the objects a phrase names.",
            args_schema=GroundArgs,
        ),
        StructuredTool.from_function(
            _track, name="track", description="Track a box over the video.", args_schema=BoxArgs
        ),
        StructuredTool.from_function(
            _refer, name="refer", description="Describe what the boxed target does.", args_schema=ReferArgs
        ),
        StructuredTool.from_function(
            _segment,
            name="segment",
            description="Split the video into n frame ranges.",
            args_schema=SegmentArgs,
        ),
        StructuredTool.from_function(
            _summarize,
            name="summarize",
            description="Summarize descriptions faithfully.",
            args_schema=SummarizeArgs,
        ),
    ]
