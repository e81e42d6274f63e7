"""The object memory of one video: every object's track and the events derived from the tracks.

Built once per video (:func:`build_memory`) from the tracks grounding returns — the same code for the synthetic
world and for real footage — and kept with the conversation; the query tools (:mod:`tools.queries`) answer from it,
so nothing it holds is recomputed per question.

Events (kinds: :data:`tools.schemas.MEMORY_EVENTS`), each with its frame and the objects involved:

* a track is cut into constant-velocity pieces by segmented least squares on its box centres (the penalty per
  piece scales with the track's own noise, estimated from its second differences); between two pieces:
  ``stop`` (moving -> still), ``start_moving`` (still -> moving), ``speed_up`` / ``slow_down`` (same way,
  speed x1.5 or more), else a change of direction: ``bounce`` (off a frame wall: the box at the wall, the
  velocity across it reversed; ``side``), ``collide`` (off another object: its box touches the other's box and
  the other changes direction within ``COLLIDE_FRAMES``; ``other_id``), or ``turn``;
* ``enter`` / ``leave``: a track that starts / ends at a frame edge and is away from it in between (``side``); a
  track that starts or ends at a shot cut neither enters nor leaves — the shot changed;
* ``occluded`` / ``reappear``: a gap inside a track away from the edges;
* ``overtake``: two objects moving the same way, one passes the other (``other_id``: the one passed).

The event frame is where the two pieces meet (the world's event frame: the last frame of the old velocity).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools.schemas import MEMORY_EVENTS, Target

logger = logging.getLogger(__name__)

MIN_PIECE = 3
"""Frames of the shortest constant-velocity piece (shorter ones are noise)."""
BRIEF_STILL_S = 0.3
"""Seconds: a still piece this short between two moving ones is part of one change, not a stop and a start."""
END_PIECE = 2
"""... at either end of a track a piece may be this short (a bounce just before the video ends)."""
STILL_SPEED = 0.35
"""px/frame: at most this slow is still (the world's slowest motion is 0.9 px/frame)."""
STILL_SIZE = 0.01
"""... or at most this fraction of the box's size per frame (large real objects jitter by a few pixels)."""
TURN_DEGREES = 25.0
SPEED_RATIO = 1.5
COLLIDE_FRAMES = 2
WALL_SHARE = 0.2
"""A bounce off a wall turns back a velocity across it of at least this share of the speed (the world's diagonal
motions: 0.71)."""
EDGE_MARGIN = 2.0
"""px: a box this close to a frame edge touches it."""
CUT_REACH = 2
"""Frames: a track starting or ending this close to a shot cut starts or ends with the shot."""
TURNOVER_TRACKS = 3
"""Tracks (ending and starting) at the least for a complete turnover of the objects to count as a cut."""
RELIABLE_SIZE = (0.85, 1.15)
"""A box whose width (height) is outside this share of the object's is not used to fit the motion."""
MIN_NOISE = 0.3
"""px: the smallest noise (box centres on integer pixels) the piece penalty assumes."""


class MemoryEvent(BaseModel):
    """One thing that happens to ``target_id`` at ``frame``."""

    model_config = ConfigDict(frozen=True)

    frame: int = Field(ge=0)
    kind: str
    target_id: int
    other_id: int | None = None
    side: str | None = None

    def model_post_init(self, _context: object) -> None:
        if self.kind not in MEMORY_EVENTS:
            raise ValueError(f"unknown event kind {self.kind!r}; allowed: {MEMORY_EVENTS}")


class Piece(BaseModel):
    """A constant-velocity piece of a track: frames ``start``..``end`` (inclusive), velocity in px/frame."""

    model_config = ConfigDict(frozen=True)

    target_id: int
    start: int
    end: int
    vx: float
    vy: float

    @property
    def speed(self) -> float:
        return math.hypot(self.vx, self.vy)


class ObjectMemory(BaseModel):
    """Tracks and events of one video. ``parts``: [start, end) frames of its shots (one part without cuts)."""

    video: str
    num_frames: int
    fps: float
    width: int
    height: int
    cuts: list[int] = Field(default_factory=list)
    parts: list[tuple[int, int]]
    targets: list[Target]
    pieces: list[Piece] = Field(default_factory=list)
    events: list[MemoryEvent] = Field(default_factory=list)

    def target(self, target_id: int) -> Target:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(
            f"no object #{target_id} in the memory of {self.video}; ids: {[t.id for t in self.targets]}"
        )

    def events_of(self, target_id: int | None = None, kind: str | None = None) -> list[MemoryEvent]:
        """Events in frame order, of one object and/or one kind (``None``: any)."""
        if kind is not None and kind not in MEMORY_EVENTS:
            raise ValueError(f"unknown event kind {kind!r}; allowed: {MEMORY_EVENTS}")
        return [
            e
            for e in self.events
            if (target_id is None or e.target_id == target_id) and (kind is None or e.kind == kind)
        ]

    def pieces_of(self, target_id: int) -> list[Piece]:
        return [p for p in self.pieces if p.target_id == target_id]

    def part_of(self, frame: int) -> int:
        for k, (s, e) in enumerate(self.parts):
            if s <= frame < e:
                return k
        raise ValueError(f"frame {frame} outside the video (0..{self.num_frames - 1})")

    def seconds(self, frame: int) -> float:
        return frame / self.fps

    def summary(self) -> str:
        """One line per object: id, label, frames, events (what an LLM planner reads)."""
        lines = []
        for t in self.targets:
            evs = ", ".join(f"{e.kind}@{e.frame}" for e in self.events_of(t.id))
            lines.append(f"#{t.id} {t.label}: frames {t.span[0]}-{t.span[1]}" + (f"; {evs}" if evs else ""))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------- pieces


def _centres(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


def _noise(c: np.ndarray) -> float:
    """Robust noise of a piecewise-linear path: second differences of a line are 0, of noise var 6 sigma^2."""
    if len(c) < 4:
        return MIN_NOISE
    d2 = np.abs(np.diff(c, n=2, axis=0)).ravel()
    return max(MIN_NOISE, 1.4826 * float(np.median(d2)) / math.sqrt(6.0))


def fit_pieces(
    t: np.ndarray, c: np.ndarray, *, noise: float | None = None
) -> list[tuple[int, int, float, float]]:
    """Segmented least squares of a path ``c`` [n, 2] over frames ``t`` [n] (consecutive): ``(i, j, vx, vy)``
    per piece (indices into ``t``, inclusive), minimising residual + a BIC-like penalty per piece."""
    n = len(t)
    if n < 2:
        return [(0, n - 1, 0.0, 0.0)] if n else []
    sigma = _noise(c) if noise is None else noise
    penalty = max(4.0 * 2.0 * sigma**2 * math.log(n), 2.0)
    tt = t.astype(np.float64)
    # prefix sums for closed-form line fits of x(t) and y(t)
    s1 = np.concatenate([[0.0], np.cumsum(np.ones(n))])
    st = np.concatenate([[0.0], np.cumsum(tt)])
    stt = np.concatenate([[0.0], np.cumsum(tt * tt)])
    sx = np.concatenate([np.zeros((1, 2)), np.cumsum(c, axis=0)])
    sxx = np.concatenate([np.zeros((1, 2)), np.cumsum(c * c, axis=0)])
    stx = np.concatenate([np.zeros((1, 2)), np.cumsum(tt[:, None] * c, axis=0)])

    def costs(j: int) -> tuple[np.ndarray, np.ndarray]:
        """SSE and slopes of pieces [i..j] for every i <= j."""
        i = np.arange(j + 1)
        m = s1[j + 1] - s1[i]
        a = st[j + 1] - st[i]
        aa = stt[j + 1] - stt[i]
        x = sx[j + 1] - sx[i]
        xx = sxx[j + 1] - sxx[i]
        ax = stx[j + 1] - stx[i]
        var_t = aa - a * a / m
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(var_t[:, None] > 1e-12, (ax - a[:, None] * x / m[:, None]) / var_t[:, None], 0.0)
        sse = xx - x * x / m[:, None] - slope * slope * var_t[:, None]
        return np.maximum(sse, 0.0).sum(axis=1), slope

    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    back = np.zeros(n + 1, dtype=int)
    slopes: dict[tuple[int, int], tuple[float, float]] = {}
    min_len = min(MIN_PIECE, n)
    for j in range(n):
        sse, slope = costs(j)
        starts = np.arange(j + 1)
        length = j - starts + 1
        at_end = (starts == 0) | (j == n - 1)
        ok = (length >= min_len) | (at_end & (length >= min(END_PIECE, n)))
        total = np.where(ok, best[: j + 1] + sse + penalty, np.inf)
        i = int(np.argmin(total))
        best[j + 1] = total[i]
        back[j + 1] = i
        slopes[(i, j)] = (float(slope[i, 0]), float(slope[i, 1]))
    out = []
    j = n
    while j > 0:
        i = back[j]
        vx, vy = slopes[(i, j - 1)]
        out.append((i, j - 1, vx, vy))
        j = i
    return out[::-1]


def _runs(boxes: Sequence[object]) -> list[tuple[int, int]]:
    """Inclusive frame runs where a box is present."""
    runs: list[tuple[int, int]] = []
    for f, b in enumerate(boxes):
        if b is None:
            continue
        if runs and runs[-1][1] == f - 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def _still_limit(boxes: Sequence[Sequence[float]]) -> float:
    b = np.asarray(boxes, dtype=np.float64)
    size = float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))
    return max(STILL_SPEED, STILL_SIZE * size)


def full_size(target: Target) -> tuple[float, float]:
    """(width, height) of the whole object: the median box size where no frame edge cuts it (the largest box
    seen when an edge always does)."""
    frame = _Frame(target.width, target.height)
    seen = [b for b in target.boxes if b is not None]
    whole = [b for b in seen if frame.inside(b)]
    if whole:
        return float(np.median([b[2] - b[0] for b in whole])), float(np.median([b[3] - b[1] for b in whole]))
    if not seen:
        return 0.0, 0.0
    return max(b[2] - b[0] for b in seen), max(b[3] - b[1] for b in seen)


def cut_sides(box: Sequence[float], size: tuple[float, float], width: int, height: int) -> list[str]:
    """The frame edges that cut ``box`` (the box is at that edge and smaller than the whole object)."""
    w, h = size
    out = []
    if box[0] <= 0 and box[2] - box[0] < w - 1:
        out.append("left")
    if box[2] >= width and box[2] - box[0] < w - 1:
        out.append("right")
    if box[1] <= 0 and box[3] - box[1] < h - 1:
        out.append("top")
    if box[3] >= height and box[3] - box[1] < h - 1:
        out.append("bottom")
    return out


def track_centres(target: Target, *, reliable: bool = False) -> np.ndarray:
    """Box centres [T, 2] (NaN where no box); a box cut by a frame edge is centred from its uncut side and the
    object's :func:`full_size`, so entering and leaving objects do not seem to slow down.

    ``reliable``: also NaN where the box is much smaller or larger than the object across an edge that does not
    cut it (partly hidden behind another object, or merged with one): its centre says little about the motion."""
    out = np.full((len(target.boxes), 2), np.nan)
    w, h = full_size(target)
    for f, b in enumerate(target.boxes):
        if b is None:
            continue
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        cut = cut_sides(b, (w, h), target.width, target.height)
        if reliable and (
            (
                not {"left", "right"} & set(cut)
                and not RELIABLE_SIZE[0] * w <= b[2] - b[0] <= RELIABLE_SIZE[1] * w
            )
            or (
                not {"top", "bottom"} & set(cut)
                and not RELIABLE_SIZE[0] * h <= b[3] - b[1] <= RELIABLE_SIZE[1] * h
            )
        ):
            continue
        if "left" in cut and "right" not in cut:
            cx = b[2] - w / 2
        elif "right" in cut and "left" not in cut:
            cx = b[0] + w / 2
        if "top" in cut and "bottom" not in cut:
            cy = b[3] - h / 2
        elif "bottom" in cut and "top" not in cut:
            cy = b[1] + h / 2
        out[f] = (cx, cy)
    return out


def track_pieces(target: Target) -> list[Piece]:
    """The constant-velocity pieces of ``target`` (each run of consecutive boxes on its own), fitted to the
    frames whose box is reliable (:func:`track_centres`; all of the run's frames when fewer than 3 are)."""
    out = []
    reliable = track_centres(target, reliable=True)
    every = track_centres(target)
    for a, b in _runs(target.boxes):
        frames = np.arange(a, b + 1)
        ok = ~np.isnan(reliable[a : b + 1, 0])
        centres = reliable if ok.sum() >= MIN_PIECE else every
        t = frames[ok] if ok.sum() >= MIN_PIECE else frames
        for i, j, vx, vy in fit_pieces(t, centres[t]):
            out.append(Piece(target_id=target.id, start=int(t[i]), end=int(t[j]), vx=vx, vy=vy))
    return _merge_similar(out, target)


def _contiguous(a: Piece, b: Piece, target: Target) -> bool:
    """Whether ``b`` follows ``a`` with the object seen on every frame between them."""
    return b.start > a.end and all(target.boxes[f] is not None for f in range(a.end, b.start + 1))


def _merge_similar(pieces: list[Piece], target: Target) -> list[Piece]:
    """Adjacent pieces with no event between them (same state, same way, similar speed) become one."""
    out: list[Piece] = []
    for p in pieces:
        if out and _contiguous(out[-1], p, target) and _change(out[-1], p, target) is None:
            q = out[-1]
            n1, n2 = q.end - q.start + 1, p.end - p.start + 1
            out[-1] = Piece(
                target_id=p.target_id,
                start=q.start,
                end=p.end,
                vx=(q.vx * n1 + p.vx * n2) / (n1 + n2),
                vy=(q.vy * n1 + p.vy * n2) / (n1 + n2),
            )
        else:
            out.append(p)
    return out


def _transitions(
    ps: list[Piece], target: Target, fps: float, frame: _Frame
) -> list[tuple[Piece, Piece, int]]:
    """(before, after, frame) of each change between contiguous pieces. A still piece shorter than
    ``BRIEF_STILL_S`` between two moving ones is no stop and start but part of one change (a bounce in a corner,
    a turn back): the change is from the piece before it to the piece after it, where the first two meet. So is
    a moving piece that short between two changes of direction that add up to a bounce off a wall of ``frame``
    (the boxes at the wall, cut by it, bend the path twice): the change is where the pieces before and after it
    meet. (Two quick turns away from the walls stay two.)"""
    brief = max(MIN_PIECE, round(BRIEF_STILL_S * fps))
    out = []
    i = 0
    while i < len(ps) - 1:
        a, m = ps[i], ps[i + 1]
        if not _contiguous(a, m, target):
            i += 1
            continue  # a gap: occlusion events come from the visibility
        if i + 2 < len(ps):
            b = ps[i + 2]
            short_still = m.end - m.start + 1 <= brief and _change(a, m, target) == "stop"
            if short_still and _contiguous(m, b, target) and _change(m, b, target) == "start_moving":
                out.append((a, b, _meet(a, m, target)))
                i += 2
                continue
            if _bends_into_bounce(a, m, b, target, brief, frame):
                out.append((a, b, _meet(a, b, target)))
                i += 2
                continue
        out.append((a, m, _meet(a, m, target)))
        i += 1
    return out


def _bends_into_bounce(a: Piece, m: Piece, b: Piece, target: Target, brief: int, frame: _Frame) -> bool:
    """Whether a short piece ``m`` (at most ``brief`` frames) between ``a`` and ``b`` is two bends of one bounce:
    neither bend turns back the velocity across a wall, both together do (a bounce in a corner is two bounces,
    each off its wall, and stays two)."""
    if m.end - m.start + 1 > brief or not _contiguous(m, b, target):
        return False
    if not _change(a, m, target) == _change(m, b, target) == "direction":
        return False
    for p, q in ((a, m), (m, b)):
        if _wall(p, q, target.boxes[_meet(p, q, target)], frame) is not None:  # type: ignore[arg-type]
            return False
    return _wall(a, b, target.boxes[_meet(a, b, target)], frame) is not None  # type: ignore[arg-type]


def _change(a: Piece, b: Piece, target: Target) -> str | None:
    """The kind of change between consecutive pieces: stop, start_moving, speed_up, slow_down, direction, None."""
    limit = _still_limit([bx for bx in target.boxes if bx is not None])
    moving_a, moving_b = a.speed > limit, b.speed > limit
    if moving_a and not moving_b:
        return "stop"
    if moving_b and not moving_a:
        return "start_moving"
    if not moving_a:
        return None
    cos = (a.vx * b.vx + a.vy * b.vy) / (a.speed * b.speed)
    if cos < math.cos(math.radians(TURN_DEGREES)):
        return "direction"
    if b.speed >= SPEED_RATIO * a.speed:
        return "speed_up"
    if a.speed >= SPEED_RATIO * b.speed:
        return "slow_down"
    return None


def _meet(a: Piece, b: Piece, target: Target) -> int:
    """The frame where two consecutive pieces meet (the vertex of the path): the frame of a's end or b's start
    whose box centre both lines explain best."""
    centres = track_centres(target)
    ca, cb = centres[a.end], centres[b.start]
    best, best_err = a.end, math.inf
    for f in range(max(a.start, a.end - 1), min(b.end, b.start + 1) + 1):
        c = centres[f]
        if np.isnan(c[0]):
            continue
        pa = ca + np.array([a.vx, a.vy]) * (f - a.end)
        pb = cb + np.array([b.vx, b.vy]) * (f - b.start)
        err = float(np.hypot(*(c - pa)) + np.hypot(*(c - pb)))
        if err < best_err - 1e-9:
            best, best_err = f, err
    return best


# ------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int

    def touches(self, box: Sequence[float]) -> list[str]:
        sides = []
        if box[0] <= EDGE_MARGIN:
            sides.append("left")
        if box[2] >= self.width - 1 - EDGE_MARGIN:
            sides.append("right")
        if box[1] <= EDGE_MARGIN:
            sides.append("top")
        if box[3] >= self.height - 1 - EDGE_MARGIN:
            sides.append("bottom")
        return sides

    def inside(self, box: Sequence[float]) -> bool:
        """Whole inside the frame (no side cut by an edge; boxes have exclusive right/bottom edges)."""
        return box[0] > 0 and box[1] > 0 and box[2] < self.width and box[3] < self.height


def _wall(a: Piece, b: Piece, box: Sequence[float], frame: _Frame) -> str | None:
    """The wall ``box`` bounced off: it touches that wall and the velocity across it turned back."""
    near = frame.touches(box)
    touching = set(near)
    # the step that would have crossed the wall, and the margin around a drawn shape inside its extent
    pad = max(abs(a.vx), abs(a.vy)) + 1.0 + 0.5 * min(box[2] - box[0], box[3] - box[1])
    near += [
        s
        for s, d in (
            ("left", box[0]),
            ("right", frame.width - 1 - box[2]),
            ("top", box[1]),
            ("bottom", frame.height - 1 - box[3]),
        )
        if d <= pad and s not in near
    ]
    # the velocity across the wall turned back: a share of each piece's speed, not a sign of noise (a sideways
    # piece fitted to sub-pixel centres has a cross velocity of a few thousandths of a pixel, either sign)
    ea, eb = WALL_SHARE * a.speed, WALL_SHARE * b.speed
    # a wall turns back only the velocity across it: an object not touching it whose velocity along the wall
    # turned back too turned around by itself near the wall (unless in a corner, where the other wall turns that
    # part back); one touching it bounced (and turned at once)
    along_back = {
        "x": a.vx * b.vx < 0 and abs(a.vx) > ea and abs(b.vx) > eb,
        "y": a.vy * b.vy < 0 and abs(a.vy) > ea and abs(b.vy) > eb,
    }
    corner_x = "left" if a.vx < 0 else "right"
    corner_y = "top" if a.vy < 0 else "bottom"
    for side in near:
        if side not in touching and side in ("left", "right") and along_back["y"] and corner_y not in near:
            continue
        if side not in touching and side in ("top", "bottom") and along_back["x"] and corner_x not in near:
            continue
        if side == "left" and a.vx < -ea and b.vx > eb:
            return side
        if side == "right" and a.vx > ea and b.vx < -eb:
            return side
        if side == "top" and a.vy < -ea and b.vy > eb:
            return side
        if side == "bottom" and a.vy > ea and b.vy < -eb:
            return side
    return None


def _gap(p: Sequence[float], q: Sequence[float]) -> float:
    """Distance between two boxes (0 when they overlap)."""
    dx = max(0.0, max(p[0], q[0]) - min(p[2], q[2]))
    dy = max(0.0, max(p[1], q[1]) - min(p[3], q[3]))
    return math.hypot(dx, dy)


def turnover_cuts(targets: Sequence[Target], num_frames: int, min_tracks: int = TURNOVER_TRACKS) -> list[int]:
    """Frames where the objects turn over completely — no track runs across the frame, tracks end just before it
    and others start at it (within ``CUT_REACH`` frames: a blank frame or a late first detection), ``min_tracks``
    or more in all: a scene change the colour-histogram cut detector can miss (two shots of the same place)."""
    spans = [t.span for t in targets if any(b is not None for b in t.boxes)]
    out: list[int] = []
    for c in range(1, num_frames):
        if out and c - out[-1] <= CUT_REACH:
            continue
        if any(s0 < c <= s1 for s0, s1 in spans):
            continue  # an object seen before and after: the same scene
        ends = [s for s in spans if c - 1 - CUT_REACH <= s[1] <= c - 1]
        starts = [s for s in spans if c <= s[0] <= c + CUT_REACH]
        if ends and starts and len(ends) + len(starts) >= min_tracks:
            out.append(c)
    return out


def _shot_bounds(cuts: Sequence[int], num_frames: int) -> list[tuple[int, int]]:
    edges = [0, *sorted(c for c in cuts if 0 < c < num_frames), num_frames]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def build_memory(
    video: str,
    targets: Sequence[Target],
    *,
    num_frames: int,
    fps: float,
    width: int,
    height: int,
    cuts: Sequence[int] = (),
    parts: Sequence[tuple[int, int]] | None = None,
) -> ObjectMemory:
    """The memory of ``video`` from its objects' tracks (``cuts``: first frames of its shots after the first;
    ``parts``: [start, end) ranges, default the shots)."""
    if fps <= 0:
        raise ValueError(f"fps={fps} must be > 0")
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        raise ValueError(f"target ids must be unique, got {ids}")
    frame = _Frame(width, height)
    cut_set = set(cuts) | {c for c in turnover_cuts(targets, num_frames) if not near_cut(cuts, c)}
    pieces: dict[int, list[Piece]] = {t.id: track_pieces(t) for t in targets}
    events: list[MemoryEvent] = []
    turns: list[tuple[Target, Piece, Piece, int]] = []  # direction changes not explained by a wall
    for t in targets:
        seen = _visibility(t, frame, num_frames, cut_set)
        entered = {e.side for e in seen if e.kind == "enter"}
        for a, b, f in _transitions(pieces[t.id], t, fps, frame):
            kind = _change(a, b, t)
            if kind is None:
                continue
            if kind != "direction":
                events.append(MemoryEvent(frame=f, kind=kind, target_id=t.id))
                continue
            side = _wall(a, b, t.boxes[f], frame)
            if (
                side is not None
                and side in entered
                and a is pieces[t.id][0]
                and a.end - a.start + 1 < MIN_PIECE
            ):
                continue  # a bounce off the side it came in through, right after: its entering boxes, not a motion
            if side is not None:
                events.append(MemoryEvent(frame=f, kind="bounce", target_id=t.id, side=side))
            else:
                turns.append((t, a, b, f))
        events += seen
    events += _collisions(turns)
    events += _overtakes(targets, pieces)
    events.sort(key=lambda e: (e.frame, e.target_id, e.kind))
    shots = _shot_bounds(sorted(cut_set), num_frames)
    return ObjectMemory(
        video=video,
        num_frames=num_frames,
        fps=fps,
        width=width,
        height=height,
        cuts=sorted(c for c in cut_set if 0 < c < num_frames),
        parts=list(parts) if parts is not None else shots,
        targets=list(targets),
        pieces=[p for t in targets for p in pieces[t.id]],
        events=events,
    )


FIRST_SLACK = 1
"""Frames the first piece may start after its track for :func:`first_motions` to say what the object does first."""
DIRECTION_MARGIN = 10.0
"""Degrees from the boundary of two directions within which :func:`first_motions` allows both."""
STILL_MARGIN = 1.5
"""A first piece between STILL_SPEED / STILL_MARGIN and STILL_SPEED * STILL_MARGIN may be called still or moving."""
COMPASS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
"""The 8 directions of a velocity (image y down), 45 degrees each, as the synthetic world names them."""


def _sector(vx: float, vy: float) -> tuple[int, float]:
    """The :data:`COMPASS` index of a velocity in image coordinates (y down) and how many degrees (0-45) it lies
    past that direction's sector's lower (clockwise) boundary."""
    shifted = (math.degrees(math.atan2(-vy, vx)) + 22.5) % 360.0
    return int(shifted // 45.0), shifted % 45.0


def compass(vx: float, vy: float) -> str:
    """The nearest of the 8 :data:`COMPASS` directions of a velocity ``(vx, vy)`` in px/frame (y down)."""
    return COMPASS[_sector(vx, vy)[0]]


def first_motions(memory: ObjectMemory, target_id: int) -> tuple[str, ...]:
    """What the object may be said to do first, the nearest first: ``("enter:<side>",)`` when it enters on its
    first frame, else by its first piece ``"still"`` (slower than :data:`STILL_SPEED`) or ``"move:<direction>"``
    (:func:`compass`); an object touching an edge on the video's first frame may be said to enter or to do what
    its first piece does. Two names where the measure lies near the line between them: the velocity's angle within
    :data:`DIRECTION_MARGIN` degrees of the boundary of two directions, or its speed within a factor
    :data:`STILL_MARGIN` of :data:`STILL_SPEED` (still or moving). ``()`` (unknown) when the track has no piece or
    its first piece starts more than :data:`FIRST_SLACK` frames after the track (the boxes before it were left out
    of the fit: the object hidden or merged with another). The terms of :func:`tools.claims.first_motion_claim`,
    so a caption's first claim can be checked against the track."""
    start = memory.target(target_id).span[0]
    enter = next((e for e in memory.events_of(target_id, "enter") if e.frame <= start + 1), None)
    pieces = memory.pieces_of(target_id)
    if enter is not None and (enter.frame > 0 or not pieces or pieces[0].start > start + FIRST_SLACK):
        return (f"enter:{enter.side}",)
    if not pieces or pieces[0].start > start + FIRST_SLACK:
        return ()
    if enter is not None:  # at the video's first frame, touching an edge: entering, or moving from there
        return (f"enter:{enter.side}", *_piece_motions(pieces[0]))
    return _piece_motions(pieces[0])


def _piece_motions(p: Piece) -> tuple[str, ...]:
    """What a first piece may be said to do: its nearest name, and the neighbour it lies near (see
    :func:`first_motions`)."""
    sector, offset = _sector(p.vx, p.vy)  # offset: degrees past the lower boundary; 45 - offset to the upper
    moving = f"move:{COMPASS[sector]}"
    if p.speed < STILL_SPEED:
        return ("still", moving) if p.speed * STILL_MARGIN >= STILL_SPEED else ("still",)
    names = [moving]
    if offset < DIRECTION_MARGIN:
        names.append(f"move:{COMPASS[(sector - 1) % 8]}")
    elif 45.0 - offset < DIRECTION_MARGIN:
        names.append(f"move:{COMPASS[(sector + 1) % 8]}")
    if p.speed <= STILL_SPEED * STILL_MARGIN:
        names.append("still")
    return tuple(names)


def first_motion(memory: ObjectMemory, target_id: int) -> str | None:
    """The nearest of :func:`first_motions` (``None``: unknown)."""
    names = first_motions(memory, target_id)
    return names[0] if names else None


def near_cut(cuts: Sequence[int] | set[int], frame: int, reach: int = CUT_REACH) -> bool:
    """Whether a shot cut is within ``reach`` frames of ``frame`` (a track may end a frame or two off the cut)."""
    return any(abs(frame - c) <= reach for c in cuts)


def _visibility(t: Target, frame: _Frame, num_frames: int, cuts: set[int]) -> list[MemoryEvent]:
    """enter / leave through an edge that cuts the box, occluded / reappear inside the frame."""
    runs = _runs(t.boxes)
    if not runs:
        return []
    out = []
    size = full_size(t)
    inside = any(frame.inside(b) for b in t.boxes if b is not None)
    first, last = runs[0][0], runs[-1][1]
    start_sides = cut_sides(t.boxes[first], size, frame.width, frame.height)
    if first > 0 and not start_sides:
        start_sides = frame.touches(t.boxes[first])  # appeared at an edge
    if inside and start_sides and not near_cut(cuts, first):
        out.append(MemoryEvent(frame=first, kind="enter", target_id=t.id, side=start_sides[0]))
    end_sides = cut_sides(t.boxes[last], size, frame.width, frame.height) or frame.touches(t.boxes[last])
    if inside and end_sides and last < num_frames - 1 and not near_cut(cuts, last + 1):
        out.append(MemoryEvent(frame=last + 1, kind="leave", target_id=t.id, side=end_sides[0]))
    for (_, e), (s, _) in zip(runs, runs[1:], strict=False):
        if frame.touches(t.boxes[e]) or frame.touches(t.boxes[s]):
            continue  # out of the frame and back: not an occlusion
        out.append(MemoryEvent(frame=e + 1, kind="occluded", target_id=t.id))
        out.append(MemoryEvent(frame=s, kind="reappear", target_id=t.id))
    return out


def _collisions(turns: list[tuple[Target, Piece, Piece, int]]) -> list[MemoryEvent]:
    """Direction changes of two objects at about the same frame, their boxes (nearly) touching and their
    relative velocity turned back: the two collide with each other (pairs matched one to one, closest first);
    the other direction changes are turns."""
    pairs = []
    for k, (t, a, b, f) in enumerate(turns):
        for m in range(k + 1, len(turns)):
            u, ua, ub, g = turns[m]
            if u.id == t.id or abs(f - g) > COLLIDE_FRAMES:
                continue
            bt, bu = t.box_at(f), u.box_at(f) or u.box_at(g)
            if bt is None or bu is None:
                continue
            before = (a.vx - ua.vx, a.vy - ua.vy)
            after = (b.vx - ub.vx, b.vy - ub.vy)
            if before[0] * after[0] + before[1] * after[1] >= 0:
                continue  # they did not push each other back
            d = _gap(bt, bu)
            if d <= a.speed + ua.speed + EDGE_MARGIN + 1.0:
                pairs.append((abs(f - g), d, k, m))
    partner: dict[int, int] = {}
    for _df, _d, k, m in sorted(pairs):
        if k not in partner and m not in partner:
            partner[k], partner[m] = m, k
    out = []
    for k, (t, _a, _b, f) in enumerate(turns):
        if k in partner:
            out.append(MemoryEvent(frame=f, kind="collide", target_id=t.id, other_id=turns[partner[k]][0].id))
        else:
            out.append(MemoryEvent(frame=f, kind="turn", target_id=t.id))
    return out


def _motion_arrays(target: Target, pieces: list[Piece], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of ``n``: box centre [n, 2], piece velocity [n, 2] (NaN where no box or no piece), box size."""
    boxes = np.full((n, 4), np.nan)
    for f, b in enumerate(target.boxes):
        if b is not None:
            boxes[f] = b
    vel = np.full((n, 2), np.nan)
    for p in pieces:
        vel[p.start : p.end + 1] = (p.vx, p.vy)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return centres, vel, size


def _overtakes(targets: Sequence[Target], pieces: dict[int, list[Piece]]) -> list[MemoryEvent]:
    """A passes B: both move the same way (cos >= 0.8), A faster, and A's position along that way goes from
    behind B's to ahead of it on consecutive frames, with the two no further apart across the way than their
    sizes."""
    n = max((len(t.boxes) for t in targets), default=0)
    arrays = {t.id: _motion_arrays(t, pieces[t.id], n) for t in targets}
    out = []
    for a in targets:
        ca, va, size_a = arrays[a.id]
        sa = np.hypot(va[:, 0], va[:, 1])
        for b in targets:
            if a.id == b.id:
                continue
            cb, vb, size_b = arrays[b.id]
            sb = np.hypot(vb[:, 0], vb[:, 1])
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = (va * vb).sum(axis=1) / (sa * sb)
                ok = (sa > STILL_SPEED) & (sb > STILL_SPEED) & (sa > sb) & (cos >= 0.8)
                ok &= np.isfinite(ca).all(axis=1) & np.isfinite(cb).all(axis=1)
                u = va / sa[:, None]
                d = ca - cb
                along = (d * u).sum(axis=1)
                across = np.abs(-d[:, 0] * u[:, 1] + d[:, 1] * u[:, 0])
                size = np.maximum(size_a, size_b)
                passed = ok[1:] & ok[:-1] & (along[:-1] < 0) & (along[1:] >= 0) & (across[1:] <= size[1:])
            for f in np.flatnonzero(passed) + 1:
                out.append(MemoryEvent(frame=int(f), kind="overtake", target_id=a.id, other_id=b.id))
    return out


__all__ = [
    "MemoryEvent",
    "ObjectMemory",
    "Piece",
    "build_memory",
    "compass",
    "first_motion",
    "first_motions",
    "cut_sides",
    "fit_pieces",
    "full_size",
    "near_cut",
    "track_centres",
    "track_pieces",
    "turnover_cuts",
]
