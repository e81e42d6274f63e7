"""Shape naming of a binary object mask, robust to the blur and 2x2 chroma blocks of H.264 (yuv420p) video.

Three scale- and rotation-invariant features name the shape:

* ``solidity`` = area / convex hull area (both in pixels): a star's notches keep it low even when blurred;
* ``enclosing`` = area / area of the smallest enclosing circle: 1 for a disc, 2/pi for a square, ~0.41 for a
  triangle or star inscribed in the circle;
* ``extent`` = area / area of the smallest (rotated) bounding rectangle: ~1 for a square or rectangle.

The nearest of four prototypes (measured on masks segmented from decoded synthetic clips, the middle of the
range between exact and blurred masks) wins; the confidence is the margin to the runner-up. Per-frame names
are still noisy on small objects, so the grounding tool votes over a whole track
(:func:`tools.grounding.vote_shape`).

:func:`smooth_chroma_mask` turns a colour mask with the staircase edges of subsampled chroma into a smooth
one (2x2 block mean, bilinear upsampling, threshold at one half), which makes the features above stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "star")
# (solidity, enclosing, extent) of each shape; see the module docstring.
SHAPE_PROTOTYPES: dict[str, tuple[float, float, float]] = {
    "circle": (0.96, 0.86, 0.79),
    "square": (1.00, 0.67, 0.98),
    "triangle": (0.92, 0.49, 0.58),
    "star": (0.70, 0.52, 0.52),
}
FEATURE_SCALES = (0.06, 0.06, 0.06)
MIN_SHAPE_AREA = 16
"""Masks smaller than this (pixels) get the shape "blob" with confidence 0."""
FULL_CONFIDENCE_AREA = 150
"""Below this area (pixels) the confidence is scaled down linearly (small masks are blurred the most)."""
RECTANGLE_ASPECT = 1.3


@dataclass(frozen=True)
class ShapeFeatures:
    """Features of the largest blob of a mask (see the module docstring); ``aspect`` >= 1 of its rotated box."""

    area: int
    solidity: float
    enclosing: float
    extent: float
    aspect: float

    def vector(self) -> np.ndarray:
        return np.array([self.solidity, self.enclosing, self.extent])


def shape_features(mask: np.ndarray) -> ShapeFeatures | None:
    """Features of the largest 8-connected blob of the boolean ``mask`` ``[H, W]``; None when it is empty.

    Pad the mask by a pixel or two when the object may touch its border.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    cnt = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    blob = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(blob, [cnt], -1, 1, thickness=cv2.FILLED)
    area = int((blob.astype(bool) & mask.astype(bool)).sum()) or int(blob.sum())
    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(hull, [cv2.convexHull(cnt)], 1)
    (_, _), radius = cv2.minEnclosingCircle(cnt)
    (_, _), (rw, rh), _ = cv2.minAreaRect(cnt)
    return ShapeFeatures(
        area=area,
        solidity=min(1.0, area / max(int(hull.sum()), 1)),
        enclosing=min(1.0, area / (math.pi * (radius + 0.5) ** 2)),
        extent=min(1.0, area / ((rw + 1.0) * (rh + 1.0))),
        aspect=(max(rw, rh) + 1.0) / (min(rw, rh) + 1.0),
    )


def classify_shape(features: ShapeFeatures) -> tuple[str, float]:
    """Nearest prototype's name ("square" becomes "rectangle" when elongated) and a confidence in [0, 1]."""
    if features.area < MIN_SHAPE_AREA:
        return "blob", 0.0
    scales = np.array(FEATURE_SCALES)
    dists = sorted(
        (float(np.linalg.norm((features.vector() - np.array(proto)) / scales)), name)
        for name, proto in SHAPE_PROTOTYPES.items()
    )
    (d1, name), (d2, _) = dists[0], dists[1]
    confidence = (d2 - d1) / max(d2 + d1, 1e-6)
    confidence *= min(1.0, features.area / FULL_CONFIDENCE_AREA)
    if name == "square" and features.aspect >= RECTANGLE_ASPECT:
        name = "rectangle"
    return name, float(confidence)


def shape_name(mask: np.ndarray) -> tuple[str, float]:
    """Name the shape of a binary mask (circle, square, rectangle, triangle, star; "blob" when too small or
    empty) with a confidence in [0, 1]."""
    features = shape_features(mask)
    if features is None:
        return "blob", 0.0
    return classify_shape(features)


def smooth_chroma_mask(mask: np.ndarray) -> np.ndarray:
    """``mask`` ``[H, W]`` (bool) at half resolution (2x2 block mean), upsampled bilinearly, >= 0.5.

    Undoes the staircase of chroma subsampled 2x2 (yuv420p): a block's value is the fraction of its pixels
    in the mask, and the upsampled edge runs through the middle of the mixed blocks. Exact masks lose only
    detail below two pixels.
    """
    height, width = mask.shape
    padded = np.pad(mask.astype(np.float32), ((0, height % 2), (0, width % 2)), mode="edge")
    ph, pw = padded.shape
    blocks = padded.reshape(ph // 2, 2, pw // 2, 2).mean(axis=(1, 3))  # [H, W] -> [H/2, W/2]
    up = cv2.resize(blocks, (pw, ph), interpolation=cv2.INTER_LINEAR)  # [H/2, W/2] -> [H, W]
    return up[:height, :width] >= 0.5


def label_objects(mask: np.ndarray, *, open_size: int = 3, regrow: int = 3) -> tuple[int, np.ndarray]:
    """Objects of ``mask`` ``[H, W]``: ``(n, labels)`` with labels ``0`` (none) to ``n - 1`` ``[H, W]`` int32.

    Seeds are the connected components of the mask opened by an ``open_size`` square (which cuts thin
    bridges between touching objects and drops specks); each seed then takes back the mask pixels within
    ``regrow`` pixels of it (the thin tips of small stars and triangles that the opening removed).
    """
    mask_u8 = mask.astype(np.uint8)
    opened = cv2.morphologyEx(mask_u8, cv2.MORPH_OPEN, np.ones((open_size, open_size), np.uint8))
    n, labels = cv2.connectedComponents(opened, connectivity=8)
    if n <= 1 or regrow <= 0:
        return n, labels
    if n >= 2**16:
        raise ValueError(f"too many objects to regrow ({n - 1}); the mask is noise, not objects")
    grown = labels.astype(np.uint16)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(regrow):
        spread = cv2.dilate(grown, kernel)  # the largest neighbouring label
        fill = mask.astype(bool) & (grown == 0) & (spread > 0)
        if not fill.any():
            break
        grown[fill] = spread[fill]
    return n, grown.astype(np.int32)
