"""``track(video, box, *, frame_idx=0) -> Track``: follow a boxed target over the whole video;
``user_target``: the user's box as a described target."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from artemis_model.types import Box, Track, validate_box, validate_frame_idx
from tools.grounding_offline import name_region
from tools.schemas import Target
from tools.video import VideoLike, load_video

logger = logging.getLogger(__name__)


def track(video: VideoLike | str | Path, box: Box, *, frame_idx: int = 0) -> Track:
    """Boxes of the target boxed by ``box`` (pixels, on frame ``frame_idx``) on every frame.

    Uses ``artemis_model.tracking.track_box``; while that module is absent, an OpenCV KCF tracker run
    forwards and backwards from ``frame_idx``.
    """
    video = load_video(video)
    box = validate_box(box, video.width, video.height)
    validate_frame_idx(frame_idx, video.num_frames)
    try:
        from artemis_model.tracking import track_box
    except ImportError:
        logger.debug("artemis_model.tracking is not available; using the KCF fallback")
        return _kcf_track(video, box, frame_idx)
    from tools.video import as_video_source

    return track_box(as_video_source(video), box, frame_idx=frame_idx)


def user_target(video: VideoLike | str | Path, box: Box, *, frame_idx: int = 0, target_id: int = 0) -> Target:
    """The user's ``box`` (pixels on frame ``frame_idx``) as a target: tracked over the video for the other
    frames, while the box itself, unchanged, on its frame, is the key box (:meth:`Target.key_box`) that the
    describer receives. Named by the colour and shape inside the box."""
    video = load_video(video)
    box = validate_box(box, video.width, video.height)
    trk = track(video, box, frame_idx=frame_idx)
    boxes = list(trk.boxes)
    boxes[frame_idx] = box  # the tracker may refine the first box; the user's reference stays as drawn
    colour, shape = name_region(video.get_frames([frame_idx])[0], box)
    return Target(
        id=target_id,
        label=" ".join(w for w in (colour, shape) if w) or "boxed object",
        colour=colour,
        shape=shape,
        boxes=boxes,
        width=video.width,
        height=video.height,
        score=1.0,
        source="user_box",
        key_frame=frame_idx,
    )


def _kcf_track(video: VideoLike, box: Box, frame_idx: int) -> Track:
    boxes: list[Box | None] = [None] * video.num_frames
    boxes[frame_idx] = box
    frames = video.get_frames(range(video.num_frames))
    for order in (range(frame_idx + 1, video.num_frames), range(frame_idx - 1, -1, -1)):
        tracker = cv2.TrackerKCF_create()
        x1, y1, x2, y2 = box
        tracker.init(_bgr(frames[frame_idx]), (int(x1), int(y1), max(1, int(x2 - x1)), max(1, int(y2 - y1))))
        for i in order:
            ok, (x, y, w, h) = tracker.update(_bgr(frames[i]))
            if not ok:
                break
            boxes[i] = (float(x), float(y), float(x + w), float(y + h))
    return Track(boxes=tuple(boxes), width=video.width, height=video.height)


def _bgr(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame[..., ::-1])
