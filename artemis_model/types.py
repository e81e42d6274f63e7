"""Plain data types shared by the model, the pipeline, the tools and the agent.

Conventions: boxes are ``xyxy`` in **pixels of the original frame** unless a name says ``_norm``;
frames are addressed by ``frame_idx`` (0-based, in the decoded video).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from artemis_model.errors import FrameIndexError, InvalidBoxError

Box = tuple[float, float, float, float]


def validate_box(box: Sequence[float], width: int, height: int, *, clip: bool = True) -> Box:
    """Check a pixel ``xyxy`` box against a ``width`` x ``height`` frame and return it clipped.

    Raises :class:`InvalidBoxError` when the box has not 4 finite numbers, is inverted, has zero area,
    or lies entirely outside the frame. A box partly outside the frame is clipped (``clip=True``) or returned
    as it is (``clip=False``: the original's behaviour, see ``ArtemisProcessor.clip_boxes``).
    """
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError) as exc:
        raise InvalidBoxError(f"box {box!r} must be 4 numbers x1,y1,x2,y2") from exc
    if len(values) != 4:
        raise InvalidBoxError(f"box {box!r} must have 4 numbers x1,y1,x2,y2, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise InvalidBoxError(f"box {box!r} contains NaN or infinity")
    x1, y1, x2, y2 = values
    if x2 < x1 or y2 < y1:
        raise InvalidBoxError(f"box {box!r} is inverted: need x1 <= x2 and y1 <= y2")
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise InvalidBoxError(f"box {box!r} has zero area")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise InvalidBoxError(f"box {box!r} lies outside the {width}x{height} frame")
    if not clip:
        return (x1, y1, x2, y2)
    cx1, cy1 = max(0.0, x1), max(0.0, y1)
    cx2, cy2 = min(float(width), x2), min(float(height), y2)
    return (cx1, cy1, cx2, cy2)


def validate_frame_idx(frame_idx: int, num_frames: int) -> int:
    """Return ``frame_idx`` if it is within ``[0, num_frames)``; raise :class:`FrameIndexError` otherwise."""
    if isinstance(frame_idx, bool) or not isinstance(frame_idx, int):
        raise FrameIndexError(f"frame index {frame_idx!r} must be an integer in [0, {num_frames})")
    if not 0 <= frame_idx < num_frames:
        raise FrameIndexError(f"frame index {frame_idx} is out of range: the video has {num_frames} frames")
    return frame_idx


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``xyxy`` boxes (0.0 when either is empty)."""
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True)
class Track:
    """Per-frame boxes of one target. ``boxes[i]`` is the box on frame ``i`` or ``None`` when absent."""

    boxes: tuple[Box | None, ...]
    width: int
    height: int

    @property
    def num_frames(self) -> int:
        return len(self.boxes)

    @property
    def visible_frames(self) -> list[int]:
        return [i for i, b in enumerate(self.boxes) if b is not None]

    @property
    def span(self) -> tuple[int, int] | None:
        """First and last frame where the target is visible, or ``None``."""
        vis = self.visible_frames
        return (vis[0], vis[-1]) if vis else None

    def to_track_list(self) -> list[list[float]]:
        """The data sets' ``track_list`` format: ``[x1, y1, x2, y2]`` or ``[]`` per frame."""
        return [list(b) if b is not None else [] for b in self.boxes]

    @classmethod
    def from_track_list(
        cls, track_list: Sequence[Sequence[float]], width: int, height: int, *, clip: bool = True
    ) -> Track:
        """A track from the data sets' ``track_list`` (boxes validated; clipped to the frame with ``clip``)."""
        boxes: list[Box | None] = []
        for entry in track_list:
            boxes.append(validate_box(entry, width, height, clip=clip) if len(entry) else None)
        return cls(boxes=tuple(boxes), width=width, height=height)


CacheImplementation = Literal["dynamic", "static"]
CACHE_IMPLEMENTATIONS: tuple[str, ...] = ("dynamic", "static")


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding settings. Greedy and deterministic by default.

    ``cache``: the KV cache of generation -- ``"dynamic"`` (grows by one position per token; transformers'
    default) or ``"static"`` (transformers' ``StaticCache``, preallocated to prompt + ``max_new_tokens`` rounded
    up to 64 positions: fixed shapes, what ``torch.compile`` and CUDA graphs need; kept between calls by the
    :class:`artemis_model.generation.StaticCachePool` a pipeline owns). ``compile``: ``torch.compile`` the decoding step
    (transformers' ``CompileConfig``: ``mode="reduce-overhead"``, i.e. CUDA graphs, on a GPU); needs
    ``cache="static"``. Greedy tokens do not depend on either (up to floating-point ties; see
    ``tests/artemis_model/test_fast_generation.py``). :func:`artemis_model.generation.generate_prepared` applies
    them to both strategies (batched and prefix sharing).
    """

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 0.2
    top_p: float | None = None
    top_k: int | None = None
    """With ``do_sample``: keep the ``top_k`` most likely tokens (``None``: no top-k filter of ours)."""
    seed: int | None = None
    use_cache: bool = True
    cache: CacheImplementation = "dynamic"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.cache not in CACHE_IMPLEMENTATIONS:
            raise ValueError(
                f"cache={self.cache!r} is unknown; allowed: {', '.join(map(repr, CACHE_IMPLEMENTATIONS))}"
            )
        if self.cache == "static" and not self.use_cache:
            raise ValueError("cache='static' needs use_cache=True (use_cache=False keeps no KV cache at all)")
        if self.compile and self.cache != "static":
            raise ValueError(
                f"compile=True needs cache='static' (got cache={self.cache!r}): torch.compile of the decoding "
                "step needs the fixed shapes of a static KV cache"
            )


@dataclass(frozen=True)
class Description:
    """What ``describe()`` returns: the answer plus what it was grounded on."""

    answer: str
    question: str
    frame_idx: int
    box: Box
    track: Track
    selected_frames: tuple[int, ...]
    """Frame indices of the region tokens fed to the LLM: key frame first, then the K-means picks."""
    timings: dict[str, float] = field(default_factory=dict)
    hit_token_limit: bool = False
    """The answer reached ``max_new_tokens`` before ``</s>``: it may be cut short."""
