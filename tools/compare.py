"""``compare``: which of several targets is faster, slower, bigger, smaller or travels further, from their tracks.

The measures come from the boxes the targets carry (pixels of the original frame):

* ``speed``: mean displacement of the box centre per frame, over consecutive visible frames;
* ``size``: mean box area over the visible frames;
* ``distance``: total path length of the box centre (how much it moves).

:func:`comparison_asked` reads which measure and direction a question asks for ("Which is quicker?",
"Is the red circle bigger than the square?", "Which one moves more?"); :func:`compare` picks the winner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tools.grounding.query import words
from tools.schemas import Target

Measure = Literal["speed", "size", "distance"]
UNITS: dict[str, str] = {"speed": "px/frame", "size": "px^2", "distance": "px"}
# word -> (measure, True when the largest value wins)
COMPARATIVES: dict[str, tuple[Measure, bool]] = {
    "faster": ("speed", True),
    "fastest": ("speed", True),
    "quicker": ("speed", True),
    "quickest": ("speed", True),
    "speedier": ("speed", True),
    "speediest": ("speed", True),
    "slower": ("speed", False),
    "slowest": ("speed", False),
    "bigger": ("size", True),
    "biggest": ("size", True),
    "larger": ("size", True),
    "largest": ("size", True),
    "smaller": ("size", False),
    "smallest": ("size", False),
    "tinier": ("size", False),
    "further": ("distance", True),
    "farther": ("distance", True),
    "furthest": ("distance", True),
    "farthest": ("distance", True),
}
MOTION_VERBS = {
    "move",
    "moves",
    "moving",
    "moved",
    "travel",
    "travels",
    "travelling",
    "traveling",
    "go",
    "goes",
}
MORE_LESS: dict[str, bool] = {"more": True, "most": True, "less": False, "least": False}
PHRASES: dict[str, tuple[str, str, str, str]] = {  # measure -> (largest wins, smallest wins) of two, of more
    "speed": ("moves faster", "moves slower", "moves fastest", "moves slowest"),
    "size": ("is bigger", "is smaller", "is biggest", "is smallest"),
    "distance": ("moves more", "moves less", "moves most", "moves least"),
}


class Comparison(BaseModel):
    """The outcome of comparing targets on one measure."""

    model_config = ConfigDict(frozen=True)

    measure: Measure
    largest_wins: bool
    winner_id: int
    values: dict[int, float]
    """Target id -> the measure's value."""
    text: str


SPEED_NOUNS = {"speed", "pace", "velocity"}
SPEED_ADVERBS = {"quickly", "fast", "rapidly", "swiftly", "slowly"}
HIGH_LOW: dict[str, bool] = {
    "higher": True, "highest": True, "greater": True, "greatest": True, "bigger": True, "biggest": True,
    "lower": False, "lowest": False, "smaller": False, "smallest": False,
}  # fmt: skip


def comparison_asked(question: str) -> tuple[Measure, bool] | None:
    """(measure, largest wins) the question compares on, or None when it asks no comparison."""
    toks = words(question)
    for i, t in enumerate(toks):  # "the higher speed", "moves more quickly", "less rapidly"
        if t in SPEED_NOUNS and any(w in HIGH_LOW for w in toks[max(0, i - 2) : i]):
            return "speed", next(HIGH_LOW[w] for w in toks[max(0, i - 2) : i] if w in HIGH_LOW)
        if t in SPEED_ADVERBS and i > 0 and toks[i - 1] in MORE_LESS:
            return "speed", MORE_LESS[toks[i - 1]] == (t != "slowly")
    for t in toks:
        if t in COMPARATIVES:
            return COMPARATIVES[t]
    for i, t in enumerate(toks):  # "moves more", "travels the most", "which one moves less"
        if t in MORE_LESS and any(v in MOTION_VERBS for v in toks[max(0, i - 3) : i]):
            return "distance", MORE_LESS[t]
    return None


def superlative_asked(question: str) -> bool:
    """Whether the question asks for the extreme of a group ("Which is the quickest?", "the lowest speed",
    "Which one moves most?"), not between two ("Which is faster?")."""
    return any(w.endswith("est") and (w in COMPARATIVES or w in HIGH_LOW) or w in ("most", "least")
               for w in words(question))  # fmt: skip


def _visible(t: Target) -> list[tuple[int, tuple[float, float, float, float]]]:
    return [(f, b) for f, b in enumerate(t.boxes) if b is not None]


def _centre(b: Sequence[float]) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


def measure(target: Target, what: Measure) -> float:
    """``what`` of ``target`` from its boxes (0 when it is never seen)."""
    vis = _visible(target)
    if not vis:
        return 0.0
    if what == "size":
        return sum((b[2] - b[0]) * (b[3] - b[1]) for _, b in vis) / len(vis)
    steps = []
    for (f0, b0), (f1, b1) in zip(vis, vis[1:], strict=False):
        (x0, y0), (x1, y1) = _centre(b0), _centre(b1)
        steps.append((math.hypot(x1 - x0, y1 - y0), f1 - f0))
    path = sum(d for d, _ in steps)
    if what == "distance":
        return path
    if what == "speed":
        return path / max(sum(n for _, n in steps), 1)
    raise ValueError(f"unknown measure {what!r}; allowed: {tuple(UNITS)}")


def compare(
    targets: Sequence[Target],
    what: Measure,
    largest_wins: bool = True,
    *,
    fps: float | None = None,
    superlative: bool | None = None,
) -> Comparison:
    """The target with the largest (or smallest) ``what``; ``text`` says so, e.g. "The red circle moves faster
    (2.3 vs 0.8 px/frame)." ("moves fastest" of more than two, or with ``superlative``); with the video's
    ``fps`` a speed is also given in px/s. Targets sharing a label ("person") are named with their id
    ("person #2")."""
    if len(targets) < 2:
        raise ValueError(f"a comparison needs at least 2 targets, got {len(targets)}")
    if what not in UNITS:
        raise ValueError(f"unknown measure {what!r}; allowed: {tuple(UNITS)}")
    values = {t.id: measure(t, what) for t in targets}
    pick = max if largest_wins else min
    winner = pick(targets, key=lambda t: values[t.id])
    labels = [t.label for t in targets]
    dup = len(set(labels)) < len(labels)
    others = " vs ".join(f"{values[t.id]:.1f}" for t in targets if t.id != winner.id)
    of_all = superlative if superlative is not None else len(targets) > 2
    verb = PHRASES[what][(0 if largest_wins else 1) + (2 if of_all else 0)]
    name = f"{winner.label} #{winner.id}" if dup else winner.label
    text = f"The {name} {verb} ({values[winner.id]:.1f} vs {others} {UNITS[what]}"
    if fps and what == "speed":
        text += f"; {values[winner.id] * fps:.0f} px/s at {fps:g} fps"
    text += ")."
    return Comparison(measure=what, largest_wins=largest_wins, winner_id=winner.id, values=values, text=text)


__all__ = ["COMPARATIVES", "Comparison", "compare", "comparison_asked", "measure", "superlative_asked"]
