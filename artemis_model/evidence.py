"""Evidence of a description: the tracked boxes and the frames fed to the model, as images people can check.

:func:`save_evidence` writes, for each target, one annotated JPEG per frame it was grounded on (the key frame
then the K-means picks of :attr:`Description.selected_frames`; for a bare :class:`Track`, a few evenly spaced
visible frames; a frame where the target has no box is skipped), and, unless ``gif=False``, one GIF of the whole
video (subsampled) with every target's track drawn, the frames fed to the model marked. Boxes are drawn with
OpenCV, the GIF is written with PIL. Used by ``artemis describe --save-evidence``; the agent and the service draw
their evidence frames with :mod:`tools.annotate`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from artemis_model.types import Box, Description, Track
from artemis_model.video import VideoInput, open_video

logger = logging.getLogger(__name__)

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]
"""RGB colours of targets 0, 1, 2, ... (cycled)."""


def draw_box(
    frame: np.ndarray, box: Box, label: str, colour: tuple[int, int, int], *, thickness: int = 2
) -> np.ndarray:
    """Draw ``box`` (xyxy pixels) and ``label`` on a copy of the RGB ``frame`` ``[H, W, 3]``."""
    out = np.ascontiguousarray(frame).copy()
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
    scale = max(0.35, min(out.shape[:2]) / 600)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(out.shape[0] - 1, y2 + th + 3)
    cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + base - 1), colour, -1)
    cv2.putText(
        out, label, (x1 + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
    return out


def _frames_of(item: Description | Track, max_frames: int) -> list[tuple[int, str]]:
    """(frame_idx, tag) pairs to render for one target."""
    if isinstance(item, Description):
        pairs = [(item.frame_idx, "key")]
        pairs += [(f, f"pick {k}") for k, f in enumerate(item.selected_frames[1:], start=1)]
        unique: dict[int, str] = {}
        for f, tag in pairs:
            unique.setdefault(f, tag)
        return list(unique.items())
    visible = item.visible_frames
    if not visible:
        return []
    picks = np.linspace(0, len(visible) - 1, num=min(max_frames, len(visible))).round().astype(int)
    return [(visible[int(p)], "track") for p in sorted(set(picks.tolist()))]


def save_evidence(
    video: VideoInput,
    items: Description | Track | Sequence[Description | Track],
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    gif: bool = True,
    max_gif_frames: int = 48,
    gif_max_width: int = 480,
    track_frames: int = 5,
    jpeg_quality: int = 90,
) -> list[Path]:
    """Write annotated JPEGs ``{label}_frame{idx:06d}.jpg`` (per target: key + selected frames of a
    :class:`Description`, ``track_frames`` evenly spaced visible frames of a :class:`Track`) and, with ``gif``, an
    ``evidence.gif`` of at most ``max_gif_frames`` frames; return their paths.

    ``labels``: one short name per target (default ``"T0"``, ``"T1"``, ...). All frames are decoded in one pass.
    Raises ``ValueError`` when the labels do not match the targets or a track's length is not the video's.
    """
    source = open_video(video)
    targets = [items] if isinstance(items, (Description, Track)) else list(items)
    if labels is None:
        labels = [f"T{k}" for k in range(len(targets))]
    if len(labels) != len(targets):
        raise ValueError(f"{len(labels)} labels for {len(targets)} targets")
    tracks = [t.track if isinstance(t, Description) else t for t in targets]
    for trk in tracks:
        if trk.num_frames != source.num_frames:
            raise ValueError(f"a track has {trk.num_frames} frames; the video has {source.num_frames}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plans = [_frames_of(t, track_frames) for t in targets]
    gif_idx = _gif_indices(source.num_frames, max_gif_frames) if gif else []
    wanted = sorted({f for plan in plans for f, _ in plan} | set(gif_idx))
    frames = dict(zip(wanted, source.get_frames(wanted), strict=True)) if wanted else {}

    paths: list[Path] = []
    for k, (item, plan) in enumerate(zip(targets, plans, strict=True)):
        colour = PALETTE[k % len(PALETTE)]
        for f, tag in plan:
            box = _box_on(item, tracks[k], f)
            if box is None:
                continue
            image = draw_box(frames[f], box, f"{labels[k]} {tag} #{f}", colour)
            path = out / f"{labels[k]}_frame{f:06d}.jpg"
            cv2.imwrite(
                str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
            )
            paths.append(path)
    if gif_idx:
        paths.append(
            _write_gif(
                out / "evidence.gif", frames, gif_idx, targets, tracks, labels, source.fps, gif_max_width
            )
        )
    logger.info("wrote %d evidence files to %s", len(paths), out)
    return paths


def _box_on(item: Description | Track, track: Track, frame_idx: int) -> Box | None:
    if isinstance(item, Description) and frame_idx == item.frame_idx:
        return item.box
    return track.boxes[frame_idx]


def _gif_indices(num_frames: int, max_frames: int) -> list[int]:
    if max_frames < 1:
        raise ValueError(f"max_gif_frames must be >= 1, got {max_frames}")
    step = max(1, -(-num_frames // max_frames))
    return list(range(0, num_frames, step))


def _write_gif(
    path: Path,
    frames: dict[int, np.ndarray],
    indices: list[int],
    targets: list[Description | Track],
    tracks: list[Track],
    labels: Sequence[str],
    fps: float,
    max_width: int,
) -> Path:
    images = []
    for f in indices:
        image = frames[f]
        for k, item in enumerate(targets):
            box = _box_on(item, tracks[k], f)
            if box is None:
                continue
            chosen = isinstance(item, Description) and f in item.selected_frames
            image = draw_box(
                image,
                box,
                labels[k] + (" *" if chosen else ""),
                PALETTE[k % len(PALETTE)],
                thickness=3 if chosen else 2,
            )
        height, width = image.shape[:2]
        if width > max_width:
            image = cv2.resize(
                image, (max_width, round(height * max_width / width)), interpolation=cv2.INTER_AREA
            )
        images.append(Image.fromarray(image))
    step = indices[1] - indices[0] if len(indices) > 1 else 1
    duration_ms = max(40, round(1000 * step / fps)) if fps > 0 else 100
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path
