"""Planners: question (+ context) -> :class:`Plan`. A rule-based one (offline default) and an LLM one."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from agent.references import back_reference
from agent.state import Plan
from tools.grounding.query import referring_phrases, unknown_phrases, words
from tools.queries import memory_question, subject_first
from tools.registry import ToolSpec, default_tools

logger = logging.getLogger(__name__)

LONG_WORDS = {"summarize", "summarise", "summary", "throughout", "overall", "whole", "entire", "long"}
OTHER_WORDS = {"other", "others", "else"}


class PlanContext(BaseModel):
    question: str
    has_box: bool = False
    num_frames: int = 0
    long_video_frames: int = 300
    previous_labels: list[str] = []
    previous_answer: str = ""


class Planner(Protocol):
    def __call__(self, ctx: PlanContext) -> Plan: ...


class RulePlanner:
    """Keyword rules: a box wins; the phrases naming objects (colour/shape/size/person words) are grounded, each
    on its own ("the red circle or the blue square"); pronouns and comparisons naming no object ("Which of
    them is faster?") reuse the objects talked about last."""

    name = "rule"

    def __call__(self, ctx: PlanContext) -> Plan:
        toks = set(words(ctx.question))
        asked = memory_question(ctx.question)
        phrases = referring_phrases(ctx.question)
        long_video = bool(toks & LONG_WORDS) or ctx.num_frames > ctx.long_video_frames
        if asked is not None and asked.kind in ("after", "relation"):
            # both objects matter ("what does X do after Y stops?"): the subject first, then the anchor
            phrases = subject_first(ctx.question, referring_phrases(ctx.question, landmarks=True))
        if ctx.has_box:
            source, query = "user_box", None
        elif phrases and asked is not None and asked.kind in ("after", "relation"):
            source, query = "ground", " and ".join(phrases)
        elif phrases:
            source, query = "ground", ctx.question
        elif unknown := unknown_phrases(ctx.question):  # "the unicorn": grounding says what it cannot find
            source, query, phrases = "ground", " and ".join(unknown), unknown
        elif toks & OTHER_WORDS and ctx.previous_answer:
            source, query = "answer_entities", None
        elif back_reference(ctx.question) and ctx.previous_labels:
            source, query = "previous", None
        else:
            source, query = "all", ""
        steps = {
            "user_box": "track the user's box",
            "ground": f"ground {' and '.join(repr(p) for p in phrases)}",
            "previous": f"reuse the previous targets ({', '.join(ctx.previous_labels)})",
            "answer_entities": "ground the objects named in the previous answer",
            "all": "ground every object",
        }[source]
        if asked is not None:
            refer_step = (
                f"answer from the object memory ({asked.kind}"
                + (f", {asked.event}" if asked.event else "")
                + ")"
            )
        else:
            refer_step = (
                "describe each target in 4 segments, then summarize" if long_video else "describe each target"
            )
        return Plan(
            target_source=source,
            query=query,
            long_video=long_video,
            question=ctx.question,
            memory_question=asked,
            steps=[steps, refer_step, "answer with evidence"],
        )


PLAN_INSTRUCTIONS = (
    "Call the Plan tool once. target_source: 'user_box' if the user gave a box, 'ground' to find the objects "
    "that `query` names (one phrase, or several, e.g. 'the red circle or the blue square' for a comparison), 'previous' for pronouns or "
    "comparisons about the objects talked about last ('Which of them is faster?'), 'answer_entities' for other "
    "objects named in the last answer, 'all' for every object. long_video=true to describe in segments and "
    "summarize. memory_question (kind count|when|order|after|relation|why|future|part, event, relation) when the "
    "question asks how many, when, which first/last, what happens after an event, where an object is relative "
    "to another, why it changes direction, what it will reach if it keeps moving, or in which part it appears: "
    "it is then answered from the video's object memory with tools, not by describing."
)


def planner_prompt(tools: Iterable[ToolSpec]) -> str:
    """The LLM planner's system prompt: the registered tools (name and description), then the Plan's fields."""
    listed = ", ".join(
        f"{t.name} ({t.description[:1].lower()}{t.description[1:].rstrip('.')})" for t in tools
    )
    return f"You plan how to answer a question about objects in a video. Tools: {listed}. {PLAN_INSTRUCTIONS}"


class LLMPlanner:
    """Plans with any LangChain chat model through tool calling (the ``Plan`` schema as the one tool); its
    prompt lists ``tools`` (default: :func:`tools.registry.default_tools`).

    Falls back to ``fallback`` (the rule planner) when the model returns no valid plan.
    """

    name = "llm"

    def __init__(
        self, llm: BaseChatModel, *, tools: Iterable[ToolSpec] | None = None, fallback: Planner | None = None
    ) -> None:
        self.llm = llm
        self.prompt = planner_prompt(tools if tools is not None else default_tools())
        self.fallback = fallback or RulePlanner()

    def __call__(self, ctx: PlanContext) -> Plan:
        bound = self.llm.bind_tools([Plan])
        msg = bound.invoke([SystemMessage(self.prompt), HumanMessage(ctx.model_dump_json(indent=1))])
        for call in getattr(msg, "tool_calls", None) or []:
            if call["name"] == "Plan":
                try:
                    return _with_box(Plan.model_validate(call["args"]), ctx)
                except ValidationError as exc:
                    logger.warning("LLM plan is invalid (%s); using the rule planner", exc)
                    return self.fallback(ctx)
        match = re.search(r"\{.*\}", str(msg.content), re.DOTALL)
        if match:
            try:
                return _with_box(Plan.model_validate(json.loads(match.group(0))), ctx)
            except (ValidationError, json.JSONDecodeError) as exc:
                logger.warning("LLM plan text is invalid (%s)", exc)
        logger.warning("LLM returned no plan; using the rule planner")
        return self.fallback(ctx)


def _with_box(plan: Plan, ctx: PlanContext) -> Plan:
    """A user box is always the target, whatever the model planned."""
    if ctx.has_box and plan.target_source != "user_box":
        return plan.model_copy(update={"target_source": "user_box", "query": None})
    return plan
