"""The video interface the tools need, plus in-memory and sub-clip views.

Every tool takes a :class:`VideoLike`: anything with ``num_frames``, ``fps``, ``width``, ``height`` and
``get_frames(indices) -> uint8 [N, H, W, 3] RGB``. ``artemis_model.video.open_video`` returns one; tests and
segment views use :class:`ArrayVideo` and :class:`SubVideo`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from artemis_model.errors import FrameIndexError, VideoDecodeError

logger = logging.getLogger(__name__)


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


class ArrayVideo:
    """A video held in memory as ``uint8 [T, H, W, 3]`` RGB frames."""

    def __init__(self, frames: np.ndarray, fps: float = 10.0) -> None:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise VideoDecodeError(
                f"frames must be a non-empty uint8 array [T, H, W, 3], got {frames.dtype} {frames.shape}"
            )
        self._frames = frames
        self._fps = float(fps)

    @property
    def num_frames(self) -> int:
        return int(self._frames.shape[0])

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def width(self) -> int:
        return int(self._frames.shape[2])

    @property
    def height(self) -> int:
        return int(self._frames.shape[1])

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(indices, self.num_frames)
        return self._frames[idx]


class SubVideo:
    """Frames ``[start, end)`` of ``video`` seen as a video of their own (frame 0 = ``start``)."""

    def __init__(self, video: VideoLike, start: int, end: int) -> None:
        if not 0 <= start < end <= video.num_frames:
            raise FrameIndexError(
                f"segment [{start}, {end}) must satisfy 0 <= start < end <= {video.num_frames}"
            )
        self.video, self.start, self.end = video, start, end

    @property
    def num_frames(self) -> int:
        return self.end - self.start

    @property
    def fps(self) -> float:
        return self.video.fps

    @property
    def width(self) -> int:
        return self.video.width

    @property
    def height(self) -> int:
        return self.video.height

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(indices, self.num_frames)
        return self.video.get_frames([self.start + int(i) for i in idx])


def _check_indices(indices: Sequence[int], num_frames: int) -> list[int]:
    idx = [int(i) for i in indices]
    bad = [i for i in idx if not 0 <= i < num_frames]
    if bad:
        raise FrameIndexError(f"frame indices {bad} are out of range: the video has {num_frames} frames")
    return idx


def load_video(source: str | Path | VideoLike) -> VideoLike:
    """Open ``source`` (a path, or an already opened video) with ``artemis_model.video.open_video``.

    Falls back to decoding every frame with PyAV while ``artemis_model.video`` is not available.
    """
    if isinstance(source, VideoLike):
        return source
    try:
        from artemis_model.video import open_video
    except ImportError:
        logger.debug("artemis_model.video is not available; decoding %s with PyAV", source)
        return _decode_with_pyav(Path(source))
    return open_video(source)


def _decode_with_pyav(path: Path) -> ArrayVideo:
    import av

    if not path.is_file():
        raise VideoDecodeError(f"video {str(path)!r} does not exist")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 10.0)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise VideoDecodeError(f"cannot decode video {str(path)!r}: {exc}") from exc
    if not frames:
        raise VideoDecodeError(f"video {str(path)!r} has no frames")
    return ArrayVideo(np.stack(frames), fps=fps)


def as_video_source(video: VideoLike):
    """``video`` as an ``artemis_model.video.VideoSource`` (what the tracker and pipeline accept).

    Sources that already are one pass through; others (``ArrayVideo``, ``SubVideo``) are wrapped.
    """
    from artemis_model.video import VideoSource

    if isinstance(video, VideoSource):
        return video
    return _source_adapter_class()(video)


@functools.cache
def _source_adapter_class():
    import hashlib

    import cv2

    from artemis_model.video import VideoSource

    class _VideoLikeSource(VideoSource):
        def __init__(self, inner: VideoLike) -> None:
            super().__init__()
            self.inner = inner
            self.name = type(inner).__name__
            self.num_frames, self.fps = inner.num_frames, inner.fps
            self.width, self.height = inner.width, inner.height

        def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
            frames = self.inner.get_frames(indices)
            if size is None:
                return frames
            return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])

        def _compute_hash(self) -> str:
            digest = hashlib.sha256(b"video-like\0")
            for i in range(self.num_frames):
                digest.update(self.inner.get_frames([i]).tobytes())
            return digest.hexdigest()

    return _VideoLikeSource
