"""Appearance checks that keep a tracker honest: is the target still in the box, was there a shot cut,
and where is the target again after it was lost.

All functions take RGB ``uint8`` frames ``[H, W, 3]`` and ``xyxy`` pixel boxes of those frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from artemis_model.types import Box, box_iou

HIST_BINS = (16, 8, 8)  # HSV
INNER = 0.7  # fraction of the box (per side) whose colour histogram describes the target
THUMB_SIZE = (32, 18)
TEMPLATE_SIDE = 24  # re-detection matches at a scale where the template's short side is this many px


@dataclass(frozen=True)
class Appearance:
    """What the target looked like on a prompt frame."""

    hist: np.ndarray  # [16*8*8] float32, sums to 1
    template: np.ndarray  # [h, w, 3] uint8 crop of the box
    width: float
    height: float
    resized: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    """Cache of the template at other sizes (re-used every frame by the coarse search)."""

    def template_at(self, width: int, height: int) -> np.ndarray:
        if (width, height) not in self.resized:
            self.resized[(width, height)] = _resize(self.template, width, height)
        return self.resized[(width, height)]


def crop(frame: np.ndarray, box: Box, fraction: float = 1.0) -> np.ndarray:
    """The pixels of ``box`` (shrunk to ``fraction`` of its size about its centre), clipped to the frame."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) * fraction / 2, (y2 - y1) * fraction / 2
    ix1, iy1 = max(0, int(round(cx - hw))), max(0, int(round(cy - hh)))
    ix2, iy2 = min(w, int(round(cx + hw))), min(h, int(round(cy + hh)))
    if ix2 <= ix1 or iy2 <= iy1:
        return frame[0:0, 0:0]
    return frame[iy1:iy2, ix1:ix2]


def colour_hist(pixels: np.ndarray) -> np.ndarray:
    """Normalised HSV histogram of an RGB patch, ``[16*8*8]``; zeros for an empty patch."""
    if pixels.size == 0:
        return np.zeros(int(np.prod(HIST_BINS)), dtype=np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def describe_appearance(frame: np.ndarray, box: Box) -> Appearance:
    return Appearance(
        hist=colour_hist(crop(frame, box, INNER)),
        template=crop(frame, box).copy(),
        width=box[2] - box[0],
        height=box[3] - box[1],
    )


def hist_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.sum(np.sqrt(a * b)))


def similarity(refs: Sequence[Appearance], frame: np.ndarray, box: Box) -> float:
    """How much the inside of ``box`` looks like the target (best over the references), in ``[0, 1]``."""
    hist = colour_hist(crop(frame, box, INNER))
    return max(hist_similarity(ref.hist, hist) for ref in refs)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A tiny float32 copy of the frame for shot-cut detection."""
    return cv2.resize(frame, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def scene_change(prev_thumb: np.ndarray, thumb: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails (0-255); large on a shot cut."""
    return float(np.mean(np.abs(prev_thumb - thumb)))


def match_template(
    refs: Sequence[Appearance],
    frame: np.ndarray,
    *,
    region: Box | None = None,
    prior: Box | None = None,
    scales: Sequence[float] = (1.0,),
) -> tuple[Box, float] | None:
    """Find the prompt template(s) in ``frame`` (within ``region`` if given, else everywhere).

    Coarse to fine: a normalised squared-difference match at a resolution where the template's short side
    is :data:`TEMPLATE_SIDE` px, then a pixel-exact match in a small window around the coarse hit. Among
    near-best coarse matches the one closest to ``prior`` wins (on a flat-coloured target the score has a
    plateau, and a same-coloured distractor makes a second valley). Returns ``(box, score)``, score 0 for
    a perfect match, or ``None`` when nothing fits.
    """
    fh, fw = frame.shape[:2]
    rx1, ry1, rx2, ry2 = (0, 0, fw, fh) if region is None else _int_box(region, fw, fh)
    best: tuple[float, Box, np.ndarray] | None = None
    for ref in refs:
        th, tw = ref.template.shape[:2]
        if th < 4 or tw < 4:
            continue
        for scale in scales:
            tpl_full = ref.template_at(max(4, round(tw * scale)), max(4, round(th * scale)))
            found = _coarse(ref, frame[ry1:ry2, rx1:rx2], tpl_full, prior, (rx1, ry1))
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], found[1], tpl_full)
    if best is None:
        return None
    _, coarse_box, tpl = best
    return _fine(frame, tpl, coarse_box)


def redetect(
    refs: Sequence[Appearance],
    frame: np.ndarray,
    *,
    near: Box | None,
    scales: Sequence[float],
    max_match_distance: float,
    min_similarity: float,
) -> Box | None:
    """Search the whole frame for the target; return its box if it is convincingly there (template score
    <= ``max_match_distance`` and colour similarity >= ``min_similarity``), else ``None``."""
    found = match_template(refs, frame, prior=near, scales=scales)
    if found is None or found[1] > max_match_distance:
        return None
    if similarity(refs, frame, found[0]) < min_similarity:
        return None
    return found[0]


def refine(
    refs: Sequence[Appearance], frame: np.ndarray, prior: Box, *, margin: float, max_match_distance: float
) -> Box | None:
    """Snap ``prior`` (a tracker's box) onto the best template match within ``margin`` box sizes of it;
    ``None`` when no match is good enough (the target changed appearance: keep the tracker's box)."""
    w, h = prior[2] - prior[0], prior[3] - prior[1]
    region = (prior[0] - margin * w, prior[1] - margin * h, prior[2] + margin * w, prior[3] + margin * h)
    found = match_template(refs, frame, region=region, prior=prior)
    if found is None or found[1] > max_match_distance:
        return None
    return found[0]


def _coarse(
    ref: Appearance,
    window: np.ndarray,
    tpl: np.ndarray,
    prior: Box | None,
    offset: tuple[int, int],
    tolerance: float = 0.05,
) -> tuple[float, Box] | None:
    th, tw = tpl.shape[:2]
    wh, ww = window.shape[:2]
    if th > wh or tw > ww:
        return None
    factor = min(1.0, TEMPLATE_SIDE / min(tw, th))  # frame -> search resolution
    small_tpl = ref.template_at(max(4, round(tw * factor)), max(4, round(th * factor)))
    small = _resize(
        window, max(small_tpl.shape[1], round(ww * factor)), max(small_tpl.shape[0], round(wh * factor))
    )
    scores = cv2.matchTemplate(small, small_tpl, cv2.TM_SQDIFF_NORMED)  # [h', w'], lower = better
    best = float(scores.min())
    if not np.isfinite(best):
        return None
    sx, sy = small.shape[1] / ww, small.shape[0] / wh
    if prior is None:
        y, x = np.unravel_index(int(np.argmin(scores)), scores.shape)
    else:
        size = max(3, min(small_tpl.shape[:2]) // 2 * 2 + 1)
        local_min = cv2.erode(scores, np.ones((size, size), np.uint8))  # min filter
        ys, xs = np.nonzero((scores <= local_min) & (scores <= best + tolerance))
        px = (prior[0] - offset[0]) * sx
        py = (prior[1] - offset[1]) * sy
        k = int(np.argmin((xs - px) ** 2 + (ys - py) ** 2))
        y, x = ys[k], xs[k]
    x1, y1 = offset[0] + x / sx, offset[1] + y / sy
    return float(scores[y, x]), (x1, y1, x1 + tw, y1 + th)


def _fine(
    frame: np.ndarray, tpl: np.ndarray, guess: Box, pad: int = 4, tolerance: float = 0.01
) -> tuple[Box, float] | None:
    """Pixel-exact match of ``tpl`` within ``pad`` px (plus the coarse step) of ``guess``; near-ties go
    to the position closest to ``guess``."""
    fh, fw = frame.shape[:2]
    th, tw = tpl.shape[:2]
    step = max(1, int(np.ceil(min(tw, th) / TEMPLATE_SIDE)))
    pad = pad + step
    x1, y1 = int(round(guess[0])) - pad, int(round(guess[1])) - pad
    wx1, wy1 = max(0, x1), max(0, y1)
    wx2, wy2 = min(fw, x1 + tw + 2 * pad), min(fh, y1 + th + 2 * pad)
    if wx2 - wx1 < tw or wy2 - wy1 < th:
        return None
    scores = cv2.matchTemplate(frame[wy1:wy2, wx1:wx2], tpl, cv2.TM_SQDIFF_NORMED)  # [h', w']
    best = float(scores.min())
    if not np.isfinite(best):
        return None
    ys, xs = np.nonzero(scores <= best + tolerance)
    k = int(np.argmin((xs + wx1 - guess[0]) ** 2 + (ys + wy1 - guess[1]) ** 2))
    y, x = ys[k], xs[k]
    bx, by = float(wx1 + x), float(wy1 + y)
    return (bx, by, bx + tw, by + th), float(scores[y, x])


def _int_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    return x1, y1, max(x1, x2), max(y1, y2)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def overlap(a: Box | None, b: Box | None) -> float:
    return box_iou(a, b) if a is not None and b is not None else 0.0
