"""The real-footage benchmark's questions answered through the agent: how its structured answers are scored, how a
clarification is answered like a user who knows the labelled object, and (slow) the agent on carphone's questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.state import Evidence, TargetEvidence
from evals.real import CLIPS_DIR, LABELS_DIR, load_labels
from evals.real_agent import _pick, agent_answer, agent_answers
from tools.schemas import QueryResult

REPO = Path(__file__).resolve().parents[2]
BIKES = load_labels(LABELS_DIR / "bikes.json")


def _q(qid: str):
    return next(q for q in BIKES.questions if q.id == qid)


def _state(result: QueryResult | None, spans: dict[int, tuple[int, int]] | None = None) -> dict:
    targets = [
        TargetEvidence(target_id=i, label="person", span=s, key_boxes=[(s[0], (0.0, 0.0, 10.0, 10.0))])
        for i, s in (spans or {}).items()
    ]
    return {"evidence": Evidence(targets=targets, result=result), "answer": result.text if result else ""}


def test_structured_answers_are_scored_per_kind() -> None:
    count = _q("bikes-count-person")  # 3 people
    assert agent_answer(BIKES, count, _state(QueryResult(kind="count", text="3", count=3)), []).correct
    assert not agent_answer(BIKES, count, _state(QueryResult(kind="count", text="5", count=5)), []).correct
    when = _q("bikes-when-cyclist")  # [80, 130] within 10 frames
    right = QueryResult(kind="when", text="...", target_ids=[4], frame=76)
    assert agent_answer(BIKES, when, _state(right, {4: (76, 136)}), ["3"]).correct
    assert not agent_answer(BIKES, when, _state(right, {4: (30, 47)}), []).correct
    assert not agent_answer(BIKES, when, _state(None), []).correct  # no answer: wrong for a detectable object
    shot = _q("bikes-shot-cyclist")  # shot 2 (0-based)
    assert agent_answer(
        BIKES, shot, _state(QueryResult(kind="part", text="", target_ids=[4], part=2)), []
    ).correct
    present = _q("bikes-present-person-100")  # nobody at frame 100
    assert agent_answer(BIKES, present, _state(QueryResult(kind="count", text="", count=0)), []).correct
    scored = agent_answer(BIKES, present, _state(QueryResult(kind="count", text="", count=1)), ["1"])
    assert not scored.correct and scored.predicted is True and scored.replies == ["1"]


def test_a_clarification_is_answered_with_the_candidate_on_the_labelled_object() -> None:
    when = _q("bikes-when-cyclist")  # the cyclist is at [368, 42, 498, 262] on frame 80
    asked = {
        "question": "Which one?",
        "candidates": [
            {"number": 1, "label": "person", "frame_idx": 30, "box": [160, 5, 387, 266]},
            {"number": 2, "label": "person", "frame_idx": 82, "box": [360, 40, 495, 260]},
        ],
    }
    assert _pick(BIKES, when, asked) == "2"


@pytest.mark.slow
def test_the_agent_answers_carphones_questions() -> None:
    clip = REPO / CLIPS_DIR / "carphone_pristine.mp4"
    if not clip.is_file():
        pytest.skip("run `make test-assets`")
    labels = load_labels(LABELS_DIR / "carphone_pristine.json", REPO / CLIPS_DIR)
    answers = agent_answers(labels, clip)
    assert [a.correct for a in answers] == [True] * len(labels.questions), [
        (a.question, a.predicted) for a in answers
    ]
