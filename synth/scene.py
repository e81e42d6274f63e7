"""Scene planning: which object does what (behaviours, interactions), as initial states and controls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.motion import CARDINAL, DIRECTIONS, FAST_SPEED, OPPOSITE, SLOW_SPEED, Body, direction_vector

BEHAVIOURS: tuple[str, ...] = (
    "still",
    "move",
    "move_stop",
    "start_move",
    "turn_back",
    "turn",
    "speed_up",
    "slow_down",
    "bounce",
    "enter",
    "leave",
)
_WEIGHTS = np.array([0.7, 1.2, 1.0, 0.8, 0.8, 0.8, 0.7, 0.6, 1.0, 0.8, 0.8])
_PERPENDICULAR = {
    "right": ("up", "down"),
    "left": ("up", "down"),
    "up": ("left", "right"),
    "down": ("left", "right"),
    "up-right": ("up-left", "down-right"),
    "down-left": ("up-left", "down-right"),
    "up-left": ("up-right", "down-left"),
    "down-right": ("up-right", "down-left"),
}


@dataclass
class ScenePlan:
    bodies: list[Body]
    behaviours: list[str]
    collide_pairs: tuple[tuple[int, int], ...]
    follow: tuple[tuple[int, int, int], ...]  # (follower, leader, lag in frames)


def _speed(rng: np.random.Generator, fast: bool | None = None) -> float:
    if fast is None:
        fast = bool(rng.integers(2))
    lo, hi = FAST_SPEED if fast else SLOW_SPEED
    return round(float(rng.uniform(lo, hi)), 3)


def _inside_pos(ext: tuple, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    left, top, right, bottom = ext
    return np.array([float(rng.integers(left, width - right)), float(rng.integers(top, height - bottom))])


def _frame_at(rng: np.random.Generator, num_frames: int, lo: float = 0.3, hi: float = 0.65) -> int:
    return int(rng.integers(int(lo * num_frames), max(int(lo * num_frames) + 1, int(hi * num_frames))))


def _solo(
    behaviour: str, ext: tuple, num_frames: int, width: int, height: int, rng: np.random.Generator
) -> Body:
    """Initial state and controls of an object that acts alone."""
    pos = _inside_pos(ext, width, height, rng)
    dname = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
    speed = _speed(rng)
    vel = direction_vector(dname, speed)
    body = Body(ext=ext, pos=pos, vel=vel)
    t = _frame_at(rng, num_frames)
    if behaviour == "still":
        body.vel = np.zeros(2)
    elif behaviour == "move_stop":
        body.controls[t] = ("stop",)
    elif behaviour == "start_move":
        body.vel = np.zeros(2)
        body.controls[t] = ("start_moving", tuple(vel))
    elif behaviour == "turn_back":
        body.controls[t] = ("turn_back",)
    elif behaviour == "turn":
        new = _PERPENDICULAR[dname][int(rng.integers(2))]
        body.controls[t] = ("turn", tuple(direction_vector(new, speed)))
    elif behaviour == "speed_up":
        body.vel = direction_vector(dname, _speed(rng, fast=False))
        body.controls[t] = ("speed", 2.4)
    elif behaviour == "slow_down":
        body.vel = direction_vector(dname, _speed(rng, fast=True))
        body.controls[t] = ("speed", 0.4)
    elif behaviour == "bounce":
        dname = CARDINAL[int(rng.integers(4))]
        speed = _speed(rng, fast=True)
        body.vel = direction_vector(dname, speed)
        travel = speed * _frame_at(rng, num_frames, 0.25, 0.55)
        left, top, right, bottom = ext
        if dname == "right":
            body.pos[0] = max(left, width - 1 - right - travel)
        elif dname == "left":
            body.pos[0] = min(width - 1 - right, left + travel)
        elif dname == "down":
            body.pos[1] = max(top, height - 1 - bottom - travel)
        else:
            body.pos[1] = min(height - 1 - bottom, top + travel)
    elif behaviour == "enter":
        _plan_enter(body, num_frames, width, height, rng)
    elif behaviour == "leave":
        _plan_leave(body, num_frames, width, height, rng)
    elif behaviour != "move":
        raise ValueError(f"unknown behaviour {behaviour!r}; allowed: {BEHAVIOURS}")
    return body


def _plan_enter(body: Body, num_frames: int, width: int, height: int, rng: np.random.Generator) -> None:
    side = CARDINAL[int(rng.integers(4))]  # the edge it comes in through
    speed = _speed(rng, fast=True)
    left, top, right, bottom = body.ext
    outside = speed * float(rng.integers(0, max(1, num_frames // 6)))
    if side == "left":
        body.pos[0], dname = -right - 1 - outside, "right"
    elif side == "right":
        body.pos[0], dname = width + left + outside, "left"
    elif side == "top":
        body.pos[1], dname = -bottom - 1 - outside, "down"
    else:
        body.pos[1], dname = height + top + outside, "up"
    body.vel = direction_vector(dname, speed)
    body.walls, body.walls_when_inside = False, True


def _plan_leave(body: Body, num_frames: int, width: int, height: int, rng: np.random.Generator) -> None:
    dname = CARDINAL[int(rng.integers(4))]  # the way it goes out
    speed = _speed(rng, fast=True)
    left, top, right, bottom = body.ext
    travel = speed * _frame_at(rng, num_frames, 0.45, 0.8)  # until fully outside
    if dname == "right":
        body.pos[0] = max(left, width + left - travel)
    elif dname == "left":
        body.pos[0] = min(width - 1 - right, -right - 1 + travel)
    elif dname == "down":
        body.pos[1] = max(top, height + top - travel)
    else:
        body.pos[1] = min(height - 1 - bottom, -bottom - 1 + travel)
    body.vel = direction_vector(dname, speed)
    body.walls = False


def _plan_collision(
    ea: tuple, eb: tuple, num_frames: int, width: int, height: int, rng
) -> tuple[Body, Body] | None:
    """Two objects on one line heading for each other, meeting at about a third to half of the clip."""
    horizontal = bool(rng.integers(2))
    va, vb = _speed(rng), _speed(rng)
    tc = _frame_at(rng, num_frames, 0.3, 0.5)
    gap = (va + vb) * tc
    if horizontal:
        span = ea[0] + ea[2] + eb[0] + eb[2] + gap + 2
        if span > width - 4:
            return None
        x0 = float(rng.uniform(ea[0], width - 1 - (span - ea[0])))
        lo, hi = max(ea[1], eb[1]), height - 1 - max(ea[3], eb[3])
        y = float(rng.integers(lo, hi))
        pa = np.array([x0, y])
        pb = np.array([x0 + ea[2] + gap + eb[0] + 2, y])
        return (
            Body(ext=ea, pos=pa, vel=direction_vector("right", va)),
            Body(ext=eb, pos=pb, vel=direction_vector("left", vb)),
        )
    span = ea[1] + ea[3] + eb[1] + eb[3] + gap + 2
    if span > height - 4:
        return None
    y0 = float(rng.uniform(ea[1], height - 1 - (span - ea[1])))
    lo, hi = max(ea[0], eb[0]), width - 1 - max(ea[2], eb[2])
    x = float(rng.integers(lo, hi))
    pa = np.array([x, y0])
    pb = np.array([x, y0 + ea[3] + gap + eb[1] + 2])
    return (
        Body(ext=ea, pos=pa, vel=direction_vector("down", va)),
        Body(ext=eb, pos=pb, vel=direction_vector("up", vb)),
    )


def _plan_follow(
    ea: tuple, eb: tuple, num_frames: int, width: int, height: int, rng
) -> tuple[Body, int] | None:
    """A leader body whose path, replayed ``lag`` frames later, keeps the follower inside the frame."""
    ext = tuple(max(a, b) for a, b in zip(ea, eb, strict=True))
    lag = int(rng.integers(5, 9))
    speed = _speed(rng, fast=True)
    reach = max(ea[0] + eb[2], ea[1] + eb[3], ea[2] + eb[0], ea[3] + eb[1]) + 3
    if speed * lag < reach:
        speed = reach / lag
    for _ in range(30):
        dname = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
        vel = direction_vector(dname, speed)
        pos = _inside_pos(ext, width, height, rng)
        start = pos - vel * lag
        if ext[0] <= start[0] <= width - 1 - ext[2] and ext[1] <= start[1] <= height - 1 - ext[3]:
            body = Body(ext=ext, pos=pos, vel=vel)
            if rng.integers(2):
                new = _PERPENDICULAR[dname][int(rng.integers(2))]
                body.controls[_frame_at(rng, num_frames)] = ("turn", tuple(direction_vector(new, speed)))
            return body, lag
    return None


def plan_scene(
    exts: list[tuple[int, int, int, int]],
    num_frames: int,
    width: int,
    height: int,
    rng: np.random.Generator,
    *,
    interactions: bool = True,
) -> ScenePlan:
    """Assign behaviours (and at most one collision and one follow pair) to ``len(exts)`` objects."""
    n = len(exts)
    bodies: list[Body | None] = [None] * n
    behaviours = [""] * n
    collide: list[tuple[int, int]] = []
    follow: list[tuple[int, int, int]] = []
    free = list(range(n))
    if interactions and n >= 2 and rng.random() < 0.3:
        a, b = free[0], free[1]
        pair = _plan_collision(exts[a], exts[b], num_frames, width, height, rng)
        if pair is not None:
            bodies[a], bodies[b] = pair
            behaviours[a] = behaviours[b] = "collide"
            collide.append((a, b))
            free = free[2:]
    if interactions and len(free) >= 2 and rng.random() < 0.25:
        leader, follower = free[0], free[1]
        res = _plan_follow(exts[leader], exts[follower], num_frames, width, height, rng)
        if res is not None:
            bodies[leader], lag = res
            bodies[follower] = Body(ext=exts[follower], pos=np.zeros(2), vel=np.zeros(2), walls=False)
            behaviours[leader], behaviours[follower] = "lead", "follow"
            follow.append((follower, leader, lag))
            free = free[2:]
    probs = _WEIGHTS / _WEIGHTS.sum()
    for i in free:
        behaviours[i] = BEHAVIOURS[int(rng.choice(len(BEHAVIOURS), p=probs))]
        bodies[i] = _solo(behaviours[i], exts[i], num_frames, width, height, rng)
    assert all(b is not None for b in bodies)
    return ScenePlan([b for b in bodies if b is not None], behaviours, tuple(collide), tuple(follow))


__all__ = ["BEHAVIOURS", "OPPOSITE", "ScenePlan", "plan_scene"]
