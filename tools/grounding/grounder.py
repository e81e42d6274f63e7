"""``ground(video, query)``: find the objects a phrase names and follow them over the video.

A backend (chosen by name from the registry, :mod:`tools.grounding.backends`) detects objects on sampled frames;
detections are linked into tracks (:mod:`tools.grounding.linking`: IoU with a centre-distance fallback for fast
motion), interpolated to every frame, labelled (colour by majority, shape by a vote weighted by confidence over
the frames where the object is whole, :func:`~tools.grounding.linking.vote_shape`), given a key frame
(:func:`~tools.grounding.linking.key_detection`: the box the describer receives) and filtered by the query.
Given a :data:`TrackCache` (the runtime owns one), the tracks of a video are computed once, so further queries on
it only filter.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from artemis_model.lru import LRUCache
from artemis_model.types import Box
from artemis_model.video import VideoSource
from tools.grounding.backends import GroundingBackend, GroundingSettings, link_key, make_backend, query_key
from tools.grounding.detection import Detection, size_name
from tools.grounding.linking import (
    absorb_fragments,
    complete_hidden,
    interpolate_boxes,
    key_detection,
    link_detections,
    rigid_boxes,
    split_merges,
    stitch_tracks,
    unswap_tracks,
    vote_shape,
)
from tools.grounding.query import ParsedQuery, parse_query
from tools.grounding.shot_tracks import MIN_DETECTIONS, backend_detector, shot_tracks
from tools.schemas import Target
from tools.video import VideoLike, as_video_source, load_video

logger = logging.getLogger(__name__)

TrackCache = LRUCache[Hashable, tuple[Target, ...]]
"""All tracks of a video per (video content, backend, ``max_frames``, what the backend's detection reads of the
query): see :func:`track_key`."""


def new_track_cache(max_entries: int = 16) -> TrackCache:
    return LRUCache(max_entries)


class _Identity:
    """An object as a key part by identity (its entry keeps it alive, so its id is never reused meanwhile)."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


def track_key(video: VideoLike, backend: GroundingBackend, max_frames: int, query: ParsedQuery) -> Hashable:
    """The :data:`TrackCache` key of ``video``'s tracks: the video by its ``content_hash`` (any
    ``VideoSource``: a file, an ``ArrayVideo``, a ``SubVideo``), else by identity; the backend by identity (its
    weights and thresholds live on the object); ``max_frames``; what the backend reads of ``query``."""
    vkey = ("hash", video.content_hash) if isinstance(video, VideoSource) else _Identity(video)
    return (vkey, _Identity(backend), max_frames, query_key(backend, query))


def evict_video_tracks(cache: TrackCache, content_hash: str) -> int:
    """Drop the tracks of the video with ``content_hash`` from ``cache``; how many entries."""
    return len(cache.pop_where(lambda key, _value: key[0] == ("hash", content_hash)))


def sample_indices(num_frames: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` frame indices spread evenly over the video, first and last included."""
    if num_frames <= max_frames:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (max_frames - 1)) for i in range(max_frames)})


def ground(
    video: VideoLike | str | Path,
    query: str,
    *,
    backend: GroundingBackend | None = None,
    settings: GroundingSettings | None = None,
    cache: TrackCache | None = None,
) -> list[Target]:
    """Targets matching ``query`` ("the red objects", "all squares", "the face"), best first.

    Every target carries a box per frame (``None`` where unseen), its span and a score. An empty list means
    nothing matched. Colour/shape/size words filter the tracks; a phrase with none of them returns all tracks.
    ``backend``: default the one ``settings`` names (built for this call: pass a built one to reuse its
    weights). ``cache``: where the tracks of a video are kept for the next queries (:func:`track_key`);
    ``None`` computes them.
    """
    video = load_video(video)
    settings = settings or GroundingSettings()
    backend = backend or make_backend(settings)
    parsed = parse_query(query)
    compute = functools.partial(all_tracks, video, parsed, backend=backend, max_frames=settings.max_frames)
    if cache is not None:
        targets = cache.get_or_compute(track_key(video, backend, settings.max_frames, parsed), compute)
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
    detection, linking and the minimum track length (a fifth of the shot's sampled frames) work per shot.
    A backend with ``track_mode = "shots"`` (real footage: the ``"coco"`` backend) is tracked instead on every
    frame, shot by shot (:mod:`tools.grounding.shot_tracks`); ``max_frames`` does not apply to it."""
    if getattr(backend, "track_mode", "sampled") == "shots":
        return _shot_targets(video, query, backend)
    indices = sample_indices(video.num_frames, max_frames)
    frames = video.get_frames(indices)
    key = link_key(backend)
    tracks = []
    for a, b in shot_bounds(frames):  # objects do not cross a cut; each shot has its own background
        per_frame = backend.detect(frames[a:b], indices[a:b], query)
        shot = absorb_fragments(stitch_tracks(link_detections(per_frame, key=key), key=key), key=key)
        shot = unswap_tracks(shot, video.width, video.height, key=key)
        # an object given back its frames inside a blob may now meet its own earlier or later track
        shot = stitch_tracks(split_merges(shot, video.width, video.height, key=key), key=key)
        min_len = max(2, (b - a) // 5) if b - a > 2 else 1
        w, h = video.width, video.height
        seen = {dets[0].frame_idx: [d.box for d in dets] for dets in per_frame if dets}  # occluders, by frame
        tracks += [complete_hidden(rigid_boxes(t, w, h), w, h, seen) for t in shot if len(t) >= min_len]
    return tuple(
        _to_target(i, t, video.num_frames, video.width, video.height, len(indices), backend.name)
        for i, t in enumerate(tracks)
    )


def _shot_targets(video: VideoLike, query: ParsedQuery, backend: GroundingBackend) -> tuple[Target, ...]:
    """Targets from :func:`~tools.grounding.shot_tracks.shot_tracks`: detections every few frames per shot, a
    tracker in between; tracks with fewer than ``MIN_DETECTIONS`` detections are dropped."""
    source = as_video_source(video)
    found = shot_tracks(source, backend_detector(backend, query), key=link_key(backend))
    found = [t for t in found if len(t.detections) >= MIN_DETECTIONS]
    targets = []
    for i, t in enumerate(found):
        dets = sorted(t.detections, key=lambda d: d.frame_idx)
        boxes: list[Box | None] = [t.boxes.get(f) for f in range(source.num_frames)]
        targets.append(
            _to_target(i, dets, source.num_frames, source.width, source.height, 0, backend.name, boxes)
        )
    return tuple(targets)


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


def _to_target(
    tid: int,
    dets: list[Detection],
    num_frames: int,
    width: int,
    height: int,
    n_sampled: int,
    source: str,
    boxes: list[Box | None] | None = None,
) -> Target:
    """A track as a target; ``boxes`` (one per frame) default to the detections interpolated; ``n_sampled``
    0: the detections cover the track fully (score not scaled by coverage)."""
    colour = Counter(d.colour for d in dets).most_common(1)[0][0]
    shape = vote_shape(dets)
    area = float(np.median([d.area_frac for d in dets]))
    label = " ".join(w for w in (colour, shape) if w) or dets[0].label
    coverage = len(dets) / n_sampled if n_sampled > 0 else 1.0
    score = float(np.mean([d.score for d in dets])) * (0.5 + 0.5 * min(1.0, coverage))
    key = key_detection(dets, width, height)
    return Target(
        id=tid,
        label=label,
        colour=colour,
        shape=shape,
        size=size_name(area) if area > 0 else None,
        boxes=boxes if boxes is not None else interpolate_boxes(dets, num_frames),
        width=width,
        height=height,
        score=min(1.0, score),
        source=source,
        key_frame=key.frame_idx,
    )


def _shape_ok(wanted: tuple[str, ...], shape: str | None) -> bool:
    if not wanted:
        return True
    loose = {
        "square": {"square", "rectangle"},
        "rectangle": {"square", "rectangle"},
        "circle": {"circle", "sports ball"},  # "the ball": a COCO detection's shape is its class
    }
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
