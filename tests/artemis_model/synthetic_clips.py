"""Tiny synthetic clips for the video and tracking tests (libx264 mp4 through :mod:`tests.clipgen`).

Flat-coloured shapes on a textured background; truth boxes come from the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests import clipgen
from tests.clipgen import textured_background

W, H = 320, 240
RED = (220, 40, 40)


@dataclass(frozen=True)
class Clip:
    path: Path
    truth: list[tuple[float, float, float, float] | None]  # per frame; None where the target is not visible
    ignore: frozenset[int] = frozenset()  # frames not scored (partial occlusion)


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 25, gop: int | None = None) -> Path:
    """The clips' encoding (veryfast, crf 18, mp4) through the shared writer :func:`tests.clipgen.write_mp4`."""
    return clipgen.write_mp4(frames, path, fps, crf=18, preset="veryfast", gop=gop, container_format="mp4")


def target_at(i: int, size: int = 40) -> tuple[float, float, float, float]:
    """A square moving right across the frame with a gentle vertical wave."""
    x = 20 + 3 * i
    y = 100 + 25 * np.sin(i / 9.0)
    x1, y1 = int(round(x)), int(round(y))
    return (float(x1), float(y1), float(x1 + size), float(y1 + size))


def _disc(frame: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, int, int]) -> None:
    cv2.circle(frame, (int(round(cx)), int(round(cy))), int(round(r)), colour, thickness=-1)


def distractor_frame(i: int, bg: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The target (red square, on top) crossed by a red disc moving up through its path at frame ~20."""
    frame = bg.copy()
    _disc(frame, 95, 260 - 7 * i, 22, RED)  # same colour, crosses the target's path around i = 20-30
    _disc(frame, 250 - 2 * i, 60, 14, (40, 90, 220))
    box = target_at(i)
    x1, y1, x2, y2 = (int(v) for v in box)
    frame[y1:y2, x1:x2] = RED
    return frame, box


def distractor_clip(directory: Path, n: int = 70) -> Clip:
    bg = textured_background(1)
    frames, truth = [], []
    for i in range(n):
        frame, box = distractor_frame(i, bg)
        frames.append(frame)
        truth.append(box)
    return Clip(write_mp4(directory / "distractor.mp4", frames), truth)


def cut_clip(directory: Path, n: int = 70, cut: int = 40) -> Clip:
    """Scene A (target + distractor) until ``cut``, then a different scene without the target."""
    bg_a, bg_b = textured_background(1), textured_background(7)
    frames, truth = [], []
    for i in range(n):
        if i < cut:
            frame, box = distractor_frame(i, bg_a)
            truth.append(box)
        else:
            frame = bg_b.copy()
            _disc(frame, 60 + 2 * i, 150, 25, (30, 180, 60))
            frame[40:90, 200 - i : 250 - i] = (240, 220, 40)
            truth.append(None)
        frames.append(frame)
    return Clip(write_mp4(directory / "cut.mp4", frames), truth)


def occlusion_clip(directory: Path, n: int = 80) -> Clip:
    """The target passes behind an opaque textured wall (x 150-210) and comes out the other side."""
    bg = textured_background(3)
    wall = textured_background(11)[:, 150:210]
    frames, truth, ignore = [], [], set()
    for i in range(n):
        frame = bg.copy()
        box = target_at(i)
        x1, y1, x2, y2 = (int(v) for v in box)
        frame[y1:y2, x1:x2] = RED
        frame[:, 150:210] = wall
        hidden = max(0, min(x2, 210) - max(x1, 150)) / (x2 - x1)
        if hidden >= 1.0:
            truth.append(None)
        else:
            truth.append(box)
            if hidden > 0:
                ignore.add(i)
        frames.append(frame)
    return Clip(write_mp4(directory / "occlusion.mp4", frames), truth, frozenset(ignore))
