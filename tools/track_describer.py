"""``TrackDescriber``: a weight-free, honest describer for real footage, from the track and the pixels.

It says only what it measures (README "Which describer answers"), in short sentences with times in seconds:

* **what**: the class label when one is known (grounding's label, or ``label=`` given), else "object"; the
  dominant colour of the centre of the key box (HSV: the most common hue bin of the saturated pixels when at least
  :data:`CHROMA_SHARE` of them are saturated, else black / gray / white from the median brightness);
* **where**: the key box centre's third of the frame (left / centre / right, top / middle / bottom) on the key
  frame, with its time;
* **how it moves**: the box centre's displacement over windows of :data:`WINDOW_S` seconds, in box widths per
  second (the track's median box width): below :data:`STILL_SPEED` it is still; the direction is the dominant
  axis (``right``, ``left``, ``up``, ``down``, or two when the other axis is at least half of it); speed words per
  run: "slowly" below :data:`SLOW_SPEED`, none up to :data:`FAST_SPEED`, "quickly" from it. Windows of one kind
  form runs; runs shorter than :data:`MIN_RUN_S` join their longer neighbour. A still run between moves is a
  stop; a change of direction is a turn ("turns back" when opposite). Run boundaries are good to about half
  a window (one frame at 10 fps, two or three at 25 fps). Motion is measured in the frame (camera
  motion included) and never across a shot cut;
* **when**: enters / leaves the frame (first / last box within :data:`BORDER_PX` of a border, on the side it
  touches; for a moving object only a border its motion points to (comes from) counts; a border touched on :data:`ALWAYS_SHARE` of its frames does not
  count: the object is larger than the frame that way), else appears / disappears; when its first (last) frame
  starts (ends) a shot, it is in view when the shot begins (until it ends); out-of-sight intervals inside its
  span;
* **shots**: given the cuts (first frames of new shots), in which shots it is visible.

Deterministic: no randomness, no model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from artemis_model.types import Box, Description, Track
from tools.describers import DEFAULT_QUESTION
from tools.grounding.offline import achromatic_name, hue_name
from tools.segment import video_cuts
from tools.video import SubVideo, VideoLike

logger = logging.getLogger(__name__)


WINDOW_S = 0.2
"""Seconds per motion window (at least one frame)."""
STILL_SPEED = 0.25
"""Box widths per second below which a window is still."""
SLOW_SPEED = 1.0
"""Box widths per second below which a moving run is 'slowly'."""
FAST_SPEED = 3.0
"""Box widths per second from which a moving run is 'quickly'."""
MIN_RUN_S = 0.4
"""Runs shorter than this (seconds) join a neighbour (noise, not a stop or a turn)."""
BORDER_PX = 2.0
"""A box within this many pixels of a border touches it."""
ALWAYS_SHARE = 0.9
"""A border the box touches on this share of its visible frames is no side to enter or leave by."""
CHROMA_SHARE = 0.3
"""Share of saturated pixels in the box centre needed to name a hue."""

OPPOSITE = {"right": "left", "left": "right", "up": "down", "down": "up"}


@dataclass(frozen=True)
class MotionRun:
    """Frames ``[start, end]`` (inclusive) of one kind of motion: ``direction`` None is still."""

    start: int
    end: int
    direction: str | None
    speed: float
    """Mean speed in box widths per second."""


@dataclass(frozen=True)
class TrackFacts:
    """What :class:`TrackDescriber` measured; :func:`phrase` turns it into sentences."""

    noun: str
    colour: str | None
    position: str
    key_frame: int
    runs: tuple[MotionRun, ...]
    enters: tuple[str | None, int] | None
    """``(side, frame)`` of the first visible frame when after frame 0 (side None: it appears; 'shot': it is
    there when a shot begins)."""
    leaves: tuple[str | None, int] | None
    """``(side, frame)`` of the first frame after the last visible one, when before the end (side None: it
    disappears; 'shot': its shot ends)."""
    hidden: tuple[tuple[int, int], ...]
    """``[first hidden frame, frame it is back)`` intervals inside its span."""
    shots: tuple[int, ...] | None
    """1-based shots where it is visible (None: cuts unknown)."""
    num_shots: int | None
    fps: float
    offset: int = 0
    """Frames before frame 0 of the described video (a segment of a longer one): times are absolute."""


def dominant_colour(frame: np.ndarray, box: Box) -> str | None:
    """Colour name of the centre half of ``box`` on ``frame`` (RGB): a hue name when at least
    :data:`CHROMA_SHARE` of its pixels are saturated, else black / gray / white; None for an empty crop."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
    xa, ya = max(0, int(cx - bw)), max(0, int(cy - bh))
    xb, yb = min(w, int(math.ceil(cx + bw))), min(h, int(math.ceil(cy + bh)))
    crop = frame[ya:yb, xa:xb]
    if crop.size == 0:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    chroma = (hsv[:, 1] >= 90) & (hsv[:, 2] >= 70)
    if chroma.mean() >= CHROMA_SHARE:
        names = [hue_name(float(v)) for v in hsv[chroma, 0]]
        values, counts = np.unique(names, return_counts=True)
        return str(values[np.argmax(counts)])
    return achromatic_name(float(np.median(hsv[:, 2])))


def frame_position(box: Box, width: int, height: int) -> str:
    """'on the left', 'at the top right', 'in the centre', ... from the box centre's third of the frame."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col = ("left", "centre", "right")[min(2, int(3 * cx / width))]
    row = ("top", "middle", "bottom")[min(2, int(3 * cy / height))]
    if row == "middle":
        return "in the centre" if col == "centre" else f"on the {col}"
    return f"at the {row}" if col == "centre" else f"at the {row} {col}"


def _direction(dx: float, dy: float) -> str:
    horiz = "right" if dx > 0 else "left"
    vert = "down" if dy > 0 else "up"
    if abs(dx) >= abs(dy):
        return horiz if abs(dy) < 0.5 * abs(dx) else f"{horiz} and {vert}"
    return vert if abs(dx) < 0.5 * abs(dy) else f"{vert} and {horiz}"


def _main_axis(direction: str) -> str:
    return direction.split(" and ")[0]


def motion_runs(track: Track, fps: float, cuts: Sequence[int] = ()) -> tuple[MotionRun, ...]:
    """The track's motion as runs of one kind (see the module docstring for the windows and thresholds)."""
    if fps <= 0:
        raise ValueError(f"fps={fps} must be > 0 to measure speeds")
    vis = track.visible_frames
    if len(vis) < 2:
        return ()
    widths = [track.boxes[i][2] - track.boxes[i][0] for i in vis]  # type: ignore[index]
    unit = max(float(np.median(widths)), 1.0)
    step = max(1, round(WINDOW_S * fps))
    cut_set = set(cuts)
    windows: list[tuple[int, int, str | None, float]] = []
    for a in vis:
        b = a + step
        if b >= track.num_frames or track.boxes[b] is None or any(c in cut_set for c in range(a + 1, b + 1)):
            continue
        if any(track.boxes[f] is None for f in range(a, b + 1)):
            continue
        ba, bb = track.boxes[a], track.boxes[b]
        dx = (bb[0] + bb[2] - ba[0] - ba[2]) / 2  # type: ignore[index]
        dy = (bb[1] + bb[3] - ba[1] - ba[3]) / 2  # type: ignore[index]
        speed = math.hypot(dx, dy) / unit / (step / fps)
        windows.append((a, b, None if speed < STILL_SPEED else _direction(dx, dy), speed))
    if not windows:
        return ()

    def touch(r: list, q: list) -> bool:
        """Runs ``r`` and ``q`` overlap or are adjacent, with no cut between them."""
        first, second = (r, q) if r[0] <= q[0] else (q, r)
        return _touch(r, q) and not any(first[1] < c <= second[0] for c in cut_set)

    # runs of one kind over contiguous frames
    runs: list[list] = []
    for a, b, kind, speed in windows:
        if runs and runs[-1][2] == kind and touch(runs[-1], [a, b]):
            runs[-1][1] = max(runs[-1][1], b)
            runs[-1][3].append(speed)
        else:
            runs.append([a, b, kind, [speed]])
    min_len = MIN_RUN_S * fps
    changed = True
    while changed and len(runs) > 1:
        changed = False
        for k, run in enumerate(runs):
            if run[1] - run[0] >= min_len:
                continue
            nbrs = [j for j in (k - 1, k + 1) if 0 <= j < len(runs) and touch(runs[j], run)]
            if not nbrs:
                continue
            j = max(nbrs, key=lambda j: (runs[j][1] - runs[j][0], -j))
            runs[j][0], runs[j][1] = min(runs[j][0], run[0]), max(runs[j][1], run[1])
            del runs[k]
            changed = True
            break
        # neighbours of one kind that now touch become one run
        k = 0
        while k + 1 < len(runs):
            if runs[k][2] == runs[k + 1][2] and touch(runs[k], runs[k + 1]):
                runs[k][1] = runs[k + 1][1]
                runs[k][3] += runs[k + 1][3]
                del runs[k + 1]
                changed = True
            else:
                k += 1
    # contiguous runs share one boundary: a still window is exact (nothing moved inside it), a moving one may
    # hold a still part, so a still run keeps its own ends; between two moves, the middle of their overlap
    for r, q in zip(runs, runs[1:], strict=False):
        if not touch(r, q):
            continue
        if r[2] is None:
            q[0] = r[1]
        elif q[2] is None:
            r[1] = q[0]
        else:
            r[1] = q[0] = (r[1] + q[0]) // 2
    return tuple(MotionRun(a, b, kind, float(np.mean(s))) for a, b, kind, s in runs)


def _touch(a: list, b: list) -> bool:
    """Frame ranges ``a`` and ``b`` (``[start, end, ...]``) overlap or are adjacent."""
    return a[1] >= b[0] - 1 and b[1] >= a[0] - 1


def _border_side(
    box: Box, width: int, height: int, towards: tuple[str, ...] | None, always: frozenset[str] = frozenset()
) -> str | None:
    """The border ``box`` touches, ignoring the ``always`` touched ones. For a moving object (``towards``: the
    borders its motion points to) only those count: a box lost at another border is not said to cross it."""
    sides = [
        side
        for side, touching in (
            ("left", box[0] <= BORDER_PX),
            ("right", box[2] >= width - BORDER_PX),
            ("top", box[1] <= BORDER_PX),
            ("bottom", box[3] >= height - BORDER_PX),
        )
        if touching and side not in always
    ]
    if towards is not None:
        return next((side for side in towards if side in sides), None)
    return sides[0] if len(sides) == 1 else None


def _always_touched(track: Track) -> frozenset[str]:
    """Borders the box touches on at least :data:`ALWAYS_SHARE` of its visible frames (it is larger than the
    frame that way: touching them says nothing about entering or leaving)."""
    vis = [track.boxes[i] for i in track.visible_frames]
    tests = {
        "left": lambda b: b[0] <= BORDER_PX,
        "right": lambda b: b[2] >= track.width - BORDER_PX,
        "top": lambda b: b[1] <= BORDER_PX,
        "bottom": lambda b: b[3] >= track.height - BORDER_PX,
    }
    return frozenset(s for s, t in tests.items() if sum(map(t, vis)) >= ALWAYS_SHARE * len(vis))


_SIDE_OF = {"right": "right", "left": "left", "up": "top", "down": "bottom"}


def _sides(direction: str | None, *, opposite: bool = False) -> tuple[str, ...]:
    """The borders a ``direction`` ('right', 'up and left', ...) points to (``opposite``: comes from)."""
    axes = (direction or "").split(" and ")
    return tuple(_SIDE_OF[OPPOSITE[a] if opposite else a] for a in axes if a in _SIDE_OF)


def track_facts(
    track: Track,
    *,
    fps: float,
    key: tuple[int, Box],
    frame: np.ndarray | None,
    label: str | None = None,
    cuts: Sequence[int] | None = None,
    offset: int = 0,
) -> TrackFacts:
    """Everything :class:`TrackDescriber` says about ``track``, measured. ``key``: the key ``(frame, box)``;
    ``frame``: its pixels (None: no colour); ``cuts``: first frames of new shots (None: shots unknown)."""
    vis = track.visible_frames
    if not vis:
        raise ValueError("the track is visible on no frame: nothing to describe")
    bad = [c for c in cuts or () if not 0 < c < track.num_frames]
    if bad:
        raise ValueError(f"cuts {bad} must lie in 1..{track.num_frames - 1} (first frames of new shots)")
    frame_idx, box = key
    runs = motion_runs(track, fps, cuts or ())
    moving = [r for r in runs if r.direction is not None]
    first, last = vis[0], vis[-1]
    enters = leaves = None
    always = _always_touched(track)
    starts = set(cuts or ())
    if first > 0:
        if first in starts:
            enters = ("shot", first)
        else:
            towards = _sides(moving[0].direction, opposite=True) if moving else None
            enters = (_border_side(track.boxes[first], track.width, track.height, towards, always), first)  # type: ignore[arg-type]
    if last < track.num_frames - 1:
        if last + 1 in starts:
            leaves = ("shot", last + 1)
        else:
            towards = _sides(moving[-1].direction) if moving else None
            leaves = (_border_side(track.boxes[last], track.width, track.height, towards, always), last + 1)  # type: ignore[arg-type]
    hidden = []
    for a, b in zip(vis, vis[1:], strict=False):
        if b > a + 1:
            hidden.append((a + 1, b))
    shots = num_shots = None
    if cuts is not None:
        bounds = [0, *sorted(set(cuts)), track.num_frames]
        num_shots = len(bounds) - 1
        shots = tuple(k + 1 for k in range(num_shots) if any(bounds[k] <= f < bounds[k + 1] for f in vis))
    return TrackFacts(
        noun=label.strip() if label and label.strip() else "object",
        colour=dominant_colour(frame, box) if frame is not None else None,
        position=frame_position(box, track.width, track.height),
        key_frame=frame_idx,
        runs=runs,
        enters=enters,
        leaves=leaves,
        hidden=tuple(hidden),
        shots=shots,
        num_shots=num_shots,
        fps=fps,
        offset=offset,
    )


def _t(frame: int, fps: float) -> str:
    return f"{frame / fps:.1f} s"


def _at(facts: TrackFacts, frame: int) -> str:
    return _t(frame + facts.offset, facts.fps)


def _dur(run: MotionRun, fps: float) -> str:
    return f"{(run.end - run.start) / fps:.1f} s"


def _speed_word(speed: float) -> str:
    if speed < SLOW_SPEED:
        return " slowly"
    return " quickly" if speed >= FAST_SPEED else ""


def phrase(facts: TrackFacts) -> str:
    """Short natural sentences from ``facts`` (only what was measured)."""
    fps = facts.fps
    named = facts.colour is None or facts.colour in facts.noun.lower().split()
    noun = facts.noun if named else f"{facts.noun} in {facts.colour}"
    head = f"The {noun}, {facts.position} at {_at(facts, facts.key_frame)},"
    clauses: list[str] = []
    last_dir: str | None = None
    for k, run in enumerate(facts.runs):
        # after a gap (out of sight, or a cut) nothing is known of what happened in between: no stop, no turn
        after_gap = k > 0 and facts.runs[k - 1].end < run.start
        if after_gap:
            last_dir = None
        if run.direction is None:
            still = "stays still" if k == 0 or after_gap else "stops"
            clauses.append(f"{'later ' if after_gap else ''}{still} for {_dur(run, fps)}")
            continue
        move = f"moves {run.direction}{_speed_word(run.speed)} for {_dur(run, fps)}"
        if last_dir is not None and run.direction != last_dir:
            back = OPPOSITE.get(_main_axis(last_dir)) == _main_axis(run.direction)
            move = ("turns back and " if back else "turns and ") + move
        clauses.append(("later " if after_gap else "") + move)
        last_dir = run.direction
    if not clauses:
        body = "is seen too briefly to measure its motion"
    elif len(clauses) == 1:
        body = clauses[0]
    else:
        body = ", ".join(clauses[:-1]) + ", then " + clauses[-1]
    sentences = [f"{head} {body} in the frame." if facts.runs else f"{head} {body}."]
    if facts.enters is not None:
        side, f = facts.enters
        if side == "shot":
            sentences.append(f"It is in view when a new shot begins at {_at(facts, f)}.")
        elif side:
            sentences.append(f"It enters the frame from the {side} at {_at(facts, f)}.")
        else:
            sentences.append(f"It appears at {_at(facts, f)}.")
    for a, b in facts.hidden:
        sentences.append(f"It is out of sight from {_at(facts, a)} to {_at(facts, b)}.")
    if facts.leaves is not None:
        side, f = facts.leaves
        if side == "shot":
            sentences.append(f"It is in view until the shot ends at {_at(facts, f)}.")
        elif side:
            sentences.append(f"It leaves the frame on the {side} at {_at(facts, f)}.")
        else:
            sentences.append(f"It disappears at {_at(facts, f)}.")
    if facts.shots is not None and facts.num_shots is not None and facts.num_shots > 1:
        listed = " and ".join(
            [", ".join(map(str, facts.shots[:-1])), str(facts.shots[-1])]
            if len(facts.shots) > 1
            else [str(facts.shots[0])]
        )
        word = "shot" if len(facts.shots) == 1 else "shots"
        sentences.append(f"It is seen in {word} {listed} of the video's {facts.num_shots} shots.")
    return " ".join(sentences)


Tracker = Callable[..., Track]
CutFinder = Callable[[VideoLike], Sequence[int]]


class TrackDescriber:
    """The honest weight-free describer for real footage (module docstring: what it says and its thresholds).

    ``tracker(video, box, frame_idx=...)`` makes the track when none is given (default ``tools.track.track``);
    ``cuts(video)`` gives the first frames of new shots (default: :func:`tools.segment.video_cuts`, computed once per opened video; ``None`` for a finder
    that knows no cuts leaves shots unsaid); ``label``: the class name when every call describes one kind.
    """

    name = "track"

    def __init__(
        self,
        tracker: Tracker | None = None,
        cuts: CutFinder | None = None,
        *,
        label: str | None = None,
    ) -> None:
        self.tracker = tracker
        self.cuts = cuts if cuts is not None else video_cuts
        self.label = label

    def __call__(
        self,
        video: VideoLike,
        box: Box,
        *,
        frame_idx: int,
        question: str | None,
        track: Track | None = None,
        label: str | None = None,
    ) -> Description:
        return self.describe_many(
            video,
            [box],
            frame_idxs=[frame_idx],
            question=question,
            tracks=[track] if track is not None else None,
            labels=[label] if label is not None else None,
        )[0]

    def describe_many(
        self,
        video: VideoLike,
        boxes: list[Box],
        *,
        frame_idxs: list[int],
        question: str | None,
        tracks: Sequence[Track | None] | None = None,
        labels: Sequence[str | None] | None = None,
    ) -> list[Description]:
        """One description per box; ``tracks`` / ``labels`` (one per box) when already known."""
        n = len(boxes)
        for name, seq in (("frame_idxs", frame_idxs), ("tracks", tracks), ("labels", labels)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries for {n} boxes")
        cuts = self.cuts(video)
        frames = video.get_frames(sorted(set(frame_idxs))) if n else []
        by_frame = dict(zip(sorted(set(frame_idxs)), frames, strict=True))
        out = []
        for k, (box, f) in enumerate(zip(boxes, frame_idxs, strict=True)):
            trk = tracks[k] if tracks is not None else None
            if trk is None:
                from tools.track import track as default_track

                trk = (self.tracker or default_track)(video, box, frame_idx=f)
            label = (labels[k] if labels is not None else None) or self.label
            facts = track_facts(
                trk,
                fps=float(video.fps),
                key=(f, tuple(box)),
                frame=by_frame[f],
                label=label,
                cuts=cuts,
                offset=int(getattr(video, "start", 0)) if isinstance(video, SubVideo) else 0,
            )
            vis = trk.visible_frames
            out.append(
                Description(
                    answer=phrase(facts),
                    question=question or DEFAULT_QUESTION,
                    frame_idx=f,
                    box=tuple(box),
                    track=trk,
                    selected_frames=tuple([f] + [v for v in vis[:: max(1, len(vis) // 4)] if v != f][:4]),
                )
            )
        return out
