"""Tracks on real footage, shot by shot: detections every few frames, a single-object tracker in between.

Used by :func:`tools.grounding.ground` for backends that set ``track_mode = "shots"`` (the ``"coco"`` backend);
the others keep the sampled-frame linking of :mod:`tools.grounding.linking`. The algorithm:

1. **Shots**: :func:`artemis_model.tracking.shots.shots` (HSV-histogram correlation of consecutive frames below
   :data:`~artemis_model.tracking.shots.CUT_CORRELATION` starts a shot). Nothing below crosses a cut.
2. **Detection** on every :func:`detection_step`-th frame of each shot (and its last frame), on frames decoded at
   the backend's ``work_size``. A detection at the start score (:data:`START_SCORE`) may start a track; one down to
   :data:`KEEP_SCORE` only continues one.
3. **Linking** from one detection frame to the next: each live track's single-object tracker (KCF,
   :mod:`artemis_model.tracking.backends`) follows its box over the frames in between; its box on the detection
   frame is matched to that frame's detections (same link key, i.e. class; IoU >= :data:`LINK_IOU`; colour
   similarity >= :data:`LINK_SIMILARITY`) by the Hungarian algorithm on ``1 - IoU`` (the better of the tracker's
   box and the last detection moved on at its velocity). A matched track's tracker boxes are corrected linearly
   so that they end on the detection, and the tracker restarts there. A track missing its detections for more
   than :data:`MAX_MISS_FRAMES` frames (occluded, left, lost) ends; of its tracker boxes after its last detection
   only :data:`EXTEND_FRAMES` that still look alike are kept; a new track is extended backward as far. Tracks
   below the start score on the whole are dropped (:func:`confirmed`).
4. **Re-acquisition** inside a shot: two tracks of one shot with the same key, one ending before the other
   starts, whose colour appearance (mean HSV histogram over their detections, Bhattacharyya coefficient) is at
   least :data:`REACQUIRE_SIMILARITY` alike, are one object: the later keeps the earlier's id (frames in
   between, where it was hidden, have no box). The rule is symmetric in time, so the same id comes back
   whether the video is read forward or backward.
5. **Across a cut** a track is new unless its appearance is at least :data:`CROSS_CUT_SIMILARITY` alike to a
   track of the same key in an earlier shot (the same object filmed from another camera).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from artemis_model.tracking.appearance import INNER, colour_hist, crop, hist_similarity
from artemis_model.tracking.backends import make_backend
from artemis_model.tracking.shots import shots
from artemis_model.types import Box, box_iou
from artemis_model.video import VideoSource, iter_frames
from tools.grounding.detection import Detection
from tools.grounding.query import ParsedQuery

logger = logging.getLogger(__name__)

DETECT_EVERY = 2
"""The detector's smallest frame step inside a shot (every 2nd frame: 0.08 s at 25 fps) — used when the video is
short enough that :data:`MAX_DETECTION_FRAMES` allows it (:func:`detection_step`); the tracker fills the frames
in between."""
MAX_DETECTION_FRAMES = 200
"""The detector runs on about this many frames of a video at most: its step grows beyond :data:`DETECT_EVERY`
on longer videos (:func:`detection_step`: every 8th frame of a 60 s 25 fps video, every 75th of 10 min; CenterNet
at 576 x 320 is ~70 % of a 512 x 512 frame, ~25 ms on 2 idle cores)."""
TRACK_SIDE = 128
"""The tracker follows a box on the first level of a frame pyramid (halvings) where the box's long side is at
most this many pixels: KCF's cost grows with the box (a full-frame box at 640 x 360 took 40 ms a frame), and it
correlates at about 40 x 40 anyway (``max_patch_size``)."""
MIN_LEVEL_SIDE = 32
"""... but not on a level whose short side is below this."""
START_SCORE = 0.35
"""A detection at or above this score starts a track, and a reported track's mean detection score is at least
this (:func:`confirmed`); the backend's ``start_threshold`` when it has one (``coco``: 0.35)."""
KEEP_SCORE = 0.15
"""Detections down to this score continue a live track (linked to it), but start none: an object the detector
scores lower for a moment (motion blur, turning, partly hidden) keeps its track and its detector box."""
LINK_IOU = 0.3
"""Smallest IoU of a track's tracked box with a detection it is linked to."""
LINK_SIMILARITY = 0.4
"""Smallest colour similarity (Bhattacharyya, 0..1) of a detection with the track's mean appearance to link."""
MAX_MISS_FRAMES = 10
"""Frames a track may go without a linked detection (the tracker carries it) before it ends: at a detection
step of ``every`` frames, ``max(1, MAX_MISS_FRAMES // every)`` missed detection frames."""
EXTEND_FRAMES = 4
"""At each end of a track the tracker extends it by up to this many frames (forward from its last detection,
backward from its first), while the tracker reports success and the box's colour stays alike
(:data:`LINK_SIMILARITY`): the object is in view between detection frames, the detector just did not run or
missed it there. Never across a cut, never beyond the previous/next detection frame."""
REACQUIRE_SIMILARITY = 0.7
"""Colour similarity at or above which a track that starts after another ended (same shot, same class) is the
same object re-acquired after an occlusion."""
CROSS_CUT_SIMILARITY = 0.9
"""Colour similarity at or above which a track in a later shot is the same object as one in an earlier shot."""
MIN_DETECTIONS = 2
"""Tracks with fewer detections are dropped by :func:`tools.grounding.ground` (a lone detection is mostly noise)."""
TRACKER = "kcf"
"""The single-object tracker between detections (KCF reports failure at a cut, CSRT does not)."""


@dataclass
class ShotTrack:
    """One object inside (or, re-identified, across) shots: its detections and a box on each frame it is
    seen (detections and tracker boxes); ``track_id`` is shared by fragments of one object."""

    track_id: int
    shot: int
    detections: list[Detection] = field(default_factory=list)
    hists: list[np.ndarray] = field(default_factory=list)
    boxes: dict[int, Box] = field(default_factory=dict)

    @property
    def appearance(self) -> np.ndarray:
        mean = np.mean(self.hists, axis=0)
        return (mean / max(float(mean.sum()), 1e-9)).astype(np.float32)

    @property
    def first(self) -> int:
        return min(self.boxes)

    @property
    def last(self) -> int:
        return max(self.boxes)

    @property
    def first_detection(self) -> int:
        return min(d.frame_idx for d in self.detections)

    @property
    def last_detection(self) -> int:
        return max(d.frame_idx for d in self.detections)


@dataclass
class _Live:
    track: ShotTrack
    tracker: _PyramidTracker | None
    misses: int = 0
    pending: dict[int, Box] = field(default_factory=dict)
    """Tracker boxes since the last detection (confirmed when the next detection links)."""
    alike: dict[int, bool] = field(default_factory=dict)
    """Whether the pending box of a frame within :data:`EXTEND_FRAMES` of the last detection still looks like
    the track (kept when the track ends there)."""


def detection_step(num_frames: int, every: int = DETECT_EVERY, budget: int = MAX_DETECTION_FRAMES) -> int:
    """The detector's frame step for a video of ``num_frames``: ``every``, or more when that would run the
    detector on more than ``budget`` frames."""
    if every < 1 or budget < 1:
        raise ValueError(f"every and budget must be >= 1, got every={every}, budget={budget}")
    return max(every, -(-num_frames // budget))


def detection_frames(start: int, end: int, every: int = DETECT_EVERY) -> list[int]:
    """Frames of the shot ``[start, end)`` the detector runs on: every ``every``-th and the last."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if end <= start:
        raise ValueError(f"empty shot [{start}, {end})")
    frames = list(range(start, end, every))
    if frames[-1] != end - 1:
        frames.append(end - 1)
    return frames


def shot_tracks(
    video: VideoSource,
    detect: Callable[[np.ndarray, list[int]], list[list[Detection]]],
    *,
    key: Callable[[Detection], Hashable],
    every: int | None = None,
    shot_list: list[tuple[int, int]] | None = None,
    start_score: float | None = None,
    size: tuple[int, int] | None = None,
) -> list[ShotTrack]:
    """Tracks of the objects ``detect(frames, indices)`` finds, linked per shot (module docstring); one
    :class:`ShotTrack` per object (fragments re-acquired after an occlusion or re-identified across a cut
    merged), ordered by id; boxes in the video's pixels. ``every``: the detector's frame step (default
    :func:`detection_step`). ``start_score``: detections below it only continue tracks (default
    ``detect.start_score`` when set — :func:`backend_detector` sets it —, else :data:`START_SCORE`).
    ``size``: ``(width, height)`` frames are decoded at for detection and tracking (default
    ``detect.work_size(width, height)`` when it has one — the backend's detector input size —, else the video's
    own); boxes are scaled back to the video's pixels."""
    every = every if every is not None else detection_step(video.num_frames)
    shot_list = shot_list if shot_list is not None else shots(video)
    if start_score is None:
        start_score = float(getattr(detect, "start_score", START_SCORE))
    if isinstance(detect, BackendDetector) and detect.video_key is None:
        detect.video_key = video.content_hash  # the backend may reuse its detections for the next query
    if size is None and hasattr(detect, "work_size"):
        size = detect.work_size(video.width, video.height)
    if size == (video.width, video.height):
        size = None
    fragments: list[ShotTrack] = []
    next_id = 0
    for s, (start, end) in enumerate(shot_list):
        found = _track_shot(video, detect, key, start, end, every, s, next_id, start_score, size)
        next_id += len(found)
        fragments += _merge(found, REACQUIRE_SIMILARITY, key)
    merged = [t for t in _merge(fragments, CROSS_CUT_SIMILARITY, key) if confirmed(t, start_score)]
    for new_id, t in enumerate(sorted(merged, key=lambda t: t.first)):
        t.track_id = new_id
    if size is not None:
        for t in merged:
            _rescale(t, video.width / size[0], video.height / size[1])
    logger.debug("shot_tracks: %d shots, %d tracks", len(shot_list), len(merged))
    return sorted(merged, key=lambda t: t.track_id)


def _rescale(track: ShotTrack, sx: float, sy: float) -> None:
    """Boxes and detections from work pixels to the video's."""

    def scale(b: Box) -> Box:
        return (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)

    track.boxes = {f: scale(b) for f, b in track.boxes.items()}
    track.detections = [replace(d, box=scale(d.box)) for d in track.detections]


def _track_shot(
    video: VideoSource,
    detect: Callable[[np.ndarray, list[int]], list[list[Detection]]],
    key: Callable[[Detection], Hashable],
    start: int,
    end: int,
    every: int,
    shot: int,
    first_id: int,
    start_score: float,
    size: tuple[int, int] | None,
) -> list[ShotTrack]:
    det_frames = detection_frames(start, end, every)
    det_set = set(det_frames)
    max_misses = max(1, MAX_MISS_FRAMES // every)
    live: list[_Live] = []
    done: list[ShotTrack] = []
    next_id = first_id
    recent: deque[tuple[int, _Pyramid]] = deque(maxlen=EXTEND_FRAMES)  # frames since the last detection frame
    for idx, frame in iter_frames(video, list(range(start, end)), size=size, chunk_size=16):
        pyramid = _Pyramid(frame)
        for lv in live:  # the tracker between detections
            if lv.tracker is None:
                continue
            box = lv.tracker.update(pyramid)
            if box is None:
                lv.tracker = None
                continue
            box = _clip(box, frame.shape[1], frame.shape[0])
            lv.pending[idx] = box
            if idx - lv.track.last_detection <= EXTEND_FRAMES:
                hist = colour_hist(crop(frame, box, INNER))
                lv.alike[idx] = hist_similarity(lv.track.appearance, hist) >= LINK_SIMILARITY
        if idx not in det_set:
            recent.append((idx, pyramid))
            continue
        recent_frames, recent = list(recent), deque(maxlen=EXTEND_FRAMES)
        dets = detect(frame[None], [idx])[0]
        hists = [colour_hist(crop(frame, d.box, INNER)) for d in dets]
        matched = _assign(live, dets, hists, key, idx)
        used = set()
        for li, di in matched:
            lv = live[li]
            _confirm(lv, dets[di], idx)
            lv.track.detections.append(dets[di])
            lv.track.hists.append(hists[di])
            lv.track.boxes[idx] = dets[di].box
            lv.tracker, lv.misses = _start_tracker(pyramid, dets[di].box), 0
            used.add(di)
        still = []
        matched_live = {m[0] for m in matched}
        for li, lv in enumerate(live):
            if li not in matched_live:
                lv.misses += 1
                if lv.misses > max_misses or lv.tracker is None:
                    _extend_forward(lv)
                    done.append(lv.track)
                    continue
            still.append(lv)
        live = still
        for di, det in enumerate(dets):
            if di in used or det.score < start_score:
                continue
            trk = ShotTrack(track_id=next_id, shot=shot, detections=[det], hists=[hists[di]])
            trk.boxes[idx] = det.box
            _extend_backward(trk, det.box, hists[di], recent_frames, pyramid)
            next_id += 1
            live.append(_Live(trk, _start_tracker(pyramid, det.box)))
    for lv in live:  # the shot ends: boxes after the last detection, as at any other track end
        _extend_forward(lv)
    return sorted(done + [lv.track for lv in live], key=lambda t: t.track_id)


def _extend_forward(lv: _Live) -> None:
    """Keep the tracker boxes just after the track's last detection (up to :data:`EXTEND_FRAMES`, while they
    look alike); the rest of the unconfirmed boxes are dropped."""
    last = lv.track.last_detection
    for f in range(last + 1, last + EXTEND_FRAMES + 1):
        if f not in lv.pending or not lv.alike.get(f, False):
            break
        lv.track.boxes[f] = lv.pending[f]
    lv.pending, lv.alike = {}, {}


def _extend_backward(
    track: ShotTrack, box: Box, hist: np.ndarray, recent: list[tuple[int, _Pyramid]], pyramid: _Pyramid
) -> None:
    """A new track's boxes on the frames since the previous detection frame (``recent``: the last
    :data:`EXTEND_FRAMES` of them, same shot), tracked backward from its first detection while the tracker
    holds it and it looks alike."""
    if not recent:
        return
    tracker = _start_tracker(pyramid, box)
    for f, earlier in recent[::-1]:
        got = tracker.update(earlier)
        if got is None:
            return
        img = earlier.level(0)
        got = _clip(got, img.shape[1], img.shape[0])
        if hist_similarity(hist, colour_hist(crop(img, got, INNER))) < LINK_SIMILARITY:
            return
        track.boxes[f] = got


def _assign(
    live: list[_Live],
    dets: list[Detection],
    hists: list[np.ndarray],
    key: Callable[[Detection], Hashable],
    idx: int,
) -> list[tuple[int, int]]:
    """(live index, detection index) pairs: Hungarian on ``1 - IoU`` of the track's predicted box and the
    detection, gated by key, :data:`LINK_IOU` and :data:`LINK_SIMILARITY`. The prediction is the better of
    the tracker's box (the last box when the tracker failed) and the last detection moved on at the velocity of
    the last two (a fast object the tracker lags behind)."""
    if not live or not dets:
        return []
    big = 1e6
    cost = np.full((len(live), len(dets)), big)
    for li, lv in enumerate(live):
        trk = lv.track
        preds = [lv.pending.get(idx, trk.boxes[max(trk.boxes)]), *_moved_on(trk, idx)]
        appearance = trk.appearance
        for di, det in enumerate(dets):
            if key(det) != key(trk.detections[-1]):
                continue
            iou = max(box_iou(p, det.box) for p in preds)
            if iou >= LINK_IOU and hist_similarity(appearance, hists[di]) >= LINK_SIMILARITY:
                cost[li, di] = 1.0 - iou
    rows, cols = _hungarian(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < big]


def _moved_on(track: ShotTrack, idx: int) -> list[Box]:
    """The track's last detection box moved on to frame ``idx`` at the velocity of its last two detections
    (none with fewer)."""
    if len(track.detections) < 2:
        return []
    a, b = track.detections[-2], track.detections[-1]
    span = b.frame_idx - a.frame_idx
    if span <= 0:
        return []
    t = (idx - b.frame_idx) / span
    return [tuple(q + t * (q - p) for p, q in zip(a.box, b.box, strict=True))]  # type: ignore[list-item]


def confirmed(track: ShotTrack, start_score: float) -> bool:
    """A track to report: at least :data:`MIN_DETECTIONS` detections at ``start_score`` or above and a mean
    detection score of at least ``start_score`` (the detector was sure of it on the whole, not just once:
    low-score detections only continue tracks)."""
    strong = sum(d.score >= start_score for d in track.detections)
    mean = float(np.mean([d.score for d in track.detections]))
    return strong >= min(MIN_DETECTIONS, len(track.detections)) and mean >= start_score


def _hungarian(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # greedy: cheapest pair first
        pairs = sorted((float(cost[r, c]), r, c) for r in range(cost.shape[0]) for c in range(cost.shape[1]))
        rows: list[int] = []
        cols: list[int] = []
        for _, r, c in pairs:
            if r not in rows and c not in cols:
                rows.append(r)
                cols.append(c)
        return np.array(rows, dtype=int), np.array(cols, dtype=int)
    return linear_sum_assignment(cost)


def _confirm(lv: _Live, det: Detection, idx: int) -> None:
    """Keep the tracker boxes since the last detection, shifted linearly so that they end on ``det``."""
    trk = lv.track
    prev = max(trk.boxes)
    end_box = lv.pending.get(idx)
    span = idx - prev
    for f in range(prev + 1, idx):
        box = lv.pending.get(f)
        if box is None or end_box is None:  # the tracker failed: interpolate between the detections
            t = (f - prev) / span
            box = tuple(a + (b - a) * t for a, b in zip(trk.boxes[prev], det.box, strict=True))  # type: ignore[assignment]
        else:
            t = (f - prev) / span
            box = tuple(p + t * (d - e) for p, d, e in zip(box, det.box, end_box, strict=True))  # type: ignore[assignment]
        trk.boxes[f] = box  # type: ignore[assignment]
    lv.pending, lv.alike = {}, {}


class _Pyramid:
    """A frame and its halvings (``cv2.pyrDown``), made when first asked for."""

    def __init__(self, frame: np.ndarray) -> None:
        self.levels = [frame]

    def level(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            self.levels.append(cv2.pyrDown(self.levels[-1]))
        return self.levels[k]


class _PyramidTracker:
    """A :data:`TRACKER` on the pyramid level where the box is at most :data:`TRACK_SIDE` long (chosen at
    ``init``); boxes in level-0 pixels."""

    def __init__(self, pyramid: _Pyramid, box: Box) -> None:
        frame = pyramid.level(0)
        side = max(box[2] - box[0], box[3] - box[1])
        k = 0
        while side / 2**k > TRACK_SIDE and min(frame.shape[:2]) / 2 ** (k + 1) >= MIN_LEVEL_SIDE:
            k += 1
        self.k, self.scale = k, float(2**k)
        x1, y1, x2, y2 = (v / self.scale for v in box)
        # the tracker starts on a whole-pixel rectangle: keep what rounding took off (x 2**k on level 0)
        rx, ry = round(x1), round(y1)
        self.offset = (
            x1 - rx,
            y1 - ry,
            x2 - (rx + max(1, round(x2 - x1))),
            y2 - (ry + max(1, round(y2 - y1))),
        )
        self.tracker = make_backend(TRACKER)
        self.tracker.init(pyramid.level(k), (x1, y1, x2, y2))

    def update(self, pyramid: _Pyramid) -> Box | None:
        box = self.tracker.update(pyramid.level(self.k))
        if box is None:
            return None
        return tuple((v + o) * self.scale for v, o in zip(box, self.offset, strict=True))  # type: ignore[return-value]


def _start_tracker(pyramid: _Pyramid, box: Box) -> _PyramidTracker:
    return _PyramidTracker(pyramid, box)


def _merge(
    tracks: list[ShotTrack], threshold: float, key: Callable[[Detection], Hashable]
) -> list[ShotTrack]:
    """Join tracks of one key whose detections do not overlap in time (one's last detection before the other's
    first) and that look alike (similarity >= ``threshold``), most alike first; the later one's detections
    and boxes join the earlier one (its id). Where only their tracker extensions overlap (a fast object the
    tracker lost and the detector found again a few frames on), each keeps the frames nearer its detections."""
    tracks = sorted(tracks, key=lambda t: t.first)
    while True:
        best: tuple[float, int, int] | None = None
        for i, a in enumerate(tracks):
            for j, b in enumerate(tracks):
                if (
                    i == j
                    or a.last_detection >= b.first_detection
                    or key(a.detections[0]) != key(b.detections[0])
                ):
                    continue
                sim = hist_similarity(a.appearance, b.appearance)
                if sim >= threshold and (best is None or sim > best[0]):
                    best = (sim, i, j)
        if best is None:
            return tracks
        sim, i, j = best
        a, b = tracks[i], tracks[j]
        logger.debug("track %d continues track %d (similarity %.2f)", b.track_id, a.track_id, sim)
        middle = (a.last_detection + b.first_detection) / 2
        boxes = {f: box for f, box in a.boxes.items() if f <= middle or f not in b.boxes}
        boxes.update({f: box for f, box in b.boxes.items() if f > middle or f not in a.boxes})
        a.detections = sorted(a.detections + b.detections, key=lambda d: d.frame_idx)
        a.hists += b.hists
        a.boxes = boxes
        del tracks[j]


def _clip(box: Box, width: int, height: int) -> Box:
    x1, y1 = max(0.0, min(float(width), box[0])), max(0.0, min(float(height), box[1]))
    x2, y2 = max(x1, min(float(width), box[2])), max(y1, min(float(height), box[3]))
    return (x1, y1, x2, y2)


class BackendDetector:
    """``backend.detect`` with ``query`` bound, returning detections down to :data:`KEEP_SCORE` when the backend
    grades them (has a ``keep_threshold``: the ``coco`` backend); ``start_score`` is the backend's
    ``start_threshold`` (else its ``threshold``), the score a detection needs to start a track. ``video_key`` (the video's content hash) lets the backend reuse its
    detections of a frame for the next query."""

    def __init__(self, backend: object, query: ParsedQuery, video_key: Hashable | None = None) -> None:
        self.backend, self.query, self.video_key = backend, query, video_key
        self.graded = hasattr(backend, "keep_threshold")
        start = getattr(backend, "start_threshold", getattr(backend, "threshold", START_SCORE))
        self.start_score = float(start) if self.graded else 0.0

    def work_size(self, width: int, height: int) -> tuple[int, int]:
        """The backend's ``work_size`` (its detector's input size), else the video's own."""
        size = getattr(self.backend, "work_size", None)
        return size(width, height) if size is not None else (width, height)

    def __call__(self, frames: np.ndarray, indices: list[int]) -> list[list[Detection]]:
        if not self.graded:
            return self.backend.detect(frames, indices, self.query)  # type: ignore[attr-defined]
        return self.backend.detect(  # type: ignore[attr-defined]
            frames, indices, self.query, threshold=KEEP_SCORE, video_key=self.video_key
        )


def backend_detector(
    backend: object, query: ParsedQuery, video: VideoSource | None = None
) -> BackendDetector:
    """``backend.detect`` with ``query`` bound (:class:`BackendDetector`); with ``video``, keyed by its content
    so that the backend can reuse detections across queries."""
    return BackendDetector(backend, query, video.content_hash if video is not None else None)
