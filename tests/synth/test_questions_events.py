"""The event questions (counting, sequential, relationship, reasoning, future): truth checked against the world
by independent oracles, answers balanced, held-out wording apart, the other kinds unchanged."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from synth.build import clip_seeds
from synth.heldout_templates import HELDOUT_TEMPLATES
from synth.questions import (
    EVENT_KINDS,
    MAX_SHARE,
    MIN_GAP_FRAMES,
    TEMPLATES,
    build_question_set,
    memory_event,
    questions_for_clip,
)
from synth.world import Clip, concat_clips, generate_clip

NUM_CLIPS = 120


@pytest.fixture(scope="module")
def videos() -> list[tuple[str, str, Clip]]:
    clips = [generate_clip(s) for s in clip_seeds(7, NUM_CLIPS)]
    vids = [(f"c{i}", f"videos/c{i}.mp4", c) for i, c in enumerate(clips)]
    vids.append(("long", "videos/long.mp4", concat_clips(clips[:3])))
    return vids


@pytest.fixture(scope="module")
def records(videos) -> dict[str, list[dict]]:  # noqa: ANN001
    return {"template": build_question_set(videos, 3), "heldout": build_question_set(videos, 4, heldout=True)}


def _clips(videos) -> dict[str, Clip]:  # noqa: ANN001
    return {name: clip for name, _, clip in videos}


def _of(records: list[dict], kind: str) -> list[dict]:
    return [r["turns"][0]["truth"] | {"_video": r["video_name"]} for r in records if r["kind"] == kind]


def test_every_event_kind_is_asked_on_single_clips_only(records) -> None:  # noqa: ANN001
    for recs in records.values():
        kinds = Counter(r["kind"] for r in recs)
        for kind in EVENT_KINDS:
            assert kinds[kind] >= 15, (kind, kinds)
        assert not [r for r in recs if r["kind"] in EVENT_KINDS and r["video_name"] == "long"]
        assert all(len(r["turns"]) == 1 and r["turns"][0]["truth"]["type"] == r["kind"] for r in recs
                   if r["kind"] in EVENT_KINDS)  # fmt: skip


def test_counting_equals_the_objects_with_the_event_or_attribute(records, videos) -> None:  # noqa: ANN001
    clips = _clips(videos)
    counts = Counter()
    for t in _of(records["template"], "counting"):
        clip = clips[t["_video"]]
        ((attr, value),) = t["query"].items()
        if attr == "event":  # independent of the builder: the world's own event names
            world = {"turn": {"turn", "turn_back"}}.get(value, {value})
            expect = [o.id for o in clip.objects if any(e.kind in world for e in o.events)]
        else:
            expect = [o.id for o in clip.objects if getattr(o, attr) == value]
        assert t["object_ids"] == expect and t["count"] == len(expect)
        counts[attr == "event"] += 1
    assert counts[True] >= 5 and counts[False] >= 5  # both kinds of query
    assert any(t["count"] == 0 for t in _of(records["template"], "counting"))


def test_sequential_event_is_the_subjects_next_event_after_a_unique_anchor(records, videos) -> None:  # noqa: ANN001
    clips = _clips(videos)
    for t in _of(records["template"] + records["heldout"], "sequential"):
        clip = clips[t["_video"]]
        anchor = clip.object(t["anchor_id"])
        same = [e for e in anchor.events if memory_event(e.kind) == t["anchor_event"]]
        assert {e.frame for e in same} == {t["anchor_frame"]}  # the anchor event happens once
        subject = clip.object(t["object_id"])
        after = sorted((e for e in subject.events if e.frame > t["anchor_frame"] and
                        (e.frame, memory_event(e.kind)) != (t["anchor_frame"], t["anchor_event"])),
                       key=lambda e: e.frame)  # fmt: skip
        nxt = after[0]
        assert (nxt.frame, memory_event(nxt.kind)) == (t["frame"], t["event"])
        assert t["frame"] - t["anchor_frame"] >= MIN_GAP_FRAMES
        assert len(after) == 1 or after[1].frame - nxt.frame >= MIN_GAP_FRAMES or after[1].frame == nxt.frame
        assert t["event"] in {"stop", "start_moving", "turn", "bounce", "collide", "enter", "leave"}
        if t["event"] == "bounce":
            assert t["side"] == nxt.side
        if t["event"] == "collide":
            assert t["other_id"] == nxt.other


def test_relationship_answer_is_where_the_question_says(records, videos) -> None:  # noqa: ANN001
    clips = _clips(videos)
    relations = Counter()
    for t in _of(records["template"] + records["heldout"], "relationship"):
        clip = clips[t["_video"]]
        s, a = clip.object(t["object_id"]), clip.object(t["answer_id"])
        f = t["frame"]
        relations[t["relation"]] += 1
        if t["relation"] == "collide":
            assert {e.other for e in s.events if e.kind == "collide"} == {a.id}
            assert any(e.kind == "collide" and e.frame == f for e in s.events)
            continue
        (sx, sy), (ax, ay) = s.centres[f], a.centres[f]
        offset = {"left_of": sx - ax, "right_of": ax - sx, "above": sy - ay, "below": ay - sy}[t["relation"]]
        assert offset >= 10 and a.boxes[f] is not None
        others = [o for o in clip.objects if o.id not in (s.id, a.id) and o.boxes[f] is not None]
        for o in others:  # nobody else is on that side
            ox, oy = o.centres[f]
            assert {"left_of": sx - ox, "right_of": ox - sx, "above": sy - oy, "below": oy - sy}[
                t["relation"]
            ] < 0
        assert len(clip.objects) >= 4
    assert len(relations) == 5


def test_reasoning_cause_is_the_event_at_the_turn(records, videos) -> None:  # noqa: ANN001
    clips = _clips(videos)
    causes = Counter()
    for t in _of(records["template"] + records["heldout"], "reasoning"):
        o = clips[t["_video"]].object(t["object_id"])
        at = [e for e in o.events if e.frame == t["frame"]]
        assert {e.kind for e in at} == {t["cause"]}
        if t["cause"] == "bounce":
            assert {e.side for e in at} == {t["side"]} and t["other_id"] is None
        else:
            assert {e.other for e in at} == {t["other_id"]} and t["side"] is None
        causes[t["cause"]] += 1
    assert causes["bounce"] and causes["collide"]


def _brute_force_wall(box, v, width, height) -> tuple[str, int] | None:  # noqa: ANN001
    """Step the box frame by frame until it passes a frame edge (then the wall it passed first)."""
    x1, y1, x2, y2 = box
    for k in range(1, 10_000):
        dx, dy = v[0] * k, v[1] * k
        hit = {  # how far past each wall it moves towards
            "left": -(x1 + dx) if v[0] < 0 else -1,
            "right": x2 + dx - width if v[0] > 0 else -1,
            "top": -(y1 + dy) if v[1] < 0 else -1,
            "bottom": y2 + dy - height if v[1] > 0 else -1,
        }
        past = {side: d for side, d in hit.items() if d >= 0}
        if past:
            return max(past, key=past.get), k
    return None


def test_future_wall_matches_a_brute_force_extrapolation(records, videos) -> None:  # noqa: ANN001
    clips = _clips(videos)
    sides = Counter()
    for t in _of(records["template"] + records["heldout"], "future"):
        clip = clips[t["_video"]]
        o = clip.object(t["object_id"])
        last = clip.num_frames - 1
        v = (o.centres[last][0] - o.centres[last - 1][0], o.centres[last][1] - o.centres[last - 1][1])
        assert v == pytest.approx(t["velocity"], abs=1e-3)
        steps = [(o.centres[k + 1][0] - o.centres[k][0], o.centres[k + 1][1] - o.centres[k][1])
                 for k in range(last - 3, last)]  # fmt: skip
        assert all(s == pytest.approx(v) for s in steps)  # still moving the same way at the end
        side, frames = _brute_force_wall(o.boxes[last], v, clip.width, clip.height)
        assert side == t["side"] and abs(last + frames - t["frame_reached"]) <= 1
        sides[side] += 1
    assert len(sides) == 4


def test_answers_are_balanced(records) -> None:  # noqa: ANN001
    fields = {"counting": "count", "sequential": "event", "future": "side", "relationship": "relation"}
    for recs in records.values():
        for kind, key in fields.items():
            answers = Counter(t[key] for t in _of(recs, kind))
            assert max(answers.values()) / sum(answers.values()) <= MAX_SHARE + 0.05, (kind, answers)


def _patterns(templates: dict[str, tuple[str, ...]], kind: str) -> list[re.Pattern]:
    """The template wordings of a record kind as regular expressions, a slot matching any text."""
    return [
        re.compile("^" + re.sub(r"\\\{[a-z]+\\\}", ".*", re.escape(t)) + "$")
        for key, wordings in templates.items()
        if key.split("_")[0] == kind
        for t in wordings
    ]


def test_heldout_wording_differs_from_the_templates(records) -> None:  # noqa: ANN001
    for key in TEMPLATES:
        assert key in HELDOUT_TEMPLATES and not set(TEMPLATES[key]) & set(HELDOUT_TEMPLATES[key])
    for kind in EVENT_KINDS:
        templ, held = _patterns(TEMPLATES, kind), _patterns(HELDOUT_TEMPLATES, kind)
        for name, recs, own, other in (("template", records["template"], templ, held),
                                       ("heldout", records["heldout"], held, templ)):  # fmt: skip
            questions = [r["turns"][0]["question"] for r in recs if r["kind"] == kind]
            assert questions and all(any(p.match(q) for p in own) for q in questions), (name, kind)
            assert not [q for q in questions if any(p.match(q) for p in other)], (name, kind)


def test_event_kinds_are_deterministic_and_leave_the_other_kinds_unchanged(videos) -> None:  # noqa: ANN001
    few = videos[:20]
    assert build_question_set(few, 5) == build_question_set(few, 5)
    assert build_question_set(few, 5) != build_question_set(few, 6)
    others = tuple(
        k for k in ("describe", "multi_target", "comparison", "temporal", "ambiguous", "follow_up")
    )
    only_others = build_question_set(few, 5, kinds=others)
    assert [r for r in build_question_set(few, 5) if r["kind"] not in EVENT_KINDS] == only_others


def test_unknown_kind_names_the_allowed_ones() -> None:
    import numpy as np

    with pytest.raises(ValueError, match="unknown question kind 'gossip'.*counting"):
        questions_for_clip(generate_clip(1), np.random.default_rng(0), kinds=("gossip",))
