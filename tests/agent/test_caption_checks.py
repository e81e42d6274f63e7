"""The agent checks each caption against its target's label and the object memory's first motion; a caption
that contradicts them is replaced by the first of the describer's own sampled captions that agrees."""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, checkpoint_serializer, final_state
from artemis_model.types import Description
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime

# the red circle (top, moving right) and the red square (bottom, moving left) of the ``reds`` clip
GREEDY = {"top": "The red star moves to the right.", "bottom": "The red square moves to the right."}
SAMPLED = {"top": "The red circle moves to the right.", "bottom": "The red square moves to the left."}


class SamplingDescriber:
    """Wrong first captions (the circle called a star, the square moving the wrong way); right sampled ones."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    @staticmethod
    def _caption(box, texts: dict[str, str]) -> str:
        return texts["top" if (box[1] + box[3]) / 2 < 60 else "bottom"]

    def _many(self, boxes, frame_idxs, texts):
        return [
            Description(
                answer=self._caption(b, texts),
                question="q",
                frame_idx=f,
                box=tuple(b),
                track=None,
                selected_frames=(f,),
            )  # fmt: skip
            for b, f in zip(boxes, frame_idxs, strict=True)
        ]

    def __call__(self, video, box, *, frame_idx, question):  # pragma: no cover - describe_many is used
        raise AssertionError("describe_many expected")

    def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None, sampling=None):
        if sampling is None:
            return self._many(boxes, frame_idxs, GREEDY)
        self.seeds.append(sampling.seed)
        return self._many(boxes, frame_idxs, SAMPLED)


def _ask(path: str, check_samples: int):
    describer = SamplingDescriber()
    rt = Runtime(describer=describer, grounding_settings=WORLD_GROUNDING, max_videos=1)
    graph = build_agent(
        AgentDeps(runtime=rt, check_samples=check_samples),
        checkpointer=InMemorySaver(serde=checkpoint_serializer()),
    )
    list(ask(graph, "t", "What do the red objects do?", video=path))
    return describer, final_state(graph, "t")


def _said(state) -> dict[str, list[str]]:
    return {e.label: e.said for e in state["evidence"].targets}


def test_contradicted_captions_are_replaced_and_the_check_is_in_the_evidence(reds) -> None:
    _, path = reds
    describer, state = _ask(path, check_samples=3)
    said = _said(state)
    assert sorted(said) == ["red circle", "red square"]
    assert f"refer: {SAMPLED['top']}" in said["red circle"]
    assert f"refer: {SAMPLED['bottom']}" in said["red square"]
    assert any(
        s.startswith("check:") and "says star, grounding found circle" in s for s in said["red circle"]
    )
    assert any(s.startswith("check:") and "the track shows move:left" in s for s in said["red square"])
    assert describer.seeds == [1]  # both agreed on the first sample
    assert state["memory"] is not None  # built for the checks, kept with the conversation
    assert SAMPLED["top"] in state["answer"] and GREEDY["top"] not in state["answer"]


def test_checks_off_keeps_the_first_captions(reds) -> None:
    _, path = reds
    describer, state = _ask(path, check_samples=0)
    said = _said(state)
    assert f"refer: {GREEDY['top']}" in said["red circle"]
    assert not any(s.startswith("check:") for lines in said.values() for s in lines)
    assert describer.seeds == []


def test_a_turn_wrapped_describer_samples_only_when_its_inner_one_does() -> None:
    import pytest

    from agent.context import ReportingDescriber
    from tools.describers import HeuristicDescriber, Sampling, can_sample

    events: list[dict] = []
    wrapped = ReportingDescriber(SamplingDescriber(), on_progress=events.append)
    assert can_sample(wrapped)
    out = wrapped.describe_many(
        None, [(0, 0, 10, 10)], frame_idxs=[0], question="q", sampling=Sampling(seed=4)
    )
    assert out[0].answer == SAMPLED["top"] and wrapped.inner.seeds == [4]
    assert [e["status"] for e in events] == ["start", "done"] and events[0]["sample"] == 4
    plain = ReportingDescriber(HeuristicDescriber())
    assert not can_sample(plain)
    with pytest.raises(ValueError, match="cannot sample"):
        plain.describe_many(None, [(0, 0, 10, 10)], frame_idxs=[0], question="q", sampling=Sampling(seed=1))
