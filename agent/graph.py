"""``build_agent``: the plan-and-execute graph over the tools, plus helpers to run one turn."""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent import nodes
from agent.context import TurnContext
from agent.deps import AgentDeps
from agent.planner import Planner
from agent.state import STATE_TYPES, AgentState
from artemis_model.types import Box

NODES = (
    "understand",
    "plan",
    "use_box",
    "ground",
    "recall",
    "clarify",
    "refer",
    "refer_long",
    "query",
    "summarize",
    "answer",
)


def build_agent(
    deps: AgentDeps | None = None,
    planner: Planner | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """understand -> plan -> {use_box | ground [-> clarify] | recall} -> {refer | refer_long} -> summarize -> answer,
    or, for a question the object memory answers (``plan.memory_question``), ... -> query -> answer.

    ``planner`` overrides ``deps.planner`` (the rule planner by default; ``deps`` itself is left as it is); the
    graph is the same for every planner. Without a checkpointer, clarifications and multi-round memory need one:
    pass ``sqlite_checkpointer``. Each run may carry a :class:`~agent.context.TurnContext` (``context=``: progress
    and cancellation of that turn).
    """
    deps = deps or AgentDeps()
    if planner is not None:
        deps = dataclasses.replace(deps, planner=planner)
    g = StateGraph(AgentState, context_schema=TurnContext)
    bind = functools.partial
    g.add_node("understand", bind(nodes.understand, deps=deps))
    g.add_node("plan", bind(nodes.plan, deps=deps))
    g.add_node("use_box", bind(nodes.use_box, deps=deps))
    g.add_node("ground", bind(nodes.ground, deps=deps))
    g.add_node("recall", bind(nodes.recall, deps=deps))
    g.add_node("clarify", bind(nodes.clarify, deps=deps))
    g.add_node("refer", bind(nodes.refer, deps=deps))
    g.add_node("refer_long", bind(nodes.refer_long, deps=deps))
    g.add_node("query", bind(nodes.query, deps=deps))
    g.add_node("summarize", bind(nodes.summarize_node, deps=deps))
    g.add_node("answer", bind(nodes.answer, deps=deps))

    g.add_edge(START, "understand")
    g.add_edge("understand", "plan")
    g.add_conditional_edges("plan", _route_source, ["use_box", "ground", "recall"])
    after_targets = ["query", "refer", "refer_long", "answer"]
    g.add_conditional_edges("use_box", _route_describe, after_targets)
    g.add_conditional_edges("ground", _route_grounded, ["clarify", *after_targets])
    g.add_conditional_edges("recall", _route_describe, after_targets)
    g.add_conditional_edges("clarify", _route_describe, after_targets)
    g.add_edge("query", "answer")
    g.add_edge("refer", "summarize")
    g.add_edge("refer_long", "summarize")
    g.add_edge("summarize", "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=checkpointer)


def _route_source(state: AgentState) -> str:
    source = state["plan"].target_source
    if source == "user_box" and state.get("box") is not None:
        return "use_box"
    if source == "previous" and state.get("last_targets"):
        return "recall"
    return "ground"


def _route_describe(state: AgentState) -> str:
    plan = state["plan"]
    asked = plan.memory_question
    if asked is not None and (
        state.get("targets")  # a count finding nothing answers 0; "which object ...?" asks about every object
        or (not state.get("answer") and (asked.over_all or asked.kind == "count"))
    ):
        return "query"
    if not state.get("targets"):
        return "answer"
    return "refer_long" if plan.long_video else "refer"


def _route_grounded(state: AgentState) -> str:
    return "clarify" if nodes.is_ambiguous(state) else _route_describe(state)


def checkpoint_serializer() -> JsonPlusSerializer:
    """The checkpoint serializer, allowed to restore our state types (and nothing else of ours)."""
    return JsonPlusSerializer(allowed_msgpack_modules=[(t.__module__, t.__name__) for t in STATE_TYPES])


def sqlite_checkpointer(db_path: str | Path):
    """A SqliteSaver on ``db_path`` (one thread per conversation); usable from several processes in turn."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db_path), check_same_thread=False)
    return SqliteSaver(conn, serde=checkpoint_serializer())


def postgres_checkpointer(conninfo: Any):
    """A PostgresSaver (our serializer) on ``conninfo``: a ``postgresql://`` URL or an opened
    ``psycopg_pool.ConnectionPool`` made with ``autocommit=True`` and ``row_factory=dict_row``. Creates its
    tables when missing, one process at a time (several replicas may start together)."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    if isinstance(conninfo, str):
        kwargs = {"autocommit": True, "prepare_threshold": None, "row_factory": dict_row}
        conninfo = ConnectionPool(conninfo, min_size=1, max_size=4, kwargs=kwargs, open=True)
    saver = PostgresSaver(conninfo, serde=checkpoint_serializer())
    with conninfo.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (CHECKPOINT_SCHEMA_LOCK,))
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINT_SCHEMA_LOCK,))
    return saver


CHECKPOINT_SCHEMA_LOCK = 0x4C616E6747726170
"""Advisory lock key held while one process runs PostgresSaver's migrations."""


def turn_input(
    graph: CompiledStateGraph,
    config: dict,
    question: str,
    *,
    video: str | None = None,
    box: Box | None = None,
    frame_idx: int = 0,
    annotate_dir: str | None = None,
) -> Any:
    """What to feed ``graph.invoke/stream`` for a new message: a resume when a clarification is pending.

    ``video``: its path (the runtime holds it opened); ``box``: the user's box on ``frame_idx``, validated where
    it entered (the CLI's option, the HTTP route), stored as it is."""
    pending = graph.get_state(config).interrupts if graph.checkpointer is not None else ()
    if pending:
        asked = (
            pending[0].value.get("question", "")
            if isinstance(pending[0].value, dict)
            else str(pending[0].value)
        )
        update: dict[str, Any] = {"messages": [AIMessage(asked), HumanMessage(question)]}
        if annotate_dir is not None:
            update["annotate_dir"] = annotate_dir
        return Command(resume=question, update=update)
    if video is None:
        previous = graph.get_state(config).values.get("video") if graph.checkpointer is not None else None
        if previous is None:
            raise ValueError("the first question of a conversation needs a video")
        video = previous
    return {
        "messages": [HumanMessage(question)],
        "question": question,
        "video": str(video),
        "box": box,
        "frame_idx": frame_idx,
        "annotate_dir": annotate_dir,
    }


def ask(
    graph: CompiledStateGraph,
    thread_id: str,
    question: str,
    *,
    context: TurnContext | None = None,
    **kwargs: Any,
) -> Iterator[tuple[str, dict]]:
    """Run one user message on ``thread_id`` and yield ``(node, update)`` as each step finishes (``kwargs``:
    those of :func:`turn_input`; ``context``: this turn's progress and cancellation).

    A pending clarification shows up as ``("__interrupt__", {"clarification": ...})``.
    """
    config = {"configurable": {"thread_id": thread_id}}
    inp = turn_input(graph, config, question, **kwargs)
    for chunk in graph.stream(inp, config, stream_mode="updates", context=context):
        for node, update in chunk.items():
            if node == "__interrupt__":
                yield node, {"clarification": update[0].value}
            else:
                yield node, update or {}


def final_state(graph: CompiledStateGraph, thread_id: str) -> dict:
    return graph.get_state({"configurable": {"thread_id": thread_id}}).values
