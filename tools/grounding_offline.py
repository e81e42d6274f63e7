"""Weight-free grounding: flat-colour segmentation, colour and shape naming, OpenCV people/face detectors."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from tools.query import ParsedQuery

logger = logging.getLogger(__name__)

# OpenCV hue is 0..179. Upper bounds (exclusive) of each named hue bin; red wraps around.
HUE_BINS: tuple[tuple[str, int], ...] = (
    ("red", 9),
    ("orange", 24),
    ("yellow", 45),
    ("green", 80),
    ("cyan", 104),
    ("blue", 127),
    ("purple", 155),
    ("pink", 170),
    ("red", 180),
)
CHROMATIC = tuple(dict.fromkeys(name for name, _ in HUE_BINS))


@dataclass(frozen=True)
class Detection:
    """One object on one frame."""

    frame_idx: int
    box: tuple[float, float, float, float]
    label: str
    score: float
    colour: str | None = None
    shape: str | None = None
    area_frac: float = 0.0


def hue_name(hue: float) -> str:
    """Colour name of an OpenCV hue (0..179)."""
    for name, upper in HUE_BINS:
        if hue < upper:
            return name
    return "red"


def achromatic_name(value: float) -> str:
    return "black" if value < 70 else ("white" if value > 190 else "gray")


def shape_name(mask: np.ndarray) -> tuple[str, float]:
    """Name the shape of a binary mask (circle, square, rectangle, triangle, star) with a confidence."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return "blob", 0.0
    cnt = max(contours, key=cv2.contourArea)
    area = float(cv2.contourArea(cnt))
    hull_area = float(cv2.contourArea(cv2.convexHull(cnt))) or 1.0
    (_, _), (rw, rh), _ = cv2.minAreaRect(cnt)
    rect_area = max(rw * rh, 1.0)
    perimeter = max(cv2.arcLength(cnt, True), 1.0)
    solidity = min(area / hull_area, 1.0)
    extent = min(area / rect_area, 1.0)
    circularity = 4 * math.pi * area / perimeter**2
    aspect = max(rw, rh) / max(min(rw, rh), 1.0)
    if solidity < 0.8:
        return "star", 1.0 - solidity
    if extent >= 0.91:
        return ("square" if aspect < 1.3 else "rectangle"), extent
    if extent < 0.65:
        return "triangle", 1.0 - abs(extent - 0.5)
    vertices = len(cv2.approxPolyDP(cnt, 0.04 * perimeter, True))
    if vertices <= 3:
        return "triangle", 0.6
    pixel_extent = float(mask.sum()) / ((rw + 1) * (rh + 1))
    if vertices == 4 and pixel_extent > 0.92:
        return ("square" if aspect < 1.3 else "rectangle"), 0.6
    return "circle", min(1.0, circularity)


def size_name(area_frac: float) -> str:
    """Size word for an object covering ``area_frac`` of the frame."""
    return "small" if area_frac < 0.018 else "large"


class OfflineBackend:
    """Finds flat-coloured objects (and moving grey ones), or people/faces with OpenCV's bundled models.

    Args:
        min_area_frac: smallest component kept, as a fraction of the frame area.
        max_area_frac: largest component kept (larger ones are background).
        min_saturation / min_value: HSV thresholds (0..255) of a "coloured" pixel.
        achromatic: also segment white/black/grey objects that differ from the median background.
    """

    name = "offline"

    def __init__(
        self,
        *,
        min_area_frac: float = 0.0015,
        max_area_frac: float = 0.3,
        min_saturation: int = 90,
        min_value: int = 70,
        achromatic: bool = True,
    ) -> None:
        self.min_area_frac = min_area_frac
        self.max_area_frac = max_area_frac
        self.min_saturation = min_saturation
        self.min_value = min_value
        self.achromatic = achromatic
        self._hog: cv2.HOGDescriptor | None = None
        self._face: cv2.CascadeClassifier | None = None

    def query_key(self, query: ParsedQuery) -> str | None:
        """What detection reads of ``query``: only the category (people, faces, or every coloured shape)."""
        return query.category

    def detect(
        self, frames: np.ndarray, frame_indices: list[int], query: ParsedQuery
    ) -> list[list[Detection]]:
        """Detections on each of ``frames`` (uint8 ``[N, H, W, 3]`` RGB, frame ids ``frame_indices``)."""
        if query.category == "person":
            return [self._people(f, i) for f, i in zip(frames, frame_indices, strict=True)]
        if query.category == "face":
            return [self._faces(f, i) for f, i in zip(frames, frame_indices, strict=True)]
        background = (
            np.median(frames, axis=0).astype(np.uint8) if self.achromatic and len(frames) > 2 else None
        )
        return [self._shapes(f, i, background) for f, i in zip(frames, frame_indices, strict=True)]

    def _shapes(self, frame: np.ndarray, frame_idx: int, background: np.ndarray | None) -> list[Detection]:
        height, width = frame.shape[:2]
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
        chroma = (sat >= self.min_saturation) & (val >= self.min_value)
        bins = np.searchsorted(np.array([u for _, u in HUE_BINS]), hue, side="right")
        names = np.array([n for n, _ in HUE_BINS])
        dets: list[Detection] = []
        for colour in CHROMATIC:
            mask = chroma & np.isin(bins, np.flatnonzero(names == colour))
            dets += self._components(mask, frame_idx, width, height, lambda _m, c=colour: c)
        if background is not None:
            diff = np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > 40
            mask = diff & ~chroma & (sat < self.min_saturation // 2)
            dets += self._components(
                mask, frame_idx, width, height, lambda m: achromatic_name(float(np.median(val[m])))
            )
        return dets

    def _components(self, mask, frame_idx, width, height, colour_of) -> list[Detection]:
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        frame_area = float(width * height)
        out: list[Detection] = []
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            frac = area / frame_area
            if not self.min_area_frac <= frac <= self.max_area_frac:
                continue
            comp = labels[y : y + h, x : x + w] == k
            shape, shape_conf = shape_name(np.pad(comp, 2))
            colour = colour_of(labels == k)
            out.append(
                Detection(
                    frame_idx=frame_idx,
                    box=(float(x), float(y), float(x + w), float(y + h)),
                    label=f"{colour} {shape}",
                    score=float(min(1.0, 0.5 + 0.5 * shape_conf)),
                    colour=colour,
                    shape=shape,
                    area_frac=frac,
                )
            )
        return out

    def _people(self, frame: np.ndarray, frame_idx: int) -> list[Detection]:
        if self._hog is None:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        rects, weights = self._hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
        return _rects_to_dets(rects, np.ravel(weights) if len(rects) else [], frame_idx, "person", frame)

    def _faces(self, frame: np.ndarray, frame_idx: int) -> list[Detection]:
        if self._face is None:
            self._face = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        rects = self._face.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return _rects_to_dets(rects, [1.0] * len(rects), frame_idx, "face", frame)


def _rects_to_dets(rects, weights, frame_idx: int, label: str, frame: np.ndarray) -> list[Detection]:
    area = float(frame.shape[0] * frame.shape[1])
    out = []
    for (x, y, w, h), wt in zip(rects, weights, strict=True):
        score = float(1.0 / (1.0 + math.exp(-float(wt))))
        out.append(
            Detection(
                frame_idx=frame_idx,
                box=(float(x), float(y), float(x + w), float(y + h)),
                label=label,
                score=score,
                shape=label,
                area_frac=w * h / area,
            )
        )
    return out


def name_region(frame: np.ndarray, box: tuple[float, float, float, float]) -> tuple[str | None, str | None]:
    """Colour and shape of the dominant saturated object inside ``box`` on ``frame`` (None when unsure)."""
    h, w = frame.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    crop = frame[y1:y2, x1:x2]
    if crop.size == 0:
        return None, None
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    chroma = (hsv[..., 1] >= 90) & (hsv[..., 2] >= 70)
    if chroma.sum() < 0.1 * chroma.size:
        return None, None
    names = np.array([hue_name(float(v)) for v in range(180)])[hsv[..., 0]]
    values, counts = np.unique(names[chroma], return_counts=True)
    colour = str(values[np.argmax(counts)])
    mask = chroma & (names == colour)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n < 2:
        return colour, None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    shape, _ = shape_name(np.pad(labels == biggest, 2))
    return colour, shape
