"""What every grounding backend returns: :class:`Detection`, one object on one frame."""

from __future__ import annotations

from dataclasses import dataclass

from artemis_model.types import Box


@dataclass(frozen=True)
class Detection:
    """One object on one frame: its box (``xyxy`` pixels), label and score, plus what a backend could name."""

    frame_idx: int
    box: Box
    label: str
    score: float
    colour: str | None = None
    shape: str | None = None
    area_frac: float = 0.0
    shape_score: float = 1.0
    """Confidence of ``shape`` in [0, 1] (its weight in a track's shape vote)."""
    partial: bool = False
    """Cut by the frame border or touching another object (likely occluded): its shape is not trusted."""
    centre: tuple[float, float] | None = None
    """Sub-pixel ``(x, y)`` centre of the object's pixels where the backend measures one (the offline backend's
    coverage centre); it moves with the object more exactly than the box (see
    :func:`tools.grounding.linking.rigid_boxes`). ``None``: not measured."""


SMALL_AREA_FRAC = 0.018
"""Objects covering less of the frame than this are "small", the others "large"."""


def size_name(area_frac: float) -> str:
    """Size word for an object covering ``area_frac`` of the frame."""
    return "small" if area_frac < SMALL_AREA_FRAC else "large"
