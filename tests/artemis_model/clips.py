"""Tiny test videos written with numpy + PyAV: coloured squares moving on a textured background."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

COLOURS = [(220, 30, 30), (30, 180, 40), (30, 60, 220), (235, 210, 30), (140, 40, 200), (30, 200, 210)]


@dataclass
class SquaresClip:
    frames: np.ndarray  # [T, H, W, 3] uint8
    boxes: list[list[tuple[float, float, float, float]]]  # [target][frame] xyxy pixels


def make_squares(
    num_frames: int = 24,
    width: int = 64,
    height: int = 48,
    num_targets: int = 4,
    side: int = 12,
    seed: int = 0,
) -> SquaresClip:
    """``num_targets`` squares moving on straight lines (always fully visible), with exact boxes."""
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 120, size=(height, width, 3), dtype=np.uint8)
    starts = rng.uniform([0, 0], [width - side, height - side], size=(num_targets, 2))
    ends = rng.uniform([0, 0], [width - side, height - side], size=(num_targets, 2))
    frames = np.repeat(base[None], num_frames, axis=0)
    boxes: list[list[tuple[float, float, float, float]]] = [[] for _ in range(num_targets)]
    for t in range(num_frames):
        a = t / max(1, num_frames - 1)
        for k in range(num_targets):
            x, y = np.round(starts[k] * (1 - a) + ends[k] * a).astype(int)
            frames[t, y : y + side, x : x + side] = COLOURS[k % len(COLOURS)]
            boxes[k].append((float(x), float(y), float(x + side), float(y + side)))
    return SquaresClip(frames=frames, boxes=boxes)


def write_mp4(frames: np.ndarray, path: Path, fps: int = 12) -> Path:
    """H.264 mp4 (near-lossless) of ``frames`` ``[T, H, W, 3]`` with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
