"""Detections into tracks: linking frame to frame, stitching fragments cut by occlusions, folding in the pieces of
an object and splitting the blobs of two same-coloured objects that touch, a track's shape and its key detection,
boxes on every frame."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import replace

import numpy as np

from artemis_model.types import Box, box_iou
from tools.grounding.detection import Detection

LinkKey = Callable[[Detection], Hashable]


def _label(det: Detection) -> Hashable:
    return det.label


def link_detections(
    per_frame: Sequence[Sequence[Detection]],
    *,
    key: LinkKey = _label,
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
    key: LinkKey = _label,
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

    def pairs(ts: list[list[Detection]]) -> Iterator[tuple[int, int]]:
        return (
            (i, j) for i, a in enumerate(ts) for j, b in enumerate(ts) if i != j and key(a[-1]) == key(b[0])
        )

    return _merge_pairs(
        sorted(tracks, key=lambda t: t[0].frame_idx),
        pairs,
        lambda a, b: _continues(a, b, max_gap_frames, max_overlap),
    )


def _merge_pairs(
    tracks: list[list[Detection]],
    pairs: Callable[[list[list[Detection]]], Iterator[tuple[int, int]]],
    join: Callable[[list[Detection], list[Detection]], list[Detection] | None],
) -> list[list[Detection]]:
    """Join tracks two by two until no pair joins: for the first ``(keep, drop)`` of ``pairs(tracks)`` that
    ``join(tracks[keep], tracks[drop])`` joins, the joined track replaces ``keep`` and ``drop`` goes."""
    tracks = list(tracks)
    while True:
        for keep, drop in pairs(tracks):
            joined = join(tracks[keep], tracks[drop])
            if joined is not None:
                tracks[keep] = joined
                del tracks[drop]
                break
        else:
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


FRAGMENT_SLACK = 1.1
"""A fragment's box and its object's on one frame fit together within this times the object's largest box."""


def absorb_fragments(tracks: list[list[Detection]], *, key: LinkKey = _label) -> list[list[Detection]]:
    """Fold into its object the track of a piece of it: an occluder in front of an object's middle shows two
    pieces of one colour (a triangle's tip and corner either side of a square in front of it), each linked as a
    track of its own, the piece's track ending when the object comes out whole.

    A track ``f`` is a piece of a longer track ``m`` (same ``key``) when ``f`` ends no later than ``m``, has no
    detection after ``m`` starts that ``m`` lacks a detection on the same frame for, at least as many detections
    after ``m`` starts as before (a piece is seen beside its object), is partial (touching the
    occluder) on every frame it shares with ``m``, and on each of them the two boxes together are no larger than
    ``m``'s largest box (x ``FRAGMENT_SLACK``: two objects side by side are larger). ``m`` then gets the union
    boxes on those frames (partial, no centre) and ``f``'s detections before it starts (partial, shape
    confidence 0: a piece's shape is not the object's)."""

    def pairs(ts: list[list[Detection]]) -> Iterator[tuple[int, int]]:
        for i in sorted(range(len(ts)), key=lambda k: len(ts[k])):  # the shortest first: pieces are short
            yield from (
                (j, i)
                for j, m in enumerate(ts)
                if j != i and len(m) > len(ts[i]) and key(ts[i][0]) == key(m[0])
            )

    return _merge_pairs(
        tracks, pairs, lambda m, f: _piece_of(f, m)
    )  # the order is kept: target ids follow it


def _piece_of(f: list[Detection], m: list[Detection]) -> list[Detection] | None:
    """``m`` with the piece ``f`` folded in (see :func:`absorb_fragments`), or None when ``f`` is no piece of it."""
    if f[-1].frame_idx > m[-1].frame_idx:
        return None
    on = {d.frame_idx: d for d in m}
    head = [d for d in f if d.frame_idx < m[0].frame_idx]
    shared = [d for d in f if d.frame_idx >= m[0].frame_idx]
    if len(shared) < max(1, len(head)) or any(d.frame_idx not in on or not d.partial for d in shared):
        return None  # mostly before m: the same object's earlier track (stitch_tracks' business), not a piece
    whole = max(_diag(d.box) for d in m) * FRAGMENT_SLACK
    unions = {}
    for d in shared:
        o = on[d.frame_idx].box
        u = (min(d.box[0], o[0]), min(d.box[1], o[1]), max(d.box[2], o[2]), max(d.box[3], o[3]))
        if _diag(u) > whole:
            return None
        unions[d.frame_idx] = replace(on[d.frame_idx], box=u, partial=True, centre=None)
    # the piece's own frames show a part of the object: they do not vote for its shape (vote_shape)
    return [replace(d, partial=True, shape_score=0.0) for d in head] + [unions.get(d.frame_idx, d) for d in m]


SWAP_WINDOW = 6
"""Whole detections of a track on each side of a frame whose median size it has there (:func:`unswap_tracks`)."""
SWAP_MIN_DIFF = 0.2
"""Two objects are told apart by size when their widths or heights differ by at least this share."""
SWAP_MAX_CHANGE = 0.12
"""... and an object keeps its size within this share across a swap repaired by :func:`unswap_tracks`."""


def unswap_tracks(
    tracks: list[list[Detection]], width: int, height: int, *, key: LinkKey = _label
) -> list[list[Detection]]:
    """Give back to two same-coloured objects of different sizes their own tracks where linking swapped them.

    Two objects that meet show as one blob, or as pieces, for a few frames; when they part, linking (nearest
    box) or stitching (predicted place) may send each track on with the other object. Objects here keep their
    size (flat shapes), so a swap shows as two tracks that change size at the same time, each into the other's:
    when, at some frame, each track's median size over its ``SWAP_WINDOW`` whole detections after it
    (:func:`is_whole`) is within ``SWAP_MAX_CHANGE`` of the other's before, while the two sizes before differ by
    ``SWAP_MIN_DIFF`` or more, the tracks trade their detections from that frame on (the first whole detection
    after the meeting). Track order is kept."""
    tracks = [list(t) for t in tracks]
    for i in range(len(tracks)):
        for j in range(i + 1, len(tracks)):
            if key(tracks[i][0]) != key(tracks[j][0]):
                continue
            at = _swap_frame(tracks[i], tracks[j], width, height)
            if at is not None:
                a, b = tracks[i], tracks[j]
                tracks[i] = [d for d in a if d.frame_idx < at] + [d for d in b if d.frame_idx >= at]
                tracks[j] = [d for d in b if d.frame_idx < at] + [d for d in a if d.frame_idx >= at]
    return tracks


def _swap_frame(a: list[Detection], b: list[Detection], width: int, height: int) -> int | None:
    """The frame from which ``a`` and ``b`` follow each other's object (see :func:`unswap_tracks`), or None.

    Of the frames where the sizes say swapped, the one whose split fits the whole detections around it best (a
    change point); ties, where the objects were not seen whole in between, go to the latest: the first whole
    detection after the meeting."""
    if a[-1].frame_idx < b[0].frame_idx or b[-1].frame_idx < a[0].frame_idx:
        return None  # never seen at the same time
    tracks = []
    for t in (a, b):
        whole = [d for d in t if is_whole(d, width, height)]
        tracks.append((np.array([d.frame_idx for d in whole]), _sizes(whole)))  # ([N], [N, 2])
    best: tuple[float, int] | None = None
    for at in np.unique(np.concatenate([f for f, _ in tracks])):
        sides = []
        for frames, sizes in tracks:
            k = int(np.searchsorted(frames, at))
            pre, post = sizes[max(0, k - SWAP_WINDOW) : k], sizes[k : k + SWAP_WINDOW]  # [<=W, 2] each
            if len(pre) < 2 or len(post) < 2:
                break
            sides.append((pre, post, np.median(pre, axis=0), np.median(post, axis=0)))
        if len(sides) < 2:
            continue
        (_, _, a_pre, a_post), (_, _, b_pre, b_post) = sides
        swap = max(_size_change(a_pre, b_post), _size_change(b_pre, a_post))
        keep = min(_size_change(a_pre, a_post), _size_change(b_pre, b_post))
        if _size_change(a_pre, b_pre) < SWAP_MIN_DIFF or swap > SWAP_MAX_CHANGE or keep < SWAP_MIN_DIFF:
            continue
        misfit = sum(
            float(_size_changes(rows, ref).sum())
            for pre, post, before, after in sides
            for rows, ref in ((pre, before), (post, after))
        )
        if best is None or misfit <= best[0]:
            best = (misfit, int(at))
    return best[1] if best is not None else None


def _sizes(dets: Sequence[Detection]) -> np.ndarray:
    """``[N, 2]``: the ``(width, height)`` of each detection's box."""
    return np.array([(d.box[2] - d.box[0], d.box[3] - d.box[1]) for d in dets], dtype=float).reshape(-1, 2)


def _median_size(dets: Sequence[Detection]) -> np.ndarray:
    return np.median(_sizes(dets), axis=0)  # [2]


def _size_changes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The larger of the relative differences of ``(width, height)`` sizes, along the last axis."""
    return (np.abs(x - y) / np.maximum(np.maximum(x, y), 1.0)).max(axis=-1)


def _size_change(x: np.ndarray, y: np.ndarray) -> float:
    """The larger of the relative differences of two ``(width, height)`` sizes."""
    return float(_size_changes(x, y))


MERGE_SLACK = 2.0
"""Pixels: how far a box may stick out of a blob, or short of its end, and still count as inside, or at it."""
MERGE_GROWTH = 2.0
"""Pixels: a blob holds two objects only when it is wider or taller than its host's own box by more than this."""
MERGE_MIN_SEEN = 0.5
"""Share of an object's expected box that must lie inside the frame for it to be placed on a merged frame."""
MERGE_HOST_FRAMES = 6
"""Detections of the host beside the other object (after they part) that give the host's own size."""


def split_merges(
    tracks: list[list[Detection]], width: int, height: int, *, key: LinkKey = _label
) -> list[list[Detection]]:
    """Give each of two same-coloured objects its own box on the frames where they touched or overlapped and
    showed as one blob (one detection, linked to one of them, the host): the other object's track starts where
    they part, or ends where they meet, in the middle of the frame.

    A track ``b`` that starts inside the frame (it did not come in from a border), at most 2 frames after a
    detection of a track ``a`` (same ``key``) that goes on beside it, is followed back into ``a``'s blobs, frame
    by frame (:func:`_place_back`), while each blob is larger than ``a`` itself (``MERGE_GROWTH``; ``a``'s size
    from its first ``MERGE_HOST_FRAMES`` detections beside ``b``) and can hold ``b``, or for a few frames lies
    within ``a``'s own box (``b`` coasts there, ``MERGE_COAST_FRAMES``). On each larger blob the two
    boxes are the pair whose union is the blob that moves them least from where they were expected
    (:func:`_two_in_blob`): an object at one end of the blob is seen there, a bounce against the blob's end
    included. The same forward, for a track that ends inside the blob of a track that was beside it. The new
    and placed detections are partial, without a centre and without a shape vote (``shape_score`` 0: the blob's
    shape is neither object's). Track order is kept; a track given back its frames may then continue another
    track of its object (``stitch_tracks`` again).

    Why: through a merge, linking keeps one track on the blob. The other object seemed to appear from nothing
    where they parted (a circle touching a triangle on the first frames, a square inside a circle of its colour
    until frame 19) or to vanish where they met, and the blob's shape and motion were given to the host (the
    describer called a triangle touching a circle "a star"; a circle that a square overlapped "still")."""
    tracks = _split_backward([list(t) for t in tracks], width, height, key)
    flipped = [_flip(t) for t in tracks]
    return [_flip(t) for t in _split_backward(flipped, width, height, key)]


def _flip(track: list[Detection]) -> list[Detection]:
    """The track with time reversed (frame ``f`` -> ``-f``): a forward search is a backward one on it."""
    return [replace(d, frame_idx=-d.frame_idx) for d in reversed(track)]


def _split_backward(
    tracks: list[list[Detection]], width: int, height: int, key: LinkKey
) -> list[list[Detection]]:
    """:func:`split_merges` back in time only: tracks that start inside another's blob."""
    for bi in range(len(tracks)):
        b = tracks[bi]
        if len(b) < 2 or not _inside(b[0].box, width, height, MERGE_SLACK):
            continue
        start = b[0].frame_idx
        for ai, a in enumerate(tracks):
            if ai == bi or key(a[0]) != key(b[0]) or a[-1].frame_idx < start:
                continue
            before = [k for k, d in enumerate(a) if d.frame_idx < start]
            if not before or start - a[before[-1]].frame_idx > 2:
                continue
            beside = [d for d in a if d.frame_idx >= start][:MERGE_HOST_FRAMES]
            host = _median_size(beside)  # [2]
            placed = _place_back(b, a, before, host, width, height)
            if placed is not None:
                tracks[ai], tracks[bi] = placed
                break
    return tracks


MERGE_VELOCITY_FRAMES = 4
"""Detections of an object next to where it merged that give its velocity inside the blob."""
MERGE_COAST_FRAMES = 6
"""Frames an object may spend inside its host's own box (a blob no larger than the host) between blobs that show it.
"""


def _place_back(
    b: list[Detection], a: list[Detection], before: list[int], host: np.ndarray, width: int, height: int
) -> tuple[list[Detection], list[Detection]] | None:
    """``(a, b)`` with ``b`` placed inside ``a``'s blobs before ``b`` starts (see :func:`split_merges`), or None
    when ``a``'s detection just before holds no ``b``.

    Frame by frame back from where they part, each object is expected where it was on the frame after, moved by
    its velocity (at first from its detections next to the blob, then half from what the blob showed: a bounce
    against the blob's edge turns it). It stops where the blob is too small for ``b`` or shows ``b`` farther than
    half its size (+ ``MERGE_SLACK``) from where it was expected. Where the blob is no larger than ``a`` (``b``
    inside ``a``'s box: hidden, or in front of it in the same colour), ``b`` coasts at its expected place, for up
    to ``MERGE_COAST_FRAMES`` frames, kept only when a larger blob shows it again before that."""
    frame, b_centre, b_vel, size = _motion(b[:MERGE_VELOCITY_FRAMES])
    a_frame, a_centre, a_vel, _ = _motion(a[before[-1] + 1 :][:MERGE_VELOCITY_FRAMES])
    a_centre = a_centre + a_vel * (frame - a_frame)
    a = list(a)
    new: list[Detection] = []
    coast: list[Detection] = []  # b inside a's own box: kept once a larger blob shows b again
    for k in reversed(before):
        d = a[k]
        dt = d.frame_idx - frame
        b_pred, a_pred = b_centre + b_vel * dt, a_centre + a_vel * dt
        pred = (*(b_pred - size / 2), *(b_pred + size / 2))
        shown = _box_around(b_pred, size, width, height)  # the part inside the frame
        seen = max(0.0, shown[2] - shown[0]) * max(0.0, shown[3] - shown[1])
        blob = d.box
        ext = np.array([blob[2] - blob[0], blob[3] - blob[1]])
        if bool((size > ext + MERGE_SLACK).any()) or seen < MERGE_MIN_SEEN * size[0] * size[1]:
            break
        if not bool((ext > host + MERGE_GROWTH).any()):
            if not _holds(blob, pred, MERGE_SLACK) or len(coast) >= MERGE_COAST_FRAMES:
                break
            lo = np.clip(b_pred - size / 2, blob[:2], np.asarray(blob[2:]) - size)  # [2]: inside the blob
            box = (float(lo[0]), float(lo[1]), float(lo[0] + size[0]), float(lo[1] + size[1]))
            coast.append(
                replace(b[0], frame_idx=d.frame_idx, box=box, partial=True, centre=None, shape_score=0.0)
            )
            b_centre, a_centre, frame = _centre(box), _centre(blob), d.frame_idx
            continue
        a_box, b_box = _two_in_blob(blob, host, size, a_pred, b_pred)
        if float(np.abs(_centre(b_box) - b_pred).max()) > size.max() / 2 + MERGE_SLACK:
            break
        b_vel = (b_vel + (_centre(b_box) - b_centre) / dt) / 2
        a_vel = (a_vel + (_centre(a_box) - a_centre) / dt) / 2
        b_centre, a_centre, frame = _centre(b_box), _centre(a_box), d.frame_idx
        new += coast
        coast = []
        new.append(
            replace(b[0], frame_idx=d.frame_idx, box=b_box, partial=True, centre=None, shape_score=0.0)
        )
        a[k] = replace(d, box=a_box, partial=True, centre=None, shape_score=0.0)
    if not new:
        return None
    return a, new[::-1] + b


def _motion(dets: Sequence[Detection]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``(frame, centre, velocity, size)`` of an object from a few of its detections: the first one's frame and
    centre, the velocity (px per frame) from the first to the last, the median box size."""
    span = max(dets[-1].frame_idx - dets[0].frame_idx, 1)
    vel = (_centre(dets[-1].box) - _centre(dets[0].box)) / span  # [2]
    return dets[0].frame_idx, _centre(dets[0].box), vel, _median_size(dets)


def _two_in_blob(
    blob: Box, a_size: np.ndarray, b_size: np.ndarray, a_centre: np.ndarray, b_centre: np.ndarray
) -> tuple[Box, Box]:
    """Boxes of two touching objects whose union is ``blob``, from their sizes and where they are expected
    (centres), axis by axis. The arrangements whose union spans the blob: each box inside the blob nearest its
    expected place (when one object spans the axis), or one at the low end and the other at the high end; of
    those, the one that moves the two least from where they are expected."""
    a_box, b_box = [0.0] * 4, [0.0] * 4
    for ax in (0, 1):
        lo, hi = blob[ax], blob[ax + 2]
        ext = hi - lo
        b_len = min(float(b_size[ax]), ext)
        a_len = min(max(float(a_size[ax]), ext - b_len), ext)  # the two cover the blob: they touch
        options = [
            (
                float(np.clip(a_centre[ax] - a_len / 2, lo, hi - a_len)),
                float(np.clip(b_centre[ax] - b_len / 2, lo, hi - b_len)),
            ),
            (lo, hi - b_len),
            (hi - a_len, lo),
        ]
        spans = [
            o
            for o in options
            if min(o) <= lo + MERGE_SLACK and max(o[0] + a_len, o[1] + b_len) >= hi - MERGE_SLACK
        ]
        want = (a_centre[ax] - a_len / 2, b_centre[ax] - b_len / 2)  # the low ends where they are expected
        a_lo, b_lo = min(spans or options[1:], key=lambda o: abs(o[0] - want[0]) + abs(o[1] - want[1]))
        a_box[ax], a_box[ax + 2] = a_lo, a_lo + a_len
        b_box[ax], b_box[ax + 2] = b_lo, b_lo + b_len
    return tuple(a_box), tuple(b_box)  # type: ignore[return-value]


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


def is_whole(det: Detection, width: int, height: int, *, margin: float = 1.0) -> bool:
    """The object is seen whole: the backend did not mark it partial (cut or touching another object) and
    its box keeps ``margin`` pixels from every border of the ``width`` x ``height`` frame."""
    return _inside(det.box, width, height, margin) and not det.partial


def _inside(box: Box, width: int, height: int, margin: float = 1.0) -> bool:
    """``box`` keeps ``margin`` pixels from every border of the ``width`` x ``height`` frame."""
    x1, y1, x2, y2 = box
    return x1 >= margin and y1 >= margin and x2 <= width - margin and y2 <= height - margin


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
    also by how much of the object it shows (its area over the track's largest), squared: a circle half behind
    another object looks like a star or a triangle, and the fuller views should outvote the many partial ones.
    Plain majority when every weight is zero."""
    whole = [d for d in dets if not d.partial]
    voters = whole or list(dets)
    largest = max((d.area_frac for d in voters), default=0.0)
    votes: Counter[str | None] = Counter()
    for d in voters:
        seen = 1.0 if whole or largest <= 0 else (d.area_frac / largest) ** 2
        votes[d.shape] += d.shape_score * seen
    if not votes or max(votes.values()) <= 0:
        votes = Counter(d.shape for d in voters)
    return votes.most_common(1)[0][0]


RIGID_MIN_WHOLE = 3
"""Whole detections (with a centre) a track needs before :func:`rigid_boxes` places its boxes."""
RIGID_SIZE_SLACK = 2.5
"""Pixels: a whole detection whose width or height is farther than this from the track's median is left as it is
(merged with a neighbour's edge, or half hidden without touching it)."""
RIGID_SAME_SIZE = 2 / 3
"""Share of a track's whole detections that must be of about its median size for it to count as rigid."""
RIGID_AGREE = 0.15
"""Pixels: a track whose boxes' centres all keep this close to their centres of coverage plus the mean offset
keeps its boxes (frames as rendered, uncompressed: exact whole-pixel boxes, where an object 1 px from another
touches it and a placed box 0.1 px off would not)."""
RIGID_AREA_SLACK = 0.1
"""... or whose area differs by more than this share from the track's median (another object hides a part of it
inside its box: its centre of coverage moves away from the hidden part)."""


def rigid_boxes(dets: Sequence[Detection], width: int, height: int) -> list[Detection]:
    """``dets`` (one track, frame order) with the box of each detection that has a sub-pixel ``centre`` placed by
    it: the track's mean size around the centre plus the track's mean offset from centre to box centre (a
    triangle's centre of mass lies below its box's), both over its whole detections (:func:`is_whole`) of about
    the median size. For objects that keep their size and do not turn (the offline backend's flat shapes).

    Detections at the frame's border and those whose size or area is off (``RIGID_SIZE_SLACK``,
    ``RIGID_AREA_SLACK``: cut, hidden in part, merged) keep their box; one touching another object but of its
    size is placed. A track with fewer than ``RIGID_MIN_WHOLE`` whole detections is returned as it is, and so are
    one whose size changes (fewer than ``RIGID_SAME_SIZE`` of them about its median size) and one whose boxes
    already move with their centres (``RIGID_AGREE``: frames as rendered).

    Why: the box edges of a flat-colour object through H.264 snap to the 2x2 chroma grid, so box centres jitter
    by half a pixel while the centre of coverage stays within ~0.15 px of the object's: the piecewise-linear
    motion of the memory (:mod:`tools.memory`) then finds the stops and turns that the jitter hid."""
    whole = [d for d in dets if d.centre is not None and is_whole(d, width, height)]
    fits = _rigid_fits(whole)
    if fits is None:
        return list(dets)  # too few, or an object whose size changes (real footage's offline fallback)
    sizes = _sizes(whole)  # [N, 2]
    offsets = np.array([_centre(d.box) - np.asarray(d.centre) for d in whole])[fits]  # [M, 2]
    # means, not medians: through H.264 box edges snap to even pixels, so the offsets of a moving object split
    # into two values half a pixel either side of the true one
    size = sizes[fits].mean(axis=0)  # [2]
    offset = offsets.mean(axis=0)  # [2]
    if float(np.abs(offsets - offset).max()) <= RIGID_AGREE:
        return list(dets)  # the boxes already move with their centres: frames as rendered, not snapped
    area = float(np.median([d.area_frac for d, ok in zip(whole, fits, strict=True) if ok]))
    out = []
    for d in dets:
        if (
            d.centre is None
            or not _inside(d.box, width, height)
            or not _about(d.box, size)
            or abs(d.area_frac - area) > RIGID_AREA_SLACK * area
        ):
            out.append(d)
            continue
        out.append(replace(d, box=_box_around(np.asarray(d.centre) + offset, size, width, height)))
    return out


HIDDEN_MAX_GAP = 8
"""Frames from a partly hidden detection to the object's nearest whole detection on either side within which
:func:`complete_hidden` gives it the whole object's box (when the occluder does not tell where it is)."""
HIDDEN_REACH = 2.0
"""px: an occluder's box that reaches this close to a side of an object's visible part, and past it, hides that
side (the backend marks a detection partial when it comes within 2 px of another object's pixels)."""


def complete_hidden(
    dets: Sequence[Detection], width: int, height: int, others: Mapping[int, Sequence[Box]] | None = None
) -> list[Detection]:
    """``dets`` (one track, frame order) with each partly hidden detection given the whole object's box: for an
    object that keeps its size (its whole detections, :func:`is_whole`, are about their median size, as in
    :func:`rigid_boxes`), a detection that touches another object inside the frame and is smaller than it gets a
    box of that size. Only when the visible part lies inside that box (``RIGID_SIZE_SLACK``): an occluder hid a
    part of it. The box is placed:

    * from the occluder, when ``others`` (frame -> every detection's box on it) shows it: on each axis where the
      part is smaller than the object, an occluder beside one side only (:func:`_hidden_sides`) hid that side,
      and the other side is the object's own edge (:func:`_anchored_box`);
    * else (on that axis, or on both without ``others``) centred where the object is expected: between its
      nearest whole detections (linear), or carried on from those on one side at their velocity, each within
      ``HIDDEN_MAX_GAP`` frames.

    Why: the world's boxes, which the describer was trained on, are the whole object's, hidden parts included;
    and the visible part of an object that an occluder passes over grows and shrinks, which read as motion (a
    still triangle "moves up" as a star uncovers it). The occluder's side also follows an object that turns or
    stops while hidden, where the expected place carries it on."""
    whole = [d for d in dets if is_whole(d, width, height)]
    size = _rigid_size(whole)
    if size is None:
        return list(dets)
    anchors = [d for d in whole if _about(d.box, size)]
    frames = [d.frame_idx for d in anchors]
    out = []
    for d in dets:
        w, h = d.box[2] - d.box[0], d.box[3] - d.box[1]
        smaller = w < size[0] - RIGID_SIZE_SLACK or h < size[1] - RIGID_SIZE_SLACK
        if not (smaller and d.partial) or not _inside(d.box, width, height):
            out.append(d)
            continue
        expected = _expected_centre(anchors, frames, d.frame_idx)
        if others is not None and d.centre is not None:  # a detection as seen (not placed inside a blob)
            occluders = [b for b in others.get(d.frame_idx, ()) if b != d.box]
            box = _anchored_box(d.box, size, occluders, expected, width, height)
        else:
            box = _box_around(expected, size, width, height) if expected is not None else None
        out.append(replace(d, box=box) if box is not None and _holds(box, d.box, RIGID_SIZE_SLACK) else d)
    return out


def _hidden_sides(box: Box, others: Sequence[Box]) -> tuple[int | None, int | None]:
    """Per axis (x, y) of an object's visible part ``box``: -1 when an occluder among ``others`` borders only its
    low side (left / top), 1 when only its high side, None when none or both."""
    out = []
    for i in (0, 1):
        j = 1 - i
        low = high = False
        for b in others:
            if b[j] >= box[j + 2] or b[j + 2] <= box[j]:
                continue  # beside it along the other axis, not over it
            low |= b[i] < box[i] - 1 and b[i + 2] >= box[i] - HIDDEN_REACH
            high |= b[i + 2] > box[i + 2] + 1 and b[i] <= box[i + 2] + HIDDEN_REACH
        out.append(-1 if low and not high else 1 if high and not low else None)
    return out[0], out[1]


def _anchored_box(
    box: Box, size: np.ndarray, others: Sequence[Box], expected: np.ndarray | None, width: int, height: int
) -> Box | None:
    """The whole object's box (``size``) from its visible part ``box`` and the occluders ``others``, axis by axis:
    around the part where it spans about all of the object; from the side away from the occluder where that
    side is clear (:func:`_hidden_sides`); else around the ``expected`` centre; None when that is None."""
    centre = np.zeros(2)
    for i, side in enumerate(_hidden_sides(box, others)):
        if box[i + 2] - box[i] >= size[i] - RIGID_SIZE_SLACK:
            centre[i] = (box[i] + box[i + 2]) / 2
        elif side is not None:
            centre[i] = box[i + 2] - size[i] / 2 if side == -1 else box[i] + size[i] / 2
        elif expected is not None:
            centre[i] = expected[i]
        else:
            return None
    return _box_around(centre, size, width, height)


def _rigid_fits(whole: Sequence[Detection]) -> np.ndarray | None:
    """Which of an object's whole detections are about their median size (``[N]`` bool), when it keeps its size:
    None when there are fewer than ``RIGID_MIN_WHOLE`` of them, or fewer than ``RIGID_SAME_SIZE`` fit."""
    if len(whole) < RIGID_MIN_WHOLE:
        return None
    sizes = _sizes(whole)  # [N, 2]
    fits = np.abs(sizes - np.median(sizes, axis=0)).max(axis=1) <= RIGID_SIZE_SLACK  # [N]
    if int(fits.sum()) < max(RIGID_MIN_WHOLE, RIGID_SAME_SIZE * len(whole)):
        return None
    return fits


def _rigid_size(whole: Sequence[Detection]) -> np.ndarray | None:
    """The mean ``(width, height)`` of an object's whole detections of about their median size (see
    :func:`_rigid_fits`), or None."""
    fits = _rigid_fits(whole)
    if fits is None:
        return None
    return _sizes(whole)[fits].mean(axis=0)


def _about(box: Box, size: np.ndarray) -> bool:
    """``box`` is ``size`` (``(width, height)``) within ``RIGID_SIZE_SLACK`` pixels."""
    return max(abs(box[2] - box[0] - size[0]), abs(box[3] - box[1] - size[1])) <= RIGID_SIZE_SLACK


def _box_around(centre: np.ndarray, size: np.ndarray, width: int, height: int) -> Box:
    """The ``size`` box centred on ``centre``, cut to the ``width`` x ``height`` frame."""
    return (
        float(max(0.0, centre[0] - size[0] / 2)),
        float(max(0.0, centre[1] - size[1] / 2)),
        float(min(width, centre[0] + size[0] / 2)),
        float(min(height, centre[1] + size[1] / 2)),
    )


def _holds(outer: Box, inner: Box, slack: float) -> bool:
    """``inner`` lies within ``outer``, up to ``slack`` pixels out on any side."""
    return all(inner[i] >= outer[i] - slack and inner[i + 2] <= outer[i + 2] + slack for i in (0, 1))


def _expected_centre(anchors: Sequence[Detection], frames: Sequence[int], frame: int) -> np.ndarray | None:
    """Where an object is expected on ``frame`` from its whole detections ``anchors`` (on ``frames``, sorted):
    see :func:`complete_hidden`."""
    k = bisect.bisect_left(frames, frame)
    prev = k - 1 if k > 0 and frame - frames[k - 1] <= HIDDEN_MAX_GAP else None
    nxt = k if k < len(frames) and frames[k] - frame <= HIDDEN_MAX_GAP else None
    if prev is not None and nxt is not None:
        t = (frame - frames[prev]) / max(frames[nxt] - frames[prev], 1)
        return (1 - t) * _centre(anchors[prev].box) + t * _centre(anchors[nxt].box)
    side = prev if prev is not None else nxt
    if side is None:
        return None
    other = side - 1 if side == prev else side + 1  # the next whole detection further on the same side
    vel = np.zeros(2)
    if 0 <= other < len(anchors):
        vel = (_centre(anchors[side].box) - _centre(anchors[other].box)) / (frames[side] - frames[other])
    return _centre(anchors[side].box) + vel * (frame - frames[side])
