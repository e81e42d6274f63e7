"""The ``"offline"`` grounding backend (weight-free): flat-colour segmentation, colour and shape naming, OpenCV's
people (HOG) and face (Haar) detectors; :func:`name_region` names the object inside a box."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from artemis_model.types import Box
from tools.grounding.detection import Detection
from tools.grounding.query import ParsedQuery
from tools.grounding.shapes import label_objects, shape_name, smooth_chroma_mask

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


def hue_name(hue: float) -> str:
    """Colour name of an OpenCV hue (0..179)."""
    for name, upper in HUE_BINS:
        if hue < upper:
            return name
    return "red"


def achromatic_name(value: float) -> str:
    return "black" if value < 70 else ("white" if value > 190 else "gray")


class OfflineBackend:
    """Finds flat-coloured objects (and moving grey ones), or people/faces with OpenCV's bundled models.

    Args:
        min_area_frac: smallest component kept, as a fraction of the frame area.
        border_area_factor: a component touching the frame's border is kept from this fraction of
            ``min_area_frac``: the visible part of an object entering or leaving (at 1: the tracks of the world's
            objects started 1-3 frames late for 50 of 212, at 0.25 for 44, 2-3 late for 9 instead of 20).
        max_area_frac: largest component kept (larger ones are background).
        min_saturation / min_value: HSV thresholds (0..255) of a "coloured" pixel.
        achromatic: also segment white/black/grey objects that differ from the median background.
    """

    name = "offline"

    def __init__(
        self,
        *,
        min_area_frac: float = 0.0015,
        border_area_factor: float = 0.25,
        max_area_frac: float = 0.3,
        min_saturation: int = 90,
        min_value: int = 70,
        achromatic: bool = True,
    ) -> None:
        self.min_area_frac = min_area_frac
        self.border_area_factor = border_area_factor
        self.max_area_frac = max_area_frac
        self.min_saturation = min_saturation
        self.min_value = min_value
        self.achromatic = achromatic
        self._hog: cv2.HOGDescriptor | None = None
        self._face: cv2.CascadeClassifier | None = None

    def query_key(self, query: ParsedQuery) -> str | None:
        """What detection reads of ``query``: only the category (people, faces, or every coloured shape)."""
        return query.category

    @staticmethod
    def link_key(det: Detection) -> Hashable:
        """Detections of one track share their colour (the shape name may flicker from frame to frame)."""
        return det.colour

    def detect(
        self, frames: np.ndarray, frame_indices: list[int], query: ParsedQuery
    ) -> list[list[Detection]]:
        """Detections on each of ``frames`` (uint8 ``[N, H, W, 3]`` RGB, frame ids ``frame_indices``)."""
        if query.category == "person":
            return [self._people(f, i) for f, i in zip(frames, frame_indices, strict=True)]
        if query.category == "face":
            return [self._faces(f, i) for f, i in zip(frames, frame_indices, strict=True)]
        background = self.background(frames) if self.achromatic and len(frames) > 2 else None
        return [self._shapes(f, i, background) for f, i in zip(frames, frame_indices, strict=True)]

    def _shapes(self, frame: np.ndarray, frame_idx: int, background: np.ndarray | None) -> list[Detection]:
        height, width = frame.shape[:2]
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
        chroma = (sat >= self.min_saturation) & (val >= self.min_value)
        bins = np.searchsorted(np.array([u for _, u in HUE_BINS]), hue, side="right")
        names = np.array([n for n, _ in HUE_BINS])
        owner = np.zeros((height, width), np.int32)  # 1 + index of the detection owning each pixel, 0: none
        dets: list[Detection] = []
        for colour in CHROMATIC:
            hue_in = np.isin(bins, np.flatnonzero(names == colour))  # [H, W]
            mask = smooth_chroma_mask(chroma & hue_in)
            dets += self._components(
                mask,
                frame_idx,
                owner,
                len(dets),
                lambda _m, c=colour: c,
                edges=chroma & hue_in,
                frame=frame,
                background=background,
                foreign=chroma & ~hue_in,
            )
        if background is not None:
            diff = np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > 40
            mask = diff & ~chroma & (sat < self.min_saturation // 2) & ~self._coloured_background(background)
            # not owners: the "ghost" an object leaves in the median background touches the object
            dets += self._components(
                mask,
                frame_idx,
                owner,
                len(dets),
                lambda m: achromatic_name(float(np.median(val[m]))),
                mark_owner=False,
            )
        return [_mark_partial(d, k + 1, owner) for k, d in enumerate(dets)]

    def background(self, frames: np.ndarray, rows: int = 64, reach: int = 2) -> np.ndarray:
        """The static background ``[H, W, 3]`` uint8: per pixel, the median over the frames where no coloured
        object covers it (coloured pixels grown by ``reach``, for the blur at their edges); the plain median
        where one always does. A coloured object that rests somewhere for a while thus leaves no trace in it.
        Computed ``rows`` image rows at a time to bound the memory."""
        kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
        covered = np.stack(
            [cv2.dilate(self._chroma(f).astype(np.uint8), kernel).astype(bool) for f in frames]
        )  # [N, H, W]
        out = np.median(frames, axis=0).astype(np.uint8)  # [H, W, 3]
        for r in range(0, frames.shape[1], rows):
            block = frames[:, r : r + rows].astype(np.float32)  # [N, rows, W, 3]
            block[covered[:, r : r + rows]] = np.nan
            seen = ~covered[:, r : r + rows].all(axis=0)  # [rows, W]: uncovered on some frame
            with warnings.catch_warnings():  # all-NaN pixels (never uncovered) keep the plain median
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(block, axis=0)  # [rows, W, 3]
            out[r : r + rows][seen] = np.round(med[seen]).astype(np.uint8)
        return out

    def _chroma(self, frame: np.ndarray) -> np.ndarray:
        """``[H, W]`` bool: saturated and bright enough to be a coloured object's pixel."""
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        return (hsv[..., 1] >= self.min_saturation) & (hsv[..., 2] >= self.min_value)

    def _coloured_background(self, background: np.ndarray, reach: int = 2) -> np.ndarray:
        """Pixels (grown by ``reach``) where the median background is a saturated colour: where a coloured
        object stood still for most of the video. A grey difference there is that object's "ghost" (the
        background it uncovered once it moved), not a grey object."""
        hsv = cv2.cvtColor(background, cv2.COLOR_RGB2HSV)
        coloured = ((hsv[..., 1] >= self.min_saturation) & (hsv[..., 2] >= self.min_value)).astype(np.uint8)
        return cv2.dilate(coloured, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(bool)

    def _components(
        self,
        mask: np.ndarray,
        frame_idx: int,
        owner: np.ndarray,
        first_id: int,
        colour_of: Callable[[np.ndarray], str],
        *,
        mark_owner: bool = True,
        edges: np.ndarray | None = None,
        frame: np.ndarray | None = None,
        background: np.ndarray | None = None,
        foreign: np.ndarray | None = None,
    ) -> list[Detection]:
        """Detections of the objects of ``mask`` (see :func:`label_objects`); with ``mark_owner`` their pixels
        are marked in ``owner`` (ids from ``first_id + 1``), which flags neighbours as partial. With ``edges``
        their boxes take back their edge (:func:`_edge_box`); with ``frame`` (``[H, W, 3]``, and the video's
        ``background`` when known) they carry their centre of coverage (:func:`coverage_centre`; ``foreign``: the
        pixels of other colours)."""
        height, width = mask.shape
        _, labels = label_objects(mask)
        frame_area = float(width * height)
        out: list[Detection] = []
        for k, where in _label_slices(labels):
            comp = labels[where] == k
            area = int(comp.sum())
            frac = area / frame_area
            (y, y2), (x, x2) = (where[0].start, where[0].stop), (where[1].start, where[1].stop)
            at_border = x == 0 or y == 0 or x2 == width or y2 == height
            smallest = self.min_area_frac * (self.border_area_factor if at_border else 1.0)
            if not smallest <= frac <= self.max_area_frac:
                continue
            win = _Window.of(labels, k, (y, y2, x, x2))
            centre = None
            if frame is not None:
                centre = coverage_centre(frame, labels, k, (y, y2, x, x2), background, foreign, window=win)
            if edges is not None:
                y, y2, x, x2 = _edge_box(win, edges)
            w, h = x2 - x, y2 - y
            if mark_owner:
                owner[where][comp] = first_id + len(out) + 1
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
                    shape_score=shape_conf,
                    partial=x == 0 or y == 0 or x + w == width or y + h == height,
                    centre=centre,
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


EDGE_REACH = 3
"""How far (pixels) from an object's smoothed mask its box may reach for pixels of its colour."""


@dataclass(frozen=True)
class _Window:
    """Object ``k`` of a label image, seen through its box grown by ``reach`` (clipped to the frame)."""

    ya: int
    yb: int
    xa: int
    xb: int
    sub: np.ndarray  # [h, w] the labels in the window
    own: np.ndarray  # [h, w] bool: the object's (smoothed) mask
    near: np.ndarray  # [h, w] bool: within ``reach`` of it

    @classmethod
    def of(
        cls, labels: np.ndarray, k: int, box: tuple[int, int, int, int], reach: int = EDGE_REACH
    ) -> _Window:
        y, y2, x, x2 = box
        height, width = labels.shape
        ya, yb, xa, xb = max(0, y - reach), min(height, y2 + reach), max(0, x - reach), min(width, x2 + reach)
        sub = labels[ya:yb, xa:xb]
        own = sub == k
        kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
        return cls(ya, yb, xa, xb, sub, own, cv2.dilate(own.astype(np.uint8), kernel).astype(bool))


def _edge_box(win: _Window, edges: np.ndarray) -> tuple[int, int, int, int]:
    """``(y, y2, x, x2)`` of the object of ``win`` with its edge: the ``edges`` pixels ``[H, W]`` (its colour before
    :func:`smooth_chroma_mask`) within ``EDGE_REACH`` of its mask that no other object holds.

    The smoothing (2x2 block mean >= 0.5) that keeps shape names stable through H.264 also drops a star's
    one-pixel tips and a triangle's corners, and the box shrank with them (uncompressed world clips: stars'
    median IoU with the true box 0.77, 0.82 of the width; triangles 0.88). Shape naming keeps the smoothed mask;
    only the box takes the edge back (1.00 for every shape uncompressed; through H.264 unchanged, ~0.88)."""
    ya, xa = win.ya, win.xa
    ys, xs = np.nonzero(win.own | (win.near & edges[ya : win.yb, xa : win.xb] & (win.sub == 0)))
    return ya + int(ys.min()), ya + int(ys.max()) + 1, xa + int(xs.min()), xa + int(xs.max()) + 1


MIN_CONTRAST = 24.0
"""RGB distance (L2) between an object's colour and the background below which its coverage is not measured."""


def coverage_centre(
    frame: np.ndarray,
    labels: np.ndarray,
    k: int,
    box: tuple[int, int, int, int],
    background: np.ndarray | None = None,
    foreign: np.ndarray | None = None,
    *,
    window: _Window | None = None,
) -> tuple[float, float] | None:
    """Sub-pixel ``(x, y)`` centre of object ``k`` of ``labels`` ``[H, W]`` in ``frame`` ``[H, W, 3]``: the mean
    position of its coverage within ``reach`` pixels of its mask (``box``: its mask's ``(y, y2, x, x2)``), the
    pixels of other objects left out. ``None`` when its colour is too close to the background's.

    A pixel's coverage is its place on the line from the background's colour to the object's (the median of its
    inner pixels): ``<p - b, o - b> / |o - b|^2``, clipped to [0, 1]; the background is ``background`` ``[H, W, 3]``
    (the video's median, except where it has the object's colour: an object that stood still) or else the
    median of the pixels around the object. Why: yuv420p shares one chroma between a 2x2 block's pixels. Where
    the object's brightness is close to the background's, every mask and box edge snaps to that 2-pixel grid:
    through H.264 a box centre jumps by a pixel while the object moves half of one, and a stopped or turning
    object seems to keep moving. Coverage is linear in the pixel, so a block keeps its sum: the centre of
    coverage moves with the object (world clips through H.264: error std 0.1-0.17 px; the box centre's 0.5)."""
    win = window if window is not None else _Window.of(labels, k, box)
    ya, yb, xa, xb, sub, own = win.ya, win.yb, win.xa, win.xb, win.sub, win.own
    pixels = frame[ya:yb, xa:xb].astype(np.float32)  # [h, w, 3]
    inner = cv2.erode(own.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    colour = np.median(pixels[inner if inner.any() else own], axis=0)  # [3]
    others = (sub != 0) & ~own
    if foreign is not None:
        others |= foreign[ya:yb, xa:xb]
    objects = cv2.dilate((others | own).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ring = np.median(pixels[~objects], axis=0) if (~objects).any() else None  # [3]
    if background is not None:
        bg = background[ya:yb, xa:xb].astype(np.float32)  # [h, w, 3]
        if ring is not None:  # where the object stood still most of the video the median is the object
            bg[((bg - colour) ** 2).sum(axis=-1) < MIN_CONTRAST**2] = ring
    elif ring is not None:
        bg = np.broadcast_to(ring, pixels.shape)  # [3] -> [h, w, 3]
    else:
        return None
    d = colour - bg  # [h, w, 3]
    norm = (d * d).sum(axis=-1)  # [h, w]
    if float(norm[own].min()) < MIN_CONTRAST**2:
        return None
    measurable = norm >= MIN_CONTRAST**2  # [h, w]: the background there differs from the object's colour
    alpha = np.clip(((pixels - bg) * d).sum(axis=-1) / np.maximum(norm, 1.0), 0.0, 1.0)
    alpha[~win.near | others | ~measurable | (alpha < 0.05)] = 0.0  # others' pixels; background noise
    mass = float(alpha.sum())
    if mass <= 0.0:
        return None
    gy, gx = np.mgrid[ya:yb, xa:xb]
    # +0.5: a pixel's centre, in the box coordinates (a box [x, x2) has its centre at (x + x2) / 2)
    return float((alpha * gx).sum() / mass + 0.5), float((alpha * gy).sum() / mass + 0.5)


def _label_slices(labels: np.ndarray) -> list[tuple[int, tuple[slice, slice]]]:
    """``(label, (rows, cols))`` bounding slices of every label > 0 of ``labels`` ``[H, W]``."""
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        return []
    ks = labels[ys, xs]
    order = np.argsort(ks, kind="stable")
    ys, xs, ks = ys[order], xs[order], ks[order]
    uniq, starts = np.unique(ks, return_index=True)
    y0, y1 = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    x0, x1 = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
    return [
        (int(k), (slice(int(a), int(b) + 1), slice(int(c), int(d) + 1)))
        for k, a, b, c, d in zip(uniq, y0, y1, x0, x1, strict=True)
    ]


def _mark_partial(det: Detection, det_id: int, owner: np.ndarray, reach: int = 2) -> Detection:
    """``det`` marked partial when another detection's pixels lie within ``reach`` pixels of its own."""
    if det.partial:
        return det
    height, width = owner.shape
    x1, y1 = max(0, int(det.box[0]) - reach), max(0, int(det.box[1]) - reach)
    x2, y2 = min(width, int(det.box[2]) + reach), min(height, int(det.box[3]) + reach)
    window = owner[y1:y2, x1:x2]
    mine = (window == det_id).astype(np.uint8)
    near = cv2.dilate(mine, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(bool)
    others = near & (window != det_id) & (window != 0)
    return replace(det, partial=True) if int(others.sum()) >= 2 else det


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


def name_region(frame: np.ndarray, box: Box) -> tuple[str | None, str | None]:
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


CENTRE_FRACTION = 0.5
""":func:`region_colour` reads the middle ``CENTRE_FRACTION`` of a box's width and height (less background) ..."""
MIN_HUE_FRACTION = 0.15
"""... names a hue that covers at least this fraction of those pixels (saturated, bright) ..."""
MIN_HUE_CONTRAST = 0.05
"""... and this much more of them than of the ring around the box (the background's own colour: a yellow wall
seen through a bicycle's frame is not the bicycle's colour)."""


def _hue_fractions(hsv: np.ndarray) -> dict[str, float]:
    """Fraction of the pixels of ``hsv`` (``[..., 3]`` OpenCV HSV) that are saturated and bright, per hue name."""
    flat = hsv.reshape(-1, 3)
    if len(flat) == 0:
        return {}
    chroma = (flat[:, 1] >= 90) & (flat[:, 2] >= 70)
    names = np.array([hue_name(float(v)) for v in range(180)])[flat[:, 0][chroma]]
    values, counts = np.unique(names, return_counts=True)
    return {str(v): c / len(flat) for v, c in zip(values, counts, strict=True)}


def region_colour(frame: np.ndarray, box: Box, *, achromatic: bool = True) -> str | None:
    """The colour of the object in ``box`` on ``frame`` (uint8 RGB ``[H, W, 3]``), read from the box's centre
    region: the hue name (:func:`hue_name`) covering the most of it, when that is at least
    ``MIN_HUE_FRACTION`` of it and ``MIN_HUE_CONTRAST`` more than of the ring around the box (a quarter of the
    box's size wide); else (with ``achromatic``) white / gray / black by the median brightness of the region's
    unsaturated pixels (:func:`achromatic_name`); else None."""
    h, w = frame.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2

    def window(scale: float) -> tuple[int, int, int, int]:
        hw, hh = bw * scale / 2, bh * scale / 2
        return (
            max(0, int(cx - hw)),
            max(0, int(cy - hh)),
            min(w, int(np.ceil(cx + hw))),
            min(h, int(np.ceil(cy + hh))),
        )

    x1, y1, x2, y2 = window(CENTRE_FRACTION)
    if x2 <= x1 or y2 <= y1:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV)
    centre = hsv[y1:y2, x1:x2]
    inside = _hue_fractions(centre)
    bx1, by1, bx2, by2 = window(1.0)
    ox1, oy1, ox2, oy2 = window(1.5)
    outer = hsv[oy1:oy2, ox1:ox2]
    ring_mask = np.ones(outer.shape[:2], bool)
    ring_mask[by1 - oy1 : by2 - oy1, bx1 - ox1 : bx2 - ox1] = False
    ring = _hue_fractions(outer[ring_mask])
    scored = [(frac - ring.get(name, 0.0), frac, name) for name, frac in inside.items()]
    best = max(scored, default=None)
    if best is not None and best[1] >= MIN_HUE_FRACTION and best[0] >= MIN_HUE_CONTRAST:
        return best[2]
    if not achromatic:
        return None
    grey = centre[(centre[..., 1] < 90) | (centre[..., 2] < 70)]
    return achromatic_name(float(np.median(grey[:, 2]))) if len(grey) else None
