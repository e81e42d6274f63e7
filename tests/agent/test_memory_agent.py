"""The agent answers memory questions from the video's object memory: built once per conversation, queried by
the rule planner's parsed question or by a chat model chaining the memory tools."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, checkpoint_serializer, final_state
from agent.planner import LLMPlanner
from artemis_model.types import box_iou
from synth import generate_clip
from synth.build import clip_seeds
from tests.agent.conftest import ScriptedChatModel
from tools import queries
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime
from tools.video import ArrayVideo


def _graph(planner=None):
    rt = Runtime(describer=HeuristicDescriber(), grounding_settings=WORLD_GROUNDING, max_videos=2)
    return rt, build_agent(AgentDeps(runtime=rt), planner, InMemorySaver(serde=checkpoint_serializer()))


def _turn(graph, thread, question, **kw):
    nodes = [n for n, _ in ask(graph, thread, question, **kw)]
    return nodes, final_state(graph, thread)


def _truth_id(clip, state, target_id: int) -> int:
    """The world object an evidence target follows (best mean box IoU over its key frames)."""
    ev = next(e for e in state["evidence"].targets if e.target_id == target_id)

    def iou(o):
        return sum(box_iou(b, o.boxes[f]) if o.boxes[f] else 0.0 for f, b in ev.key_boxes) / len(ev.key_boxes)

    return max(clip.objects, key=iou).id


def _first(clip, kind):
    frames = {o.id: next((e.frame for e in o.events if e.kind == kind), None) for o in clip.objects}
    frames = {k: v for k, v in frames.items() if v is not None}
    order = sorted(frames, key=frames.get)
    clear = len(order) == 1 or (len(order) > 1 and frames[order[1]] - frames[order[0]] >= 3)
    return (order[0], frames[order[0]]) if order and clear else None


def test_which_object_stops_first_and_counting_match_the_world() -> None:
    """On world clips with a clear answer: the object that stops first (and when), and how many objects bounce
    off a wall, from the memory built on the grounded tracks — checked against the world's events."""
    rt, graph = _graph()
    asked = right = 0
    for seed in clip_seeds(11, 200):
        clip = generate_clip(seed)
        first = _first(clip, "stop")
        if first is None:
            continue
        if asked >= 20:
            break
        name = f"clip{seed}"
        rt.videos.add(name, ArrayVideo(clip.frames, fps=clip.fps, name=name))
        nodes, state = _turn(graph, name, "Which object stops first?", video=name)
        assert nodes[-2:] == ["query", "answer"] and "refer" not in nodes
        r = state["evidence"].result
        asked += 1
        right += int(
            r is not None and r.kind == "order" and _truth_id(clip, state, r.target_ids[0]) == first[0]
            and abs(r.frame - first[1]) <= 2
        )  # fmt: skip
        _, state = _turn(graph, name, "How many objects bounce off a wall?")
        bouncers = sum(any(e.kind == "bounce" for e in o.events) for o in clip.objects)
        right += int(state["evidence"].result.count == bouncers)
        asked += 1
    assert asked == 20 and right / asked >= 0.85, (right, asked)


@pytest.fixture(scope="module")
def clip_with_stop():
    for seed in clip_seeds(11, 40):
        clip = generate_clip(seed)
        if _first(clip, "stop") is not None:
            return clip
    raise AssertionError("no world clip with a stop")


def test_the_memory_is_built_once_and_kept_with_the_conversation(clip_with_stop) -> None:
    rt, graph = _graph()
    rt.videos.add("v", ArrayVideo(clip_with_stop.frames, fps=clip_with_stop.fps, name="v"))
    _, one = _turn(graph, "t", "Which object stops first?", video="v")
    assert [s.tool for s in one["steps"] if s.node == "query"][:1] == ["memory"]
    memory = one["memory"]
    _, two = _turn(graph, "t", "When does it stop?")  # "it": the answer's object
    turn2 = [s for s in two["steps"] if s.turn == 2 and s.node == "query"]
    assert [s.tool for s in turn2] == ["when"]  # no "memory" step: nothing rebuilt
    assert two["memory"] == memory
    r1, r2 = one["evidence"].result, two["evidence"].result
    assert r2.target_ids[0] == r1.target_ids[0] and r2.frame == r1.frame and r2.event == "stop"
    assert [t.target_id for t in two["evidence"].targets][:1] == [
        r1.target_ids[0]
    ]  # evidence ids = memory ids


def test_a_describe_question_still_goes_to_the_describer(clip_with_stop) -> None:
    rt, graph = _graph()
    rt.videos.add("v", ArrayVideo(clip_with_stop.frames, fps=clip_with_stop.fps, name="v"))
    o = clip_with_stop.objects[0]
    nodes, state = _turn(graph, "t", f"What does the {o.colour} {o.shape} do?", video="v")
    assert "refer" in nodes and "query" not in nodes and state["evidence"].result is None


def _call(name: str, args: dict, k: int) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{k}"}])


def test_an_llm_planner_chains_memory_tools_before_answering(clip_with_stop) -> None:
    plan = _call(
        "Plan",
        {"target_source": "all", "query": "", "question": "What does the first object to stop do next?",
         "memory_question": {"kind": "after", "event": "stop", "over_all": True}},
        0,
    )  # fmt: skip
    llm = ScriptedChatModel(
        responses=[
            plan,
            _call("event_order", {"event": "stop"}, 1),
            _call(
                "when", {"target_id": 99, "event": "stop"}, 2
            ),  # a bad id: the error goes back to the model
            _call("after", {"target_id": 0, "anchor_id": 0, "anchor_event": "stop"}, 3),
            AIMessage("After it stops, it stays still."),
        ]
    )
    rt, graph = _graph(LLMPlanner(llm))
    rt.videos.add("v", ArrayVideo(clip_with_stop.frames, fps=clip_with_stop.fps, name="v"))
    nodes, state = _turn(graph, "t", "What does the first object to stop do next?", video="v")
    assert nodes[-2:] == ["query", "answer"]
    calls = [s for s in state["steps"] if s.node == "query" and s.tool != "memory"]
    assert [s.tool for s in calls] == ["event_order", "when", "after"]
    assert "no object #99" in json.loads(calls[1].output)["error"]
    assert state["answer"] == "After it stops, it stays still."
    expected = queries.after(state["memory"], 0, 0, "stop")
    assert state["evidence"].result == expected  # the last tool result is the structured answer
    order = queries.event_order(state["memory"], "stop")
    assert json.loads(calls[0].output)["target_ids"] == order.target_ids


def test_counting_a_phrase_that_finds_nothing_answers_zero(clip_with_stop) -> None:
    colours = {o.colour for o in clip_with_stop.objects}
    missing = next(
        c for c in ("purple", "orange", "cyan", "yellow", "green", "red", "blue") if c not in colours
    )
    rt, graph = _graph()
    rt.videos.add("v", ArrayVideo(clip_with_stop.frames, fps=clip_with_stop.fps, name="v"))
    _, state = _turn(graph, "t", f"How many {missing} objects are there?", video="v")
    r = state["evidence"].result
    assert r.count == 0 and r.target_ids == [] and state["answer"].startswith(f"I count 0 {missing} objects")
    _, state = _turn(graph, "t2", "How many objects are there?", video="v")
    assert state["evidence"].result.count == len(clip_with_stop.objects)


def test_the_log_says_which_memory_object_a_grounded_target_is() -> None:
    """Grounding numbers a phrase's targets from #0; the memory numbers every object of the video. Where they
    differ, the turn's log maps one to the other, so the ids in the answer match a line the user can read."""
    rt, graph = _graph()
    renamed = 0
    for k, seed in enumerate(clip_seeds(11, 12)):
        clip = generate_clip(seed)
        o = clip.objects[-1]
        rt.videos.add(f"v{k}", ArrayVideo(clip.frames, fps=clip.fps, name=f"v{k}"))
        _, state = _turn(graph, f"t{k}", f"When does the {o.colour} {o.shape} stop?", video=f"v{k}")
        grounded = [s for s in state["steps"] if s.tool == "ground"]
        assert len(grounded) == 1 and grounded[0].output.startswith("#0 ")
        shown = [t.target_id for t in state["evidence"].targets]
        maps = [s for s in state["steps"] if s.node == "query" and s.tool == "memory" and "ids" in s.input]
        if shown == [0]:
            assert not maps  # same number: nothing to say
            continue
        renamed += 1
        assert [s.input["ids"] for s in maps] == [{"0": shown[0]}]
        assert maps[0].output == f"#0 is #{shown[0]} in the video's memory"
    assert renamed >= 3  # the case is exercised (6 of these 12 clips)
