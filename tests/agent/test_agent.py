from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import AIMessage

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from agent.planner import LLMPlanner, RulePlanner
from artemis_model.types import box_iou
from tests.agent.conftest import ScriptedChatModel
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime


def plan_call(**args) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "Plan", "args": args, "id": "plan-1"}])


def run(graph, thread, question, **kw):
    events = list(ask(graph, thread, question, **kw))
    return events, final_state(graph, thread)


def assert_evidence_matches_truth(state, clip, truth_by_label):
    for ev in state["evidence"].targets:
        k = truth_by_label[ev.label]
        assert len(ev.key_boxes) >= 2
        for f, box in ev.key_boxes:
            assert box_iou(box, clip.boxes[k][f]) >= 0.5, (ev.label, f, box, clip.boxes[k][f])


@pytest.mark.parametrize("planner_kind", ["rule", "llm"])
def test_multi_target_question_describes_each_red_object(reds, tmp_path, planner_kind):
    clip, video = reds
    if planner_kind == "rule":
        planner, summarizer = RulePlanner(), "merge"
    else:
        llm = ScriptedChatModel(
            responses=[
                plan_call(
                    target_source="ground",
                    query="the red objects",
                    question="What does it do?",
                    steps=["ground"],
                ),
                AIMessage("The red circle moves to the right while the red square moves to the left."),
            ]
        )
        planner = LLMPlanner(llm)
        from agent.lc_tools import as_text_llm

        summarizer = as_text_llm(llm)
    graph = build_agent(
        AgentDeps(
            Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber(), summarizer=summarizer)
        ),
        planner,
        sqlite_checkpointer(tmp_path / "m.db"),
    )
    events, state = run(graph, "t", "What do the red objects do?", video=video)
    nodes = [n for n, _ in events]
    assert nodes == ["understand", "plan", "ground", "refer", "summarize", "answer"]
    assert sorted(d.label for d in state["descriptions"]) == ["red circle", "red square"]
    assert len(state["descriptions"]) == 2
    assert_evidence_matches_truth(state, clip, {"red circle": 0, "red square": 1})
    answer = state["answer"]
    assert "red circle" in answer and "red square" in answer and "blue" not in answer
    assert "right" in answer and "left" in answer
    said = {ev.label: ev.said for ev in state["evidence"].targets}
    assert any(s.startswith("refer: The red circle") for s in said["red circle"])
    if planner_kind == "llm":
        assert answer == "The red circle moves to the right while the red square moves to the left."


@pytest.mark.parametrize("planner_kind", ["rule", "llm"])
def test_ambiguous_reference_asks_back_then_resolves(two_circles, tmp_path, planner_kind):
    clip, video = two_circles
    planner = RulePlanner()
    if planner_kind == "llm":
        planner = LLMPlanner(
            ScriptedChatModel(
                responses=[
                    plan_call(target_source="ground", query="the circle", question="What does the circle do?")
                ]
            )
        )
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        planner,
        sqlite_checkpointer(tmp_path / "c.db"),
    )
    events, _ = run(graph, "c", "What does the circle do?", video=video)
    assert events[-1][0] == "__interrupt__"
    ask_back = events[-1][1]["clarification"]
    assert [c["number"] for c in ask_back["candidates"]] == [1, 2]
    labels = [c["label"] for c in ask_back["candidates"]]
    assert labels == ["green circle", "yellow circle"]  # numbered left to right
    for cand, k in zip(ask_back["candidates"], (0, 1), strict=True):
        assert box_iou(cand["box"], clip.boxes[k][cand["frame_idx"]]) >= 0.5
    assert "Which one" in ask_back["question"]

    events, state = run(graph, "c", "the left one")
    assert [n for n, _ in events] == ["clarify", "refer", "summarize", "answer"]
    assert [t.label for t in state["targets"]] == ["green circle"]
    assert state["answer"] == "The green circle moves down."
    assert [m.type for m in state["messages"]] == [
        "human",
        "ai",
        "human",
        "ai",
    ]  # question, ask-back, reply, answer
    assert "Which one" in state["messages"][1].content
    assert_evidence_matches_truth(state, clip, {"green circle": 0})


def test_unclear_clarification_asks_again(two_circles, tmp_path):
    _, video = two_circles
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        None,
        sqlite_checkpointer(tmp_path / "u.db"),
    )
    run(graph, "u", "What is the circle doing?", video=video)
    events, _ = run(graph, "u", "hmm, not sure")
    assert events[-1][0] == "__interrupt__" and "did not get" in events[-1][1]["clarification"]["question"]
    _, state = run(graph, "u", "2")
    assert [t.label for t in state["targets"]] == ["yellow circle"] and "up" in state["answer"]


@pytest.mark.parametrize("planner_kind", ["rule", "llm"])
def test_long_video_goes_through_segments_and_summary(two_circles, tmp_path, planner_kind):
    clip, video = two_circles
    if planner_kind == "rule":
        planner, question = RulePlanner(), "Summarize what the green circle does over the whole video."
    else:
        question = "Tell me about the green circle."
        planner = LLMPlanner(
            ScriptedChatModel(
                responses=[
                    plan_call(
                        target_source="ground",
                        query="the green circle",
                        long_video=True,
                        num_segments=4,
                        question=question,
                    )
                ]
            )
        )
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        planner,
        sqlite_checkpointer(tmp_path / "l.db"),
    )
    events, state = run(graph, "l", question, video=video)
    assert [n for n, _ in events] == ["understand", "plan", "ground", "refer_long", "summarize", "answer"]
    segs = [d.segment for d in state["descriptions"]]
    assert [s.index for s in segs] == [0, 1, 2, 3] and segs[0].start == 0 and segs[-1].end == 24
    steps = [s for s in state["steps"] if s.turn == state["turn"]]
    assert [s.tool for s in steps if s.node == "refer_long"] == ["segment"] + ["refer"] * 4
    assert any(s.tool == "summarize" for s in steps)
    assert state["answer"].count("frames") >= 4 and "green circle" in state["answer"]
    assert_evidence_matches_truth(state, clip, {"green circle": 0})


def test_length_alone_triggers_the_long_video_path(reds, tmp_path):
    _, video = reds
    graph = build_agent(
        AgentDeps(
            Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber()), long_video_frames=10
        ),
        None,
        sqlite_checkpointer(tmp_path / "n.db"),
    )
    events, state = run(graph, "n", "What does the blue star do?", video=video)
    assert "refer_long" in [n for n, _ in events] and len(state["descriptions"]) == 4


def test_user_box_becomes_the_first_target(reds, tmp_path):
    clip, video = reds
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        None,
        sqlite_checkpointer(tmp_path / "b.db"),
    )
    box = clip.boxes[2][6]
    events, state = run(graph, "b", "What is this doing?", video=video, box=box, frame_idx=6)
    assert [n for n, _ in events][:3] == ["understand", "plan", "use_box"]
    target = state["targets"][0]
    assert target.source == "user_box" and target.label == "blue star" and target.box_at(6) == tuple(box)
    assert "down" in state["answer"]


def test_multi_round_pronoun_and_entity_from_the_answer(reds, tmp_path):
    _, video = reds
    llm_answer = "The red circle moves to the right, away from the blue star."
    graph = build_agent(
        AgentDeps(
            Runtime(
                grounding_settings=WORLD_GROUNDING,
                describer=HeuristicDescriber(),
                summarizer=lambda p: llm_answer,
            )
        ),
        None,
        sqlite_checkpointer(tmp_path / "r.db"),
    )
    _, s1 = run(graph, "r", "What does the red circle do?", video=video)
    assert [t.label for t in s1["targets"]] == ["red circle"]
    events, s2 = run(graph, "r", "Where does it go?")
    assert "recall" in [n for n, _ in events] and [t.label for t in s2["targets"]] == ["red circle"]
    # previous answer of round 1 named only the red circle; an "other" question grounds new entities of the last answer
    graph.update_state({"configurable": {"thread_id": "r"}}, {"last_answer": llm_answer})
    events, s3 = run(graph, "r", "And what does the other one do?")
    assert [t.label for t in s3["targets"]] == ["blue star"] and "down" in s3["answer"]
    assert len(s3["messages"]) == 6  # 3 questions + 3 answers in the thread


def test_annotated_frames_on_request(reds, tmp_path):
    _, video = reds
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        None,
        sqlite_checkpointer(tmp_path / "a.db"),
    )
    _, state = run(graph, "a", "What does the blue star do?", video=video, annotate_dir=str(tmp_path / "ev"))
    frames = state["evidence"].frames
    assert len(frames) >= 2 and all(f.endswith(".jpg") for f in frames)
    import cv2

    assert cv2.imread(frames[0]).shape == (120, 160, 3)


def test_nothing_found_answers_so(reds, tmp_path):
    _, video = reds
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        None,
        sqlite_checkpointer(tmp_path / "x.db"),
    )
    events, state = run(graph, "x", "What does the purple triangle do?", video=video)
    assert [n for n, _ in events][-1] == "answer"
    assert (
        state["answer"] == "I could not find 'the purple triangle' in the video."
    )  # the phrase, not the question
    assert state["evidence"].targets == []


def test_llm_plan_without_tool_call_falls_back_to_rules(reds, tmp_path):
    _, video = reds
    planner = LLMPlanner(ScriptedChatModel(responses=[AIMessage("I think you should look at it.")]))
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        planner,
        sqlite_checkpointer(tmp_path / "f.db"),
    )
    _, state = run(graph, "f", "What does the blue star do?", video=video)
    assert state["plan"].target_source == "ground" and [t.label for t in state["targets"]] == ["blue star"]
    assert np.isfinite(state["targets"][0].score)
