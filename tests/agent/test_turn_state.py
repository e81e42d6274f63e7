"""What the agent holds between and within turns: deps are never mutated, per-turn hooks travel with the run
(``TurnContext``), and a conversation opens its video once (the runtime's)."""

from __future__ import annotations

import threading

import pytest

from agent.context import RunCancelled, TurnContext
from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from agent.planner import RulePlanner
from tools import runtime as runtime_module
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime


def _run(graph, thread: str, question: str, **kwargs) -> list[str]:
    return [node for node, _ in ask(graph, thread, question, **kwargs)]


def test_build_agent_leaves_its_deps_as_they_are():
    deps = AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber()))
    before = deps.planner
    build_agent(deps, RulePlanner())
    assert deps.planner is before


def test_progress_and_cancel_belong_to_one_turn(reds, tmp_path):
    _, video = reds
    runtime = Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())
    describer = runtime.describer
    graph = build_agent(AgentDeps(runtime), checkpointer=sqlite_checkpointer(tmp_path / "t.db"))
    events: list[dict] = []
    _run(
        graph, "a", "What do the red objects do?", video=video, context=TurnContext(on_progress=events.append)
    )
    assert [e["status"] for e in events if e["stage"] == "describe"][:2] == ["start", "done"]
    assert runtime.describer is describer  # wrapped for that turn only, nothing shared was changed
    seen = len(events)
    _run(graph, "b", "What do the red objects do?", video=video)  # no context: nothing reported
    assert len(events) == seen and final_state(graph, "b")["answer"]
    stop = threading.Event()
    stop.set()
    with pytest.raises(RunCancelled):
        _run(graph, "c", "What do the red objects do?", video=video, context=TurnContext(cancel=stop))


def test_a_conversation_opens_its_video_once(reds, tmp_path, monkeypatch):
    _, video = reds
    opened: list[str] = []
    real = runtime_module.open_video
    monkeypatch.setattr(runtime_module, "open_video", lambda path: opened.append(str(path)) or real(path))
    runtime = Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())
    graph = build_agent(AgentDeps(runtime), checkpointer=sqlite_checkpointer(tmp_path / "o.db"))
    _run(graph, "t", "What do the red objects do?", video=video, annotate_dir=str(tmp_path / "ev"))
    _run(graph, "t", "And the blue star?")
    assert len(opened) == 1 and len(runtime.videos) == 1
