"""``ground(video, query)``: find the objects a phrase names and follow them over the video.

A backend detects objects on sampled frames; detections are linked into tracks by IoU (with a centre-distance
fallback for fast motion), interpolated to every frame, labelled (colour by majority, shape by a vote weighted by
confidence over the frames where the object is whole, see :func:`vote_shape`), given a key frame
(:func:`key_detection`: the box the describer receives) and filtered by the query. The tracks of a video are
cached (:func:`track_cache`), so further queries on it only filter.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict

from artemis_model.types import Box, box_iou
from tools.grounding_cache import LRUCache, video_key
from tools.grounding_offline import Detection, OfflineBackend, size_name
from tools.query import ParsedQuery, parse_query
from tools.schemas import Target
from tools.video import VideoLike, load_video

logger = logging.getLogger(__name__)


class GroundingBackend(Protocol):
    name: str

    def detect(
        self, frames: np.ndarray, frame_indices: list[int], query: ParsedQuery
    ) -> list[list[Detection]]: ...


class GroundingSettings(BaseSettings):
    """Which grounding backend to use (env ``ARTEMIS_GROUNDING_*``)."""

    model_config = SettingsConfigDict(env_prefix="ARTEMIS_GROUNDING_", frozen=True)

    backend: Literal["offline", "hf"] = "offline"
    detector_dir: Path | None = None
    """Local directory of an OWLv2 / Grounding DINO checkpoint (backend 'hf')."""
    threshold: float = 0.3
    max_frames: int = 48
    """Frames sampled for detection; boxes in between are interpolated."""


@functools.lru_cache(maxsize=4)
def backend_from_settings(settings: GroundingSettings) -> GroundingBackend:
    """Build (once per settings) the backend that ``settings`` names."""
    if settings.backend == "offline":
        return OfflineBackend()
    if settings.detector_dir is None:
        raise ValueError("grounding backend 'hf' needs detector_dir (ARTEMIS_GROUNDING_DETECTOR_DIR)")
    from tools.grounding_hf import HFDetectorBackend

    return HFDetectorBackend(settings.detector_dir, threshold=settings.threshold)


def sample_indices(num_frames: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` frame indices spread evenly over the video, first and last included."""
    if num_frames <= max_frames:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (max_frames - 1)) for i in range(max_frames)})


_TRACKS: LRUCache[tuple[Target, ...]] = LRUCache(maxsize=16)


def track_cache() -> LRUCache[tuple[Target, ...]]:
    """The process-wide cache of all tracks per (video, backend, sampling, detection query); ``.clear()``,
    ``.stats``."""
    return _TRACKS


def detection_key(backend: GroundingBackend, query: ParsedQuery) -> Hashable:
    """What of ``query`` the backend's detections depend on: ``backend.query_key(query)`` when it has one,
    else the whole parsed query."""
    query_key = getattr(backend, "query_key", None)
    return query_key(query) if callable(query_key) else query


def ground(
    video: VideoLike | str | Path,
    query: str,
    *,
    backend: GroundingBackend | None = None,
    settings: GroundingSettings | None = None,
    use_cache: bool = True,
) -> list[Target]:
    """Targets matching ``query`` ("the red objects", "all squares", "the face"), best first.

    Every target carries a box per frame (``None`` where unseen), its span and a score. An empty list means
    nothing matched. Colour/shape/size words filter the tracks; a phrase with none of them returns all tracks.
    The tracks of a video are computed once per (video content, backend, ``max_frames``, what the backend's
    detection reads of the query) and kept in :func:`track_cache`; ``use_cache=False`` recomputes them.
    """
    video = load_video(video)
    settings = settings or GroundingSettings()
    backend = backend or backend_from_settings(settings)
    parsed = parse_query(query)
    compute = functools.partial(all_tracks, video, parsed, backend=backend, max_frames=settings.max_frames)
    if use_cache:
        vkey, pins = video_key(video)
        key = (vkey, id(backend), settings.max_frames, detection_key(backend, parsed))
        targets = _TRACKS.get_or_compute(key, (*pins, backend), compute)
    else:
        targets = compute()
    matched = filter_targets(targets, parsed)
    logger.debug("ground(%r): %d tracks, %d match", query, len(targets), len(matched))
    return matched


def all_tracks(
    video: VideoLike, query: ParsedQuery, *, backend: GroundingBackend, max_frames: int
) -> tuple[Target, ...]:
    """Every track the backend finds for ``query`` on ``max_frames`` sampled frames, before any filtering.

    The sampled frames are split into shots at cuts (:func:`shot_bounds`, e.g. a video made of several clips);
    detection, linking and the minimum track length (a fifth of the shot's sampled frames) work per shot."""
    indices = sample_indices(video.num_frames, max_frames)
    frames = video.get_frames(indices)
    tracks = []
    for a, b in shot_bounds(frames):  # objects do not cross a cut; each shot has its own background
        per_frame = backend.detect(frames[a:b], indices[a:b], query)
        shot = stitch_tracks(link_detections(per_frame, key=_link_key(backend)), key=_link_key(backend))
        min_len = max(2, (b - a) // 5) if b - a > 2 else 1
        tracks += [t for t in shot if len(t) >= min_len]
    return tuple(
        _to_target(i, t, video.num_frames, video.width, video.height, len(indices), backend.name)
        for i, t in enumerate(tracks)
    )


CUT_MIN_DIFF = 3.0
"""Smallest median per-pixel change (0..255, largest channel) between consecutive sampled frames at a cut."""
CUT_RELATIVE = 4.0
"""... and at least this many times the video's median change between consecutive sampled frames."""


def shot_bounds(frames: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` positions in ``frames`` (``[N, H, W, 3]``) of each shot: a cut is a frame whose median
    pixel change from the previous one is above ``CUT_MIN_DIFF`` and ``CUT_RELATIVE`` times the usual change
    (moving objects change few pixels, the median ignores them; a new scene changes most)."""
    n = len(frames)
    if n < 2:
        return [(0, n)]
    step = max(1, min(frames.shape[1:3]) // 120)  # look at ~120+ pixels per side, enough for a median
    small = frames[:, ::step, ::step].astype(np.int16)  # [N, H / step, W / step, 3]
    change = np.array([float(np.median(np.abs(small[i + 1] - small[i]).max(axis=-1))) for i in range(n - 1)])
    threshold = max(CUT_MIN_DIFF, CUT_RELATIVE * float(np.median(change)))
    cuts = [i + 1 for i in np.flatnonzero(change > threshold)]
    edges = [0, *cuts, n]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def _link_key(backend: GroundingBackend):
    if isinstance(backend, OfflineBackend):
        return lambda d: d.colour
    return lambda d: d.label


def link_detections(
    per_frame: Sequence[Sequence[Detection]],
    *,
    key=lambda d: d.label,
    iou_threshold: float = 0.2,
    max_gap: int = 3,
) -> list[list[Detection]]:
    """Link per-frame detections into tracks: greedy best-IoU matching among detections with equal ``key``.

    When no box overlaps enough, a detection may still join a track whose last centre is within one box
    diagonal (fast motion). A track unmatched for more than ``max_gap`` sampled frames is closed.
    """
    active: list[tuple[list[Detection], int]] = []  # (track, sampled-frame step of its last detection)
    done: list[list[Detection]] = []
    for step, dets in enumerate(per_frame):
        pairs = []
        for ti, (trk, _) in enumerate(active):
            last = trk[-1]
            for di, det in enumerate(dets):
                if key(det) != key(last):
                    continue
                iou = box_iou(last.box, det.box)
                score = iou if iou >= iou_threshold else _centre_affinity(last.box, det.box, _size(trk))
                if score > 0:
                    pairs.append((score, ti, di))
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in sorted(pairs, reverse=True):
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            active[ti][0].append(dets[di])
            active[ti] = (active[ti][0], step)
        still = []
        for ti, (trk, last_step) in enumerate(active):
            if ti not in used_t and step - last_step > max_gap:
                done.append(trk)
            else:
                still.append((trk, last_step))
        active = still + [([d], step) for di, d in enumerate(dets) if di not in used_d]
    return done + [t for t, _ in active]


def stitch_tracks(
    tracks: list[list[Detection]],
    *,
    key=lambda d: d.label,
    max_gap_frames: int = 12,
    max_overlap: int = 2,
) -> list[list[Detection]]:
    """Join fragments of one object cut by an occlusion: a track that starts after another (same ``key``)
    ended, within ``max_gap_frames``, where the first one's constant-velocity path predicts it to be, or,
    when both fragments have the same shape (it may have bounced while hidden), within the distance it can
    cover at its speed. Distances allow one object size (the largest of its last boxes: the last one may
    be cut by the occluder).

    A track that starts up to ``max_overlap`` detections before another ends, within one object size of it,
    continues it too: an occluder split the object in two pieces for a moment, each piece linked on its own.
    """
    tracks = sorted(tracks, key=lambda t: t[0].frame_idx)
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(tracks):
            for j, b in enumerate(tracks):
                if i == j or key(a[-1]) != key(b[0]):
                    continue
                joined = _continues(a, b, max_gap_frames, max_overlap)
                if joined is not None:
                    tracks[i] = joined
                    del tracks[j]
                    merged = True
                    break
            if merged:
                break
    return tracks


def _continues(
    a: list[Detection], b: list[Detection], max_gap_frames: int, max_overlap: int
) -> list[Detection] | None:
    """``a`` continued by ``b`` when ``b`` is the same object after a gap or a short overlap, else None."""
    gap = b[0].frame_idx - a[-1].frame_idx
    size = _size(a)
    if 0 < gap <= max_gap_frames:
        near = _predicted_distance(a, b[0]) < size + 1.5 * gap
        if not near and vote_shape(a) == vote_shape(b):
            reach = size + (_speed(a) + 1.5) * gap
            near = float(np.linalg.norm(_centre(a[-1].box) - _centre(b[0].box))) < reach
        return a + b if near else None
    head = [d for d in a if d.frame_idx < b[0].frame_idx]
    overlap = len(a) - len(head)
    if not head or not 0 < overlap <= max_overlap or len(b) <= overlap:
        return None
    same_frame = a[len(head)]  # a's detection on (or just after) b's first frame
    near = float(np.linalg.norm(_centre(same_frame.box) - _centre(b[0].box))) < size
    return head + b if near else None


def _centre(b: Box) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])


def _diag(b: Box) -> float:
    return float(np.hypot(b[2] - b[0], b[3] - b[1]))


def _size(trk: Sequence[Detection], last: int = 5) -> float:
    """The object's size in pixels: the largest box diagonal of the track's ``last`` detections."""
    return max(_diag(d.box) for d in trk[-last:])


def _speed(trk: Sequence[Detection], last: int = 4) -> float:
    """Pixels per frame of the track's centre over its ``last`` detections (0 for a single detection)."""
    a, b = trk[max(0, len(trk) - last)], trk[-1]
    return float(np.linalg.norm(_centre(b.box) - _centre(a.box))) / max(b.frame_idx - a.frame_idx, 1)


def _predicted_distance(a: list[Detection], det: Detection) -> float:
    """Distance of ``det``'s centre from where track ``a`` would be at ``det``'s frame at constant velocity."""
    last = _centre(a[-1].box)
    vel = np.zeros(2)
    if len(a) > 1:
        prev = a[max(0, len(a) - 4)]
        vel = (last - _centre(prev.box)) / max(a[-1].frame_idx - prev.frame_idx, 1)
    pred = last + vel * (det.frame_idx - a[-1].frame_idx)
    return float(np.linalg.norm(pred - _centre(det.box)))


def _centre_affinity(a: Box, b: Box, size: float | None = None) -> float:
    """In (0, 0.19] when the centres are within ``size`` (default: the diagonal of ``a``); 0 otherwise (below
    IoU matches)."""
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    diag = max(size if size is not None else ((a[2] - a[0]) ** 2 + (a[3] - a[1]) ** 2) ** 0.5, 1.0)
    dist = ((ca[0] - cb[0]) ** 2 + (ca[1] - cb[1]) ** 2) ** 0.5
    return 0.19 * (1.0 - dist / diag) if dist < diag else 0.0


def interpolate_boxes(dets: Sequence[Detection], num_frames: int) -> list[Box | None]:
    """A box on every frame from the first to the last detection (linear in between), None elsewhere."""
    boxes: list[Box | None] = [None] * num_frames
    for a, b in zip(dets, dets[1:], strict=False):
        span = b.frame_idx - a.frame_idx
        for f in range(a.frame_idx, b.frame_idx):
            t = (f - a.frame_idx) / span
            boxes[f] = tuple(float((1 - t) * p + t * q) for p, q in zip(a.box, b.box, strict=True))  # type: ignore[assignment]
    boxes[dets[-1].frame_idx] = dets[-1].box
    return boxes


def _to_target(
    tid: int, dets: list[Detection], num_frames: int, width: int, height: int, n_sampled: int, source: str
) -> Target:
    colour = Counter(d.colour for d in dets).most_common(1)[0][0]
    shape = vote_shape(dets)
    area = float(np.median([d.area_frac for d in dets]))
    label = " ".join(w for w in (colour, shape) if w) or dets[0].label
    coverage = len(dets) / max(n_sampled, 1)
    score = float(np.mean([d.score for d in dets])) * (0.5 + 0.5 * min(1.0, coverage))
    key = key_detection(dets, width, height)
    return Target(
        id=tid,
        label=label,
        colour=colour,
        shape=shape,
        size=size_name(area) if area > 0 else None,
        boxes=interpolate_boxes(dets, num_frames),
        width=width,
        height=height,
        score=min(1.0, score),
        source=source,
        key_frame=key.frame_idx,
    )


def is_whole(det: Detection, width: int, height: int, *, margin: float = 1.0) -> bool:
    """The object is seen whole: the backend did not mark it partial (cut or touching another object) and
    its box keeps ``margin`` pixels from every border of the ``width`` x ``height`` frame."""
    x1, y1, x2, y2 = det.box
    inside = x1 >= margin and y1 >= margin and x2 <= width - margin and y2 <= height - margin
    return inside and not det.partial


def key_detection(dets: Sequence[Detection], width: int, height: int) -> Detection:
    """The detection whose frame and box a grounded target is described from (its key box).

    Rule: the highest detection score among the detections where the object is whole (:func:`is_whole`);
    when it is never whole, the highest score among all. Ties go to the earliest frame. Only real
    detections compete (never an interpolated box).
    """
    if not dets:
        raise ValueError("key_detection needs at least one detection")
    candidates = [d for d in dets if is_whole(d, width, height)] or list(dets)
    return min(candidates, key=lambda d: (-d.score, d.frame_idx))


def vote_shape(dets: Sequence[Detection]) -> str | None:
    """The track's shape: per-frame shapes weighted by their confidence, over the frames where the object is
    whole (not cut by the border nor touching another object). When it never is, every frame votes, weighted
    also by how much of the object it shows (its area over the track's largest). Plain majority when every
    weight is zero."""
    whole = [d for d in dets if not d.partial]
    voters = whole or list(dets)
    largest = max((d.area_frac for d in voters), default=0.0)
    votes: Counter[str | None] = Counter()
    for d in voters:
        seen = 1.0 if whole or largest <= 0 else d.area_frac / largest
        votes[d.shape] += d.shape_score * seen
    if not votes or max(votes.values()) <= 0:
        votes = Counter(d.shape for d in voters)
    return votes.most_common(1)[0][0]


def _shape_ok(wanted: tuple[str, ...], shape: str | None) -> bool:
    if not wanted:
        return True
    loose = {"square": {"square", "rectangle"}, "rectangle": {"square", "rectangle"}}
    return any(shape in loose.get(w, {w}) for w in wanted)


def filter_targets(targets: Sequence[Target], query: ParsedQuery) -> list[Target]:
    """Targets whose colour/shape/size fit ``query``, best score first, then left to right.

    A size word among several otherwise-matching targets keeps the extreme one(s) ("the big circle").
    """
    out = [
        t
        for t in targets
        if (not query.colours or t.colour in query.colours) and _shape_ok(query.shapes, t.shape)
    ]
    if query.size and len(out) > 1:
        areas = {t.id: _mean_area(t) for t in out}
        exact = [t for t in out if t.size == query.size]
        if exact and len(exact) < len(out):
            out = exact
        elif not query.plural and query.size in ("large", "small"):
            pick = max if query.size == "large" else min
            out = [pick(out, key=lambda t: areas[t.id])]
    out.sort(key=lambda t: (-round(t.score, 3), _first_x(t)))
    # a fresh boxes list: callers may edit theirs, the cached targets must not change
    return [t.model_copy(update={"id": i, "boxes": list(t.boxes)}) for i, t in enumerate(out)]


def _mean_area(t: Target) -> float:
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in t.boxes if b is not None]
    return float(np.mean(areas)) if areas else 0.0


def _first_x(t: Target) -> float:
    box = t.box_at(t.first_frame)
    return box[0] if box is not None else 0.0
