"""The primary motion of a caption: the first basic motion statement, the unit of motion accuracy."""

from __future__ import annotations

from collections.abc import Sequence

from synth.grammar import MotionPhrase

PRIMARY_VERBS = ("move", "still", "enter", "start_moving")


def primary_motion(phrases: Sequence[MotionPhrase]) -> str | None:
    """The first basic motion statement: ``move:<dir>``, ``still`` or ``enter:<side>`` (None when absent).

    ``start_moving`` counts as ``still`` (the object first stands still)."""
    for p in phrases:
        if p.verb == "move" and p.direction:
            return f"move:{p.direction}"
        if p.verb in ("still", "start_moving"):
            return "still"
        if p.verb == "enter":
            return f"enter:{p.side}"
    return None


__all__ = ["PRIMARY_VERBS", "primary_motion"]
