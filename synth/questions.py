"""Complex questions for the agent, each turn with structured ground truth.

Kinds: ``describe``, ``multi_target`` ("what do the red objects do?"), ``comparison`` (which object moves
fastest / slowest, over all the clip's objects),
``temporal`` (which object stops first / when does X stop), ``ambiguous`` ("the circle" when there are two,
then "the left one"), ``follow_up`` (describe X, then "and Y?") and ``long_video``
(concatenated clips: in which part does X appear). ``heldout=True`` draws the wording from
``synth.heldout_templates`` (benchmark only); otherwise from ``TEMPLATES``.

The event kinds (``EVENT_KINDS``, single clips only), read from the objects' events (``ObjectTruth.events``),
asked only when the answer is clear, their answers balanced over a set (:class:`AnswerBalance`):

* ``counting``: "How many objects enter the frame?" / "How many red objects are there?" -> count, object_ids;
* ``sequential``: "What does the red circle do after the blue square stops?" -> the subject's next event
  (kind of ``DETECTABLE_EVENTS``, frame, side / other_id);
* ``relationship``: "Which object does the red circle bounce off?" (collide) or "What is to the left of the
  star when it stops?" (left_of, right_of, above, below) -> answer_id, frame;
* ``reasoning``: "Why does the circle change direction?" -> cause bounce (side) or collide (other_id);
* ``future``: "If it keeps moving, which wall does the circle reach first?" -> side, frame_reached (the last
  velocity extrapolated; asked only when the first wall is clearly first).

Event kinds are named as the object memory names them (``memory_event``: the world's ``turn_back`` is ``turn``).

Every turn is ``{"question", "answer", "truth"}``; ``truth["type"]`` names the structure. Tracks are
per-frame ``xyxy`` boxes with ``[]`` where the object is not visible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import numpy as np

from synth.datasets import describe_np, unique_description
from synth.grammar import NounPhrase, motion_phrases, render_caption
from synth.heldout_templates import HELDOUT_TEMPLATES
from synth.motion import MotionEvent
from synth.world import Clip, ObjectTruth

TEMPLATES: dict[str, tuple[str, ...]] = {
    "describe": ("What does the {a} do?", "Describe what the {a} does."),
    "multi_target": ("What do the {group} do?", "Describe what the {group} do."),
    "comparison_fastest": ("Which object moves fastest?", "Which of the objects is the fastest?"),
    "comparison_slowest": ("Which object moves slowest?", "Which of the objects is the slowest?"),
    "temporal_first": ("Which object {verbs} first?", "Which object is the first to {verb}?"),
    "when": ("When does the {a} {verb}?", "At what time does the {a} {verb}?"),
    "ambiguous": ("What does the {a} do?", "Describe the {a}."),
    "resolve": ("The {which} one.", "I mean the {which} one."),
    "follow_up": ("And the {a}?", "What about the {a}?"),
    "long_part": (
        "In which part of the video does the {a} appear?",
        "When does the {a} appear in the video?",
    ),
    "counting_event": ("How many objects {verb}?", "How many of the objects {verb}?"),
    "counting_attribute": ("How many {group} are there?", "How many {group} does the video show?"),
    "sequential": ("What does the {b} do after {anchor}?", "What happens to the {b} after {anchor}?"),
    "relationship_collide": ("Which object does the {a} bounce off?", "Which object does the {a} bump into?"),
    "relationship_spatial": ("Which object is {rel} the {a} {when}?", "What is {rel} the {a} {when}?"),
    "reasoning": ("Why does the {a} change direction?", "Why does the {a} change its direction?"),
    "reasoning_at": (
        "Why does the {a} change direction at about {t} seconds?",
        "Why does the {a} change its direction at about {t} seconds?",
    ),
    "future": (
        "If it keeps moving, which wall does the {a} reach first?",
        "Which wall will the {a} hit first if it keeps going?",
    ),
}
EVENT_VERBS: dict[str, tuple[str, str]] = {  # event kind -> (third person, base form)
    "stop": ("stops", "stop"),
    "start_moving": ("starts moving", "start moving"),
    "bounce": ("bounces off a wall", "bounce off a wall"),
    "enter": ("enters the frame", "enter the frame"),
    "leave": ("leaves the frame", "leave the frame"),
}
ORDINALS = ("first", "second", "third", "fourth", "fifth")
SPEED_RATIO = 1.5  # comparisons only when one is clearly the fastest (slowest) ...
MIN_SPEED_GAP = 0.5  # ... by a ratio and by px/frame (a still object's track jitters)
SUPERLATIVE_MIN_OBJECTS = 3
MIN_GAP_FRAMES = 3  # temporal questions only when the first event is clearly first
MIN_OFFSET_PX = 10  # "the left one" only when the two are clearly apart


def _t(kind: str, rng: np.random.Generator, heldout: bool, **slots: str) -> str:
    pool = (HELDOUT_TEMPLATES if heldout else TEMPLATES)[kind]
    return pool[int(rng.integers(len(pool)))].format(**slots)


def _track(o: ObjectTruth) -> list[list[int]]:
    return [list(b) if b is not None else [] for b in o.boxes]


def _motions(o: ObjectTruth, clip: Clip) -> list[dict]:
    return [asdict(p) for p in motion_phrases(o, clip)]


def _cap(o: ObjectTruth, clip: Clip, rng: np.random.Generator) -> str:
    return render_caption(unique_description(clip, o), motion_phrases(o, clip), rng).text


def _describe_turn(clip: Clip, o: ObjectTruth, question: str, rng: np.random.Generator) -> dict:
    truth = {"type": "describe", "object_id": o.id, "motions": _motions(o, clip), "track": _track(o)}
    return {"question": question, "answer": _cap(o, clip, rng), "truth": truth}


def _name(clip: Clip, o: ObjectTruth) -> str:
    return describe_np(unique_description(clip, o), "")


def q_describe(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    o = clip.objects[int(rng.integers(len(clip.objects)))]
    return [_describe_turn(clip, o, _t("describe", rng, heldout, a=_name(clip, o)), rng)]


def q_multi_target(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    groups = {}
    for o in clip.objects:
        groups.setdefault(("colour", o.colour), []).append(o)
        groups.setdefault(("shape", o.shape), []).append(o)
    multi = sorted((k for k, v in groups.items() if len(v) >= 2), key=str)
    if not multi:
        return None
    key = multi[int(rng.integers(len(multi)))]
    members = groups[key]
    group = f"{key[1]} objects" if key[0] == "colour" else f"{key[1]}s"
    answer = " ".join(_cap(o, clip, rng) for o in members)
    truth = {
        "type": "multi_target",
        "query": {key[0]: key[1]},
        "object_ids": [o.id for o in members],
        "tracks": {str(o.id): _track(o) for o in members},
        "motions": {str(o.id): _motions(o, clip) for o in members},
    }
    return [{"question": _t("multi_target", rng, heldout, group=group), "answer": answer, "truth": truth}]


def _seen_speed(o: ObjectTruth) -> float:
    """Mean centre displacement per frame over the consecutive frames the object is seen in (px/frame): what
    its track shows, unlike ``mean_speed``, which also counts its path outside the frame."""
    steps = [
        math.dist(o.centres[t], o.centres[t + 1])
        for t in range(len(o.boxes) - 1)
        if o.boxes[t] is not None and o.boxes[t + 1] is not None
    ]
    return sum(steps) / len(steps) if steps else 0.0


def _extreme(speeds: dict[int, float], fastest: bool) -> int | None:
    """The id of the clearly fastest (slowest) object of ``speeds`` (id -> px/frame): at least SPEED_RATIO times
    and MIN_SPEED_GAP px/frame faster (slower) than every other one, or None."""
    first, second = sorted(speeds, key=speeds.__getitem__, reverse=fastest)[:2]
    hi, lo = sorted((speeds[first], speeds[second]), reverse=True)
    if hi - lo < MIN_SPEED_GAP or hi < SPEED_RATIO * lo:
        return None
    return first


def q_comparison(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    """ "Which object moves fastest / slowest?" over every object the clip shows (at least
    SUPERLATIVE_MIN_OBJECTS, so that a guess is right at most a third of the time), asked only when one is
    clearly the fastest (slowest); the direction drawn first is tried first."""
    speeds = {o.id: _seen_speed(o) for o in clip.objects if any(b is not None for b in o.boxes)}
    if len(speeds) < SUPERLATIVE_MIN_OBJECTS:
        return None
    drawn = bool(rng.integers(2))
    for fastest in (drawn, not drawn):
        winner = _extreme(speeds, fastest)
        if winner is not None:
            break
    else:
        return None
    q = _t("comparison_fastest" if fastest else "comparison_slowest", rng, heldout)
    ans = f"The {_name(clip, clip.object(winner))} moves {'fastest' if fastest else 'slowest'}."
    truth = {
        "type": "comparison",
        "attribute": "speed",
        "largest_wins": fastest,
        "candidates": list(speeds),
        "answer_id": winner,
        "values": {str(i): round(v, 4) for i, v in speeds.items()},
    }
    return [{"question": q, "answer": ans, "truth": truth}]


def _first_event(o: ObjectTruth, kind: str) -> int | None:
    return next((e.frame for e in o.events if e.kind == kind), None)


SEEN_EVENTS = ("stop", "start_moving", "bounce")
"""Event kinds of temporal / when questions that are seen only in the motion around them (not enter / leave)."""
NEAR_EVENTS = ("stop", "start_moving", "turn", "bounce", "collide")
"""Memory event kinds that, within MIN_GAP_FRAMES of a :data:`SEEN_EVENTS` event of the same object, blur it."""


def q_temporal(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    """ "Which object stops first?" (``temporal``) or, when only one object has the event, "When does the red
    circle stop?" (``when``). Asked only when the answer's event can be seen (:func:`_timing_clear`); the question
    is drawn first, so that a dropped one leaves every other draw of the set as it was."""
    turns = _temporal_turns(clip, rng, heldout)
    return turns if turns is not None and _timing_clear(clip, turns[0]["truth"]) else None


def _timing_clear(clip: Clip, truth: dict) -> bool:
    """Whether the event a temporal / when truth answers with can be seen in the video: a stop, start or bounce
    (:data:`SEEN_EVENTS`) CLEAR_FRAMES or more from the ends of its part (a bounce on the first frame shows no
    motion before it) and MIN_GAP_FRAMES or more from the object's other direction and speed events
    (:data:`NEAR_EVENTS`: a bounce, a turn and a bounce again within 3 frames read as one wobble)."""
    if truth["event"] not in SEEN_EVENTS:
        return True
    oid = truth["answer_id"] if truth["type"] == "temporal" else truth["object_id"]
    frame = truth["frames"][str(oid)] if truth["type"] == "temporal" else truth["frame"]
    start, end = next(((a, b) for a, b in clip.parts if a <= frame < b), (0, clip.num_frames))
    if not start + CLEAR_FRAMES <= frame <= end - 1 - CLEAR_FRAMES:
        return False
    near = (e.frame for e in clip.object(oid).events if memory_event(e.kind) in NEAR_EVENTS)
    return not any(0 < abs(f - frame) < MIN_GAP_FRAMES for f in near)


def _temporal_turns(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    kinds = list(EVENT_VERBS)
    for k in rng.permutation(len(kinds)):
        kind = kinds[int(k)]
        verbs, verb = EVENT_VERBS[kind]
        frames = {o.id: f for o in clip.objects if (f := _first_event(o, kind)) is not None}
        if len(frames) >= 2:
            order = sorted(frames, key=lambda i: frames[i])
            if frames[order[1]] - frames[order[0]] < MIN_GAP_FRAMES:
                continue
            first = clip.object(order[0])
            truth = {
                "type": "temporal",
                "event": kind,
                "order": order,
                "answer_id": first.id,
                "frames": {str(i): f for i, f in frames.items()},
            }
            q = _t("temporal_first", rng, heldout, verbs=verbs, verb=verb)
            return [{"question": q, "answer": f"The {_name(clip, first)} {verbs} first.", "truth": truth}]
        if len(frames) == 1:
            o = clip.object(next(iter(frames)))
            t = frames[o.id]
            truth = {
                "type": "when",
                "event": kind,
                "object_id": o.id,
                "frame": t,
                "time_s": round(t / clip.fps, 2),
            }
            q = _t("when", rng, heldout, a=_name(clip, o), verbs=verbs, verb=verb)
            return [
                {"question": q, "answer": f"At about {t / clip.fps:.1f} seconds (frame {t}).", "truth": truth}
            ]
    return None


def _which(a: ObjectTruth, b: ObjectTruth) -> str | None:
    """A position word that tells ``a`` from ``b`` on the first frame where both are visible."""
    both = [t for t in range(len(a.boxes)) if a.boxes[t] is not None and b.boxes[t] is not None]
    if not both:
        return None
    t = both[0]
    (ax, ay), (bx, by) = a.centres[t], b.centres[t]
    if abs(ax - bx) >= MIN_OFFSET_PX:
        return "left" if ax < bx else "right"
    if abs(ay - by) >= MIN_OFFSET_PX:
        return "top" if ay < by else "bottom"
    return None


def q_ambiguous(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    by_shape = {}
    for o in clip.objects:
        by_shape.setdefault(o.shape, []).append(o)
    pairs = sorted(s for s, v in by_shape.items() if len(v) == 2)
    if not pairs:
        return None
    shape = pairs[int(rng.integers(len(pairs)))]
    a = by_shape[shape][int(rng.integers(2))]
    b = next(o for o in by_shape[shape] if o.id != a.id)
    which = _which(a, b)
    if which is None:
        return None
    turn1 = {
        "question": _t("ambiguous", rng, heldout, a=shape),
        "answer": f"There are two {shape}s. Which one do you mean?",
        "truth": {"type": "ambiguous", "candidates": sorted([a.id, b.id]), "reference": {"shape": shape}},
    }
    turn2 = _describe_turn(clip, a, _t("resolve", rng, heldout, which=which), rng)
    turn2["truth"]["resolved_by"] = which
    return [turn1, turn2]


def q_follow_up(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    if len(clip.objects) < 2:
        return None
    i, j = (int(v) for v in rng.choice(len(clip.objects), size=2, replace=False))
    a, b = clip.objects[i], clip.objects[j]
    turns = [
        _describe_turn(clip, a, _t("describe", rng, heldout, a=_name(clip, a)), rng),
        _describe_turn(clip, b, _t("follow_up", rng, heldout, a=_name(clip, b)), rng),
    ]
    return turns


def q_long_part(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    """On a concatenated clip: in which part does an object appear? (Only one its description fits:
    :func:`_well_named`.)"""
    if len(clip.parts) < 2:
        return None
    o = clip.objects[int(rng.integers(len(clip.objects)))]
    t0 = o.visible_frames[0] if o.visible_frames else None
    if t0 is None:
        return None
    part = next(k for k, (s, e) in enumerate(clip.parts) if s <= t0 < e)
    frames = o.visible_frames
    truth = {
        "type": "long_part",
        "object_id": o.id,
        "part": part,
        "parts": [list(p) for p in clip.parts],
        "frames": [frames[0], frames[-1]],
        "track": _track(o),
    }
    q = _t("long_part", rng, heldout, a=_name(clip, o))
    s, e = clip.parts[part]
    ans = f"In the {ORDINALS[part]} part, from {s / clip.fps:.1f} to {e / clip.fps:.1f} seconds."
    return [{"question": q, "answer": ans, "truth": truth}]


# ------------------------------------------------------------------ event questions (counting ... future)
# Asked on single clips only (a concatenated clip's cuts read as enters and leaves), and only when the answer
# is clear: events at least MIN_GAP_FRAMES apart from competing ones, CLEAR_FRAMES away from the clip's ends.

MEMORY_EVENT = {
    "turn_back": "turn"
}  # world event kind -> the object memory's (``tools.schemas.MEMORY_EVENTS``)
DETECTABLE_EVENTS = ("stop", "start_moving", "turn", "bounce", "collide", "enter", "leave")
"""Event kinds (memory names) a question may ask about or expect as its answer; speed changes are not."""
DIRECTION_CHANGES = ("turn", "bounce", "collide")
EVENT_PHRASES: dict[str, tuple[str, str]] = {  # memory event kind -> (third person, plural)
    "stop": ("stops", "stop"),
    "start_moving": ("starts moving", "start moving"),
    "turn": ("turns on its own", "turn on their own"),  # not "changes direction": a bounce changes it too
    "bounce": ("bounces off a wall", "bounce off a wall"),
    "collide": ("bumps into another object", "bump into another object"),
    "enter": ("enters the frame", "enter the frame"),
    "leave": ("leaves the frame", "leave the frame"),
}
RELATION_WORDS = {
    "left_of": "to the left of",
    "right_of": "to the right of",
    "above": "above",
    "below": "below",
}
CLEAR_FRAMES = 2  # kinematic events this close to the first / last frame are not asked about
MIN_VISIBLE = 0.3  # less visible than this: unclear in a spatial relation (on that frame), uncounted (always)
FUTURE_RATIO = 1.5  # the first wall is reached this many times sooner than the second (and MIN_GAP_FRAMES)
FUTURE_MIN_SPEED = 0.5  # px / frame
EVENT_KINDS = ("counting", "sequential", "relationship", "reasoning", "future")
"""The record kinds built from the objects' events (and a separate random stream, so that adding them left
the other kinds' questions unchanged)."""


MAX_SHARE = 0.3
"""Answer balance of the event kinds: a clip is skipped when its least used answer class already holds this share
of the kind's questions (after BALANCE_WARMUP of them), so that no answer is much more common than the others."""
BALANCE_WARMUP = 8
MIN_OBJECTS_RELATIONSHIP = 4  # "which object ...?" with at least 3 candidates besides the subject
T = TypeVar("T")


@dataclass
class AnswerBalance:
    """How often each answer class was asked per kind over a question set (the answers balanced as VQA v2 and GQA
    balance theirs: a guesser that knows the answer distribution should not score high).

    ``pick`` takes the clip's options ``[(answer class, option)]`` and returns one of the least used class, or
    None when even that class is over ``MAX_SHARE``."""

    used: dict[str, dict[str, int]] = field(default_factory=dict)

    def pick(self, kind: str, options: list[tuple[str, T]], rng: np.random.Generator) -> T | None:
        if not options:
            return None
        used = self.used.setdefault(kind, {})
        total = sum(used.values())
        least = min(used.get(c, 0) for c, _ in options)
        if total >= BALANCE_WARMUP and least / total >= MAX_SHARE:
            return None
        classes = sorted({c for c, _ in options if used.get(c, 0) == least})
        cls = classes[int(rng.integers(len(classes)))]
        mine = [o for c, o in options if c == cls]
        used[cls] = least + 1
        return mine[int(rng.integers(len(mine)))]


def _pick(
    kind: str, options: list[tuple[str, T]], rng: np.random.Generator, balance: AnswerBalance | None
) -> T | None:
    """One option: of the least used answer class when balancing, else uniformly at random."""
    if balance is not None:
        return balance.pick(kind, options, rng)
    return options[int(rng.integers(len(options)))][1] if options else None


def memory_event(kind: str) -> str:
    """The object memory's name of a world event kind (``turn_back`` -> ``turn``)."""
    return MEMORY_EVENT.get(kind, kind)


def _kinds_at(o: ObjectTruth, frame: int) -> set[str]:
    return {memory_event(e.kind) for e in o.events if e.frame == frame}


def _clear_frame(frame: int, clip: Clip) -> bool:
    return CLEAR_FRAMES <= frame <= clip.num_frames - 1 - CLEAR_FRAMES


def _single(clip: Clip) -> bool:
    return len(clip.parts) < 2


def _once_events(o: ObjectTruth, clip: Clip) -> list[tuple[str, int]]:
    """(kind, frame) of the detectable events that happen once to ``o``, alone on their frame, clear of the
    clip's ends and of the object's other events by MIN_GAP_FRAMES."""
    frames = sorted({e.frame for e in o.events})
    out = []
    for e in o.events:
        k = memory_event(e.kind)
        if k not in DETECTABLE_EVENTS or _kinds_at(o, e.frame) != {k}:
            continue
        if sum(1 for f in frames if k in _kinds_at(o, f)) != 1 or not _clear_frame(e.frame, clip):
            continue
        if any(0 < abs(f - e.frame) < MIN_GAP_FRAMES for f in frames) or (k, e.frame) in out:
            continue
        out.append((k, e.frame))
    return out


def _has_event(o: ObjectTruth, kind: str) -> bool:
    return any(memory_event(e.kind) == kind for e in o.events)


def _clear_count(clip: Clip, kind: str) -> bool:
    """Whether "how many objects <kind>?" has a clear answer: no object is a borderline case."""
    for o in clip.objects:
        if kind == "enter":
            if not (o.in_frame[0] == 1.0 or (o.in_frame[0] == 0.0 and _has_event(o, "enter"))):
                return False
        elif kind == "leave":
            if not (o.in_frame[-1] == 1.0 or (o.in_frame[-1] == 0.0 and _has_event(o, "leave"))):
                return False
        elif any(memory_event(e.kind) == kind and not _clear_frame(e.frame, clip) for e in o.events):
            return False
    return True


def q_counting(
    clip: Clip, rng: np.random.Generator, heldout: bool, balance: AnswerBalance | None = None
) -> list[dict] | None:
    """ "How many objects enter the frame?" / "How many red objects are there?": the number of objects (0 for
    an event no object has, when no object is a borderline case)."""
    if not _single(clip):
        return None
    queries: list[dict[str, str]] = [{"event": k} for k in DETECTABLE_EVENTS if _clear_count(clip, k)]
    queries += [{"colour": c} for c in sorted({o.colour for o in clip.objects})]
    queries += [{"shape": c} for c in sorted({o.shape for o in clip.objects})]
    counted = [(query, count_objects(clip, query)) for query in queries]
    seen = {o.id for o in clip.objects if max(o.visible) >= MIN_VISIBLE}  # a hidden object is not counted
    options = [(str(len(ids)), (query, ids)) for query, ids in counted if set(ids) <= seen]
    picked = _pick("counting", options, rng, balance)
    if picked is None:
        return None
    query, ids = picked
    n = len(ids)
    ((attr, value),) = query.items()
    if attr == "event":
        q = _t("counting_event", rng, heldout, verb=EVENT_PHRASES[value][1])
        ans = f"{n} object{'s' if n != 1 else ''} {EVENT_PHRASES[value][0 if n == 1 else 1]}."
    else:
        group = f"{value} objects" if attr == "colour" else f"{value}s"
        q = _t("counting_attribute", rng, heldout, group=group)
        ans = f"{n} {(f'{value} object' if attr == 'colour' else value)}{'s' if n != 1 else ''}."
    truth = {"type": "counting", "query": query, "count": n, "object_ids": ids}
    return [{"question": q, "answer": ans, "truth": truth}]


def count_objects(clip: Clip, query: dict[str, str]) -> list[int]:
    """Ids of the objects a counting query counts: ``{"event": kind}`` (objects with that memory event),
    ``{"colour": c}`` or ``{"shape": s}``."""
    ((attr, value),) = query.items()
    if attr == "event":
        return [o.id for o in clip.objects if _has_event(o, value)]
    if attr in ("colour", "shape"):
        return [o.id for o in clip.objects if getattr(o, attr) == value]
    raise ValueError(f"unknown counting query {query!r}; allowed keys: event, colour, shape")


def _next_event(s: ObjectTruth, after: int, clip: Clip, anchor: tuple[int, str] | None) -> MotionEvent | None:
    """The subject's next event after frame ``after`` when it is clear: nothing of the subject within
    MIN_GAP_FRAMES of ``after`` (``anchor``, the anchor event itself, excepted), a detectable kind alone on
    its frame, the event after it MIN_GAP_FRAMES later, the subject visible then (unless it enters/leaves)."""
    evs = [e for e in s.events if anchor is None or (e.frame, memory_event(e.kind)) != anchor]
    if any(abs(e.frame - after) < MIN_GAP_FRAMES for e in evs):
        return None
    later = [e for e in evs if e.frame > after]
    if not later:
        return None
    nxt = later[0]
    kind = memory_event(nxt.kind)
    if kind not in DETECTABLE_EVENTS or _kinds_at(s, nxt.frame) != {kind}:
        return None
    if kind == "bounce" and len({e.side for e in later if e.frame == nxt.frame}) != 1:
        return None
    if any(nxt.frame < e.frame < nxt.frame + MIN_GAP_FRAMES for e in later):
        return None
    if kind not in ("enter", "leave") and (
        nxt.frame > clip.num_frames - 1 - CLEAR_FRAMES or s.boxes[nxt.frame] is None
    ):
        return None
    return nxt


def _event_text(clip: Clip, e: MotionEvent) -> str:
    kind = memory_event(e.kind)
    if kind == "bounce":
        return f"bounces off the {e.side} wall"
    if kind == "collide" and e.other is not None:
        return f"bumps into the {_name(clip, clip.object(e.other))}"
    return EVENT_PHRASES[kind][0]


def q_sequential(
    clip: Clip, rng: np.random.Generator, heldout: bool, balance: AnswerBalance | None = None
) -> list[dict] | None:
    """ "What does the red circle do after the blue square stops?": the subject's next event."""
    if not _single(clip):
        return None
    options = []
    for a in clip.objects:
        for kind, frame in _once_events(a, clip):
            if kind == "enter":  # its first visible frame, or when it is fully in? Not a clear anchor
                continue
            for s in clip.objects:
                nxt = _next_event(s, frame, clip, (frame, kind) if s.id == a.id else None)
                if nxt is not None:
                    options.append((memory_event(nxt.kind), (a, kind, frame, s, nxt)))
    picked = _pick("sequential", options, rng, balance)
    if picked is None:
        return None
    a, kind, frame, s, nxt = picked
    anchor = f"{'it' if s.id == a.id else 'the ' + _name(clip, a)} {EVENT_PHRASES[kind][0]}"
    q = _t("sequential", rng, heldout, b=_name(clip, s), anchor=anchor)
    truth = {
        "type": "sequential",
        "anchor_id": a.id,
        "anchor_event": kind,
        "anchor_frame": frame,
        "object_id": s.id,
        "event": memory_event(nxt.kind),
        "frame": nxt.frame,
        "side": nxt.side,
        "other_id": nxt.other,
    }
    ans = f"It {_event_text(clip, nxt)} at about {nxt.frame / clip.fps:.1f} seconds (frame {nxt.frame})."
    return [{"question": q, "answer": ans, "truth": truth}]


def _relation_answer(clip: Clip, s: ObjectTruth, relation: str, frame: int) -> int | None:
    """The one object clearly in ``relation`` to ``s`` on ``frame`` (every other object clearly not), or None."""
    if s.boxes[frame] is None or s.visible[frame] < MIN_VISIBLE:
        return None
    axis, sign = {"left_of": (0, -1), "right_of": (0, 1), "above": (1, -1), "below": (1, 1)}[relation]
    hits = []
    for o in clip.objects:
        if o.id == s.id or o.boxes[frame] is None:
            continue
        if o.visible[frame] < MIN_VISIBLE:
            return None
        d = sign * (o.centres[frame][axis] - s.centres[frame][axis])
        if abs(d) < MIN_OFFSET_PX:
            return None
        if d > 0:
            hits.append(o.id)
    return hits[0] if len(hits) == 1 else None


def q_relationship(
    clip: Clip, rng: np.random.Generator, heldout: bool, balance: AnswerBalance | None = None
) -> list[dict] | None:
    """ "Which object does the red circle bump into?" / "What is to the left of the star when it stops?"."""
    if not _single(clip) or len(clip.objects) < MIN_OBJECTS_RELATIONSHIP:
        return None
    options: list[
        tuple[str, tuple[ObjectTruth, str, int, int, str]]
    ] = []  # (subject, relation, answer, frame, when)
    last = clip.num_frames - 1
    for s in clip.objects:
        hits = [e for e in s.events if e.kind == "collide"]
        if (
            hits
            and len({e.other for e in hits}) == 1
            and hits[0].other is not None
            and _clear_frame(hits[0].frame, clip)
        ):
            options.append(("collide", (s, "collide", hits[0].other, hits[0].frame, "")))
        times = [
            (f, f"when it {EVENT_PHRASES[k][0]}")
            for k, f in _once_events(s, clip)
            if k not in ("enter", "leave")
        ]
        times += [(0, "at the start of the video"), (last, "at the end of the video")]
        for frame, when in times:
            for relation in RELATION_WORDS:
                window = range(max(0, frame - CLEAR_FRAMES), min(last, frame + CLEAR_FRAMES) + 1)
                answers = {_relation_answer(clip, s, relation, f) for f in window}
                if len(answers) == 1 and None not in answers:
                    options.append((relation, (s, relation, answers.pop(), frame, when)))  # type: ignore[arg-type]
    picked = _pick("relationship", options, rng, balance)
    if picked is None:
        return None
    s, relation, answer_id, frame, when = picked
    a, b = _name(clip, s), _name(clip, clip.object(answer_id))
    if relation == "collide":
        q = _t("relationship_collide", rng, heldout, a=a)
        ans = f"The {b}: the {a} bumps into it at about {frame / clip.fps:.1f} seconds."
    else:
        q = _t("relationship_spatial", rng, heldout, a=a, rel=RELATION_WORDS[relation], when=when)
        ans = f"The {b}."
    truth = {
        "type": "relationship",
        "object_id": s.id,
        "relation": relation,
        "answer_id": answer_id,
        "frame": frame,
    }
    return [{"question": q, "answer": ans, "truth": truth}]


def q_reasoning(
    clip: Clip, rng: np.random.Generator, heldout: bool, balance: AnswerBalance | None = None
) -> list[dict] | None:
    """ "Why does the circle change direction?": it hit a wall (side) or another object (other_id)."""
    if not _single(clip):
        return None
    options = []
    for o in clip.objects:
        changes = sorted({e.frame for e in o.events if memory_event(e.kind) in DIRECTION_CHANGES})
        frames = sorted({e.frame for e in o.events})
        for f in changes:
            at = [e for e in o.events if e.frame == f]
            kinds = {memory_event(e.kind) for e in at}
            if kinds not in ({"bounce"}, {"collide"}) or not _clear_frame(f, clip):
                continue
            if len({(e.side, e.other) for e in at}) != 1 or any(
                0 < abs(g - f) < MIN_GAP_FRAMES for g in frames
            ):
                continue
            cls = f"bounce:{at[0].side}" if kinds == {"bounce"} else "collide"
            options.append((cls, (o, at[0], len(changes) == 1)))
    picked = _pick("reasoning", options, rng, balance)
    if picked is None:
        return None
    o, e, only = picked
    if only:
        q = _t("reasoning", rng, heldout, a=_name(clip, o))
    else:
        q = _t("reasoning_at", rng, heldout, a=_name(clip, o), t=f"{e.frame / clip.fps:.1f}")
    cause = memory_event(e.kind)
    reason = f"the {e.side} wall" if cause == "bounce" else f"the {_name(clip, clip.object(e.other))}"  # type: ignore[arg-type]
    truth = {
        "type": "reasoning",
        "object_id": o.id,
        "frame": e.frame,
        "cause": cause,
        "side": e.side if cause == "bounce" else None,
        "other_id": e.other if cause == "collide" else None,
    }
    return [{"question": q, "answer": f"Because it hits {reason}.", "truth": truth}]


def wall_times(
    box: tuple[int, int, int, int], velocity: tuple[float, float], width: int, height: int
) -> dict[str, float]:
    """Frames until a box moving at ``velocity`` (px / frame) touches each frame wall it moves towards."""
    x1, y1, x2, y2 = box
    vx, vy = velocity
    out = {}
    if vx < -1e-9:
        out["left"] = x1 / -vx
    if vx > 1e-9:
        out["right"] = (width - x2) / vx
    if vy < -1e-9:
        out["top"] = y1 / -vy
    if vy > 1e-9:
        out["bottom"] = (height - y2) / vy
    return out


def q_future(
    clip: Clip, rng: np.random.Generator, heldout: bool, balance: AnswerBalance | None = None
) -> list[dict] | None:
    """ "If it keeps moving, which wall does the red circle reach first?": its last velocity extrapolated."""
    if not _single(clip):
        return None
    last = clip.num_frames - 1
    options = []
    for o in clip.objects:
        seg = o.segments[-1] if o.segments else None
        box = o.boxes[last]
        if seg is None or not seg.moving or seg.speed < FUTURE_MIN_SPEED or seg.start > last - MIN_GAP_FRAMES:
            continue
        if box is None or o.in_frame[last] < 1.0 or o.visible[last] < 0.5:
            continue
        v = (o.centres[last][0] - o.centres[last - 1][0], o.centres[last][1] - o.centres[last - 1][1])
        times = sorted(wall_times(box, v, clip.width, clip.height).items(), key=lambda kv: kv[1])
        if not times or times[0][1] < 1.0:
            continue
        if len(times) > 1 and times[1][1] < max(FUTURE_RATIO * times[0][1], times[0][1] + MIN_GAP_FRAMES):
            continue
        options.append((times[0][0], (o, times[0][0], last + int(np.ceil(times[0][1])), v)))
    picked = _pick("future", options, rng, balance)
    if picked is None:
        return None
    o, side, reached, v = picked
    q = _t("future", rng, heldout, a=_name(clip, o))
    truth = {
        "type": "future",
        "object_id": o.id,
        "side": side,
        "frame_reached": reached,
        "velocity": [round(v[0], 4), round(v[1], 4)],
    }
    return [
        {
            "question": q,
            "answer": f"The {side} wall, at about {reached / clip.fps:.1f} seconds.",
            "truth": truth,
        }
    ]


BUILDERS = {
    "describe": q_describe,
    "multi_target": q_multi_target,
    "comparison": q_comparison,
    "temporal": q_temporal,
    "ambiguous": q_ambiguous,
    "follow_up": q_follow_up,
    "long_video": q_long_part,
    "counting": q_counting,
    "sequential": q_sequential,
    "relationship": q_relationship,
    "reasoning": q_reasoning,
    "future": q_future,
}


def questions_for_clip(
    clip: Clip,
    rng: np.random.Generator,
    *,
    heldout: bool = False,
    kinds: tuple[str, ...] | None = None,
    event_rng: np.random.Generator | None = None,
    balance: AnswerBalance | None = None,
) -> list[dict]:
    """Every question kind the clip supports: [{"kind", "turns"}]. The ``EVENT_KINDS`` draw from
    ``event_rng`` (default ``rng``) and balance their answers over a set with ``balance``."""
    out = []
    for kind in kinds or tuple(BUILDERS):
        if kind not in BUILDERS:
            raise ValueError(f"unknown question kind {kind!r}; allowed: {tuple(BUILDERS)}")
        if kind in EVENT_KINDS:
            turns = BUILDERS[kind](clip, event_rng or rng, heldout, balance=balance)  # type: ignore[call-arg]
        else:
            turns = BUILDERS[kind](clip, rng, heldout)
        if turns and (kind == "ambiguous" or all(_well_named(clip, t["truth"]) for t in turns)):
            out.append({"kind": kind, "turns": turns})
    return out


NAMED_FIELDS = ("object_id", "anchor_id")
"""Truth fields whose object a question names by its description (``_name``)."""


def _well_named(clip: Clip, truth: dict) -> bool:
    """Whether every object the question names is the only one its description fits (two small yellow squares
    have no unique name; such a question is drawn and then dropped, so no other question of the set changes).
    The ``ambiguous`` kind names such objects on purpose and is not checked."""
    for key in NAMED_FIELDS:
        if truth.get(key) is None:
            continue
        o = clip.object(int(truth[key]))
        d = unique_description(clip, o)
        if any(
            p.id != o.id and p.shape == d.shape and d.colour in (None, p.colour) and d.size in (None, p.size)
            for p in clip.objects
        ):
            return False
    return True


def build_question_set(
    videos: list[tuple[str, str, Clip]],
    seed: int,
    *,
    heldout: bool = False,
    kinds: tuple[str, ...] | None = None,
) -> list[dict]:
    """Question records for ``videos`` = [(name, video path, clip)]; deterministic in ``seed``.

    The event kinds (``EVENT_KINDS``) draw from their own stream (``[seed, 1]``), so the other kinds' records
    are the same whether or not the event kinds are asked, and balance their answers over the set
    (:class:`AnswerBalance`)."""
    rng = np.random.default_rng(seed)
    event_rng = np.random.default_rng([seed, 1])
    balance = AnswerBalance()
    records = []
    for name, video, clip in videos:
        for q in questions_for_clip(
            clip, rng, heldout=heldout, kinds=kinds, event_rng=event_rng, balance=balance
        ):
            records.append(
                {"id": f"{name}_{q['kind']}", "video_name": name, "video": video, "heldout": heldout, **q}
            )
    return records


__all__ = [
    "BUILDERS",
    "AnswerBalance",
    "DETECTABLE_EVENTS",
    "EVENT_KINDS",
    "NounPhrase",
    "TEMPLATES",
    "build_question_set",
    "count_objects",
    "memory_event",
    "questions_for_clip",
    "wall_times",
]
