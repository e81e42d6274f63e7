"""The real-footage benchmark's questions answered **through the agent** (rule planner, COCO grounding, the
video's object memory and its query tools — the same code as on the synthetic world).

Each question is asked on a fresh conversation. When the agent asks back which object is meant ("I found 3
objects matching 'the cyclist'. Which one do you mean?"), the benchmark answers like a user who knows the
labelled object: the number of the candidate whose box overlaps the object's labelled box most (at the nearest
labelled frame within ``CLARIFY_REACH`` frames); a reply is counted in the answer's row. The structured answer
(``Evidence.result``) is scored: count = ``count``; presence = ``count > 0`` on the frame; temporal = the first and
last frame of the answer's object (its evidence span) within the question's tolerance; shot = ``part``
(0-based). An object without a COCO class (a cartoon rabbit) is answered right when the agent says it cannot find
it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from evals.real import AnswerResult, ClipLabels, Question
from synth.metrics import iou

logger = logging.getLogger(__name__)

CLARIFY_REACH = 10
"""Frames: a clarification candidate is compared with the labelled box at most this far from its frame."""
MAX_REPLIES = 2


def real_agent_graph() -> Any:
    """The agent as ``artemis chat`` runs it on real footage: rule planner, COCO grounding, the default
    describer (track describer without weights), an in-memory checkpointer (clarifications need one)."""
    from langgraph.checkpoint.memory import InMemorySaver

    from agent.deps import AgentDeps
    from agent.graph import build_agent, checkpoint_serializer
    from tools.runtime import Runtime

    runtime = Runtime(max_videos=1)
    return build_agent(AgentDeps(runtime=runtime), checkpointer=InMemorySaver(serde=checkpoint_serializer()))


def _pick(labels: ClipLabels, q: Question, clarification: dict[str, Any]) -> str:
    """The reply of a user who knows which labelled object ``q`` is about."""
    obj = next((o for o in labels.objects if o.id == q.object), None)
    best, best_iou = 1, 0.0
    for cand in clarification.get("candidates", []):
        if obj is None:
            break
        near = [
            (abs(f - cand["frame_idx"]), b)
            for f, b in obj.boxes.items()
            if b is not None and abs(f - cand["frame_idx"]) <= CLARIFY_REACH
        ]
        if not near:
            continue
        overlap = iou(tuple(cand["box"]), tuple(min(near, key=lambda x: x[0])[1]))
        if overlap > best_iou:
            best, best_iou = cand["number"], overlap
    return str(best)


def ask_agent(
    graph: Any, labels: ClipLabels, q: Question, video: Path, thread: str
) -> tuple[dict, list[str]]:
    """Ask ``q`` on a new thread, answering clarifications; (final state, the replies given)."""
    from agent.graph import ask, final_state

    replies: list[str] = []
    message, kwargs = q.question, {"video": str(video)}
    for _ in range(MAX_REPLIES + 1):
        asked = None
        for node, update in ask(graph, thread, message, **kwargs):
            if node == "__interrupt__":
                asked = update["clarification"]
        if asked is None:
            break
        message, kwargs = _pick(labels, q, asked), {}
        replies.append(message)
    return final_state(graph, thread), replies


def agent_answer(labels: ClipLabels, q: Question, state: dict, replies: list[str]) -> AnswerResult:
    """Score the agent's structured answer to ``q``."""
    obj = next((o for o in labels.objects if o.id == q.object), None)
    detectable = (obj.coco_class if obj else q.coco_class) is not None
    evidence = state.get("evidence")
    result = evidence.result if evidence is not None else None
    predicted: Any
    if result is None:
        predicted = "not found"
        correct = not detectable and q.kind in ("temporal", "shot")
    elif q.kind == "count":
        predicted = result.count
        correct = predicted == q.answer
    elif q.kind == "presence":
        predicted = result.count is not None and result.count > 0
        correct = predicted == q.answer
    elif not result.target_ids:
        predicted = "not found"
        correct = not detectable
    elif q.kind == "temporal":
        span = next((e.span for e in evidence.targets if e.target_id == result.target_ids[0]), None)
        predicted = list(span) if span else "not found"
        lo, hi = q.answer  # type: ignore[misc]
        correct = (
            bool(span)
            and detectable
            and abs(span[0] - lo) <= q.tolerance
            and abs(span[1] - hi) <= q.tolerance
        )
    else:  # shot
        predicted = result.part
        correct = predicted == q.answer
    return AnswerResult(
        labels.clip, q.id, q.kind, q.question, q.answer, predicted, bool(correct), detectable,
        replies=replies, said=str(state.get("answer", "")),
    )  # fmt: skip


def agent_answers(labels: ClipLabels, video: Path, graph: Any | None = None) -> list[AnswerResult]:
    """Every question of ``labels`` asked through the agent on ``video``."""
    graph = graph if graph is not None else real_agent_graph()
    out = []
    for q in labels.questions:
        state, replies = ask_agent(graph, labels, q, video, thread=f"real-{labels.clip}-{q.id}")
        a = agent_answer(labels, q, state, replies)
        logger.info(
            "real agent: %s %s -> %s (%s)", q.id, q.question, a.predicted, "right" if a.correct else "wrong"
        )
        out.append(a)
    return out


__all__ = ["CLARIFY_REACH", "agent_answer", "agent_answers", "ask_agent", "real_agent_graph"]
