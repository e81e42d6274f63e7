"""The colour x shape x first-motion combinations held out of the world model's training.

No clip holding an object of one of these combinations reaches any training stage (``training.world.data``) or
the region pre-training (``training.world.region_pretrain``); the evaluation (``evals.world``) scores queries on
them separately. A combination is ``(colour, shape, primary motion)``, the motion as
:func:`synth.motion_truth.primary_motion` states it.
"""

from __future__ import annotations

HELD_OUT_COMBOS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("red", "star", "move:left"),
        ("blue", "circle", "move:up"),
        ("green", "square", "still"),
        ("yellow", "triangle", "move:right"),
        ("purple", "circle", "move:down-right"),
    }
)

__all__ = ["HELD_OUT_COMBOS"]
