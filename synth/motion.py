"""Kinematics of the synthetic world: piecewise-constant velocities, walls, collisions and summaries.

The velocity ``v[t]`` is the step from frame ``t`` to ``t + 1``; controls, collisions and wall bounces
change it *before* the step, so ``pos[t + 1] - pos[t] == v[t]`` exactly and a trajectory is a list of
segments of constant velocity, each opened by the event that caused it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_S = 1.0 / math.sqrt(2.0)
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up-right": (_S, -_S),
    "up-left": (-_S, -_S),
    "down-right": (_S, _S),
    "down-left": (-_S, _S),
}
CARDINAL: tuple[str, ...] = ("right", "left", "up", "down")
OPPOSITE: dict[str, str] = {
    "right": "left",
    "left": "right",
    "up": "down",
    "down": "up",
    "up-right": "down-left",
    "down-left": "up-right",
    "up-left": "down-right",
    "down-right": "up-left",
}
SLOW_SPEED = (0.9, 1.4)
FAST_SPEED = (2.5, 3.4)
SPEED_THRESHOLD = 1.95  # px/frame between "slowly" and "quickly"
EVENT_KINDS: tuple[str, ...] = (
    "stop",
    "start_moving",
    "turn_back",
    "turn",
    "speed_up",
    "slow_down",
    "bounce",
    "collide",
    "enter",
    "leave",
)


@dataclass(frozen=True)
class MotionEvent:
    """Something that happened to one object at ``frame`` (``other``: object id; ``side``: wall/edge)."""

    frame: int
    kind: str
    other: int | None = None
    side: str | None = None


@dataclass(frozen=True)
class MotionSegment:
    """Constant velocity from frame ``start`` to frame ``end`` (positions at both ends, ``start < end``)."""

    start: int
    end: int
    direction: str | None  # one of DIRECTIONS, None when still
    speed: float  # px / frame
    cause: str  # "begin" or an EVENT_KINDS entry

    @property
    def moving(self) -> bool:
        return self.direction is not None

    @property
    def speed_label(self) -> str | None:
        if self.direction is None:
            return None
        return "quickly" if self.speed > SPEED_THRESHOLD else "slowly"


@dataclass
class Body:
    """Simulation state of one object. ``ext`` = (left, top, right, bottom) pixel extents from centre."""

    ext: tuple[int, int, int, int]
    pos: np.ndarray
    vel: np.ndarray
    walls: bool = True
    walls_when_inside: bool = False  # enable the walls once fully inside (objects entering the frame)
    controls: dict[int, tuple] = field(default_factory=dict)


def direction_vector(name: str, speed: float) -> np.ndarray:
    if name not in DIRECTIONS:
        raise ValueError(f"unknown direction {name!r}; allowed: {tuple(DIRECTIONS)}")
    return np.array(DIRECTIONS[name], dtype=np.float64) * float(speed)


def direction_name(vel: np.ndarray) -> str | None:
    """The 8-way name of a velocity (image y points down), None when still."""
    if float(np.hypot(vel[0], vel[1])) < 1e-9:
        return None
    ang = math.degrees(math.atan2(-vel[1], vel[0])) % 360.0
    names = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
    return names[int(((ang + 22.5) % 360.0) // 45.0)]


def fully_inside(pos: np.ndarray, ext: tuple[int, int, int, int], width: int, height: int) -> bool:
    left, top, right, bottom = ext
    return (
        pos[0] - left >= 0
        and pos[0] + right <= width - 1
        and pos[1] - top >= 0
        and pos[1] + bottom <= height - 1
    )


def _boxes_touch(pa: np.ndarray, ea: tuple, pb: np.ndarray, eb: tuple, margin: float = 1.0) -> bool:
    return (
        pa[0] - ea[0] <= pb[0] + eb[2] + margin
        and pb[0] - eb[0] <= pa[0] + ea[2] + margin
        and pa[1] - ea[1] <= pb[1] + eb[3] + margin
        and pb[1] - eb[1] <= pa[1] + ea[3] + margin
    )


def _apply_control(body: Body, control: tuple) -> str:
    kind = control[0]
    if kind == "stop":
        body.vel = np.zeros(2)
    elif kind in ("start_moving", "turn"):
        body.vel = np.array(control[1], dtype=np.float64)
    elif kind == "turn_back":
        body.vel = -body.vel
    elif kind == "speed":
        body.vel = body.vel * float(control[1])
        kind = "speed_up" if control[1] > 1.0 else "slow_down"
    else:
        raise ValueError(f"unknown control {kind!r}; allowed: stop, start_moving, turn, turn_back, speed")
    return kind


def simulate(
    bodies: list[Body],
    num_frames: int,
    width: int,
    height: int,
    collide_pairs: tuple[tuple[int, int], ...] = (),
) -> tuple[np.ndarray, list[list[MotionEvent]]]:
    """Integrate all bodies; return positions [N, T, 2] (x, y) and each body's events."""
    n = len(bodies)
    pos = np.zeros((n, num_frames, 2), dtype=np.float64)
    events: list[list[MotionEvent]] = [[] for _ in range(n)]
    for t in range(num_frames):
        for i, b in enumerate(bodies):
            pos[i, t] = b.pos
            if b.walls_when_inside and fully_inside(b.pos, b.ext, width, height):
                b.walls, b.walls_when_inside = True, False
            if t in b.controls:
                events[i].append(MotionEvent(t, _apply_control(b, b.controls[t])))
        if t == num_frames - 1:
            break
        for a, c in collide_pairs:
            ba, bc = bodies[a], bodies[c]
            approaching = float(np.dot(bc.pos - ba.pos, ba.vel - bc.vel)) > 0
            if approaching and _boxes_touch(ba.pos + ba.vel, ba.ext, bc.pos + bc.vel, bc.ext):
                ba.vel, bc.vel = -ba.vel, -bc.vel
                events[a].append(MotionEvent(t, "collide", other=c))
                events[c].append(MotionEvent(t, "collide", other=a))
        for i, b in enumerate(bodies):
            if b.walls:
                nxt = b.pos + b.vel
                left, top, right, bottom = b.ext
                if nxt[0] - left < 0 or nxt[0] + right > width - 1:
                    side = "left" if nxt[0] - left < 0 else "right"
                    b.vel = np.array([-b.vel[0], b.vel[1]])
                    events[i].append(MotionEvent(t, "bounce", side=side))
                if nxt[1] - top < 0 or nxt[1] + bottom > height - 1:
                    side = "top" if nxt[1] - top < 0 else "bottom"
                    b.vel = np.array([b.vel[0], -b.vel[1]])
                    events[i].append(MotionEvent(t, "bounce", side=side))
            b.pos = b.pos + b.vel
    return pos, events


def velocity_changes(positions: np.ndarray) -> list[int]:
    """Frames t >= 1 where the step t -> t+1 differs from the step t-1 -> t."""
    steps = np.diff(positions, axis=0)  # [T-1, 2]
    changed = np.abs(np.diff(steps, axis=0)).max(axis=1) > 1e-6 if len(steps) > 1 else np.zeros(0, bool)
    return [int(i) + 1 for i in np.flatnonzero(changed)]


def summarise(positions: np.ndarray, events: list[MotionEvent]) -> list[MotionSegment]:
    """Split a trajectory [T, 2] into constant-velocity segments labelled by the event that opened them."""
    steps = np.diff(positions, axis=0)  # [T-1, 2]
    if len(steps) == 0:
        return []
    bounds = [0, *velocity_changes(positions), len(positions) - 1]
    priority = {
        k: i
        for i, k in enumerate(
            ("collide", "bounce", "turn_back", "turn", "stop", "start_moving", "speed_up", "slow_down")
        )
    }
    segments = []
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        at = sorted(
            (ev for ev in events if ev.frame == s and ev.kind in priority), key=lambda ev: priority[ev.kind]
        )
        cause = "begin" if s == 0 else (at[0].kind if at else "turn")
        v = steps[s]
        segments.append(MotionSegment(s, e, direction_name(v), round(float(np.hypot(v[0], v[1])), 4), cause))
    return segments


def keep_effective(events: list[MotionEvent], positions: np.ndarray) -> list[MotionEvent]:
    """Drop kinematic events that did not change the velocity (e.g. a turn-back cancelled by a bounce)."""
    changes = set(velocity_changes(positions))
    kinematic = {"stop", "start_moving", "turn_back", "turn", "speed_up", "slow_down", "bounce", "collide"}
    return [ev for ev in events if ev.kind not in kinematic or ev.frame in changes]
