"""Shot cuts of a video: consecutive frames whose HSV colour histograms barely correlate.

Each frame is decoded at :data:`SHOT_SIZE` (tiny: the cut test reads colour statistics, not detail), its
HSV histogram (:data:`SHOT_BINS`) is compared with the previous frame's by correlation
(``cv2.compareHist(..., cv2.HISTCMP_CORREL)``: 1 identical, about 0 unrelated). A frame whose correlation
with its predecessor is below :data:`CUT_CORRELATION` starts a new shot. Measured on ``bikes.mp4`` (a street
montage): inside a shot consecutive frames correlate >= 0.8 even under fast camera pans; at each of its cuts
the correlation falls below 0.6 (``/work/shared/spec/offline_detector.md``). Cost: one decode at 64x36 plus a
histogram per frame (about 1 ms per frame on one core).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from artemis_model.video import VideoInput, VideoSource, iter_frames, open_video

logger = logging.getLogger(__name__)

CUT_CORRELATION = 0.7
"""HSV-histogram correlation between consecutive frames below which the second frame starts a new shot."""
SHOT_SIZE = (64, 36)
"""``(width, height)`` frames are decoded at for the cut test."""
SHOT_BINS = (16, 4, 4)
"""HSV histogram bins (hue, saturation, value) of the cut test."""
MIN_SHOT_FRAMES = 2
"""A cut within this many frames of the previous one is ignored (a flash or a one-frame glitch)."""


def frame_histogram(frame: np.ndarray) -> np.ndarray:
    """The normalised HSV histogram (:data:`SHOT_BINS`) of an RGB ``uint8`` frame ``[H, W, 3]``."""
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    hsv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(SHOT_BINS), [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).ravel()


def shot_histogram(frame: np.ndarray) -> np.ndarray:
    """:func:`frame_histogram` of ``frame`` shrunk to :data:`SHOT_SIZE` (what the cut test compares)."""
    if frame.ndim == 3 and (frame.shape[1], frame.shape[0]) != SHOT_SIZE:
        frame = cv2.resize(frame, SHOT_SIZE, interpolation=cv2.INTER_AREA)
    return frame_histogram(frame)


def is_cut(prev_hist: np.ndarray, hist: np.ndarray, threshold: float = CUT_CORRELATION) -> bool:
    """Whether two frames' histograms (:func:`shot_histogram`) correlate below ``threshold``: a shot cut."""
    return float(cv2.compareHist(prev_hist, hist, cv2.HISTCMP_CORREL)) < threshold


def histogram_correlations(video: VideoInput, *, chunk_size: int = 64) -> np.ndarray:
    """``[num_frames - 1]``: correlation of each frame's HSV histogram with the previous frame's."""
    source = video if isinstance(video, VideoSource) else open_video(video)
    n = source.num_frames
    size = SHOT_SIZE if (source.width, source.height) != SHOT_SIZE else None
    out = np.ones(max(0, n - 1), dtype=np.float32)
    prev: np.ndarray | None = None
    for idx, frame in iter_frames(source, list(range(n)), size=size, chunk_size=chunk_size):
        hist = frame_histogram(frame)
        if prev is not None:
            out[idx - 1] = cv2.compareHist(prev, hist, cv2.HISTCMP_CORREL)
        prev = hist
    return out


def detect_cuts(video: VideoInput, *, threshold: float = CUT_CORRELATION) -> list[int]:
    """Frame indices that start a new shot (never 0), ascending: frames whose HSV-histogram correlation with
    the previous frame is below ``threshold`` (:data:`CUT_CORRELATION`)."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a correlation in [-1, 1], got {threshold}")
    source = video if isinstance(video, VideoSource) else open_video(video)
    # Computed once per opened video: grounding, describing, the agent and segmenting all ask for the cuts.
    return list(source.derived(("shot_cuts", threshold), lambda: _detect_cuts(source, threshold)))


def _detect_cuts(source: VideoSource, threshold: float) -> list[int]:
    corr = histogram_correlations(source)
    cuts: list[int] = []
    for i in np.flatnonzero(corr < threshold):
        frame = int(i) + 1
        if cuts and frame - cuts[-1] < MIN_SHOT_FRAMES:
            continue
        cuts.append(frame)
    logger.debug("detect_cuts: %d cuts %s", len(cuts), cuts)
    return cuts


def shots_from_cuts(cuts: list[int], num_frames: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` (``end`` exclusive) of the shots that ``cuts`` split ``num_frames`` frames into."""
    if any(not 0 < c < num_frames for c in cuts):
        raise ValueError(f"cuts must lie in 1..{num_frames - 1}, got {cuts}")
    edges = [0, *sorted(set(cuts)), num_frames]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def shots(video: VideoInput, *, threshold: float = CUT_CORRELATION) -> list[tuple[int, int]]:
    """``[(start, end)]`` frame ranges (``end`` exclusive) of the shots of ``video``, covering every frame."""
    source = video if isinstance(video, VideoSource) else open_video(video)
    return shots_from_cuts(detect_cuts(source, threshold=threshold), source.num_frames)


def shot_of(shot_list: list[tuple[int, int]], frame_idx: int) -> tuple[int, int]:
    """The ``(start, end)`` of the shot holding ``frame_idx``."""
    for start, end in shot_list:
        if start <= frame_idx < end:
            return start, end
    raise ValueError(f"frame {frame_idx} lies in no shot of {shot_list}")
