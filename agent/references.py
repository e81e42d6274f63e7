"""What a question refers back to, and the conversation's memory of the objects it talked about.

"What does it do?" refers to the last answer's target; "Which of them is faster?", "And those two?" or a
comparison without any object named ("Which one is quicker?") to the last two objects talked about, even when
they came from different turns ("What does the red circle do?" / "And the blue square?" / "Which of them
moves faster?").
"""

from __future__ import annotations

from collections.abc import Sequence

from artemis_model.types import box_iou
from tools.compare import comparison_asked
from tools.grounding.query import words
from tools.schemas import Target

SINGULAR_PRONOUNS = {"it", "its", "itself", "he", "she", "him", "her"}
PLURAL_REFERENCES = {"they", "them", "their", "themselves", "those", "these", "both", "either", "neither", "pair"}
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5}
MEMORY_SIZE = 8
SAME_OBJECT_IOU = 0.5


def back_reference(question: str) -> int:
    """How many earlier targets ``question`` refers to: 0 (none), 1 ("it"), or 2+ ("them", "both",
    "those three", a comparison that names no object). Call it on questions that name no object."""
    toks = words(question)
    number = next((NUMBERS[t] for t in toks if t in NUMBERS), None)
    if any(t in PLURAL_REFERENCES for t in toks) or comparison_asked(question) is not None:
        return number or 2
    if number is not None and "the" in toks:  # "the two"
        return number
    return 1 if any(t in SINGULAR_PRONOUNS for t in toks) else 0


def same_object(a: Target, b: Target) -> bool:
    """Whether two targets (from different turns or grounding calls) follow the same object: mean box IoU
    over the frames where both are seen >= ``SAME_OBJECT_IOU``."""
    ious = [box_iou(p, q) for p, q in zip(a.boxes, b.boxes, strict=False) if p is not None and q is not None]
    return bool(ious) and sum(ious) / len(ious) >= SAME_OBJECT_IOU


def remember(memory: Sequence[Target], targets: Sequence[Target], size: int = MEMORY_SIZE) -> list[Target]:
    """``memory`` with ``targets`` appended as the most recent (an object already there moves to the end)."""
    kept = [m for m in memory if not any(same_object(m, t) for t in targets)]
    return (kept + list(targets))[-size:]


def recall_targets(question: str, last: Sequence[Target], memory: Sequence[Target]) -> list[Target]:
    """The targets a back-referring ``question`` means: the last answer's, completed with the most recently
    talked-about other objects when it wants more of them ("Which of them is faster?" after two turns on
    one object each)."""
    wanted = back_reference(question)
    out = list(last)
    for m in reversed(memory):
        if len(out) >= wanted:
            break
        if not any(same_object(m, t) for t in out):
            out.insert(0, m)
    return out


__all__ = ["back_reference", "recall_targets", "remember", "same_object"]
