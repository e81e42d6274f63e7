"""The synthetic referring world: 2D clips of coloured shapes with exact per-frame truth.

``generate_clip(seed)`` is a pure function of its arguments: one ``numpy.random.Generator(seed)`` is
threaded through scene planning, backgrounds and motion, so the same seed gives byte-identical truth
(``clip.truth_json()``) and identical frames.

Boxes are ``xyxy`` pixels of the frame with an exclusive right/bottom edge (a box covers the pixels
``x1 <= x < x2``, ``y1 <= y < y2``): the tight box of the object's whole shape clipped to the frame,
including parts hidden behind other objects. A box is ``None`` (``[]`` in JSON) on frames where no pixel
of the object is visible (outside the frame or fully occluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from synth import render
from synth.motion import MotionEvent, MotionSegment, keep_effective, simulate, summarise
from synth.scene import plan_scene

DEFAULT_WIDTH = 160
DEFAULT_HEIGHT = 120
DEFAULT_FPS = 10
FRAMES_RANGE = (20, 40)  # 2-4 s at 10 fps


@dataclass(frozen=True)
class ObjectTruth:
    """Everything true about one object of a clip."""

    id: int
    colour: str
    shape: str
    size: str
    rgb: tuple[int, int, int]
    radius: int
    z: int
    behaviour: str
    boxes: tuple[tuple[int, int, int, int] | None, ...]
    visible: tuple[float, ...]  # visible pixels / shape pixels, per frame
    in_frame: tuple[float, ...]  # shape pixels inside the frame / shape pixels, per frame
    centres: tuple[tuple[float, float], ...]
    segments: tuple[MotionSegment, ...]
    events: tuple[MotionEvent, ...]
    follows: int | None = None

    @property
    def name(self) -> str:
        """Full description, unique within a clip: e.g. "large red circle"."""
        return f"{self.size} {self.colour} {self.shape}"

    def box_at(self, frame_idx: int) -> tuple[int, int, int, int] | None:
        return self.boxes[frame_idx]

    @property
    def visible_frames(self) -> list[int]:
        return [t for t, b in enumerate(self.boxes) if b is not None]

    @property
    def mean_speed(self) -> float:
        """Path length / number of steps (px per frame)."""
        c = np.asarray(self.centres)
        return float(np.hypot(*np.diff(c, axis=0).T).sum() / max(1, len(c) - 1))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "colour": self.colour,
            "shape": self.shape,
            "size": self.size,
            "rgb": list(self.rgb),
            "radius": self.radius,
            "z": self.z,
            "behaviour": self.behaviour,
            "follows": self.follows,
            "boxes": [list(b) if b is not None else [] for b in self.boxes],
            "visible": [round(v, 4) for v in self.visible],
            "in_frame": [round(v, 4) for v in self.in_frame],
            "centres": [[round(x, 3), round(y, 3)] for x, y in self.centres],
            "segments": [
                {"start": s.start, "end": s.end, "direction": s.direction, "speed": s.speed, "cause": s.cause}
                for s in self.segments
            ],
            "events": [
                {"frame": e.frame, "kind": e.kind, "other": e.other, "side": e.side} for e in self.events
            ],
        }


@dataclass(frozen=True)
class Clip:
    """A rendered clip: frames [T, H, W, 3] uint8 RGB plus the truth of every object."""

    seed: int
    fps: int
    frames: np.ndarray
    objects: tuple[ObjectTruth, ...]
    background: str
    texture: str
    interactions: tuple[dict, ...] = field(default_factory=tuple)
    parts: tuple[tuple[int, int], ...] = ()  # [start, end) frame ranges of concatenated clips

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    def object(self, object_id: int) -> ObjectTruth:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"no object {object_id}; ids: {[o.id for o in self.objects]}")

    def truth(self) -> dict:
        return {
            "seed": self.seed,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "num_frames": self.num_frames,
            "background": self.background,
            "texture": self.texture,
            "interactions": [dict(i) for i in self.interactions],
            "parts": [list(p) for p in self.parts] or [[0, self.num_frames]],
            "objects": [o.to_dict() for o in self.objects],
        }

    def truth_json(self) -> str:
        """Canonical JSON of the truth (sorted keys, rounded floats): byte-identical for equal seeds."""
        return json.dumps(self.truth(), sort_keys=True, separators=(",", ":"))


def _mask_extents(mask: np.ndarray) -> tuple[int, int, int, int]:
    r = mask.shape[0] // 2
    ys, xs = np.nonzero(mask)
    return (r - int(xs.min()), r - int(ys.min()), int(xs.max()) - r, int(ys.max()) - r)


def generate_clip(
    seed: int,
    *,
    num_objects: int | None = None,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    num_frames: int | None = None,
    fps: int = DEFAULT_FPS,
    background: str | None = None,
    interactions: bool = True,
) -> Clip:
    """Generate one clip. ``num_objects`` in [1, 6] (default 2-5), ``num_frames`` default 20-40,
    ``background`` "plain" | "textured" | None (random). Width and height must be even (yuv420p)."""
    if width % 2 or height % 2 or width < 48 or height < 48:
        raise ValueError(f"width and height must be even and >= 48, got {width}x{height}")
    if num_objects is not None and not 1 <= num_objects <= 6:
        raise ValueError(f"num_objects must be in [1, 6], got {num_objects}")
    if num_frames is not None and num_frames < 8:
        raise ValueError(f"num_frames must be >= 8, got {num_frames}")
    if background is not None and background not in render.BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; allowed: {render.BACKGROUNDS}")
    rng = np.random.Generator(np.random.PCG64(seed))
    n_obj = int(rng.integers(2, 6)) if num_objects is None else num_objects
    n_frames = int(rng.integers(FRAMES_RANGE[0], FRAMES_RANGE[1] + 1)) if num_frames is None else num_frames
    bg_kind = render.BACKGROUNDS[int(rng.integers(2))] if background is None else background
    bg, texture = render.make_background(bg_kind, width, height, rng)

    attrs: list[tuple[str, str, str]] = []
    while len(attrs) < n_obj:
        a = (
            render.COLOURS[int(rng.integers(len(render.COLOURS)))],
            render.SHAPES[int(rng.integers(len(render.SHAPES)))],
            render.SIZES[int(rng.integers(len(render.SIZES)))],
        )
        if a not in attrs:
            attrs.append(a)
    masks = [render.shape_mask(s, render.size_radius(z, width, height)) for _, s, z in attrs]
    exts = [_mask_extents(m) for m in masks]
    plan = plan_scene(exts, n_frames, width, height, rng, interactions=interactions)
    pos, events = simulate(plan.bodies, n_frames, width, height, plan.collide_pairs)
    for follower, leader, lag in plan.follow:
        pos[follower] = _follow_path(pos[leader], lag)
        events[follower] = [
            MotionEvent(e.frame + lag, e.kind, e.other, e.side)
            for e in events[leader]
            if e.frame + lag < n_frames
        ]
    z_order = [int(v) for v in rng.permutation(n_obj)]

    centres = np.round(pos).astype(np.int64)  # [N, T, 2]
    frames = np.repeat(bg[None], n_frames, axis=0)  # [H, W, 3] -> [T, H, W, 3]
    boxes: list[list] = [[] for _ in range(n_obj)]
    vis = np.zeros((n_obj, n_frames))
    inf = np.zeros((n_obj, n_frames))
    areas = [int(m.sum()) for m in masks]
    by_z = sorted(range(n_obj), key=lambda i: z_order[i])
    for t in range(n_frames):
        places = [
            render.place_mask(masks[i], int(centres[i, t, 0]), int(centres[i, t, 1]), width, height)
            for i in range(n_obj)
        ]
        covered = np.zeros((height, width), dtype=bool)
        for i in reversed(by_z):  # top-most first
            p = places[i]
            if p is None:
                boxes[i].append(None)
                continue
            full = np.zeros((height, width), dtype=bool)
            full[p.ys, p.xs] = p.mask
            visible = full & ~covered
            covered |= full
            inf[i, t] = p.mask.sum() / areas[i]
            vis[i, t] = visible.sum() / areas[i]
            ys, xs = np.nonzero(full)
            boxes[i].append(
                (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
                if visible.any()
                else None
            )
        for i in by_z:  # bottom-most first
            p = places[i]
            if p is not None:
                frames[t, p.ys, p.xs][p.mask] = render.PALETTE[attrs[i][0]]

    objects = []
    for i, (colour, shape, size) in enumerate(attrs):
        evs = keep_effective(events[i], pos[i]) + _visibility_events(inf[i], pos[i], width, height)
        evs.sort(key=lambda e: (e.frame, e.kind))
        objects.append(
            ObjectTruth(
                id=i,
                colour=colour,
                shape=shape,
                size=size,
                rgb=render.PALETTE[colour],
                radius=masks[i].shape[0] // 2,
                z=z_order[i],
                behaviour=plan.behaviours[i],
                boxes=tuple(boxes[i]),
                visible=tuple(float(v) for v in vis[i]),
                in_frame=tuple(float(v) for v in inf[i]),
                centres=tuple((float(x), float(y)) for x, y in pos[i]),
                segments=tuple(summarise(pos[i], events[i])),
                events=tuple(evs),
                follows=next((ld for f, ld, _ in plan.follow if f == i), None),
            )
        )
    inter = [{"kind": "collide", "a": a, "b": b} for a, b in plan.collide_pairs]
    inter += [{"kind": "follow", "follower": f, "leader": ld, "lag": lag} for f, ld, lag in plan.follow]
    return Clip(seed, fps, frames, tuple(objects), bg_kind, texture, tuple(inter))


def _follow_path(leader: np.ndarray, lag: int) -> np.ndarray:
    """Follower centres [T, 2]: the leader's centre ``lag`` frames earlier, extrapolated before frame 0."""
    t = np.arange(len(leader))
    out = leader[np.clip(t - lag, 0, None)].copy()
    v0 = leader[1] - leader[0]
    early = t < lag
    out[early] = leader[0] - v0[None, :] * (lag - t[early])[:, None]
    return out


def _visibility_events(in_frame: np.ndarray, pos: np.ndarray, width: int, height: int) -> list[MotionEvent]:
    """ "enter" when an object starting (partly) outside becomes fully inside; "leave" when it ends outside."""
    evs = []
    if in_frame[0] < 1.0 and (in_frame == 1.0).any():
        t = int(np.flatnonzero(in_frame > 0)[0])
        evs.append(MotionEvent(t, "enter", side=_edge(pos[0], width, height)))
    if in_frame[-1] == 0.0 and (in_frame == 1.0).any():
        t = int(np.flatnonzero(in_frame > 0)[-1]) + 1
        evs.append(MotionEvent(min(t, len(in_frame) - 1), "leave", side=_edge(pos[-1], width, height)))
    return evs


def _edge(p: np.ndarray, width: int, height: int) -> str:
    """The frame edge nearest to (or beyond) a point."""
    d = {"left": p[0], "right": width - 1 - p[0], "top": p[1], "bottom": height - 1 - p[1]}
    return min(d, key=lambda k: d[k])


def concat_clips(clips: list[Clip], seed: int | None = None) -> Clip:
    """One long clip made of ``clips`` one after the other (scene cuts); object ids are renumbered in
    order and each object is absent (box None) outside its own part. ``clip.parts`` gives the ranges."""
    if not clips:
        raise ValueError("concat_clips needs at least one clip")
    shapes = {(c.width, c.height, c.fps) for c in clips}
    if len(shapes) != 1:
        raise ValueError(f"clips differ in width/height/fps: {sorted(shapes)}")
    total = sum(c.num_frames for c in clips)
    objects, inter, parts, offset, next_id = [], [], [], 0, 0
    for c in clips:
        before, after = offset, total - offset - c.num_frames
        remap = {o.id: next_id + k for k, o in enumerate(c.objects)}
        for o in c.objects:
            first, last = o.centres[0], o.centres[-1]
            objects.append(
                ObjectTruth(
                    id=remap[o.id],
                    colour=o.colour,
                    shape=o.shape,
                    size=o.size,
                    rgb=o.rgb,
                    radius=o.radius,
                    z=o.z,
                    behaviour=o.behaviour,
                    boxes=(None,) * before + o.boxes + (None,) * after,
                    visible=(0.0,) * before + o.visible + (0.0,) * after,
                    in_frame=(0.0,) * before + o.in_frame + (0.0,) * after,
                    centres=(first,) * before + o.centres + (last,) * after,
                    segments=tuple(
                        MotionSegment(s.start + offset, s.end + offset, s.direction, s.speed, s.cause)
                        for s in o.segments
                    ),
                    events=tuple(
                        MotionEvent(
                            e.frame + offset,
                            e.kind,
                            remap.get(e.other) if e.other is not None else None,
                            e.side,
                        )
                        for e in o.events
                    ),
                    follows=remap[o.follows] if o.follows is not None else None,
                )
            )
        for i in c.interactions:
            inter.append(
                {k: (remap[v] if k in ("a", "b", "follower", "leader") else v) for k, v in i.items()}
            )
        parts.append((offset, offset + c.num_frames))
        offset += c.num_frames
        next_id += len(c.objects)
    frames = np.concatenate([c.frames for c in clips])  # [sum T, H, W, 3]
    return Clip(
        seed=clips[0].seed if seed is None else seed,
        fps=clips[0].fps,
        frames=frames,
        objects=tuple(objects),
        background="+".join(c.background for c in clips),
        texture="+".join(c.texture for c in clips),
        interactions=tuple(inter),
        parts=tuple(parts),
    )
