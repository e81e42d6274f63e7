"""Describers: the callables the refer tool uses to say what a boxed target does.

``Describer`` is the seam to the model: ``ModelDescriber`` calls ``artemis_model.pipeline.describe``;
``HeuristicDescriber`` is a weight-free stand-in (colour/shape of the box and the direction it moves).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from artemis_model.types import Box, Description, GenerationOptions, Track
from tools.grounding_offline import name_region
from tools.video import VideoLike, as_video_source

logger = logging.getLogger(__name__)

DEFAULT_QUESTION = "What is the <region> doing in this video?"


@runtime_checkable
class Describer(Protocol):
    """``(video, box, *, frame_idx, question) -> Description`` for a box in pixels on ``frame_idx``."""

    def __call__(
        self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None
    ) -> Description: ...


class ModelDescriber:
    """Describes with an Artemis model through :class:`artemis_model.pipeline.ArtemisPipeline` (the model seam).

    One feature cache is shared by every call, so follow-up questions and several targets on one video never
    encode a frame twice; :meth:`describe_many` sends all targets of a video through one batched pass.
    """

    def __init__(
        self, model, processor, *, options: GenerationOptions = GenerationOptions(), cache=None
    ) -> None:
        from artemis_model.pipeline import ArtemisPipeline

        self.pipeline = ArtemisPipeline(model, processor, cache)
        self.options = options

    @property
    def model(self):
        return self.pipeline.model

    @property
    def processor(self):
        return self.pipeline.processor

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path, *, device: str | None = None, dtype=None, **kwargs
    ) -> ModelDescriber:
        """Load the model and processor saved in ``model_dir`` (on first use of the CLI/agent, never at import)."""
        from artemis_model.pipeline import ArtemisPipeline

        pipe = ArtemisPipeline.from_pretrained(model_dir, device=device, dtype=dtype)
        return cls(pipe.model, pipe.processor, cache=pipe.cache, **kwargs)

    def __call__(self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None) -> Description:
        return self.pipeline.describe(
            as_video_source(video), box, frame_idx=frame_idx, question=question, options=self.options
        )

    def describe_many(
        self,
        video: VideoLike,
        boxes: list[Box],
        *,
        frame_idxs: list[int],
        question: str | None,
        tracks: list[Track] | None = None,
    ) -> list[Description]:
        """Several targets of one video; ``tracks`` (one per box) skip the tracker when already known."""
        return self.pipeline.describe_many(
            as_video_source(video),
            boxes,
            frame_idx=frame_idxs,
            questions=question,
            options=self.options,
            tracks=tracks,
        )


class HeuristicDescriber:
    """A deterministic, weight-free describer: names the boxed region and how its track moves.

    ``tracker`` maps ``(video, box, frame_idx)`` to a Track (default: ``tools.track.track``).
    """

    def __init__(self, tracker=None) -> None:
        self.tracker = tracker

    def __call__(self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None) -> Description:
        from tools.track import track

        trk: Track = (self.tracker or track)(video, box, frame_idx=frame_idx)
        colour, shape = name_region(video.get_frames([frame_idx])[0], box)
        noun = " ".join(w for w in (colour, shape) if w) or "object"
        answer = f"The {noun} {motion_phrase(trk)}."
        vis = trk.visible_frames
        return Description(
            answer=answer,
            question=question or DEFAULT_QUESTION,
            frame_idx=frame_idx,
            box=tuple(box),
            track=trk,
            selected_frames=tuple(
                [frame_idx] + [v for v in vis[:: max(1, len(vis) // 4)] if v != frame_idx][:4]
            ),
        )


def motion_phrase(trk: Track) -> str:
    """'moves to the right', 'moves up and to the left', 'stays still', ... from the first and last boxes."""
    vis = trk.visible_frames
    if len(vis) < 2:
        return "appears briefly"
    a, b = trk.boxes[vis[0]], trk.boxes[vis[-1]]
    dx = (b[0] + b[2] - a[0] - a[2]) / 2  # type: ignore[index]
    dy = (b[1] + b[3] - a[1] - a[3]) / 2  # type: ignore[index]
    size = max(np.hypot(a[2] - a[0], a[3] - a[1]), 1.0)  # type: ignore[index]
    parts = []
    if abs(dy) > 0.3 * size:
        parts.append("down" if dy > 0 else "up")
    if abs(dx) > 0.3 * size:
        parts.append("to the right" if dx > 0 else "to the left")
    if not parts:
        return "stays in place"
    return "moves " + " and ".join(parts)
