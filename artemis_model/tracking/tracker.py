"""Box tracking through a video with an sam2-like API.

    tracker = Tracker(backend="kcf")
    state = tracker.init_state(video)
    tracker.add_box(state, frame_idx=40, box=(x1, y1, x2, y2))
    for frame_idx, box in tracker.propagate(state):   # key frame, forward to the end, then backward
        ...                                             # box is None where the target is absent

A backend (KCF by default, see :mod:`artemis_model.tracking.backends`) follows the box frame to frame at a
reduced resolution. On every frame an appearance check (colour histogram of the box vs the prompt box) and
a shot-cut detector (thumbnail difference, and the HSV-histogram correlation of
:mod:`artemis_model.tracking.shots`) decide whether the target is still there; when it is not the
frame reports ``None`` and template-matching re-detection looks for the target on the following frames,
re-starting the backend when it comes back. Frames are streamed chunk by chunk, never loaded whole.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from artemis_model.tracking.appearance import (
    Appearance,
    describe_appearance,
    redetect,
    refine,
    scene_change,
    similarity,
    thumbnail,
)
from artemis_model.tracking.backends import BackendFactory, TrackerBackend, make_backend
from artemis_model.tracking.shots import is_cut, shot_histogram
from artemis_model.types import Box, Track, box_iou, validate_box, validate_frame_idx
from artemis_model.video import VideoInput, VideoSource, iter_frames, open_video

logger = logging.getLogger(__name__)

Direction = Literal["both", "forward", "backward"]


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings. The defaults hold on flat coloured shapes over textured backgrounds and track
    a 60 s 720p clip well within real time on two CPU cores (see ``benchmarks/bench_video.py``)."""

    max_side: int | None = 384
    """Track on frames resized (at decode time) so the longer side is at most this ... (``None``: full size)"""
    min_target_side: int = 32
    """... unless that would make the prompt box's shorter side smaller than this many pixels."""
    stride: int = 1
    """Run the tracker on every ``stride``-th frame and interpolate the boxes in between."""
    keep_similarity: float = 0.45
    """Colour similarity (Bhattacharyya, 0-1) of the tracked box to the prompt below which it is lost."""
    accept_similarity: float = 0.6
    """Colour similarity a re-detected box needs."""
    max_match_distance: float = 0.2
    """Largest normalised squared difference (0 = perfect) of a template match that refinement and
    re-detection accept."""
    cut_threshold: float = 40.0
    """Thumbnail mean absolute difference (0-255) between consecutive frames that counts as a shot cut."""
    shot_cuts: bool = True
    """Also stop at a shot cut by the test of :mod:`~artemis_model.tracking.shots` (HSV-histogram correlation
    of consecutive tracked frames below :data:`~artemis_model.tracking.shots.CUT_CORRELATION`): on real
    footage the thumbnail test misses cuts between similar-looking shots, and CSRT keeps reporting success
    across them. After a cut the target is absent until re-detection finds it by appearance."""
    refine: bool = True
    """Snap the backend's box onto the best match of the prompt template near it (fixes the lag of
    correlation trackers on rigid targets; a poor match leaves the backend's box as it is)."""
    refine_margin: float = 0.5
    """How far (in box sizes) around the backend's box the refinement searches."""
    reinit_iou: float = 0.6
    """Restart the backend on the refined box when the two overlap less than this."""
    redetect: bool = True
    """Search the whole frame for the target on frames where it was lost."""
    redetect_scales: tuple[float, ...] = (1.0,)
    """Target sizes (relative to the prompt) that re-detection tries."""
    cut_accept_similarity: float = 0.8
    """Colour similarity a re-detected box needs after a shot cut (in another shot, or when the target's shot
    comes back): stricter than ``accept_similarity``, since a plain target (a gray bollard) has look-alikes in
    other shots (0.60-0.64 on bikes.mp4) while a returning shot matches closely (0.97)."""
    cut_max_match_distance: float = 0.1
    """Largest template-match distance re-detection accepts after a shot cut (look-alikes: 0.18-0.2; the
    returning shot: 0.016)."""
    chunk_size: int = 32
    """Frames decoded per call while streaming."""

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be >= 16 or None, got {self.max_side}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if not self.redetect_scales or min(self.redetect_scales) <= 0:
            raise ValueError(f"redetect_scales must be positive numbers, got {self.redetect_scales}")


@dataclass
class TrackingState:
    """Everything one tracking session needs. Build with :meth:`Tracker.init_state`."""

    video: VideoSource
    track_size: tuple[int, int]
    """``(width, height)`` of the frames the backend sees (set from the first prompt by ``propagate``)."""
    prompts: dict[int, Box] = field(default_factory=dict)
    """Prompt boxes in pixels of the original frame, by frame index."""
    boxes: dict[int, Box | None] = field(default_factory=dict)
    """Results of :meth:`Tracker.propagate` (accumulated over calls), in pixels of the original frame."""

    @property
    def scale(self) -> tuple[float, float]:
        """Tracking-frame pixels per original pixel, ``(sx, sy)``."""
        return self.track_size[0] / self.video.width, self.track_size[1] / self.video.height

    def to_track(self) -> Track:
        """The results as a :class:`Track` over every frame (``None`` where not propagated or absent)."""
        boxes = tuple(self.boxes.get(i) for i in range(self.video.num_frames))
        return Track(boxes=boxes, width=self.video.width, height=self.video.height)


class Tracker:
    """Single-target tracker: ``init_state`` -> ``add_box`` -> ``propagate``.

    ``backend`` is a registered name (``kcf``, ``csrt``, ``mil``, or one added with
    :func:`~artemis_model.tracking.backends.register_backend`) or a factory returning a
    :class:`~artemis_model.tracking.backends.TrackerBackend`. Keyword overrides change ``config`` fields,
    e.g. ``Tracker("csrt", stride=2)``.
    """

    def __init__(
        self, backend: str | BackendFactory = "kcf", config: TrackerConfig | None = None, **overrides: object
    ) -> None:
        config = config or TrackerConfig()
        if overrides:
            names = {f.name for f in dataclasses.fields(TrackerConfig)}
            unknown = sorted(set(overrides) - names)
            if unknown:
                raise ValueError(f"unknown tracker settings {unknown}; allowed: {', '.join(sorted(names))}")
            config = dataclasses.replace(config, **overrides)
        self.config = config
        if isinstance(backend, str):
            make_backend(backend)  # fail early on an unknown name
        self.backend = backend

    def _new_backend(self) -> TrackerBackend:
        return make_backend(self.backend) if isinstance(self.backend, str) else self.backend()

    def init_state(self, video: VideoInput) -> TrackingState:
        """Open ``video`` (anything :func:`~artemis_model.video.open_video` takes) for tracking."""
        source = open_video(video)
        return TrackingState(video=source, track_size=(source.width, source.height))

    def _tracking_size(self, video: VideoSource, prompt: Box) -> tuple[int, int]:
        if self.config.max_side is None:
            return (video.width, video.height)
        scale = self.config.max_side / max(video.width, video.height)
        short_side = min(prompt[2] - prompt[0], prompt[3] - prompt[1])
        scale = min(1.0, max(scale, self.config.min_target_side / max(short_side, 1.0)))
        if scale >= 1.0:
            return (video.width, video.height)
        return (max(16, round(video.width * scale / 2) * 2), max(16, round(video.height * scale / 2) * 2))

    def add_box(self, state: TrackingState, frame_idx: int, box: Sequence[float]) -> Box:
        """Prompt the target with ``box`` (xyxy, original pixels) on ``frame_idx``; returns the clipped box.
        Several prompts are allowed: propagation restarts from each one it reaches."""
        validate_frame_idx(frame_idx, state.video.num_frames)
        clipped = validate_box(box, state.video.width, state.video.height)
        state.prompts[frame_idx] = clipped
        return clipped

    def reset_state(self, state: TrackingState) -> None:
        state.prompts.clear()
        state.boxes.clear()

    def propagate(
        self, state: TrackingState, *, direction: Direction = "both"
    ) -> Iterator[tuple[int, Box | None]]:
        """Yield ``(frame_idx, box_or_None)``: the first prompt frame, then forward to the last frame
        (restarting at each later prompt), then backward from the first prompt to frame 0.

        Boxes are xyxy pixels of the original frame, clipped to it; ``None`` marks frames where the
        target is absent (occluded, out of the shot, or lost). Results also land in ``state.boxes``.
        """
        if direction not in ("both", "forward", "backward"):
            raise ValueError(f"direction must be 'both', 'forward' or 'backward', got {direction!r}")
        if not state.prompts:
            raise ValueError("no prompt: call add_box(state, frame_idx, box) before propagate()")
        keys = sorted(state.prompts)
        n = state.video.num_frames
        first = keys[0]
        state.track_size = self._tracking_size(state.video, state.prompts[first])
        state.boxes[first] = state.prompts[first]
        yield first, state.prompts[first]
        if direction in ("both", "forward"):
            for start, end in zip(keys, [*keys[1:], n], strict=True):
                if start != first:
                    state.boxes[start] = state.prompts[start]
                    yield start, state.prompts[start]
                for idx, box in self._run(state, start, list(range(start + 1, end))):
                    state.boxes[idx] = box
                    yield idx, box
        if direction in ("both", "backward"):
            for idx, box in self._run(state, first, list(range(first - 1, -1, -1))):
                state.boxes[idx] = box
                yield idx, box

    def _run(self, state: TrackingState, start: int, frames: list[int]) -> Iterator[tuple[int, Box | None]]:
        """Track from prompt frame ``start`` over ``frames`` (consecutive, in tracking order)."""
        if not frames:
            return
        stride = self.config.stride
        tracked = frames[stride - 1 :: stride]
        if tracked[-1] != frames[-1]:
            tracked.append(frames[-1])
        prev_idx, prev_box = start, state.prompts[start]
        pending = iter(frames)
        for idx, box in self._follow(state, start, tracked):
            for mid in pending:
                if mid == idx:
                    break
                yield mid, _interpolate(prev_idx, prev_box, idx, box, mid)
            yield idx, box
            prev_idx, prev_box = idx, box

    def _follow(
        self, state: TrackingState, start: int, indices: list[int]
    ) -> Iterator[tuple[int, Box | None]]:
        """Run the backend + appearance checks on ``indices``; boxes in original pixels."""
        cfg = self.config
        sx, sy = state.scale
        prompt = state.prompts[start]
        key_box = (prompt[0] * sx, prompt[1] * sy, prompt[2] * sx, prompt[3] * sy)
        key_frame = state.video.get_frames([start], size=self._size(state))[0]  # [h, w, 3]
        refs: list[Appearance] = [describe_appearance(key_frame, key_box)]
        backend = self._new_backend()
        backend.init(key_frame, key_box)
        tracking, last_box = True, key_box
        after_cut = False  # a shot cut since the target was last seen: re-detection is stricter
        prev_thumb = thumbnail(key_frame)
        prev_hist = shot_histogram(key_frame) if cfg.shot_cuts else None
        for idx, frame in iter_frames(
            state.video, indices, size=self._size(state), chunk_size=cfg.chunk_size
        ):
            thumb = thumbnail(frame)
            cut = scene_change(prev_thumb, thumb) > cfg.cut_threshold
            prev_thumb = thumb
            if prev_hist is not None:
                hist = shot_histogram(frame)
                cut = cut or is_cut(prev_hist, hist)
                prev_hist = hist
            box: Box | None = None
            if tracking and not cut:
                box = backend.update(frame)
                if box is not None:
                    box = _clip(box, frame.shape[1], frame.shape[0])
                if cfg.refine:
                    snapped = refine(
                        refs,
                        frame,
                        box or last_box,
                        margin=cfg.refine_margin,
                        max_match_distance=cfg.max_match_distance,
                    )
                    if snapped is not None:
                        if box is None or box_iou(box, snapped) < cfg.reinit_iou:
                            backend = self._new_backend()
                            backend.init(frame, snapped)
                        box = snapped
                if box is not None and similarity(refs, frame, box) < cfg.keep_similarity:
                    box = None
            after_cut = after_cut or cut
            if box is None and cfg.redetect:
                box = redetect(
                    refs,
                    frame,
                    near=last_box,
                    scales=cfg.redetect_scales,
                    max_match_distance=cfg.cut_max_match_distance if after_cut else cfg.max_match_distance,
                    min_similarity=cfg.cut_accept_similarity if after_cut else cfg.accept_similarity,
                )
                if box is not None:
                    logger.debug("frame %d: target re-detected at %s", idx, box)
                    backend = self._new_backend()
                    backend.init(frame, box)
            if cut:
                logger.debug("frame %d: shot cut", idx)
            tracking = box is not None
            if box is not None:
                last_box = box
                after_cut = False
            yield idx, self._to_original(state, box)

    def _size(self, state: TrackingState) -> tuple[int, int] | None:
        size = state.track_size
        return None if size == (state.video.width, state.video.height) else size

    @staticmethod
    def _to_original(state: TrackingState, box: Box | None) -> Box | None:
        if box is None:
            return None
        sx, sy = state.scale
        return _clip(
            (box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy), state.video.width, state.video.height
        )


def track_box(
    video: VideoInput, box: Sequence[float], *, frame_idx: int = 0, tracker: Tracker | None = None
) -> Track:
    """Track ``box`` (xyxy pixels on ``frame_idx``) through the whole video, forward and backward."""
    tracker = tracker or Tracker()
    state = tracker.init_state(video)
    tracker.add_box(state, frame_idx, box)
    for _ in tracker.propagate(state):
        pass
    return state.to_track()


def _clip(box: Box, width: int, height: int) -> Box | None:
    x1, y1 = max(0.0, min(float(width), box[0])), max(0.0, min(float(height), box[1]))
    x2, y2 = max(0.0, min(float(width), box[2])), max(0.0, min(float(height), box[3]))
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    return (x1, y1, x2, y2)


def _interpolate(i0: int, b0: Box | None, i1: int, b1: Box | None, i: int) -> Box | None:
    if b0 is None or b1 is None:
        return None
    t = (i - i0) / (i1 - i0)
    return tuple(float(a + (b - a) * t) for a, b in zip(b0, b1, strict=True))  # type: ignore[return-value]
