"""A turn describes at most ``AgentDeps.max_targets`` objects: the most prominent, and the answer says so."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, checkpoint_serializer, final_state
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime


def _graph(max_targets: int):
    rt = Runtime(describer=HeuristicDescriber(), grounding_settings=WORLD_GROUNDING)
    deps = AgentDeps(runtime=rt, max_targets=max_targets)
    return build_agent(deps, checkpointer=InMemorySaver(serde=checkpoint_serializer()))


def _ask(graph, question, video):
    list(ask(graph, "t", question, video=video))
    return final_state(graph, "t")


def test_a_turn_describes_the_most_prominent_objects_within_its_budget(reds) -> None:
    _clip, video = reds  # red circle (r 12), red square (r 11), blue star (r 14), all seen throughout
    state = _ask(_graph(2), "What do the objects do?", video)
    assert sorted(t.label for t in state["targets"]) == ["blue star", "red circle"]  # the two largest
    assert len(state["descriptions"]) == 2
    assert state["answer"].startswith("I looked at the 2 most prominent of 3 objects found.")
    [budget] = [s for s in state["steps"] if s.tool == "budget"]
    assert budget.output == "I looked at the 2 most prominent of 3 objects found."


def test_within_budget_nothing_is_cut_and_memory_questions_are_never_cut(reds) -> None:
    _clip, video = reds
    state = _ask(_graph(3), "What do the objects do?", video)
    assert len(state["targets"]) == 3 and not state["answer"].startswith("I looked at")
    state = _ask(_graph(1), "How many objects are there?", video)
    assert state["evidence"].result.count == 3 and not state["answer"].startswith("I looked at")


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_targets must be >= 1, got 0"):
        AgentDeps(max_targets=0)


def test_the_turn_deadline_reaches_a_describer_that_takes_one_and_its_give_up_is_the_turn_timeout() -> None:
    import time

    from agent.context import ReportingDescriber, TurnTimedOut

    seen = []

    class Remote:
        def __call__(self, video, box, *, frame_idx, question, deadline=None):
            seen.append(deadline)
            if deadline is not None and time.monotonic() > deadline - 0.05:
                time.sleep(0.1)
                raise TimeoutError("the workers dropped it: budget spent")
            return "described"

    soon = time.monotonic() + 0.05
    wrapped = ReportingDescriber(Remote(), deadline=soon)
    with pytest.raises(TurnTimedOut) as caught:
        wrapped(None, (0, 0, 1, 1), frame_idx=0, question=None)
    assert seen == [soon] and isinstance(caught.value.__context__, TimeoutError)
    later = time.monotonic() + 60
    assert (
        ReportingDescriber(Remote(), deadline=later)(None, (0, 0, 1, 1), frame_idx=0, question=None)
        == "described"
    )

    class Local:  # takes no deadline: called as before
        def __call__(self, video, box, *, frame_idx, question):
            return "local"

    assert (
        ReportingDescriber(Local(), deadline=later)(None, (0, 0, 1, 1), frame_idx=0, question=None) == "local"
    )
    with pytest.raises(ValueError, match="boom"):  # a failure within the budget stays what it is

        class Broken:
            def __call__(self, video, box, *, frame_idx, question, deadline=None):
                raise ValueError("boom")

        ReportingDescriber(Broken(), deadline=later)(None, (0, 0, 1, 1), frame_idx=0, question=None)
