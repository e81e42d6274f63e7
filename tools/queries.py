"""Typed queries over an :class:`~tools.memory.ObjectMemory`: each a plain function returning a
:class:`~tools.schemas.QueryResult` (the structured answer and the same in words). Objects are named by their
memory id (the ids of ``memory.targets``).

* :func:`count_objects` — how many objects (of a set, or that have an event: "How many objects enter the frame?");
* :func:`when` — when an object is seen, or when an event of it happens ("When does the red circle stop?");
* :func:`event_order` — which object has an event first or last ("Which object stops first?");
* :func:`after` — what an object does after another's event ("What does X do after Y stops?");
* :func:`relation_at` — which object is left of / right of / above / below another at a time, or which object
  it collides with;
* :func:`why` — why an object changes direction (a wall, another object, by itself);
* :func:`extrapolate` — if it keeps moving, which wall it reaches first and when;
* :func:`part_of` — in which part (shot) of the video an object appears.

:func:`memory_question` reads such a question's kind, event and relation from its words (the rule planner's part);
:func:`answer_memory_question` answers it with the query functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools.grounding.query import referring_phrases, words
from tools.memory import MemoryEvent, ObjectMemory, full_size, near_cut, track_centres
from tools.schemas import MEMORY_EVENTS, QueryKind, QueryResult, Target

Relation = Literal["left_of", "right_of", "above", "below", "collide"]
RELATIONS: tuple[str, ...] = ("left_of", "right_of", "above", "below", "collide")
DIRECTION_EVENTS = ("bounce", "collide", "turn")
"""Events that change an object's direction (what "why does it change direction?" asks about)."""
MERGE_GAP_S = 0.2
"""Gaps in a track at most this long (missed detections) are joined into one visible interval."""

EVENT_WORDS: dict[str, str] = {
    "enter": "enters the frame",
    "leave": "leaves the frame",
    "start_moving": "starts moving",
    "stop": "stops",
    "turn": "turns",
    "speed_up": "speeds up",
    "slow_down": "slows down",
    "bounce": "bounces off a wall",
    "collide": "collides with another object",
    "occluded": "is hidden",
    "reappear": "reappears",
    "overtake": "overtakes another object",
}


def _check_event(event: str | None) -> None:
    if event is not None and event not in MEMORY_EVENTS:
        raise ValueError(f"unknown event {event!r}; allowed: {MEMORY_EVENTS}")


def _name(t: Target) -> str:
    return f"{t.label} #{t.id}"


def _at(memory: ObjectMemory, frame: int) -> str:
    return f"{memory.seconds(frame):.1f} s (frame {frame})"


def event_text(memory: ObjectMemory, e: MemoryEvent) -> str:
    """``"stops at 1.2 s (frame 12)"``; with the wall or the other object where the event has one."""
    what = EVENT_WORDS[e.kind]
    if e.kind == "bounce" and e.side:
        what = f"bounces off the {e.side} wall"
    elif e.kind in ("enter", "leave") and e.side:
        what = f"{what} ({e.side} edge)"
    elif e.kind == "collide" and e.other_id is not None:
        what = f"collides with the {_name(memory.target(e.other_id))}"
    elif e.kind == "overtake" and e.other_id is not None:
        what = f"overtakes the {_name(memory.target(e.other_id))}"
    return f"{what} at {_at(memory, e.frame)}"


def _ids(memory: ObjectMemory, target_ids: Sequence[int] | None) -> list[Target]:
    if target_ids is None:
        return list(memory.targets)
    return [memory.target(i) for i in target_ids]


def intervals(target: Target, fps: float) -> list[tuple[int, int]]:
    """Inclusive (first, last) frame runs where ``target`` has a box; gaps of at most ``MERGE_GAP_S`` joined."""
    vis = [f for f, b in enumerate(target.boxes) if b is not None]
    gap = max(1, round(MERGE_GAP_S * fps))
    runs: list[tuple[int, int]] = []
    for f in vis:
        if runs and f - runs[-1][1] <= gap + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def _span_text(memory: ObjectMemory, a: int, b: int) -> str:
    fps = memory.fps
    if a == b:
        return f"{a / fps:.1f} s (frame {a} only)"
    return f"{a / fps:.1f}–{(b + 1) / fps:.1f} s (frames {a}–{b})"


def _shots_text(memory: ObjectMemory, t: Target) -> str:
    if not memory.cuts:
        return ""
    vis = [f for f, b in enumerate(t.boxes) if b is not None]
    ks = sorted({memory.part_of(f) + 1 for f in vis})
    if not ks:
        return ""
    return f", shot{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))} of {len(memory.parts)}"


# --------------------------------------------------------------------------------------------- queries


def count_objects(
    memory: ObjectMemory,
    target_ids: Sequence[int] | None = None,
    *,
    event: str | None = None,
    frame: int | None = None,
    noun: str | None = None,
) -> QueryResult:
    """How many of ``target_ids`` (default: every object) are seen (on ``frame``, when given), or have
    ``event``."""
    _check_event(event)
    pool = [t for t in _ids(memory, target_ids) if any(b is not None for b in t.boxes)]
    if frame is not None:
        if not 0 <= frame < memory.num_frames:
            raise ValueError(f"frame {frame} outside the video (0..{memory.num_frames - 1})")
        seen = [t for t in pool if t.box_at(frame) is not None]
        n = len(seen)
        what = plural(noun or "objects") if n != 1 else singular(noun or "objects")
        names = ", ".join(f"the {_name(t)}" for t in seen)
        return QueryResult(
            kind="count",
            text=f"At {_at(memory, frame)} {n} {what} {'is' if n == 1 else 'are'} in view"
            + (f": {names}." if names else "."),
            target_ids=[t.id for t in seen],
            count=n,
            frame=frame,
            time_s=round(memory.seconds(frame), 3),
        )
    if event is not None:
        hits = [(t, memory.events_of(t.id, event)[0]) for t in pool if memory.events_of(t.id, event)]
        n = len(hits)
        what = plural(noun or "objects") if n != 1 else singular(noun or "objects")
        verb = EVENT_WORDS[event] if n == 1 else _plural_verb(EVENT_WORDS[event])
        parts = "; ".join(f"the {_name(t)} at {_at(memory, e.frame)}" for t, e in hits)
        text = f"{n} {what} {verb}" + (f": {parts}." if parts else ".")
        return QueryResult(kind="count", text=text, target_ids=[t.id for t, _ in hits], count=n, event=event)
    n = len(pool)
    what = plural(noun or "objects") if n != 1 else singular(noun or "objects")
    head = f"I count {n} {what}" + (
        " (one track per object per shot: tracks stop at cuts)" if memory.cuts else ""
    )
    parts = "; ".join(
        f"{_name(t)} at "
        + ", ".join(_span_text(memory, a, b) for a, b in intervals(t, memory.fps))
        + _shots_text(memory, t)
        for t in sorted(pool, key=lambda t: (t.span[0], t.id))
    )
    return QueryResult(
        kind="count", text=head + (f": {parts}." if parts else "."), target_ids=[t.id for t in pool], count=n
    )


IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "buses": "bus"}


def singular(noun: str) -> str:
    """'cars' -> 'car', 'people' -> 'person' (the last word of a noun phrase)."""
    *rest, last = noun.split()
    one = IRREGULAR.get(last, last[:-1] if last.endswith("s") and not last.endswith("ss") else last)
    return " ".join([*rest, one])


def plural(noun: str) -> str:
    """'person' -> 'people', 'car' -> 'cars', 'bus' -> 'buses' (the last word of a noun phrase; plurals kept)."""
    *rest, last = noun.split()
    irregular = {v: k for k, v in IRREGULAR.items()}
    if last in irregular:
        many = irregular[last]
    elif last in IRREGULAR or (last.endswith("s") and not last.endswith(("ss", "us"))):
        many = last
    elif last.endswith(("s", "x", "ch", "sh")):
        many = last + "es"
    else:
        many = last + "s"
    return " ".join([*rest, many])


def event_frames(memory: ObjectMemory, target: Target, event: str) -> list[int]:
    """Frames of ``target``'s ``event``s; an object that is lost from view before the video ends without
    leaving through an edge (it walks behind something, the shot ends) "leaves" when it is last seen."""
    frames = [e.frame for e in memory.events_of(target.id, event)]
    if not frames and event == "leave" and any(b is not None for b in target.boxes):
        last = target.span[1]
        if last < memory.num_frames - 1 and not near_cut(
            memory.cuts, last + 1
        ):  # a shot ending is no leaving
            frames = [last + 1]
    return frames


def _plural_verb(phrase: str) -> str:
    """'enters the frame' -> 'enter the frame' (the verb of a phrase in the plural)."""
    first, _, rest = phrase.partition(" ")
    irregular = {"is": "are", "does": "do", "goes": "go"}
    if first in irregular:
        verb = irregular[first]
    elif first.endswith("ies"):
        verb = first[:-3] + "y"
    elif first.endswith(("sses", "shes", "ches")):
        verb = first[:-2]
    else:
        verb = first[:-1] if first.endswith("s") else first
    return f"{verb} {rest}".strip()


def when(
    memory: ObjectMemory, target_id: int, event: str | None = None, *, first: bool = True
) -> QueryResult:
    """When ``target_id`` is seen (``event`` None: its visible intervals), or its first (last) ``event``."""
    _check_event(event)
    t = memory.target(target_id)
    if event is None:
        runs = intervals(t, memory.fps)
        if not runs:
            return QueryResult(kind="when", text=f"The {_name(t)} is not seen.", target_ids=[t.id])
        text = f"The {_name(t)} is seen at " + ", ".join(_span_text(memory, a, b) for a, b in runs)
        return QueryResult(
            kind="when",
            text=text + _shots_text(memory, t) + ".",
            target_ids=[t.id],
            frame=runs[0][0],
            time_s=round(memory.seconds(runs[0][0]), 3),
            end_frame=runs[-1][1],
            part=memory.part_of(runs[0][0]) if len(memory.parts) > 1 else None,
        )
    evs = memory.events_of(t.id, event)
    if not evs:
        if event == "leave" and t.span[1] < memory.num_frames - 1:
            last = t.span[1]  # no edge seen: it is lost from view
            return QueryResult(
                kind="when",
                text=f"The {_name(t)} is last seen at {_at(memory, last)}.",
                target_ids=[t.id],
                frame=last + 1,
                time_s=round(memory.seconds(last + 1), 3),
                event=event,
            )
        return QueryResult(
            kind="when", text=f"The {_name(t)} never {EVENT_WORDS[event]}.", target_ids=[t.id], event=event
        )
    e = evs[0] if first else evs[-1]
    more = f" ({len(evs)} times in all)" if len(evs) > 1 else ""
    return QueryResult(
        kind="when",
        text=f"The {_name(t)} {event_text(memory, e)}{more}.",
        target_ids=[t.id] + ([e.other_id] if e.other_id is not None else []),
        frame=e.frame,
        time_s=round(memory.seconds(e.frame), 3),
        event=event,
        side=e.side,
    )


def _base(phrase: str) -> str:
    return _plural_verb(phrase)


def event_order(
    memory: ObjectMemory, event: str | None, target_ids: Sequence[int] | None = None, *, first: bool = True
) -> QueryResult:
    """Which of ``target_ids`` (default: all) has ``event`` first (or last); ``event`` None: appears first
    (last: leaves the view last)."""
    _check_event(event)
    pool = _ids(memory, target_ids)
    if event is None:
        when_of = {
            t.id: (t.span[0] if first else t.span[1]) for t in pool if any(b is not None for b in t.boxes)
        }
    else:
        when_of = {}
        for t in pool:
            frames = event_frames(memory, t, event)
            if frames:
                when_of[t.id] = frames[0] if first else frames[-1]
    verb = EVENT_WORDS[event] if event else ("appears" if first else "is seen")
    if not when_of:
        return QueryResult(kind="order", text=f"No object {verb}.", event=event)
    order = sorted(when_of, key=lambda i: (when_of[i], i), reverse=not first)
    win = memory.target(order[0])
    others = ", ".join(f"{_name(memory.target(i))} at {_at(memory, when_of[i])}" for i in order[1:])
    text = f"The {_name(win)} {verb} {'first' if first else 'last'}, at {_at(memory, when_of[win.id])}"
    text += _shots_text(memory, win) + (f"; then {others}" if others and first else "")
    text += (f"; before it: {others}" if others and not first else "") + "."
    return QueryResult(
        kind="order",
        text=text,
        target_ids=order,
        frame=when_of[win.id],
        time_s=round(memory.seconds(when_of[win.id]), 3),
        event=event,
    )


def after(memory: ObjectMemory, target_id: int, anchor_id: int, anchor_event: str) -> QueryResult:
    """What ``target_id`` does next after the first ``anchor_event`` of ``anchor_id`` (it may be the same
    object: "what does it do after it stops?")."""
    _check_event(anchor_event)
    t, a = memory.target(target_id), memory.target(anchor_id)
    anchors = memory.events_of(a.id, anchor_event)
    if not anchors:
        return QueryResult(
            kind="after",
            text=f"The {_name(a)} never {EVENT_WORDS[anchor_event]}, so there is no 'after'.",
            target_ids=[t.id, a.id],
        )
    f0 = anchors[0].frame
    nxt = [e for e in memory.events_of(t.id) if e.frame > f0 and e.kind not in ("occluded", "reappear")]
    who = "it" if t.id == a.id else f"the {_name(a)}"
    if not nxt:
        state = _state_after(memory, t, f0)
        return QueryResult(
            kind="after",
            text=f"After {who} {EVENT_WORDS[anchor_event]} at {_at(memory, f0)}, the {_name(t)} {state} "
            "with no further change.",
            target_ids=[t.id, a.id],
            frame=f0,
        )
    e = nxt[0]
    return QueryResult(
        kind="after",
        text=f"After {who} {EVENT_WORDS[anchor_event]} at {_at(memory, f0)}, the {_name(t)} {event_text(memory, e)}.",
        target_ids=[t.id, a.id]
        + ([e.other_id] if e.other_id is not None and e.other_id not in (t.id, a.id) else []),
        frame=e.frame,
        time_s=round(memory.seconds(e.frame), 3),
        event=e.kind,
        side=e.side,
    )


def _state_after(memory: ObjectMemory, t: Target, frame: int) -> str:
    for p in memory.pieces_of(t.id):
        if p.start <= frame + 1 <= p.end:
            return "keeps moving" if p.speed > 0.35 else "stays still"
    return "is not seen"


def relation_at(
    memory: ObjectMemory,
    target_id: int,
    relation: Relation,
    *,
    frame: int | None = None,
    event: str | None = None,
) -> QueryResult:
    """The object in ``relation`` to ``target_id``: ``collide`` = the object it collides with (its first
    collision, or the one at ``frame``); left_of / right_of / above / below = the nearest object on that side of
    it at ``frame``, or at its first ``event`` ("What is left of the star when it stops?")."""
    if relation not in RELATIONS:
        raise ValueError(f"unknown relation {relation!r}; allowed: {RELATIONS}")
    _check_event(event)
    t = memory.target(target_id)
    if relation == "collide":
        hits = memory.events_of(t.id, "collide")
        if frame is not None:
            hits = sorted(hits, key=lambda e: abs(e.frame - frame))
        if not hits:
            return QueryResult(
                kind="relation", text=f"The {_name(t)} does not collide with anything.", target_ids=[t.id],
                relation=relation,
            )  # fmt: skip
        e = hits[0]
        other = memory.target(e.other_id)  # type: ignore[arg-type]
        return QueryResult(
            kind="relation",
            text=f"The {_name(t)} bounces off the {_name(other)} at {_at(memory, e.frame)}.",
            target_ids=[other.id, t.id],
            frame=e.frame,
            time_s=round(memory.seconds(e.frame), 3),
            relation=relation,
            event="collide",
        )
    if frame is None and event is not None:
        evs = memory.events_of(t.id, event)
        if not evs:
            return QueryResult(
                kind="relation",
                text=f"The {_name(t)} never {EVENT_WORDS[event]}.",
                target_ids=[t.id],
                relation=relation,
                event=event,
            )
        frame = evs[0].frame
    if frame is None:
        frame = t.key_frame if t.key_frame is not None else t.span[0]
    centres = _centres_near(memory, frame)
    if t.id not in centres:
        return QueryResult(
            kind="relation", text=f"The {_name(t)} is not seen at {_at(memory, frame)}.", target_ids=[t.id],
            frame=frame, relation=relation,
        )  # fmt: skip
    cx, cy = centres.pop(t.id)
    axis = {"left_of": (-1, 0), "right_of": (1, 0), "above": (0, -1), "below": (0, 1)}[relation]
    cands = []
    for uid, (ux, uy) in centres.items():
        along = (ux - cx) * axis[0] + (uy - cy) * axis[1]
        if along > 0:
            cands.append((math.hypot(ux - cx, uy - cy), uid))
    words_ = relation.replace("_of", " of").replace("_", " ")
    if not cands:
        return QueryResult(
            kind="relation", text=f"Nothing is {words_} the {_name(t)} at {_at(memory, frame)}.",
            target_ids=[t.id], frame=frame, relation=relation, event=event,
        )  # fmt: skip
    cands.sort()
    win = memory.target(cands[0][1])
    rest = f" (also: {', '.join(_name(memory.target(u)) for _, u in cands[1:])})" if len(cands) > 1 else ""
    return QueryResult(
        kind="relation",
        text=f"The {_name(win)} is {words_} the {_name(t)} at {_at(memory, frame)}{rest}.",
        target_ids=[win.id, t.id],
        frame=frame,
        time_s=round(memory.seconds(frame), 3),
        relation=relation,
        event=event,
    )


def _centres_near(memory: ObjectMemory, frame: int, reach: int = 2) -> dict[int, np.ndarray]:
    """Every object's box centre at ``frame``; an object not seen on it, at the nearest frame within ``reach``
    (a detection missed on that frame)."""
    out = {}
    for u in memory.targets:
        for d in sorted(range(-reach, reach + 1), key=abs):
            if u.box_at(frame + d) is not None:
                out[u.id] = track_centres(u)[frame + d]
                break
    return out


def why(memory: ObjectMemory, target_id: int, *, frame: int | None = None) -> QueryResult:
    """Why ``target_id`` changes direction (its first change, or the one nearest ``frame``): it hit a wall,
    another object, or turned by itself."""
    t = memory.target(target_id)
    evs = [e for e in memory.events_of(t.id) if e.kind in DIRECTION_EVENTS]
    if not evs:
        return QueryResult(kind="why", text=f"The {_name(t)} does not change direction.", target_ids=[t.id])
    e = evs[0] if frame is None else min(evs, key=lambda e: (abs(e.frame - frame), e.frame))
    if e.kind == "bounce":
        text = f"Because it hits the {e.side} wall of the frame at {_at(memory, e.frame)} and bounces off it."
    elif e.kind == "collide":
        other = memory.target(e.other_id)  # type: ignore[arg-type]
        text = f"Because it bumps into the {_name(other)} at {_at(memory, e.frame)} and bounces off it."
    else:
        text = f"Nothing makes it: it turns by itself at {_at(memory, e.frame)}, touching no wall or object."
    return QueryResult(
        kind="why",
        text=text,
        target_ids=([e.other_id] if e.other_id is not None else []) + [t.id],  # the cause first
        frame=e.frame,
        time_s=round(memory.seconds(e.frame), 3),
        event=e.kind,
        side=e.side,
    )


def extrapolate(memory: ObjectMemory, target_id: int) -> QueryResult:
    """If ``target_id`` keeps its last velocity, which frame wall it reaches first and when."""
    t = memory.target(target_id)
    pieces = memory.pieces_of(t.id)
    if not pieces:
        return QueryResult(kind="future", text=f"The {_name(t)} is not seen.", target_ids=[t.id])
    p = pieces[-1]
    if p.speed <= 0.35:
        return QueryResult(
            kind="future",
            text=f"The {_name(t)} is still at the end, so it reaches no wall.",
            target_ids=[t.id],
        )
    last = p.end
    cx, cy = track_centres(t)[last]
    w, h = full_size(t)
    times = {}
    if p.vx < 0:
        times["left"] = (cx - w / 2) / -p.vx
    if p.vx > 0:
        times["right"] = (memory.width - (cx + w / 2)) / p.vx
    if p.vy < 0:
        times["top"] = (cy - h / 2) / -p.vy
    if p.vy > 0:
        times["bottom"] = (memory.height - (cy + h / 2)) / p.vy
    side = min(times, key=lambda s: times[s])
    steps = max(0.0, times[side])
    frame = last + math.ceil(steps)
    return QueryResult(
        kind="future",
        text=f"If it keeps moving the way it does at the end ({math.hypot(p.vx, p.vy):.1f} px per frame), the "
        f"{_name(t)} reaches the {side} wall first, about {steps / memory.fps:.1f} s after its last frame "
        f"(near frame {frame}).",
        target_ids=[t.id],
        frame=frame,
        time_s=round(memory.seconds(frame), 3),
        side=side,
    )


def part_of(memory: ObjectMemory, target_id: int) -> QueryResult:
    """In which part (shot) of the video ``target_id`` is first seen, from when to when it is seen there
    (``frame`` to ``end_frame``), and the other parts it is seen in."""
    t = memory.target(target_id)
    vis = [f for f, b in enumerate(t.boxes) if b is not None]
    if not vis:
        return QueryResult(kind="part", text=f"The {_name(t)} is not seen.", target_ids=[t.id])
    part = {f: memory.part_of(f) for f in vis}
    parts = sorted(set(part.values()))
    k = parts[0]
    s, e = memory.parts[k]
    last = max(f for f in vis if part[f] == k)
    ordinal = _ordinal(k + 1)
    more = (
        f" (also in part{'s' if len(parts) > 2 else ''} {', '.join(str(p + 1) for p in parts[1:])})"
        if len(parts) > 1
        else ""
    )
    return QueryResult(
        kind="part",
        text=f"The {_name(t)} appears in the {ordinal} part of {len(memory.parts)}, from {s / memory.fps:.1f} to "
        f"{e / memory.fps:.1f} s; it is seen there at {_span_text(memory, vis[0], last)}{more}.",
        target_ids=[t.id],
        frame=vis[0],
        time_s=round(memory.seconds(vis[0]), 3),
        end_frame=last,
        part=k,
    )


def _ordinal(n: int) -> str:
    names = {
        1: "first",
        2: "second",
        3: "third",
        4: "fourth",
        5: "fifth",
        6: "sixth",
        7: "seventh",
        8: "eighth",
    }
    return names.get(n, f"{n}th")


# ------------------------------------------------------------------------------------ question -> query


class MemoryQuestion(BaseModel):
    """A question the memory answers: its kind, the event and relation it names, whether it asks for the first
    or the last. The objects come from the question's phrases (the subject first, then an anchor)."""

    model_config = ConfigDict(frozen=True)

    kind: QueryKind
    event: str | None = Field(default=None, description="the event asked about (after: the anchor's event)")
    first: bool = True
    relation: Relation | None = None
    over_all: bool = Field(default=False, description="asks about every object (no phrase needed)")
    at_s: float | None = Field(default=None, description="the time the question names, in seconds")
    at_frame: int | None = Field(default=None, description="the frame the question names")
    at: Literal["start", "end"] | None = Field(
        default=None, description="the start or the end of the video (the subject's first or last frame seen)"
    )


_EVENT_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("start", "moving"), "start_moving"),
    (("starts", "moving"), "start_moving"),
    (("start", "to", "move"), "start_moving"),
    (("starts", "to", "move"), "start_moving"),
    (("begin", "to", "move"), "start_moving"),
    (("begins", "to", "move"), "start_moving"),
    (("begins", "moving"), "start_moving"),
    (("begin", "moving"), "start_moving"),
    (("set", "off"), "start_moving"),
    (("sets", "off"), "start_moving"),
    (("get", "going"), "start_moving"),
    (("gets", "going"), "start_moving"),
    (("speed", "up"), "speed_up"),
    (("speeds", "up"), "speed_up"),
    (("slow", "down"), "slow_down"),
    (("slows", "down"), "slow_down"),
    (("come", "to", "a", "stop"), "stop"),
    (("comes", "to", "a", "stop"), "stop"),
    (("come", "to", "rest"), "stop"),
    (("comes", "to", "rest"), "stop"),
    (("change", "direction"), "turn"),
    (("changes", "direction"), "turn"),
    (("come", "in"), "enter"),
    (("comes", "in"), "enter"),
    (("come", "into"), "enter"),
    (("comes", "into"), "enter"),
    (("go", "out"), "leave"),
    (("goes", "out"), "leave"),
    (("goes", "away"), "leave"),
    (("shows", "up"), "appear"),
    (("run", "into"), "collide"),
    (("runs", "into"), "collide"),
    (("ran", "into"), "collide"),
    (("crash", "into"), "collide"),
    (("crashes", "into"), "collide"),
    (("show", "up"), "appear"),
)
_EVENT_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ("stop", "stops", "stopping", "stopped", "halt", "halts", "halting", "freeze", "freezes", "rest"),
        "stop",
    ),
    **dict.fromkeys(("accelerate", "accelerates", "accelerating"), "speed_up"),
    **dict.fromkeys(("decelerate", "decelerates", "decelerating", "brake", "brakes"), "slow_down"),
    **dict.fromkeys(("turn", "turns", "turning", "swerve", "swerves", "veer", "veers"), "turn"),
    **dict.fromkeys(
        ("bounce", "bounces", "bouncing", "rebound", "rebounds", "ricochet", "ricochets"), "bounce"
    ),
    **dict.fromkeys(("collide", "collides", "colliding", "crash", "crashes", "bump", "bumps"), "collide"),
    **dict.fromkeys(("enter", "enters", "entering", "arrive", "arrives", "arriving"), "enter"),
    **dict.fromkeys(
        (
            "leave",
            "leaves",
            "leaving",
            "exit",
            "exits",
            "exiting",
            "disappear",
            "disappears",
            "vanish",
            "vanishes",
        ),
        "leave",
    ),
    **dict.fromkeys(("appear", "appears", "appearing", "seen", "visible"), "appear"),
    **dict.fromkeys(("overtake", "overtakes", "overtaking", "pass", "passes"), "overtake"),
    **dict.fromkeys(("hit", "hits", "strike", "strikes", "smash", "smashes"), "hit"),
    **dict.fromkeys(("hidden", "occluded", "hide", "hides"), "occluded"),
}
_TIME_WORDS = {"when", "time", "moment", "frame", "second", "seconds", "point"}
_WHY_STARTS = {("what", "makes"), ("what", "made"), ("what", "causes"), ("what", "caused"), ("how", "come")}
_DIRECTION_PHRASES = (
    ("new", "direction"), ("alter", "its", "course"), ("alters", "its", "course"), ("change", "course"),
    ("changes", "course"), ("change", "its", "course"), ("reverse",), ("reverses",), ("turn", "around"),
    ("turns", "around"), ("turn", "back"), ("turns", "back"),
)  # fmt: skip
_AFTER_WORDS = {"after", "once", "following"}
_WALL_WORDS = {"wall", "walls", "edge", "edges", "border", "side", "sides"}
_FUTURE_WORDS = {"if", "keeps", "keep", "continues", "continue", "carries", "carry", "will", "would", "next"}
_PART_WORDS = {"part", "section", "segment", "portion", "shot", "half", "quarter"}
_RELATION_WORDS = {
    "left": "left_of",
    "right": "right_of",
    "above": "above",
    "below": "below",
    "under": "below",
}
_WHO_WORDS = {"which", "who", "what"}
_OBJECT_WORDS = {"object", "objects", "thing", "things", "shape", "shapes", "one", "ones"}


def events_named(question: str) -> list[str]:
    """Event kinds named in ``question``, in order ("appear" for being seen / showing up)."""
    toks = words(question)
    found: list[tuple[int, str]] = []
    used: set[int] = set()
    for phrase, kind in _EVENT_PHRASES:
        n = len(phrase)
        for i in range(len(toks) - n + 1):
            if tuple(toks[i : i + n]) == phrase and not used & set(range(i, i + n)):
                found.append((i, kind))
                used |= set(range(i, i + n))
    for i, tok in enumerate(toks):
        if i not in used and tok in _EVENT_WORDS:
            kind = _EVENT_WORDS[tok]
            if kind == "bounce" and "off" in toks[i + 1 : i + 2] and not _wall_after(toks, i):
                kind = "collide"  # "bounce off <an object>"
            if kind == "hit":
                kind = "bounce" if _wall_after(toks, i) else "collide"  # "hits a wall" / "hits the square"
            found.append((i, kind))
    return [k for _, k in sorted(found)]


def _wall_after(toks: list[str], i: int) -> bool:
    return any(t in _WALL_WORDS for t in toks[i + 1 : i + 5])


def _has(toks: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(toks[i : i + n]) == phrase for i in range(len(toks) - n + 1))


def _time_named(toks: list[str]) -> Literal["start", "end"] | None:
    """ "at the end of the video", "in the last frame" -> "end"; "at the start", "in the first frame" -> "start"."""
    for head in (("at", "the"), ("in", "the"), ("by", "the"), ("on", "the")):
        for word, which in (("end", "end"), ("start", "start"), ("beginning", "start"), ("outset", "start")):
            if _has(toks, (*head, word)):
                return which  # type: ignore[return-value]
    if _has(toks, ("last", "frame")) or _has(toks, ("final", "frame")):
        return "end"
    if _has(toks, ("first", "frame")):
        return "start"
    return None


def memory_question(question: str) -> MemoryQuestion | None:
    """The memory question ``question`` asks, or None (then it is a describe / compare question)."""
    toks = words(question)
    if not toks:
        return None
    evs = events_named(question)
    at = _time_named(toks)
    first = not ({"last", "latest", "final"} & set(toks)) or at == "end"
    event = next((e for e in evs if e != "appear"), None)
    asks_who = bool({"which", "who"} & set(toks)) or toks[0] in {"what", "name", "identify"}
    at_frame = frame_named(question)
    at_s = seconds_named(question)
    asks_time = _has(toks, ("how", "many", "seconds")) or _has(toks, ("how", "many", "frames"))
    counting = not asks_time and (
        _has(toks, ("how", "many"))
        or _has(toks, ("how", "much"))
        or toks[0] == "count"
        or _has(toks, ("number", "of"))
    )
    if counting:
        return MemoryQuestion(kind="count", event=event, at_frame=at_frame, at_s=at_s)
    if (
        toks[0] in {"is", "are", "can", "do", "does"}
        and (at_frame is not None or at_s is not None)
        and ("appear" in evs or {"there", "in", "view"} & set(toks))
    ):  # "Is a person visible at frame 100?": a count on that frame
        return MemoryQuestion(kind="count", at_frame=at_frame, at_s=at_s)
    direction = "direction" in toks or any(_has(toks, p) for p in _DIRECTION_PHRASES)
    asks_why = "why" in toks or "reason" in toks or tuple(toks[:2]) in _WHY_STARTS
    if asks_why and (event in (*DIRECTION_EVENTS, None) or direction):
        return MemoryQuestion(kind="why", event="turn" if direction else event, at_s=at_s)
    if toks[0] in {"if", "suppose", "assuming"} or (
        any(t in _FUTURE_WORDS for t in toks) and any(t in _WALL_WORDS for t in toks) and "first" in toks
    ):
        return MemoryQuestion(kind="future")
    if any(t in _PART_WORDS for t in toks) and (not evs or "appear" in evs or event in ("enter",)):
        return MemoryQuestion(kind="part")
    if any(t in _AFTER_WORDS for t in toks) and event is not None:
        anchor_event = _anchor_event(question)
        if anchor_event is not None:
            return MemoryQuestion(kind="after", event=anchor_event)
    rel = next((_RELATION_WORDS[t] for t in toks if t in _RELATION_WORDS), None)
    if rel is not None and asks_who and ("of" in toks or rel in ("above", "below")):
        return MemoryQuestion(
            kind="relation", relation=rel, event=event, at=at, at_frame=at_frame, at_s=at_s,  # type: ignore[arg-type]
        )  # fmt: skip
    if event == "collide" and asks_who:
        return MemoryQuestion(kind="relation", relation="collide", event="collide")
    before_others = ("before" in toks or "after" in toks) and bool({"others", "other", "rest"} & set(toks))
    if before_others:
        first = "before" in toks  # "before any of the others" / "after all the others"
    if asks_who and ({"first", "last", "earliest", "latest"} & set(toks) or before_others):
        over_all = bool(set(toks) & _OBJECT_WORDS) or "who" in toks or not referring_phrases(question)
        return MemoryQuestion(kind="order", event=event, first=first, over_all=over_all)
    if toks[0] == "when" or asks_time or (set(toks) & _TIME_WORDS and (event or "appear" in evs)):
        return MemoryQuestion(kind="when", event=event, first=first)
    return None


def subject_first(question: str, phrases: Sequence[str]) -> list[str]:
    """``phrases`` of an "after" question with the subject first and the anchor second: the anchor is the phrase
    in the clause that "after" / "once" opens ("Once the circle stops, how does the triangle carry on?" ->
    ["the triangle", "the circle"])."""
    if len(phrases) < 2:
        return list(phrases)
    low = question.lower()
    at = {p: low.find(p.lower()) for p in phrases}
    for m in re.finditer(r"\b(after|once|following)\b", low):
        end = low.find(",", m.end())
        end = len(low) if end < 0 else end
        inside = [p for p in phrases if m.end() <= at[p] < end]
        if inside:
            anchor = inside[0]
            return [p for p in phrases if p != anchor] + [anchor]
    return list(phrases)


_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec\b|secs\b|seconds?\b)")
_SECOND_N = re.compile(r"\b(?:second|sec)\s+(\d+(?:\.\d+)?)")


_FRAME = re.compile(r"\bframe\s+(?:number\s+)?(\d+)\b")


def frame_named(question: str) -> int | None:
    """ "... at frame 100?" -> 100."""
    m = _FRAME.search(question.lower())
    return int(m.group(1)) if m else None


def seconds_named(question: str) -> float | None:
    """ "... at about 1.5 seconds?", "around second 1.5" -> 1.5."""
    low = question.lower()
    m = _SECONDS.search(low) or _SECOND_N.search(low)
    return float(m.group(1)) if m else None


def _anchor_event(question: str) -> str | None:
    """The event of the clause after "after"/"once": "What does X do after Y stops?" -> "stop"."""
    low = words(question)
    for k, tok in enumerate(low):
        if tok in _AFTER_WORDS:
            tail = " ".join(low[k + 1 :])
            evs = [e for e in events_named(tail) if e != "appear"]
            if evs:
                return evs[0]
    return None


def answer_memory_question(
    memory: ObjectMemory,
    q: MemoryQuestion,
    subject_ids: Sequence[int] | None,
    anchor_ids: Sequence[int] = (),
    *,
    noun: str | None = None,
) -> QueryResult:
    """Answer ``q`` with the query functions: ``subject_ids`` = the memory objects the question's first phrase
    names (None: the question names none, every object; empty: its phrase found nothing), ``anchor_ids`` =
    those of its second phrase (``after``)."""
    if q.kind == "count":
        frame = q.at_frame
        if frame is None and q.at_s is not None:
            frame = min(memory.num_frames - 1, round(q.at_s * memory.fps))
        return count_objects(memory, subject_ids, event=q.event, frame=frame, noun=noun)
    if q.kind == "order":
        return event_order(memory, q.event, subject_ids, first=q.first)
    subjects = list(subject_ids or [])
    if not subjects:
        return QueryResult(kind=q.kind, text="I could not tell which object the question is about.")
    s = subjects[0]
    if q.kind == "when":
        if len(subjects) > 1:
            return event_order(memory, q.event, subjects, first=q.first)
        return when(memory, s, q.event, first=q.first)
    if q.kind == "after":
        anchor = anchor_ids[0] if anchor_ids else s
        return after(memory, s, anchor, q.event or "stop")
    if q.kind == "relation":
        if q.relation == "collide":
            return relation_at(memory, s, "collide")
        frame = q.at_frame
        if frame is None and q.at_s is not None:
            frame = min(memory.num_frames - 1, round(q.at_s * memory.fps))
        if frame is None and q.at is not None:
            span = memory.target(s).span
            frame = span[0] if q.at == "start" else span[1]
        event = None if frame is not None else q.event
        return relation_at(memory, s, q.relation or "left_of", frame=frame, event=event)
    if q.kind == "why":
        return why(memory, s, frame=None if q.at_s is None else round(q.at_s * memory.fps))
    if q.kind == "future":
        return extrapolate(memory, s)
    if q.kind == "part":
        return part_of(memory, s)
    raise ValueError(f"unknown memory question kind {q.kind!r}")


__all__ = [
    "EVENT_WORDS",
    "MemoryQuestion",
    "after",
    "answer_memory_question",
    "count_objects",
    "event_order",
    "event_text",
    "event_frames",
    "events_named",
    "extrapolate",
    "frame_named",
    "intervals",
    "memory_question",
    "part_of",
    "plural",
    "relation_at",
    "singular",
    "subject_first",
    "when",
    "why",
]
