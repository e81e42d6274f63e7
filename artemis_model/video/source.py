"""Video sources: decode only the frames asked for; sample indices; content hashes.

:func:`artemis_model.video.open_video` returns a :class:`VideoSource`. Every source decodes *only the frames asked for*:
``get_frames(indices)`` sorts and de-duplicates the request, decodes it in one pass (decord's ``get_batch``
seeks when samples are far apart and decodes through when they are close), and returns the frames in the
order of the request. A long video is therefore never loaded whole, and sampling ``k`` frames costs about
``k`` seeks, not the length of the video. :func:`iter_frames` streams a long index list in chunks.

``content_hash`` identifies the content (for caches): the SHA-256 of the file's bytes; for files larger
than :data:`FULL_HASH_MAX_BYTES` it is the SHA-256 of the size, the first and last MiB and 256 evenly
spaced 64 KiB chunks (documented trade-off: an edit confined to unsampled bytes of a huge file, with the
size unchanged, would not change it). For a folder of frames it covers every file's name and bytes.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from artemis_model.errors import VideoDecodeError
from artemis_model.types import validate_frame_idx

logger = logging.getLogger(__name__)

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_FOLDER_FPS = 30.0
FULL_HASH_MAX_BYTES = 256 * 2**20
_HASH_CHUNK = 64 * 2**10
_HASH_EDGE = 2**20
_HASH_SAMPLES = 256
Decoder = Literal["pyav", "decord"]
T = TypeVar("T")


@dataclass
class DecodeStats:
    """What a source has decoded so far: decoder calls and frames handed out by the decoder."""

    decode_calls: int = 0
    frames_decoded: int = 0


class VideoSource(ABC):
    """A decodable video: metadata plus random access to frames as RGB ``uint8`` arrays."""

    name: str
    num_frames: int
    fps: float
    width: int
    height: int

    def __init__(self) -> None:
        self.stats = DecodeStats()
        self._hash: str | None = None
        self._lock = threading.Lock()
        self._owned_file: Path | None = None  # a temporary copy of bytes input, deleted on close
        self._derived: dict[Hashable, Any] = {}
        self._derived_lock = threading.Lock()

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A fact computed from the whole video (e.g. its shot cuts), computed once per opened source: the
        grounder, the describer, the agent and the segmenter share it instead of decoding the video again."""
        with self._derived_lock:
            if key not in self._derived:
                self._derived[key] = compute()
            return self._derived[key]

    @property
    def content_hash(self) -> str:
        """Hex SHA-256 of the content (computed once, lazily)."""
        if self._hash is None:
            self._hash = self._compute_hash()
        return self._hash

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def get_frames(self, indices: Sequence[int], *, size: tuple[int, int] | None = None) -> np.ndarray:
        """Frames ``indices`` (any order, duplicates allowed) as ``[N, H, W, 3]`` RGB uint8.

        Decodes each distinct frame once, in one sorted pass. ``size=(width, height)`` resizes at decode
        time (cheaper than decoding full frames and resizing). Raises :class:`FrameIndexError` for an index
        outside ``[0, num_frames)`` and :class:`VideoDecodeError` when decoding fails.
        """
        request = [validate_frame_idx(_as_int(i), self.num_frames) for i in indices]
        if size is not None:
            size = _check_size(size)
            if size == (self.width, self.height):
                size = None
        out_w, out_h = size if size is not None else (self.width, self.height)
        if not request:
            return np.zeros((0, out_h, out_w, 3), dtype=np.uint8)
        unique = sorted(set(request))
        with self._lock:
            frames = self._decode_sorted(unique, size)  # [U, H, W, 3]
            self.stats.decode_calls += 1
            self.stats.frames_decoded += len(unique)
        if unique == request:
            return frames
        position = {idx: k for k, idx in enumerate(unique)}
        return frames[[position[i] for i in request]]  # [U, H, W, 3] -> [N, H, W, 3]

    @property
    def key_frames(self) -> list[int] | None:
        """Sorted indices where decoding can start (a seek lands), or ``None`` when every frame is one."""
        return None

    def get_frame(self, frame_idx: int) -> np.ndarray:
        """One frame ``[H, W, 3]``."""
        return self.get_frames([frame_idx])[0]

    def close(self) -> None:
        """Release decoder resources and delete the temporary file written for bytes input, if any."""
        if self._owned_file is not None:
            self._owned_file.unlink(missing_ok=True)
            self._owned_file = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, frames={self.num_frames}, fps={self.fps:.3f}, "
            f"size={self.width}x{self.height})"
        )

    @abstractmethod
    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
        """Decode strictly increasing, valid ``indices`` -> ``[N, H, W, 3]`` RGB uint8, resized to
        ``size=(width, height)`` when given."""

    @abstractmethod
    def _compute_hash(self) -> str: ...


VideoInput = str | os.PathLike | bytes | bytearray | memoryview | VideoSource


class DecordVideo(VideoSource):
    """A video file or in-memory bytes decoded with decord (bundled FFmpeg, CPU)."""

    def __init__(
        self,
        source: str | os.PathLike | bytes,
        *,
        name: str | None = None,
        num_threads: int = 0,
    ) -> None:
        super().__init__()
        import decord

        self._path: Path | None = None
        self._data: bytes | None = None
        self._num_threads = num_threads
        self._resized_readers: dict[tuple[int, int], object] = {}
        if isinstance(source, bytes):
            self._data = source
            self.name = name or f"<{len(source)} bytes>"
            uri: str | io.BytesIO = io.BytesIO(source)
        else:
            self._path = Path(source)
            self.name = name or str(self._path)
            uri = str(self._path)
        try:
            self._reader = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=num_threads)
            first = self._reader.next().asnumpy()  # [H, W, 3]; metadata probe, not counted in stats
            self._reader.seek(0)
            self.num_frames = len(self._reader)
            self.fps = float(self._reader.get_avg_fps())
        except StopIteration as exc:
            raise VideoDecodeError(f"cannot decode video {self.name}: no decodable video frame") from exc
        except (RuntimeError, AssertionError, decord.DECORDError) as exc:
            raise VideoDecodeError(f"cannot decode video {self.name}: {_short(exc)}") from exc
        if self.num_frames <= 0:
            raise VideoDecodeError(f"video {self.name} has no frames")
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        self._key_frames: list[int] | None = None
        if not self.fps > 0:
            logger.warning("video %s reports fps %r; using %s", self.name, self.fps, DEFAULT_FOLDER_FPS)
            self.fps = DEFAULT_FOLDER_FPS

    @property
    def key_frames(self) -> list[int] | None:
        if self._key_frames is None:
            self._key_frames = sorted(int(i) for i in self._reader.get_key_indices())
        return self._key_frames

    def _reader_for(self, size: tuple[int, int] | None) -> object:
        if size is None:
            return self._reader
        if size not in self._resized_readers:
            import decord

            self._resized_readers[size] = decord.VideoReader(
                io.BytesIO(self._data) if self._data is not None else str(self._path),
                ctx=decord.cpu(0),
                width=size[0],
                height=size[1],
                num_threads=self._num_threads,
            )
        return self._resized_readers[size]

    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
        import decord

        try:
            frames = self._reader_for(size).get_batch(indices).asnumpy()  # [N, H, W, 3]
        except (RuntimeError, decord.DECORDError) as exc:
            raise VideoDecodeError(f"cannot decode frames of {self.name}: {_short(exc)}") from exc
        if frames.shape[0] != len(indices):
            raise VideoDecodeError(
                f"video {self.name}: got {frames.shape[0]} frames for {len(indices)} indices"
            )
        return frames

    def _compute_hash(self) -> str:
        if self._data is not None:
            return hashlib.sha256(self._data).hexdigest()
        assert self._path is not None
        return file_content_hash(self._path)

    def close(self) -> None:
        self._resized_readers.clear()
        super().close()


class FrameFolderVideo(VideoSource):
    """A folder of ``jpg``/``png`` frames, ordered by the numbers in their file names."""

    def __init__(self, folder: str | os.PathLike, *, fps: float = DEFAULT_FOLDER_FPS) -> None:
        super().__init__()
        import cv2

        self._folder = Path(folder)
        self.name = str(self._folder)
        self.files = sorted(
            (p for p in self._folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise VideoDecodeError(
                f"folder {self.name} holds no frames (expected files ending in {', '.join(FRAME_EXTENSIONS)})"
            )
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.num_frames = len(self.files)
        self.fps = float(fps)
        first = cv2.imread(str(self.files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise VideoDecodeError(f"cannot read frame image {self.files[0]}")
        self.height, self.width = int(first.shape[0]), int(first.shape[1])

    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
        import cv2

        out_w, out_h = size if size is not None else (self.width, self.height)
        out = np.empty((len(indices), out_h, out_w, 3), dtype=np.uint8)
        for k, idx in enumerate(indices):
            path = self.files[idx]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise VideoDecodeError(f"cannot read frame image {path}")
            if bgr.shape[:2] != (self.height, self.width):
                raise VideoDecodeError(
                    f"frame {path} is {bgr.shape[1]}x{bgr.shape[0]}, the folder's frames are "
                    f"{self.width}x{self.height}"
                )
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            out[k] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return out

    def _compute_hash(self) -> str:
        digest = hashlib.sha256(b"frame-folder\0")
        for path in self.files:
            digest.update(path.name.encode() + b"\0")
            digest.update(path.read_bytes())
        return digest.hexdigest()


def sample_global_indices(num_frames: int, max_frames: int = 100) -> list[int]:
    """The global frame sample of Artemis (reference §1.3): ``T = min(num_frames, max_frames)`` segment
    midpoints, ``seg = (N - 1) / T``, frame ``i = (round(seg * i) + round(seg * (i + 1))) // 2``.

    Python's ``round`` (half to even) as in the original; duplicates are possible for short videos.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
    count = min(num_frames, max_frames)
    seg = (num_frames - 1) / count
    return [(round(seg * i) + round(seg * (i + 1))) // 2 for i in range(count)]


def read_frames_union(
    video: VideoSource, global_idx: Sequence[int], roi_idx: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the global sample and the RoI frames in **one** pass over the union of their indices.

    Returns ``(global_frames [G, H, W, 3], roi_frames [R, H, W, 3])`` in the order of each request.
    """
    union = sorted(set(global_idx) | set(roi_idx))
    frames = video.get_frames(union)  # [U, H, W, 3]
    position = {idx: k for k, idx in enumerate(union)}
    return frames[[position[i] for i in global_idx]], frames[[position[i] for i in roi_idx]]


def iter_frames(
    video: VideoSource,
    indices: Sequence[int],
    *,
    size: tuple[int, int] | None = None,
    chunk_size: int = 32,
    max_chunk_bytes: int = 256 * 2**20,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_idx, frame)`` in the order of ``indices``, decoding a chunk at a time.

    Memory stays at one chunk. A strictly descending request (backward tracking) is cut at the video's key
    frames, so each group of pictures is decoded once (ascending) and handed out reversed; such a chunk
    may reach ``max_chunk_bytes``. Other requests are cut every ``chunk_size`` frames.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for chunk in _plan_chunks(video, list(indices), size, chunk_size, max_chunk_bytes):
        frames = video.get_frames(chunk, size=size)  # [C, H, W, 3]
        yield from zip(chunk, frames, strict=True)


def _plan_chunks(
    video: VideoSource, indices: list[int], size: tuple[int, int] | None, chunk_size: int, max_bytes: int
) -> Iterator[list[int]]:
    descending = len(indices) > 1 and all(a > b for a, b in zip(indices, indices[1:], strict=False))
    keys = video.key_frames if descending else None
    if not keys:
        for start in range(0, len(indices), chunk_size):
            yield indices[start : start + chunk_size]
        return
    width, height = size if size is not None else (video.width, video.height)
    max_frames = max(chunk_size, max_bytes // (width * height * 3))
    chunk: list[int] = []
    group = None
    for idx in indices:
        idx_group = bisect.bisect_right(keys, idx)
        if chunk and (idx_group != group or len(chunk) >= max_frames):
            yield chunk
            chunk = []
        chunk.append(idx)
        group = idx_group
    if chunk:
        yield chunk


def file_content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file; for files over :data:`FULL_HASH_MAX_BYTES`, of its size and sampled chunks."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        if size <= FULL_HASH_MAX_BYTES:
            for block in iter(lambda: fh.read(2**20), b""):
                digest.update(block)
            return digest.hexdigest()
        digest.update(f"sampled:{size}\0".encode())
        digest.update(fh.read(_HASH_EDGE))
        for k in range(_HASH_SAMPLES):
            fh.seek(_HASH_EDGE + (size - 2 * _HASH_EDGE - _HASH_CHUNK) * k // (_HASH_SAMPLES - 1))
            digest.update(fh.read(_HASH_CHUNK))
        fh.seek(size - _HASH_EDGE)
        digest.update(fh.read(_HASH_EDGE))
    return digest.hexdigest()


def _natural_key(name: str) -> tuple[object, ...]:
    """Sort key with digit runs compared as numbers: ``2.jpg`` < ``10.jpg``."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
        raise ValueError(f"size must be (width, height) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _as_int(value: object) -> int:
    if isinstance(value, np.integer):
        return int(value)
    return value  # type: ignore[return-value]  # validated by validate_frame_idx


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
