"""Referring phrases of a question and comparisons computed from tracks."""

from __future__ import annotations

import pytest

from tools.compare import compare, comparison_asked, measure
from tools.grounding.query import referring_phrases
from tools.schemas import Target


@pytest.mark.parametrize(
    ("question", "phrases"),
    [
        ("Which is faster, the red circle or the big square?", ["the red circle", "the big square"]),
        (
            "Between the circle and the small cyan star, which one is quicker?",
            ["the circle", "the small cyan star"],
        ),
        ("Does the red circle move faster than the blue square?", ["the red circle", "the blue square"]),
        ("Which is bigger, the large red circle or the square?", ["the large red circle", "the square"]),
        ("What do the red objects do?", ["the red objects"]),
        ("Tell me how each of the triangles moves.", ["the triangles"]),
        ("What does each red object do?", ["each red object"]),
        ("the red, green and blue stars", ["the red stars", "green stars", "blue stars"]),
        ("What does the circle that follows the blue star do?", ["the circle"]),
        ("Which object follows the red circle?", ["the red circle"]),  # only a landmark: kept
        ("What does the big one do?", ["the big one"]),
        ("What do the people do?", ["the people"]),
        ("Which of the two is faster?", []),
        ("Which one is bigger?", []),
        ("And what does the other one do?", []),
    ],
)
def test_referring_phrases(question: str, phrases: list[str]) -> None:
    assert referring_phrases(question) == phrases


def test_landmarks_on_request() -> None:
    q = "What does the circle that follows the blue star do?"
    assert referring_phrases(q, landmarks=True) == ["the circle", "the blue star"]


def _target(tid: int, label: str, step: float, side: float, n: int = 10) -> Target:
    boxes = [(10.0 + step * f, 20.0, 10.0 + step * f + side, 20.0 + side) for f in range(n)]
    return Target(id=tid, label=label, boxes=boxes, width=200, height=100, score=1.0, source="test")


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("Which moves faster, the A or the B?", ("speed", True)),
        ("Which one is the speedier one?", ("speed", True)),
        ("Which is slower?", ("speed", False)),
        ("Is the red circle smaller than the square?", ("size", False)),
        ("Which one moves more?", ("distance", True)),
        ("Which of them travels the least?", ("distance", False)),
        ("What does the red circle do?", None),
    ],
)
def test_comparison_asked(question: str, asked: tuple | None) -> None:
    assert comparison_asked(question) == asked


def test_compare_from_tracks() -> None:
    fast_small = _target(0, "red circle", step=6.0, side=8.0)
    slow_big = _target(1, "blue square", step=1.0, side=20.0)
    assert measure(fast_small, "speed") == pytest.approx(6.0)
    assert measure(slow_big, "distance") == pytest.approx(9.0)
    assert measure(slow_big, "size") == pytest.approx(400.0)
    faster = compare([fast_small, slow_big], "speed", True)
    assert faster.winner_id == 0 and faster.text.startswith("The red circle moves faster")
    assert compare([fast_small, slow_big], "speed", False).winner_id == 1
    assert compare([fast_small, slow_big], "size", True).winner_id == 1
    mid = _target(2, "green star", step=3.0, side=10.0)
    slowest = compare([fast_small, mid, slow_big], "speed", False)  # of three: the superlative
    assert slowest.winner_id == 1 and slowest.text.startswith(
        "The blue square moves slowest (1.0 vs 6.0 vs 3.0"
    )
    with pytest.raises(ValueError, match="at least 2"):
        compare([fast_small], "speed")
