"""In-memory video: :class:`ArrayVideo`, frames already decoded (``uint8 [T, H, W, 3]`` RGB) as a
:class:`~artemis_model.video.VideoSource` (tests, synthetic data, tools' segment views)."""

from __future__ import annotations

import hashlib

import numpy as np

from artemis_model.errors import VideoDecodeError
from artemis_model.video.source import VideoSource


def resize_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``[N, H, W, 3]`` frames resized to ``size=(width, height)`` (area interpolation); as they are for ``None``."""
    if size is None:
        return frames
    import cv2

    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


class ArrayVideo(VideoSource):
    """Frames already in memory (``[T, H, W, 3]`` RGB uint8) as a :class:`VideoSource`.

    Raises :class:`VideoDecodeError` (a ``ValueError``) unless ``frames`` is a non-empty uint8 ``[T, H, W, 3]``.
    """

    def __init__(self, frames: np.ndarray, fps: float = 30.0, *, name: str = "<array>") -> None:
        super().__init__()
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
            raise VideoDecodeError(
                f"frames must be a non-empty uint8 [T, H, W, 3] array, got {frames.dtype} {frames.shape}"
            )
        self._frames = frames
        self.name = name
        self.num_frames, self.height, self.width = (int(v) for v in frames.shape[:3])
        self.fps = float(fps)

    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None = None) -> np.ndarray:
        return resize_frames(self._frames[indices], size)  # [N, H, W, 3]

    def _compute_hash(self) -> str:
        digest = hashlib.sha256(f"array:{self._frames.shape}\0".encode())
        digest.update(np.ascontiguousarray(self._frames).tobytes())
        return digest.hexdigest()
