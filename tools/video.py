"""The video interface the tools need, plus in-memory and sub-clip views.

Every tool takes a :class:`VideoLike`: anything with ``num_frames``, ``fps``, ``width``, ``height`` and
``get_frames(indices) -> uint8 [N, H, W, 3] RGB``. ``artemis_model.video.open_video`` returns one; tests and
segment views use :class:`ArrayVideo` (``artemis_model.video.array``) and :class:`SubVideo`, both
``VideoSource`` s like it, so the tracker and the pipeline take any of them as they are.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from artemis_model.errors import FrameIndexError
from artemis_model.video import VideoSource, open_video
from artemis_model.video.array import ArrayVideo, resize_frames

logger = logging.getLogger(__name__)

__all__ = ["ArrayVideo", "SubVideo", "VideoLike", "as_video_source", "load_video"]


@runtime_checkable
class VideoLike(Protocol):
    """A decoded-on-demand video: frame ``i`` is ``get_frames([i])[0]``, uint8 RGB ``[H, W, 3]``."""

    @property
    def num_frames(self) -> int: ...

    @property
    def fps(self) -> float: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray: ...


class SubVideo(VideoSource):
    """Frames ``[start, end)`` of ``video`` seen as a video of their own (frame 0 = ``start``).

    A :class:`VideoSource` over any :class:`VideoLike` (decoding through it, only the frames asked for).
    """

    def __init__(self, video: VideoLike, start: int, end: int) -> None:
        if not 0 <= start < end <= video.num_frames:
            raise FrameIndexError(
                f"segment [{start}, {end}) must satisfy 0 <= start < end <= {video.num_frames}"
            )
        super().__init__()
        self.video, self.start, self.end = video, start, end
        self.name = f"{getattr(video, 'name', type(video).__name__)}[{start}:{end}]"
        self.num_frames, self.fps = end - start, float(video.fps)
        self.width, self.height = video.width, video.height

    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
        inner = [self.start + i for i in indices]
        if isinstance(self.video, VideoSource):
            return self.video.get_frames(inner, size=size)
        return resize_frames(self.video.get_frames(inner), size)

    def _compute_hash(self) -> str:
        digest = hashlib.sha256(f"sub:{self.start}:{self.end}\0".encode())
        if isinstance(self.video, VideoSource):
            digest.update(self.video.content_hash.encode())
        else:
            for i in range(self.num_frames):
                digest.update(self.get_frames([i]).tobytes())
        return digest.hexdigest()


def load_video(source: str | Path | VideoLike) -> VideoLike:
    """Open ``source`` (a path, or an already opened video) with ``artemis_model.video.open_video``."""
    if isinstance(source, VideoLike):
        return source
    return open_video(source)


def as_video_source(video: VideoLike) -> VideoSource:
    """``video`` as an ``artemis_model.video.VideoSource`` (what the tracker and pipeline accept).

    :func:`load_video`, :class:`ArrayVideo` and :class:`SubVideo` already give one; any other :class:`VideoLike`
    is seen through a whole-length :class:`SubVideo`.
    """
    if isinstance(video, VideoSource):
        return video
    return SubVideo(video, 0, video.num_frames)
