"""Comparisons and multi-turn references: each named object grounded on its own, "them" reaching back over
turns, clarification of one phrase of several, and the winner computed from the tracks."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from agent.planner import LLMPlanner, RulePlanner
from agent.references import back_reference, recall_targets, remember
from tests.agent.conftest import ScriptedChatModel
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime
from tools.schemas import Target


def run(graph, thread, question, **kw):
    events = list(ask(graph, thread, question, **kw))
    return events, final_state(graph, thread)


def heuristic_graph(db, planner, **deps):  # noqa: ANN001, ANN003, ANN201
    """The agent on world grounding with the weight-free heuristic describer, checkpointed in ``db``."""
    runtime = Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())
    return build_agent(AgentDeps(runtime, **deps), planner, sqlite_checkpointer(db))


def winner(state) -> str:
    said = {ev.label: ev.said for ev in state["evidence"].targets}
    return next(label for label, lines in said.items() if any(s.startswith("compare:") for s in lines))


@pytest.mark.parametrize("planner_kind", ["rule", "llm"])
def test_comparison_grounds_both_named_objects_and_picks_the_faster(reds, tmp_path, planner_kind):
    _, video = reds  # red circle ~7 px/frame, red square ~6.7, blue star ~4.3
    question = "Which moves faster, the blue star or the red circle?"
    planner = RulePlanner()
    if planner_kind == "llm":
        call = {"target_source": "ground", "query": "the blue star or the red circle", "question": question}
        planner = LLMPlanner(
            ScriptedChatModel(
                responses=[AIMessage("", tool_calls=[{"name": "Plan", "args": call, "id": "1"}])]
            )
        )
    graph = heuristic_graph(tmp_path / "c.db", planner)
    events, state = run(graph, "c", question, video=video)
    assert "__interrupt__" not in [n for n, _ in events]
    assert sorted(t.label for t in state["targets"]) == ["blue star", "red circle"]
    assert winner(state) == "red circle" and state["answer"].startswith("The red circle moves faster")
    _, state = run(graph, "c", "Which is slower, the red circle or the blue star?")
    assert winner(state) == "blue star"


@pytest.mark.parametrize(
    ("question", "fastest"),
    [
        ("Out of all the shapes, which one is the quickest?", True),
        ("Which of the objects is the fastest?", True),
        ("Which object has the lowest speed?", False),
        ("Out of all the shapes, which one is the slowest?", False),
    ],
)
def test_superlative_over_every_object(reds, tmp_path, question, fastest):
    """ "Which one is the quickest?" grounds every object (not a thing called "the quickest", nor a question
    back about which one) and names the one with the highest speed of all."""
    _, video = reds  # red circle ~7 px/frame, red square ~6.7, blue star ~4.3
    graph = heuristic_graph(tmp_path / "s.db", None)
    events, state = run(graph, "s", question, video=video)
    assert "__interrupt__" not in [n for n, _ in events]
    assert sorted(t.label for t in state["targets"]) == ["blue star", "red circle", "red square"]
    best = "red circle" if fastest else "blue star"
    assert winner(state) == best
    assert state["answer"].startswith(f"The {best} moves {'fastest' if fastest else 'slowest'}")


def test_a_superlative_over_more_objects_than_the_budget_keeps_the_winner(two_circles, tmp_path):
    """With a budget of 2 described targets of 3 found, the slowest object (the orange square, the least
    prominent: smallest) is still among them, and the answer is the one over all three."""
    _, video = two_circles  # green and yellow circles ~3.3 px/frame, orange square ~1.7
    graph = heuristic_graph(tmp_path / "b.db", None, max_targets=2)
    _, state = run(graph, "b", "Which object moves slowest?", video=video)
    assert len(state["targets"]) == 2 and "2 most prominent of 3" in state["note"]
    assert winner(state) == "orange square" and "The orange square moves slowest" in state["answer"]
    _, state = run(graph, "b2", "Which object moves fastest?", video=video)
    assert len(state["targets"]) == 2 and "orange square" not in [t.label for t in state["targets"]]


def test_which_of_them_after_two_single_object_turns(reds, tmp_path):
    _, video = reds
    graph = heuristic_graph(tmp_path / "f.db", None)
    _, s1 = run(graph, "f", "What does the blue star do?", video=video)
    _, s2 = run(graph, "f", "And the red square?")
    assert [t.label for t in s1["targets"]] == ["blue star"] and [t.label for t in s2["targets"]] == [
        "red square"
    ]
    events, s3 = run(graph, "f", "Which of them moves faster?")
    assert "recall" in [n for n, _ in events]
    assert sorted(t.label for t in s3["targets"]) == ["blue star", "red square"]
    assert winner(s3) == "red square"
    _, s4 = run(graph, "f", "Where does it go?")  # singular: the last answer's targets only
    assert sorted(t.label for t in s4["targets"]) == ["blue star", "red square"]


def test_only_the_ambiguous_phrase_is_clarified(two_circles, tmp_path):
    _, video = two_circles  # green circle (left), yellow circle (right), orange square
    graph = heuristic_graph(tmp_path / "a.db", None)
    events, _ = run(graph, "a", "Which is faster, the circle or the orange square?", video=video)
    ask_back = events[-1][1]["clarification"]
    assert events[-1][0] == "__interrupt__" and [c["label"] for c in ask_back["candidates"]] == [
        "green circle",
        "yellow circle",
    ]
    _, state = run(graph, "a", "the left one")
    assert sorted(t.label for t in state["targets"]) == ["green circle", "orange square"]
    assert [t.id for t in state["targets"]] == [0, 1]


def _t(label: str, x: float) -> Target:
    return Target(
        id=0, label=label, boxes=[(x, 0.0, x + 10, 10.0)] * 4, width=100, height=20, score=1.0, source="t"
    )


def test_back_reference_and_recall_from_memory():
    assert back_reference("Which of them moves faster?") == 2
    assert back_reference("Of those three, which is biggest?") == 3
    assert back_reference("Which one is quicker?") == 2  # a comparison naming no object
    assert back_reference("Where does it go?") == 1
    assert back_reference("What happens next?") == 0
    a, b, c = _t("a", 0), _t("b", 30), _t("c", 60)
    memory = remember(remember(remember([], [a]), [b]), [c])
    assert [m.label for m in memory] == ["a", "b", "c"]
    assert [m.label for m in remember(memory, [_t("a again", 1)])] == ["b", "c", "a again"]  # same object
    assert [t.label for t in recall_targets("Which of them is faster?", [c], memory)] == ["b", "c"]
    assert [t.label for t in recall_targets("Where does it go?", [c], memory)] == ["c"]
