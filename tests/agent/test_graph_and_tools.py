from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.deps import AgentDeps
from agent.graph import NODES, build_agent, sqlite_checkpointer
from agent.lc_tools import make_langchain_tools
from artemis_model.types import box_iou
from tools import ground, refer, segment, summarize, track
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]


def test_graph_shape():
    g = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber()))
    ).get_graph()
    assert set(g.nodes) == set(NODES) | {"__start__", "__end__"}
    edges = {(e.source, e.target) for e in g.edges}
    expected = {
        ("__start__", "understand"),
        ("understand", "plan"),
        ("plan", "use_box"),
        ("plan", "ground"),
        ("plan", "recall"),
        ("use_box", "refer"),
        ("ground", "clarify"),
        ("ground", "refer"),
        ("ground", "refer_long"),
        ("ground", "answer"),
        ("clarify", "refer"),
        ("clarify", "refer_long"),
        ("recall", "refer"),
        ("recall", "refer_long"),
        ("refer", "summarize"),
        ("refer_long", "summarize"),
        ("summarize", "answer"),
        ("answer", "__end__"),
    }
    assert expected <= edges
    assert {(a, b) for a, b in edges if a == "answer"} == {("answer", "__end__")}


def test_tools_as_python_functions_and_as_langchain_tools(reds):
    clip, video = reds
    lc = {
        t.name: t
        for t in make_langchain_tools(
            AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber()))
        )
    }
    assert list(lc) == ["ground", "track", "describe", "segment", "summarize"]

    py_targets = ground(video, "the blue star", settings=WORLD_GROUNDING)
    lc_targets = lc["ground"].invoke({"video": video, "query": "the blue star"})
    assert [t.label for t in py_targets] == [t["label"] for t in lc_targets] == ["blue star"]
    f, box = lc_targets[0]["key_boxes"][0]
    assert box_iou(box, clip.boxes[2][f]) >= 0.5

    box0 = clip.boxes[2][0]
    py_track = track(video, box0, frame_idx=0)
    lc_track = lc["track"].invoke({"video": video, "box": box0, "frame_idx": 0})
    assert lc_track == py_track.to_track_list() and len(lc_track) == 16

    py_desc = refer(video, box0, frame_idx=0, describer=HeuristicDescriber())
    assert (
        lc["describe"].invoke({"video": video, "box": box0}) == py_desc.answer == "The blue star moves down."
    )

    assert lc["segment"].invoke({"video": video, "n": 4}) == [[s.start, s.end] for s in segment(video, 4)]
    texts = ["The blue star moves down.", "The red circle moves right."]
    assert lc["summarize"].invoke({"texts": texts, "instruction": "?"}) == summarize(texts, "?", llm="merge")


SCRIPT = """
import sys, json
from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from tools.describers import HeuristicDescriber
from tools.runtime import Runtime
from tools.grounding.backends import WORLD_GROUNDING
graph = build_agent(AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())), checkpointer=sqlite_checkpointer(sys.argv[1]))
kw = {"video": sys.argv[4]} if len(sys.argv) > 4 else {}
for _ in ask(graph, sys.argv[2], sys.argv[3], **kw):
    pass
s = final_state(graph, sys.argv[2])
print(json.dumps({"answer": s["answer"], "targets": [t.label for t in s["targets"]],
                  "messages": [m.content for m in s["messages"]], "plan": s["plan"].target_source}))
"""


def _run_process(*args: str) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_follow_up_from_a_separate_process_sees_the_history(reds, tmp_path):
    _, video = reds
    db = str(tmp_path / "memory.sqlite")
    first = _run_process(db, "conv-1", "What does the red square do?", video)
    assert first["targets"] == ["red square"] and "left" in first["answer"]
    second = _run_process(db, "conv-1", "What does it do?")  # no video: the thread remembers it
    assert second["plan"] == "previous" and second["targets"] == ["red square"]
    assert second["messages"][:2] == ["What does the red square do?", first["answer"]]
    assert len(second["messages"]) == 4
    # another thread in the same file has no history
    other = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
        checkpointer=sqlite_checkpointer(db),
    ).get_state({"configurable": {"thread_id": "conv-2"}})
    assert other.values == {}
