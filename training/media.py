"""Media of training samples: video references, frame lists, images, global video features.

- :class:`VideoRef`: a picklable pointer to a clip (a video file or folder, or an ordered list of frame
  files) that data-loader workers hand to the main process.
- :class:`GlobalFeatureProvider`: global video features ``[T_max + P, Cv]`` for a batch of refs, from the
  project's one feature cache (:class:`artemis_model.features.FeatureCache`, recomputed from frames on a miss)
  or recomputed at every step (``recompute``, the benchmark's baseline).
- :func:`load_feature_pickle`: OPT-IN reader of the official ``clip_path`` pickles. It admits numpy arrays
  only, through a restricted ``pickle.Unpickler`` whose ``find_class`` allows nothing but numpy's array
  reconstruction; every other global is refused with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from artemis_model.errors import VideoDecodeError
from artemis_model.lru import LRUCache
from artemis_model.video import VideoSource, open_video, sample_global_indices

logger = logging.getLogger(__name__)

_NUMPY_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A feature pickle asked for something other than a numpy array."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        allowed = sorted(f"{m}.{n}" for m, n in _NUMPY_GLOBALS)
        raise UnsafePickleError(
            f"refusing to load {module}.{name} from a feature pickle: only numpy arrays are admitted "
            f"(allowed globals: {allowed})"
        )


def load_feature_pickle(path: str | Path, *, expected_rows: int | None = None) -> torch.Tensor:
    """Read one official global-feature pickle (a ``[356, Cv]`` numpy array) as a float32 tensor.

    Raises :class:`UnsafePickleError` when the file references any non-numpy global, ``ValueError`` when it
    does not hold one numeric 2-D array (with ``expected_rows`` rows when given).
    """
    path = Path(path)
    with path.open("rb") as fh:
        value = _NumpyOnlyUnpickler(fh).load()
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{path} holds a {type(value).__name__}; expected one numpy array [rows, channels]")
    if value.ndim != 2 or value.dtype.kind not in "fiu":
        raise ValueError(f"{path}: expected a numeric 2-D array, got {value.dtype} {value.shape}")
    if expected_rows is not None and value.shape[0] != expected_rows:
        raise ValueError(f"{path}: expected {expected_rows} rows (video tokens), got {value.shape[0]}")
    return torch.from_numpy(np.ascontiguousarray(value).astype(np.float32))


class FrameListVideo(VideoSource):
    """An ordered list of frame files (the VideoRef45K ``frame_path`` + ``frame_id`` layout) as a video."""

    def __init__(self, files: list[str] | tuple[str, ...], *, fps: float = 30.0) -> None:
        super().__init__()
        if not files:
            raise VideoDecodeError("frame list is empty")
        self.files = [Path(f) for f in files]
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise VideoDecodeError(f"frame files not found: {missing[:3]} ({len(missing)} missing)")
        self.name = str(self.files[0].parent)
        self.num_frames = len(self.files)
        self.fps = float(fps)
        first = _read_rgb(self.files[0])
        self.height, self.width = int(first.shape[0]), int(first.shape[1])

    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None = None) -> np.ndarray:
        frames = [_read_rgb(self.files[i], size) for i in indices]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise VideoDecodeError(f"frames of {self.name} differ in size: {sorted(shapes)}")
        return np.stack(frames)  # N x [H, W, 3] -> [N, H, W, 3]

    def _compute_hash(self) -> str:
        digest = hashlib.sha256(b"framelist\0")
        for f in self.files:
            digest.update(f.name.encode() + b"\0")
            digest.update(hashlib.sha256(f.read_bytes()).digest())
        return digest.hexdigest()


def _read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if size is not None:
                img = img.resize(size, Image.BILINEAR)
            return np.asarray(img)
    except OSError as exc:
        raise VideoDecodeError(f"cannot read frame {path}: {exc}") from exc


def load_images(paths: list[str | Path]) -> list[np.ndarray]:
    """RGB ``uint8`` arrays ``[H, W, 3]`` of image files (``VideoDecodeError`` names an unreadable one)."""
    return [_read_rgb(Path(p)) for p in paths]


@dataclass(frozen=True)
class VideoRef:
    """A clip: a video file / frame folder (``path``) or an ordered list of frame files (``frame_files``)."""

    path: str | None = None
    frame_files: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.frame_files is None):
            raise ValueError("VideoRef needs exactly one of path or frame_files")

    def open(self) -> VideoSource:
        if self.path is not None:
            return open_video(self.path)
        return FrameListVideo(list(self.frame_files or ()))


GLOBAL_MODES = ("cache", "recompute")


class GlobalFeatureProvider:
    """Global video features for the refs of a batch, on the model's device.

    ``mode="cache"``: through :class:`artemis_model.features.FeatureCache` (memory LRU + safetensors under
    ``disk_dir``); a miss decodes the clip and runs the frozen vision tower once. ``mode="recompute"``: decode
    and encode the sampled frames at every call (no cache). Opened sources are memoised (their content hash is
    computed once per clip).
    """

    def __init__(
        self,
        mode: str = "cache",
        *,
        disk_dir: str | Path | None = None,
        max_bytes: int = 2 * 2**30,
        max_open: int = 64,
    ) -> None:
        if mode not in GLOBAL_MODES:
            raise ValueError(f"global feature mode {mode!r} is unknown; allowed: {GLOBAL_MODES}")
        from artemis_model.features import FeatureCache

        self.mode = mode
        self.cache = FeatureCache(max_bytes=max_bytes, disk_dir=disk_dir) if mode == "cache" else None
        self._sources: LRUCache[VideoRef, VideoSource] = LRUCache(
            max_open, on_evict=lambda _ref, source: source.close()
        )

    def _source(self, ref: VideoRef) -> VideoSource:
        return self._sources.get_or_compute(ref, ref.open)

    @torch.no_grad()
    def features(self, model: nn.Module, processor: Any, refs: list[VideoRef]) -> torch.Tensor:
        """``[len(refs), T_max + P, Cv]`` pre-projector features."""
        out = []
        for ref in refs:
            source = self._source(ref)
            if self.cache is not None:
                out.append(self.cache.get_video_features(model, processor, source))
                continue
            idx = sample_global_indices(source.num_frames, max_frames=model.config.num_temporal_tokens)
            pixels = processor.preprocess_frames(source.get_frames(idx), purpose="global")  # [T, 3, S, S]
            out.append(model.encode_video_frames(pixels))
        return torch.stack(out)  # n x [T_max + P, Cv] -> [n, T_max + P, Cv]
