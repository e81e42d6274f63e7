"""Writing clips as H.264 mp4 (PyAV, fixed settings) and frame folders; reading an mp4 back."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from synth.world import Clip

logger = logging.getLogger(__name__)

# Fixed encoder settings: near-lossless so palette colours survive; single thread and no macroblock-tree rate
# control for determinism (with mbtree, x264 encoded one clip into different frames run to run, one time in
# four: the same seed gave different videos and agent answers; without it, the same PSNR, ~1.4x the bytes).
MP4_OPTIONS: dict[str, str] = {
    "crf": "12",
    "preset": "medium",
    "tune": "animation",
    "threads": "1",
    "x264-params": "mbtree=0",
}
FRAME_EXTS: tuple[str, ...] = ("png", "jpg")


def frame_name(frame_idx: int, ext: str = "png") -> str:
    """File name of frame ``frame_idx`` in a frame folder (``00000.png``...)."""
    return f"{frame_idx:05d}.{ext}"


def write_mp4(clip: Clip | np.ndarray, path: str | Path, fps: int | None = None) -> Path:
    """Encode frames (a Clip or [T, H, W, 3] uint8 RGB) as H.264 yuv420p at ``fps`` (default clip.fps)."""
    frames = clip.frames if isinstance(clip, Clip) else np.asarray(clip)
    rate = fps if fps is not None else (clip.fps if isinstance(clip, Clip) else 10)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"yuv420p needs even height and width, got {frames.shape[1]}x{frames.shape[2]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import av  # PyAV only where MP4s are written/read: generating clips in memory needs no codec

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(int(rate), 1))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = dict(MP4_OPTIONS)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    logger.debug("wrote %s (%d frames)", path, len(frames))
    return path


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file to [T, H, W, 3] uint8 RGB."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path} contains no video frames")
    return np.stack(frames)  # T x [H, W, 3] -> [T, H, W, 3]


def write_frames(clip: Clip | np.ndarray, directory: str | Path, ext: str = "png") -> list[str]:
    """Write each frame as ``00000.<ext>`` in ``directory``; return the file names in order."""
    if ext not in FRAME_EXTS:
        raise ValueError(f"unknown frame format {ext!r}; allowed: {FRAME_EXTS}")
    frames = clip.frames if isinstance(clip, Clip) else np.asarray(clip)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for t, frame in enumerate(frames):
        name = frame_name(t, ext)
        img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
        if ext == "jpg":
            img.save(directory / name, quality=95, subsampling=0)
        else:
            img.save(directory / name)
        names.append(name)
    return names
