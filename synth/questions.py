"""Complex questions for the agent, each turn with structured ground truth.

Kinds: ``describe``, ``multi_target`` ("what do the red objects do?"), ``comparison`` (which is faster),
``temporal`` (which object stops first / when does X stop), ``ambiguous`` ("the circle" when there are two,
then "the left one"), ``follow_up`` (describe X, "and Y?", "which of them is faster?") and ``long_video``
(concatenated clips: in which part does X appear). ``heldout=True`` draws the wording from
``synth.heldout_templates`` (benchmark only); otherwise from ``TEMPLATES``.

Every turn is ``{"question", "answer", "truth"}``; ``truth["type"]`` names the structure. Tracks are
per-frame ``xyxy`` boxes with ``[]`` where the object is not visible.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from synth.datasets import describe_np, unique_description
from synth.grammar import NounPhrase, motion_phrases, render_caption
from synth.heldout_templates import HELDOUT_TEMPLATES
from synth.world import Clip, ObjectTruth

TEMPLATES: dict[str, tuple[str, ...]] = {
    "describe": ("What does the {a} do?", "Describe what the {a} does."),
    "multi_target": ("What do the {group} do?", "Describe what the {group} do."),
    "comparison_speed": ("Which moves faster, the {a} or the {b}?", "Which is faster, the {a} or the {b}?"),
    "temporal_first": ("Which object {verbs} first?", "Which object is the first to {verb}?"),
    "when": ("When does the {a} {verb}?", "At what time does the {a} {verb}?"),
    "ambiguous": ("What does the {a} do?", "Describe the {a}."),
    "resolve": ("The {which} one.", "I mean the {which} one."),
    "follow_up": ("And the {a}?", "What about the {a}?"),
    "follow_up_compare": ("Which of them moves faster?", "Which of the two is faster?"),
    "long_part": (
        "In which part of the video does the {a} appear?",
        "When does the {a} appear in the video?",
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
SPEED_RATIO = 1.5  # comparisons only when one is clearly faster
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


def _speed_pair(clip: Clip, objs: list[ObjectTruth]) -> tuple[ObjectTruth, ObjectTruth] | None:
    """(faster, slower) when one is at least SPEED_RATIO times faster."""
    a, b = sorted(objs, key=lambda o: -o.mean_speed)[:2]
    if a.mean_speed < SPEED_RATIO * max(b.mean_speed, 1e-6):
        return None
    return a, b


def _comparison_truth(a: ObjectTruth, b: ObjectTruth, faster: ObjectTruth) -> dict:
    return {
        "type": "comparison",
        "attribute": "speed",
        "candidates": [a.id, b.id],
        "answer_id": faster.id,
        "values": {str(a.id): round(a.mean_speed, 4), str(b.id): round(b.mean_speed, 4)},
    }


def q_comparison(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    if len(clip.objects) < 2:
        return None
    i, j = (int(v) for v in rng.choice(len(clip.objects), size=2, replace=False))
    a, b = clip.objects[i], clip.objects[j]
    pair = _speed_pair(clip, [a, b])
    if pair is None:
        return None
    q = _t("comparison_speed", rng, heldout, a=_name(clip, a), b=_name(clip, b))
    ans = f"The {_name(clip, pair[0])} moves faster."
    return [{"question": q, "answer": ans, "truth": _comparison_truth(a, b, pair[0])}]


def _first_event(o: ObjectTruth, kind: str) -> int | None:
    return next((e.frame for e in o.events if e.kind == kind), None)


def q_temporal(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
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
    pair = _speed_pair(clip, [a, b])
    if pair is not None:
        turns.append(
            {
                "question": _t("follow_up_compare", rng, heldout),
                "answer": f"The {_name(clip, pair[0])} moves faster.",
                "truth": _comparison_truth(a, b, pair[0]),
            }
        )
    return turns


def q_long_part(clip: Clip, rng: np.random.Generator, heldout: bool) -> list[dict] | None:
    """On a concatenated clip: in which part does a (uniquely described) object appear?"""
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


BUILDERS = {
    "describe": q_describe,
    "multi_target": q_multi_target,
    "comparison": q_comparison,
    "temporal": q_temporal,
    "ambiguous": q_ambiguous,
    "follow_up": q_follow_up,
    "long_video": q_long_part,
}


def questions_for_clip(
    clip: Clip, rng: np.random.Generator, *, heldout: bool = False, kinds: tuple[str, ...] | None = None
) -> list[dict]:
    """Every question kind the clip supports: [{"kind", "turns"}]."""
    out = []
    for kind in kinds or tuple(BUILDERS):
        if kind not in BUILDERS:
            raise ValueError(f"unknown question kind {kind!r}; allowed: {tuple(BUILDERS)}")
        turns = BUILDERS[kind](clip, rng, heldout)
        if turns:
            out.append({"kind": kind, "turns": turns})
    return out


def build_question_set(
    videos: list[tuple[str, str, Clip]],
    seed: int,
    *,
    heldout: bool = False,
    kinds: tuple[str, ...] | None = None,
) -> list[dict]:
    """Question records for ``videos`` = [(name, video path, clip)]; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    records = []
    for name, video, clip in videos:
        for q in questions_for_clip(clip, rng, heldout=heldout, kinds=kinds):
            records.append(
                {"id": f"{name}_{q['kind']}", "video_name": name, "video": video, "heldout": heldout, **q}
            )
    return records


__all__ = ["NounPhrase", "TEMPLATES", "build_question_set", "questions_for_clip"]
