"""Resolving a clarification answer ("the left one", "2", "the bigger one") to one candidate."""

from __future__ import annotations

from collections.abc import Sequence

from artemis_model.types import Box
from tools.grounding.query import parse_query, words
from tools.schemas import Target

ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "one": 1,
    "two": 2,
    "three": 3,
}


def common_frame(targets: Sequence[Target]) -> int:
    """First frame where every target is visible (else the first frame of the first target)."""
    n = len(targets[0].boxes)
    for f in range(n):
        if all(t.box_at(f) is not None for t in targets):
            return f
    return targets[0].first_frame


def order_candidates(targets: Sequence[Target]) -> list[Target]:
    """Left to right (then top to bottom) on their common frame: the numbering shown to the user."""
    f = common_frame(targets)

    def key(t: Target) -> tuple[float, float]:
        b = t.box_at(f) or t.box_at(t.first_frame)
        return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)

    return sorted(targets, key=key)


def resolve_choice(answer: str, candidates: Sequence[Target]) -> Target | None:
    """The candidate the answer picks, or None when it does not single one out.

    Understands numbers ("2", "#2", "the second"), sides ("left(most)", "right", "top", "bottom"),
    sizes ("big", "small") and distinguishing colour/shape words.
    """
    toks = words(answer)
    digits = [int(t) for t in answer.replace("#", " ").split() if t.isdigit()]
    numbers = digits or [ORDINALS[t] for t in toks if t in ORDINALS and t not in ("one",)]
    if numbers and 1 <= numbers[0] <= len(candidates):
        return candidates[numbers[0] - 1]
    f = common_frame(candidates)
    centres = {t.id: _centre(t.box_at(f) or t.box_at(t.first_frame)) for t in candidates}
    for word, axis, pick in (
        ("left", 0, min),
        ("leftmost", 0, min),
        ("right", 0, max),
        ("rightmost", 0, max),
        ("top", 1, min),
        ("upper", 1, min),
        ("bottom", 1, max),
        ("lower", 1, max),
    ):
        if word in toks:
            return pick(candidates, key=lambda t, a=axis: centres[t.id][a])
    parsed = parse_query(answer)
    matching = [
        t
        for t in candidates
        if (not parsed.colours or t.colour in parsed.colours)
        and (not parsed.shapes or t.shape in parsed.shapes)
    ]
    if (parsed.colours or parsed.shapes) and len(matching) == 1:
        return matching[0]
    if parsed.size in ("large", "small"):
        area = {t.id: _area(t.box_at(f) or t.box_at(t.first_frame)) for t in candidates}
        return (max if parsed.size == "large" else min)(candidates, key=lambda t: area[t.id])
    return None


def _centre(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


def _area(b: Box) -> float:
    return (b[2] - b[0]) * (b[3] - b[1])
