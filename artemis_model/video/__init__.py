"""Video reading: one :class:`VideoSource` type over PyAV, decord, frame folders and in-memory arrays.

- :func:`open_video` (:mod:`.open`): a path, bytes or a frame folder -> a source; a source passes through.
- :mod:`.source`: :class:`VideoSource` (decode only the frames asked for, content hash), the decord and
  frame-folder sources, frame sampling (:func:`sample_global_indices`, :func:`iter_frames`).
- :mod:`.pyav`: :class:`PyAVVideo` (the default decoder of files and bytes).
- :mod:`.array`: :class:`ArrayVideo` (frames already in memory).
"""

from __future__ import annotations

from artemis_model.video.array import ArrayVideo, resize_frames
from artemis_model.video.open import open_video
from artemis_model.video.source import (
    DEFAULT_FOLDER_FPS,
    FRAME_EXTENSIONS,
    FULL_HASH_MAX_BYTES,
    Decoder,
    DecodeStats,
    DecordVideo,
    FrameFolderVideo,
    VideoInput,
    VideoSource,
    file_content_hash,
    iter_frames,
    read_frames_union,
    sample_global_indices,
)

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "FRAME_EXTENSIONS",
    "FULL_HASH_MAX_BYTES",
    "ArrayVideo",
    "DecodeStats",
    "Decoder",
    "DecordVideo",
    "FrameFolderVideo",
    "VideoInput",
    "VideoSource",
    "file_content_hash",
    "iter_frames",
    "open_video",
    "read_frames_union",
    "resize_frames",
    "sample_global_indices",
]
