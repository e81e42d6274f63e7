"""The memory query tools as LangChain tools (bound to one video's :class:`~tools.memory.ObjectMemory`), and the
loop in which a chat model chains them before it answers (the LLM planner's way to answer memory questions).

Each tool returns the :class:`~tools.schemas.QueryResult` as JSON; the loop keeps the last result as the turn's
structured answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, ValidationError

from tools import queries
from tools.memory import ObjectMemory
from tools.schemas import MEMORY_EVENTS, QueryResult, Target

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 6
"""Rounds of tool calls one answer may take before the loop stops and answers with what it has."""

_EVENT_DOC = f"one of {', '.join(MEMORY_EVENTS)}"


class CountArgs(BaseModel):
    target_ids: list[int] | None = Field(default=None, description="objects to count among (None: all)")
    event: str | None = Field(
        default=None, description=f"count only the objects with this event: {_EVENT_DOC}"
    )


class WhenArgs(BaseModel):
    target_id: int
    event: str | None = Field(default=None, description=f"None: when it is seen; else {_EVENT_DOC}")
    first: bool = True


class OrderArgs(BaseModel):
    event: str | None = Field(default=None, description=f"None: appearing; else {_EVENT_DOC}")
    target_ids: list[int] | None = Field(default=None, description="objects to compare (None: all)")
    first: bool = True


class AfterArgs(BaseModel):
    target_id: int = Field(description="the object whose next event is asked")
    anchor_id: int = Field(description="the object whose event starts the 'after' (may be the same)")
    anchor_event: str = Field(description=_EVENT_DOC)


class RelationArgs(BaseModel):
    target_id: int
    relation: queries.Relation
    frame: int | None = None
    event: str | None = Field(default=None, description=f"at the target's first event: {_EVENT_DOC}")


class TargetArgs(BaseModel):
    target_id: int


def memory_tools(memory: ObjectMemory, results: list[QueryResult] | None = None) -> list[BaseTool]:
    """The query functions of :mod:`tools.queries` over ``memory`` as LangChain tools; each result is also
    appended to ``results`` when given."""

    def wrap(fn: Callable[..., QueryResult]) -> Callable[..., str]:
        def call(**kwargs: object) -> str:
            try:
                out = fn(memory, **kwargs)
            except (KeyError, ValueError) as exc:  # a bad id or event from the model: tell it, let it retry
                return json.dumps({"error": str(exc)})
            if results is not None:
                results.append(out)
            return out.model_dump_json(exclude_none=True)

        return call

    def count(target_ids: list[int] | None = None, event: str | None = None) -> QueryResult:
        return queries.count_objects(memory, target_ids, event=event)

    specs: Sequence[tuple[str, str, type[BaseModel], Callable[..., QueryResult]]] = (
        ("count_objects", "How many objects (optionally: that have an event).", CountArgs,
         lambda m, **k: count(**k)),
        ("when", "When an object is seen, or when its event happens.", WhenArgs, queries.when),
        ("event_order", "Which object has an event first (or last).", OrderArgs, queries.event_order),
        ("after", "What an object does next after an object's event.", AfterArgs, queries.after),
        ("relation_at", "The object left of/right of/above/below an object at a time or event, or the object it "
         "collides with.", RelationArgs, queries.relation_at),
        ("why", "Why an object changes direction.", TargetArgs, queries.why),
        ("extrapolate", "Which wall an object reaches first if it keeps moving.", TargetArgs, queries.extrapolate),
        ("part_of", "In which part (shot) of the video an object appears.", TargetArgs, queries.part_of),
    )  # fmt: skip
    return [
        StructuredTool.from_function(func=wrap(fn), name=name, description=desc, args_schema=schema)
        for name, desc, schema, fn in specs
    ]


def memory_prompt(memory: ObjectMemory, named: Sequence[Target]) -> str:
    """The system prompt of the tool loop: the memory's objects and events, and the objects the question names."""
    names = ", ".join(f"#{t.id} {t.label}" for t in named) or "none in particular"
    return (
        "You answer a question about objects in a video from its object memory, using the tools (call as many "
        "as you need, one after another), then answer in one or two sentences that repeat the tools' facts "
        f"(times, objects, walls) and add none.\nVideo: {memory.num_frames} frames at {memory.fps:g} fps, "
        f"{memory.width}x{memory.height}.\nObjects and events:\n{memory.summary()}\n"
        f"The question names: {names}."
    )


def run_memory_tools(
    llm: BaseChatModel, memory: ObjectMemory, question: str, named: Sequence[Target]
) -> tuple[str, QueryResult | None, list[tuple[str, dict, str]]]:
    """Let ``llm`` chain memory tool calls to answer ``question``: (answer text, the last tool result, the calls
    made as (tool, args, result))."""
    results: list[QueryResult] = []
    tools = {t.name: t for t in memory_tools(memory, results)}
    bound = llm.bind_tools(list(tools.values()))
    messages: list[BaseMessage] = [SystemMessage(memory_prompt(memory, named)), HumanMessage(question)]
    calls: list[tuple[str, dict, str]] = []
    for _ in range(MAX_TOOL_ROUNDS):
        msg = bound.invoke(messages)
        messages.append(msg)
        tool_calls = getattr(msg, "tool_calls", None) or []
        if not tool_calls:
            text = str(msg.content).strip()
            last = results[-1] if results else None
            return text or (last.text if last else ""), last, calls
        for call in tool_calls:
            tool = tools.get(call["name"])
            if tool is None:
                out = json.dumps({"error": f"unknown tool {call['name']!r}; tools: {sorted(tools)}"})
            else:
                try:
                    out = str(tool.invoke(call["args"]))
                except ValidationError as exc:
                    out = json.dumps({"error": f"bad arguments: {exc.errors(include_url=False)}"})
            calls.append((call["name"], dict(call["args"]), out))
            messages.append(ToolMessage(out, tool_call_id=call.get("id") or call["name"]))
    logger.warning(
        "the model kept calling tools after %d rounds; answering with the last result", MAX_TOOL_ROUNDS
    )
    last = results[-1] if results else None
    return (last.text if last else "I could not answer from the object memory."), last, calls


__all__ = ["MAX_TOOL_ROUNDS", "memory_prompt", "memory_tools", "run_memory_tools"]
