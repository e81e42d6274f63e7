"""``open_video``: a file path, raw bytes or a folder of frames -> a :class:`~artemis_model.video.source.VideoSource`.

The one place that picks a decoder (PyAV by default, decord on request, frame folders); the sources themselves
live in :mod:`artemis_model.video.source` (decord, folders), :mod:`artemis_model.video.pyav` and
:mod:`artemis_model.video.array`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from artemis_model.errors import VideoDecodeError
from artemis_model.video.source import (
    DEFAULT_FOLDER_FPS,
    Decoder,
    DecordVideo,
    FrameFolderVideo,
    VideoInput,
    VideoSource,
)


def open_video(
    source: VideoInput,
    *,
    tmp_dir: str | os.PathLike | None = None,
    folder_fps: float = DEFAULT_FOLDER_FPS,
    num_threads: int = 0,
    decoder: Decoder = "pyav",
) -> VideoSource:
    """Open a video from a file path, raw bytes, or a folder of frames (a ``VideoSource`` passes through).

    ``decoder`` picks the decoder of files and bytes: ``"pyav"`` (default: half decord's CPU cost per
    seek, see :mod:`artemis_model.video.pyav`) or ``"decord"`` (:class:`DecordVideo`).

    Bytes are decoded from memory, or, when ``tmp_dir`` is given, from a temporary file written there
    (deleted when the process exits). ``folder_fps`` is the frame rate given to a folder of frames.
    ``num_threads`` is decord's decoding threads (0 = automatic; PyAV picks its own).
    Raises :class:`VideoDecodeError` for a missing, empty, unreadable or corrupt input.
    """
    if isinstance(source, VideoSource):
        return source
    if decoder not in ("pyav", "decord"):
        raise ValueError(f"decoder must be 'pyav' or 'decord', got {decoder!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise VideoDecodeError("video bytes are empty")
        if tmp_dir is None:
            return _open_file_or_bytes(data, decoder, num_threads)
        return _open_bytes_via_file(data, Path(tmp_dir), decoder=decoder, num_threads=num_threads)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"video source must be a path, bytes or VideoSource, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise VideoDecodeError(f"video not found: {path}")
    if path.is_dir():
        return FrameFolderVideo(path, fps=folder_fps)
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"video file is empty: {path}")
    return _open_file_or_bytes(path, decoder, num_threads)


def _open_file_or_bytes(
    source: Path | bytes, decoder: Decoder, num_threads: int, name: str | None = None
) -> VideoSource:
    if decoder == "decord":
        return DecordVideo(source, name=name, num_threads=num_threads)
    from artemis_model.video.pyav import PyAVVideo

    return PyAVVideo(source, name=name)


def _open_bytes_via_file(data: bytes, tmp_dir: Path, *, decoder: Decoder, num_threads: int) -> VideoSource:
    import atexit
    import tempfile

    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=".video", dir=tmp_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path = Path(name)
    atexit.register(_unlink_quietly, path)
    try:
        video = _open_file_or_bytes(path, decoder, num_threads, name=f"<{len(data)} bytes>")
    except VideoDecodeError:
        path.unlink(missing_ok=True)
        raise
    video._hash = hashlib.sha256(data).hexdigest()
    video._owned_file = path
    return video


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
