"""Annotated evidence frames: target boxes drawn on key frames, written as JPEG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tools.schemas import Target
from tools.video import VideoLike

_COLOURS_BGR = [(0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0), (0, 128, 255), (255, 255, 255)]


def annotate_frames(
    video: VideoLike, targets: Sequence[Target], out_dir: str | Path, *, frames: Sequence[int] | None = None
) -> list[Path]:
    """Draw each target's box and ``#id label`` on ``frames`` (default: every target's key frames).

    Writes ``frame_{idx:05d}.jpg`` files into ``out_dir`` and returns their paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    idxs = sorted(set(frames) if frames is not None else {f for t in targets for f in t.key_frames(3)})
    paths = []
    for f, rgb in zip(idxs, video.get_frames(idxs), strict=True):
        img = np.ascontiguousarray(rgb[..., ::-1])  # RGB -> BGR for OpenCV
        for t in targets:
            box = t.box_at(f)
            if box is None:
                continue
            colour = _COLOURS_BGR[t.id % len(_COLOURS_BGR)]
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(
                img, f"#{t.id} {t.label}", (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_PLAIN, 0.7, colour, 1
            )
        path = out / f"frame_{f:05d}.jpg"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths
