"""The shared test-video helpers: synthetic clips with exact truth, and the writers (mp4, frame folders).

- :func:`make_clip` / :func:`random_scene`: flat-coloured shapes moving on a background (tool/agent tests);
- :func:`make_squares`: coloured squares moving on a noisy background (pipeline/feature tests);
- :func:`noise_frames`, :func:`textured_background`: frames of noise;
- :func:`write_mp4` (H.264 via PyAV) and :func:`write_frames` (a folder of numbered images): the only writers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

RGB = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 30),
    "purple": (140, 40, 200),
    "orange": (245, 130, 20),
    "cyan": (30, 200, 210),
}


@dataclass(frozen=True)
class Obj:
    colour: str
    shape: str
    start: tuple[float, float]
    end: tuple[float, float]
    radius: float = 12.0
    frames: tuple[int, int] | None = None  # visible [a, b), all frames when None


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    objects: list[Obj]
    boxes: list[list[tuple[float, float, float, float] | None]] = field(default_factory=list)

    def truth_box(self, obj_idx: int, frame_idx: int):
        return self.boxes[obj_idx][frame_idx]


def _points(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    if shape == "triangle":
        angles = [-90, 30, 150]
        return np.array(
            [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))) for a in angles]
        )
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else 0.42 * r
            a = math.radians(-90 + 36 * k)
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return np.array(pts)
    if shape == "square":
        return np.array([(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)])
    raise ValueError(f"unknown shape {shape!r}")


def draw(img: np.ndarray, obj: Obj, cx: float, cy: float) -> np.ndarray:
    mask = np.zeros(img.shape[:2], np.uint8)
    if obj.shape == "circle":
        cv2.circle(mask, (round(cx), round(cy)), round(obj.radius), 1, -1)
    else:
        cv2.fillPoly(mask, [np.round(_points(obj.shape, cx, cy, obj.radius)).astype(np.int32)], 1)
    img[mask.astype(bool)] = RGB[obj.colour]
    return mask


def make_clip(
    objects: list[Obj],
    *,
    num_frames: int = 16,
    size: tuple[int, int] = (160, 120),
    textured: bool = False,
    seed: int = 0,
) -> Clip:
    w, h = size
    rng = np.random.default_rng(seed)
    if textured:
        bg = np.clip(128 + rng.normal(0, 18, (h, w, 1)), 0, 255).repeat(3, axis=-1).astype(np.uint8)
        bg = cv2.GaussianBlur(bg, (3, 3), 0)
    else:
        bg = np.full((h, w, 3), 120, np.uint8)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    boxes: list[list] = [[] for _ in objects]
    for t in range(num_frames):
        img = bg.copy()
        a = t / max(num_frames - 1, 1)
        for k, obj in enumerate(objects):
            visible = obj.frames is None or obj.frames[0] <= t < obj.frames[1]
            if not visible:
                boxes[k].append(None)
                continue
            cx = obj.start[0] + a * (obj.end[0] - obj.start[0])
            cy = obj.start[1] + a * (obj.end[1] - obj.start[1])
            m = draw(img, obj, cx, cy)
            ys, xs = np.nonzero(m)
            boxes[k].append((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
        frames[t] = img
    return Clip(frames=frames, objects=objects, boxes=boxes)


def write_mp4(
    frames: np.ndarray | Sequence[np.ndarray],
    path: Path,
    fps: int = 10,
    *,
    crf: int | None = 18,
    preset: str | None = None,
    gop: int | None = None,
    container_format: str | None = None,
) -> Path:
    """H.264 yuv420p video of ``frames`` (``[T, H, W, 3]`` RGB uint8) at ``path`` with PyAV.

    ``crf``/``preset``: libx264 options (``None``: the encoder's default); ``gop``: key-frame interval;
    ``container_format``: e.g. ``"mp4"`` (``None``: from the file name).
    """
    import av

    options = {} if crf is None else {"crf": str(crf)}
    if preset is not None:
        options["preset"] = preset
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        if options:
            stream.options = options
        if gop is not None:
            stream.codec_context.gop_size = gop
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_frames(folder: Path, frames: np.ndarray | Sequence[np.ndarray], ext: str = "png") -> list[Path]:
    """``frames`` saved as ``folder/00000.<ext>``, ``00001.<ext>``... (PIL defaults); returns the paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = folder / f"{i:05d}.{ext}"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def noise_frames(n: int, width: int, height: int, seed: int) -> np.ndarray:
    """``n`` frames of uniform RGB noise ``[n, height, width, 3]`` uint8 (one draw per frame, seeded)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)])


def textured_background(seed: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A smooth random colour field plus grain, ``[height, width, 3]`` uint8 (trackers have texture to lock on)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 226, (height // 24 + 2, width // 24 + 2, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)  # [H, W, 3]
    noise = rng.normal(0, 20, (height, width, 1)).astype(np.float32)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


SQUARE_COLOURS = [(220, 30, 30), (30, 180, 40), (30, 60, 220), (235, 210, 30), (140, 40, 200), (30, 200, 210)]


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
            frames[t, y : y + side, x : x + side] = SQUARE_COLOURS[k % len(SQUARE_COLOURS)]
            boxes[k].append((float(x), float(y), float(x + side), float(y + side)))
    return SquaresClip(frames=frames, boxes=boxes)


def write_squares_mp4(clip: SquaresClip, path: Path) -> Path:
    """``clip`` as a near-lossless mp4 (12 fps, crf 10)."""
    return write_mp4(clip.frames, path, fps=12, crf=10, preset="ultrafast")


def random_scene(seed: int, *, num_objects: int = 3, num_frames: int = 16, textured: bool = False) -> Clip:
    """Non-overlapping shapes with random colours/shapes and straight-line motion."""
    rng = np.random.default_rng(seed)
    colours = list(RGB)
    shapes = ["circle", "square", "triangle", "star"]
    h = 120
    lanes = np.linspace(20, h - 20, num_objects)
    objs = []
    for k in range(num_objects):
        r = float(rng.uniform(10, 15))
        y = float(lanes[k])
        x0, x1 = float(rng.uniform(20, 60)), float(rng.uniform(100, 140))
        if rng.random() < 0.5:
            x0, x1 = x1, x0
        objs.append(
            Obj(
                colour=colours[int(rng.integers(len(colours)))],
                shape=shapes[int(rng.integers(len(shapes)))],
                start=(x0, y),
                end=(x1, y + float(rng.uniform(-4, 4))),
                radius=r,
            )
        )
    return make_clip(objs, num_frames=num_frames, textured=textured, seed=seed)
