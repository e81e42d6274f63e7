"""Tracks on real footage, shot by shot: detections every few frames, a single-object tracker in between.

Used by :func:`tools.grounding.ground` for backends that set ``track_mode = "shots"`` (the ``"coco"`` backend);
the others keep the sampled-frame linking of :mod:`tools.grounding.linking`. The algorithm:

1. **Shots**: :func:`artemis_model.tracking.shots.shots` (HSV-histogram correlation of consecutive frames below
   :data:`~artemis_model.tracking.shots.CUT_CORRELATION` starts a shot). Nothing below crosses a cut.
2. **Detection** on every :data:`DETECT_EVERY`-th frame of each shot (and its last frame).
3. **Linking** from one detection frame to the next: each live track's single-object tracker (KCF,
   :mod:`artemis_model.tracking.backends`) follows its box over the frames in between; its box on the detection
   frame is matched to that frame's detections (same link key, i.e. class; IoU >= :data:`LINK_IOU`; colour
   similarity >= :data:`LINK_SIMILARITY`) by the Hungarian algorithm on ``1 - IoU``. A matched track's tracker
   boxes are corrected linearly so that they end on the detection, and the tracker restarts there. A track
   missing its detection for more than :data:`MAX_MISSES` detection frames (occluded, left, lost) ends; its
   tracker boxes after its last detection are dropped (they are not confirmed by a detection).
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
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from artemis_model.tracking.appearance import INNER, colour_hist, crop, hist_similarity
from artemis_model.tracking.backends import TrackerBackend, make_backend
from artemis_model.tracking.shots import shots
from artemis_model.types import Box, box_iou
from artemis_model.video import VideoSource, iter_frames
from tools.grounding.detection import Detection
from tools.grounding.query import ParsedQuery

logger = logging.getLogger(__name__)

DETECT_EVERY = 5
"""Detector on every 5th frame of a shot (0.2 s at 25 fps; CenterNet costs ~0.2 s a frame on a CPU core, KCF
~1 ms): the tracker fills the 4 frames in between."""
MAX_DETECTION_FRAMES = 600
"""On a long video the detector step grows beyond :data:`DETECT_EVERY` so that it runs on about this many frames
at most (:func:`detection_step`; 600 frames: ~2 min of CenterNet on a CPU core; 2 min of video at every 5th frame
of 25 fps)."""
LINK_IOU = 0.3
"""Smallest IoU of a track's tracked box with a detection it is linked to."""
LINK_SIMILARITY = 0.4
"""Smallest colour similarity (Bhattacharyya, 0..1) of a detection with the track's mean appearance to link."""
MAX_MISSES = 1
"""Detection frames a track may miss (the tracker carries it) before it ends."""
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


@dataclass
class _Live:
    track: ShotTrack
    tracker: TrackerBackend | None
    misses: int = 0
    pending: dict[int, Box] = field(default_factory=dict)
    """Tracker boxes since the last detection (confirmed when the next detection links)."""


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
) -> list[ShotTrack]:
    """Tracks of the objects ``detect(frames, indices)`` finds, linked per shot (module docstring); one
    :class:`ShotTrack` per object (fragments re-acquired after an occlusion or re-identified across a cut
    merged), ordered by id. ``every``: the detector's frame step (default :func:`detection_step`)."""
    every = every if every is not None else detection_step(video.num_frames)
    shot_list = shot_list if shot_list is not None else shots(video)
    fragments: list[ShotTrack] = []
    next_id = 0
    for s, (start, end) in enumerate(shot_list):
        found = _track_shot(video, detect, key, start, end, every, s, next_id)
        next_id += len(found)
        fragments += _merge(found, REACQUIRE_SIMILARITY, key)
    merged = _merge(fragments, CROSS_CUT_SIMILARITY, key)
    for new_id, t in enumerate(sorted(merged, key=lambda t: t.first)):
        t.track_id = new_id
    logger.debug("shot_tracks: %d shots, %d tracks", len(shot_list), len(merged))
    return sorted(merged, key=lambda t: t.track_id)


def _track_shot(
    video: VideoSource,
    detect: Callable[[np.ndarray, list[int]], list[list[Detection]]],
    key: Callable[[Detection], Hashable],
    start: int,
    end: int,
    every: int,
    shot: int,
    first_id: int,
) -> list[ShotTrack]:
    det_frames = detection_frames(start, end, every)
    det_set = set(det_frames)
    live: list[_Live] = []
    done: list[ShotTrack] = []
    next_id = first_id
    for idx, frame in iter_frames(video, list(range(start, end)), chunk_size=every * 4):
        for lv in live:  # the tracker between detections
            if lv.tracker is None:
                continue
            box = lv.tracker.update(frame)
            if box is None:
                lv.tracker = None
            else:
                lv.pending[idx] = _clip(box, frame.shape[1], frame.shape[0])
        if idx not in det_set:
            continue
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
            lv.tracker, lv.misses = _start_tracker(frame, dets[di].box), 0
            used.add(di)
        still = []
        for li, lv in enumerate(live):
            if li not in {m[0] for m in matched}:
                lv.misses += 1
                if lv.misses > MAX_MISSES or lv.tracker is None:
                    done.append(lv.track)
                    continue
            still.append(lv)
        live = still
        for di, det in enumerate(dets):
            if di in used:
                continue
            trk = ShotTrack(track_id=next_id, shot=shot, detections=[det], hists=[hists[di]])
            trk.boxes[idx] = det.box
            next_id += 1
            live.append(_Live(trk, _start_tracker(frame, det.box)))
    return sorted(done + [lv.track for lv in live], key=lambda t: t.track_id)


def _assign(
    live: list[_Live],
    dets: list[Detection],
    hists: list[np.ndarray],
    key: Callable[[Detection], Hashable],
    idx: int,
) -> list[tuple[int, int]]:
    """(live index, detection index) pairs: Hungarian on ``1 - IoU`` of the tracked box (the last box when the
    tracker failed) and the detection, gated by key, :data:`LINK_IOU` and :data:`LINK_SIMILARITY`."""
    if not live or not dets:
        return []
    big = 1e6
    cost = np.full((len(live), len(dets)), big)
    for li, lv in enumerate(live):
        trk = lv.track
        pred = lv.pending.get(idx, trk.boxes[max(trk.boxes)])
        appearance = trk.appearance
        for di, det in enumerate(dets):
            if key(det) != key(trk.detections[-1]):
                continue
            iou = box_iou(pred, det.box)
            if iou >= LINK_IOU and hist_similarity(appearance, hists[di]) >= LINK_SIMILARITY:
                cost[li, di] = 1.0 - iou
    rows, cols = _hungarian(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < big]


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
    lv.pending = {}


def _start_tracker(frame: np.ndarray, box: Box) -> TrackerBackend:
    tracker = make_backend(TRACKER)
    tracker.init(frame, box)
    return tracker


def _merge(
    tracks: list[ShotTrack], threshold: float, key: Callable[[Detection], Hashable]
) -> list[ShotTrack]:
    """Join tracks of one key that do not overlap in time and look alike (similarity >= ``threshold``), most
    alike first; the later one's detections and boxes join the earlier one (its id)."""
    tracks = sorted(tracks, key=lambda t: t.first)
    while True:
        best: tuple[float, int, int] | None = None
        for i, a in enumerate(tracks):
            for j, b in enumerate(tracks):
                if a.last >= b.first or key(a.detections[0]) != key(b.detections[0]):
                    continue
                if any(f in a.boxes for f in b.boxes):
                    continue
                sim = hist_similarity(a.appearance, b.appearance)
                if sim >= threshold and (best is None or sim > best[0]):
                    best = (sim, i, j)
        if best is None:
            return tracks
        sim, i, j = best
        a, b = tracks[i], tracks[j]
        logger.debug("track %d continues track %d (similarity %.2f)", b.track_id, a.track_id, sim)
        a.detections += b.detections
        a.hists += b.hists
        a.boxes.update(b.boxes)
        del tracks[j]


def _clip(box: Box, width: int, height: int) -> Box:
    x1, y1 = max(0.0, min(float(width), box[0])), max(0.0, min(float(height), box[1]))
    x2, y2 = max(x1, min(float(width), box[2])), max(y1, min(float(height), box[3]))
    return (x1, y1, x2, y2)


def backend_detector(
    backend: object, query: ParsedQuery
) -> Callable[[np.ndarray, list[int]], list[list[Detection]]]:
    """``backend.detect`` with ``query`` bound."""

    def detect(frames: np.ndarray, indices: list[int]) -> list[list[Detection]]:
        return backend.detect(frames, indices, query)  # type: ignore[attr-defined]

    return detect
