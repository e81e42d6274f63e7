"""The object memory (tracks -> events) and the query tools over it.

Oracles: hand-made tracks whose events are known by construction, and the synthetic world's exact events
(``ObjectTruth.events``) for tracks made from its exact boxes.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from synth import generate_clip
from synth.build import clip_seeds
from synth.grammar import motion_phrases
from synth.motion_truth import primary_motion
from tools import queries
from tools.memory import build_memory, compass, first_motion, first_motions, fit_pieces, track_centres
from tools.queries import MemoryQuestion, memory_question
from tools.schemas import Target

W, H, FPS = 160, 120, 10.0


def _target(
    tid: int, centres: list[tuple[float, float] | None], half: float = 6.0, label: str = "obj"
) -> Target:
    boxes = []
    for c in centres:
        if c is None:
            boxes.append(None)
            continue
        x1, y1, x2, y2 = c[0] - half, c[1] - half, c[0] + half, c[1] + half
        boxes.append((max(0.0, x1), max(0.0, y1), min(float(W), x2), min(float(H), y2)))
    return Target(id=tid, label=label, boxes=boxes, width=W, height=H, score=1.0, source="test")


def _path(
    start: tuple[float, float], steps: list[tuple[int, tuple[float, float]]]
) -> list[tuple[float, float]]:
    """Positions from ``start`` moving ``(n frames, velocity)`` piece after piece (pixel-rounded like boxes)."""
    out = [start]
    x, y = start
    for n, (vx, vy) in steps:
        for _ in range(n):
            x, y = x + vx, y + vy
            out.append((round(x), round(y)))
    return out


def _memory(targets: list[Target], cuts: tuple[int, ...] = ()):
    n = max(len(t.boxes) for t in targets)
    return build_memory("v", targets, num_frames=n, fps=FPS, width=W, height=H, cuts=cuts)


def _events(memory, tid=None):
    return [(e.frame, e.kind, e.other_id, e.side) for e in memory.events_of(tid)]


# --- events from hand-made tracks ---------------------------------------------------------------------------


def test_stop_and_start_at_the_frame_where_the_path_bends() -> None:
    path = _path((30, 60), [(10, (3, 0)), (8, (0, 0)), (10, (0, 2))])  # moves, stops at 10, starts at 18
    m = _memory([_target(0, path)])
    assert _events(m) == [(10, "stop", None, None), (18, "start_moving", None, None)]


def test_bounce_off_a_wall_names_the_wall() -> None:
    path = _path((40, 60), [(11, (-3, 1)), (12, (3, 1))])  # reaches x=7 (box at the left edge), comes back
    m = _memory([_target(0, path)])
    assert _events(m) == [(11, "bounce", None, "left")]


def test_a_bounce_whose_boxes_at_the_wall_bend_the_path_twice_is_one_bounce() -> None:
    """Down-right into the bottom wall, 2 frames along it (its boxes cut by the wall: the centres do not come
    down further), then up-right: two bends 3 frames apart add up to one bounce off the bottom (long_00010 of
    seed 777: "turn" at 12 and 14, no bounce). The same path away from the walls keeps its two turns, and two
    bounces in a corner, each turning back the velocity across its wall, stay two."""
    steps = [(11, (3.7, 3.7)), (2, (3.5, 0.0)), (12, (3.6, -3.7))]
    wall, free = _path((10, 114 - 11 * 3.7), steps), _path((10, 64 - 11 * 3.7), steps)
    corner = _path((29, 36), [(10, (-2, -3)), (2, (-1.5, 3)), (12, (2, 3))])  # top at 10, then left at 12
    m = _memory([_target(0, wall), _target(1, free), _target(2, corner)])
    assert [(p.start, p.end) for p in m.pieces if p.target_id == 0] == [(0, 10), (11, 13), (14, 25)]
    assert _events(m, 0) == [(12, "bounce", None, "bottom")]
    assert _events(m, 1) == [(11, "turn", None, None), (13, "turn", None, None)]
    assert [(p.start, p.end) for p in m.pieces if p.target_id == 2] == [(0, 9), (10, 12), (13, 24)]
    assert _events(m, 2) == [(10, "bounce", None, "top"), (12, "bounce", None, "left")]


def test_turning_back_sideways_near_a_wall_is_no_bounce_off_it() -> None:
    """A box 5 px above the bottom edge moves right, then back left; its sub-pixel centres (as the offline
    backend's through H.264) drift by 0.01 px/frame down and then up: the cross velocity turns back in sign only.
    That is a turn, not a bounce off the bottom wall (it was, before ``WALL_SHARE``)."""
    out, x, y = [(60.0, 108.0)], 60.0, 108.0
    for vx, vy in [(3.0, 0.01)] * 10 + [(-3.0, -0.01)] * 10:
        x, y = x + vx, y + vy
        out.append((x, y))
    m = _memory([_target(0, out, half=6.0)])
    assert [(f, kind, side) for f, kind, _o, side in _events(m)] == [(10, "turn", None)]


def test_turning_around_near_a_wall_is_a_turn_and_a_corner_bounce_is_a_bounce() -> None:
    """A wall turns back only the velocity across it: an object 8 px from the left wall whose velocity turns
    back along the wall too turned around by itself (the world's ``turn_back``, clip_00079 of seed 4242); in a
    corner both parts turn back and it bounces."""
    around = _path((38, 70), [(12, (-2, -2)), (12, (2, 2))])  # box at x 8..20 when it turns, far from the top
    corner = _path((30, 30), [(12, (-2, -2)), (12, (2, 2))])  # into the top-left corner and back out
    m = _memory([_target(0, around), _target(1, corner)])
    assert _events(m, 0) == [(12, "turn", None, None)]
    assert [(f, kind) for f, kind, _o, _s in _events(m, 1)] == [(12, "bounce")]


def test_two_objects_that_push_each_other_back_collide_with_each_other() -> None:
    a = _path((30, 60), [(10, (3, 0)), (10, (-3, 0))])
    b = _path((86, 60), [(10, (-2, 0)), (10, (2, 0))])  # they meet at frame 10 (x 60 and 66)
    c = _path((80, 20), [(10, (0, 2)), (10, (0, -2))])  # turns back at the same time, far away: a turn
    m = _memory([_target(0, a), _target(1, b), _target(2, c)])
    assert _events(m, 0) == [(10, "collide", 1, None)]
    assert _events(m, 1) == [(10, "collide", 0, None)]
    assert _events(m, 2) == [(10, "turn", None, None)]


def test_enter_leave_and_occlusion() -> None:
    enter = [None] * 5 + _path((2, 60), [(15, (3, 0))])  # appears at the left edge at frame 5
    leave = _path((120, 40), [(14, (3, 0))]) + [None] * 5  # last box (frame 14) cut by the right edge
    hidden = _path((30, 90), [(19, (1.5, 0))])
    hidden = [c if not 8 <= f < 12 else None for f, c in enumerate(hidden)]  # behind something mid-frame
    m = _memory([_target(0, enter), _target(1, leave), _target(2, hidden)])
    assert _events(m, 0) == [(5, "enter", None, "left")]
    assert _events(m, 1) == [(15, "leave", None, "right")]
    assert _events(m, 2) == [(8, "occluded", None, None), (12, "reappear", None, None)]


def test_no_bounce_off_the_side_an_object_just_came_in_through() -> None:
    """Its first two boxes, cut by the left edge, seem to move left (through H.264 an entering object's boxes
    do: clip_00096 of seed 4242); a two-frame first piece turned back at that edge is its entering, not a
    bounce. A real bounce after a whole first piece stays one."""
    entering = [None] * 5 + [(5, 60), (3, 60)] + _path((3, 60), [(14, (3, 0))])[1:]
    m = _memory([_target(0, entering)])
    assert [(f, kind, side) for f, kind, _o, side in _events(m, 0)] == [(5, "enter", "left")]
    back = [None] * 5 + _path((2, 60), [(6, (3, 0)), (6, (-3, 0)), (6, (3, 0))])  # enters, turns, bounces
    kinds = [kind for _f, kind, _o, _s in _events(_memory([_target(1, back)]), 1)]
    assert kinds == ["enter", "turn", "bounce"]


def test_a_track_that_starts_at_a_shot_cut_does_not_enter() -> None:
    t = _target(0, [None] * 10 + _path((2, 60), [(9, (3, 0))]))
    assert _events(_memory([t]), 0) == [(10, "enter", None, "left")]
    assert _events(_memory([t], cuts=(10,)), 0) == []  # the shot changed; nothing came in


def test_overtake() -> None:
    fast = _path((20, 60), [(19, (4, 0))])
    slow = _path((50, 64), [(19, (1, 0))])  # passed when 20 + 4t >= 50 + t: t = 10
    m = _memory([_target(0, fast), _target(1, slow)])
    assert (10, "overtake", 1, None) in _events(m, 0)
    assert not [e for e in _events(m, 1) if e[1] == "overtake"]


def test_centres_of_boxes_cut_by_the_frame_edge_follow_the_whole_object() -> None:
    path = _path((-4, 60), [(12, (2, 0))])  # half outside at first
    t = _target(0, path)
    c = track_centres(t)
    assert np.allclose(np.diff(c[:, 0]), 2.0)  # the plain box centre would move 1 px/frame while cut
    assert fit_pieces(np.arange(len(path)), c)[0][2] == pytest.approx(2.0)


# --- events against the synthetic world's exact events ------------------------------------------------------


def _truth_targets(clip) -> list[Target]:
    """Targets following the world's exact boxes."""
    return [
        Target(id=o.id, label=o.name, boxes=[tuple(map(float, b)) if b else None for b in o.boxes],
               width=clip.width, height=clip.height, score=1.0, source="truth")
        for o in clip.objects
    ]  # fmt: skip


def test_events_from_exact_world_boxes_match_the_world_events() -> None:
    """Per event kind, recall and precision of the memory's events (same object, frame within 2, same wall or
    other object) against the world's events on 120 clips."""
    tp, fn, fp = Counter(), Counter(), Counter()
    for seed in clip_seeds(7, 120):
        clip = generate_clip(seed)
        targets = _truth_targets(clip)
        m = build_memory("v", targets, num_frames=clip.num_frames, fps=clip.fps, width=clip.width,
                         height=clip.height)  # fmt: skip
        pred = [(e.target_id, e.kind, e.frame, e.other_id, e.side) for e in m.events]
        used: set[int] = set()
        for o in clip.objects:
            for e in o.events:
                kind = "turn" if e.kind == "turn_back" else e.kind
                hit = next(
                    (k for k, p in enumerate(pred) if k not in used and p[0] == o.id and p[1] == kind
                     and abs(p[2] - e.frame) <= 2 and (kind != "collide" or p[3] == e.other)
                     and (kind != "bounce" or p[4] == e.side)),
                    None,
                )  # fmt: skip
                if hit is None:
                    fn[kind] += 1
                else:
                    used.add(hit)
                    tp[kind] += 1
        for k, p in enumerate(pred):
            if k not in used:
                fp[p[1]] += 1
    for kind, floor in (("stop", 0.9), ("start_moving", 0.9), ("bounce", 0.85), ("collide", 0.9), ("enter", 0.9),
                        ("leave", 0.9), ("speed_up", 0.75), ("slow_down", 0.75)):  # fmt: skip
        recall = tp[kind] / (tp[kind] + fn[kind])
        precision = tp[kind] / (tp[kind] + fp[kind])
        assert recall >= floor and precision >= floor, (kind, tp[kind], fn[kind], fp[kind])
    assert tp["turn"] / (tp["turn"] + fn["turn"]) >= 0.8


def test_first_motion_of_hand_made_tracks() -> None:
    right = _path((30, 60), [(10, (3, 0))])
    diagonal = _path((30, 30), [(10, (-2, 2))])  # left and down
    still_then_up = _path((80, 80), [(8, (0, 0)), (8, (0, -3))])
    enter = [None] * 4 + _path((2, 60), [(12, (3, 0))])
    m = _memory([_target(0, right), _target(1, diagonal), _target(2, still_then_up), _target(3, enter)])
    assert [first_motion(m, i) for i in range(4)] == ["move:right", "move:down-left", "still", "enter:left"]
    a = math.radians(248.0)  # 0.5 degrees past the boundary of down-left and down: either may be said
    near = _target(5, _path((100, 20), [(14, (2 * math.cos(a), -2 * math.sin(a)))]))
    slow = _target(6, _path((100, 100), [(14, (0.3, 0))]))  # just under STILL_SPEED
    m = _memory([near, slow])
    assert first_motions(m, 5) == ("move:down", "move:down-left")
    assert first_motions(m, 6) == ("still", "move:right")
    at_start = _target(7, _path((2, 60), [(14, (3, 0))]))  # cut by the left edge on the video's first frame
    assert first_motions(_memory([at_start]), 7) == ("enter:left", "move:right")  # entering, or moving away
    merged = _target(
        4, _path((30, 60), [(14, (3, 0))])
    )  # its first 4 boxes twice as wide: merged with another
    boxes = [(b[0], b[1], b[2] + 12.0, b[3]) if f < 4 else b for f, b in enumerate(merged.boxes)]
    m = _memory([merged.model_copy(update={"boxes": boxes})])
    assert m.pieces_of(4)[0].start >= 4 and first_motion(m, 4) is None  # what it did first is not known
    assert first_motions(m, 4) == ()
    assert [compass(*v) for v in ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))] == [
        "right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right",
    ]  # fmt: skip


def test_first_motion_of_exact_world_tracks_is_the_world_primary_motion() -> None:
    """The memory's first motion == the world's primary motion (of its caption truth) for >= 98% of the
    objects of 60 clips, from the world's exact boxes (all 208 when written)."""
    hits = total = 0
    for seed in clip_seeds(11, 60):
        clip = generate_clip(seed)
        m = build_memory("v", _truth_targets(clip), num_frames=clip.num_frames, fps=clip.fps,
                         width=clip.width, height=clip.height)  # fmt: skip
        for o in clip.objects:
            truth = primary_motion(motion_phrases(o, clip))
            if truth is None:
                continue
            total += 1
            hits += first_motion(m, o.id) == truth
    assert total >= 150
    assert hits / total >= 0.98, (hits, total)


# --- queries ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene():
    """0 stops at 10; 1 bounces off the right wall at 8 then stops at 16; 2 enters at 4 from the top; 3 still."""
    a = _target(0, _path((30, 30), [(10, (3, 0)), (9, (0, 0))]), label="red circle")
    b = _target(1, _path((130, 90), [(8, (3, 0)), (8, (-3, 0)), (3, (0, 0))]), label="blue square")
    c = _target(2, [None] * 4 + _path((80, 2), [(15, (0, 3))]), label="green star")
    d = _target(3, [(20, 100)] * 20, label="yellow circle")
    return _memory([a, b, c, d])


def test_count_when_order(scene) -> None:
    stops = queries.count_objects(scene, event="stop")
    assert stops.count == 2 and stops.target_ids == [0, 1] and stops.text.startswith("2 objects stop:")
    assert queries.count_objects(scene, event="enter").count == 1
    assert queries.count_objects(scene).count == 4
    first = queries.event_order(scene, "stop")
    assert (first.target_ids[0], first.frame) == (0, 10)
    last = queries.event_order(scene, "stop", first=False)
    assert (last.target_ids[0], last.frame) == (1, 16)
    w = queries.when(scene, 1, "bounce")
    assert (w.frame, w.side, w.time_s) == (8, "right", 0.8)
    assert queries.when(scene, 3, "stop").frame is None  # never stops


def test_after_relation_why_part(scene) -> None:
    nxt = queries.after(scene, 1, 0, "stop")  # after the red circle stops (10), the blue square stops (16)
    assert (nxt.event, nxt.frame, nxt.target_ids[:2]) == ("stop", 16, [1, 0])
    own = queries.after(scene, 1, 1, "bounce")
    assert (own.event, own.frame) == ("stop", 16)
    assert queries.why(scene, 1).side == "right" and queries.why(scene, 1).event == "bounce"
    # at 16 the blue square is at (130, 90); left of it: the green star (80, 38), nearer, and the red circle (60, 30)
    left = queries.relation_at(scene, 1, "left_of", event="stop")
    assert left.target_ids == [2, 1] and left.frame == 16 and "also: red circle #0" in left.text
    below = queries.relation_at(scene, 0, "below", frame=10)
    assert below.target_ids[0] in (1, 3)
    part = queries.part_of(scene, 2)  # the green star is seen from frame 4 to the end (19)
    assert (part.part, part.frame, part.end_frame) == (0, 4, 19) and "frames 4–19" in part.text
    seen = queries.when(scene, 2)
    assert (seen.frame, seen.end_frame) == (4, 19)


def test_part_of_gives_the_span_seen_in_the_first_part_it_is_seen_in() -> None:
    # seen in frames 2-7 of the first shot [0, 10) and again 12-15 of the second [10, 16)
    t = _target(0, [None] * 2 + [(60.0, 60.0)] * 6 + [None] * 4 + [(60.0, 60.0)] * 4)
    memory = _memory([t], cuts=(10,))
    part = queries.part_of(memory, 0)
    assert (part.part, part.frame, part.end_frame) == (0, 2, 7) and "(also in part 2)" in part.text
    assert queries.when(memory, 0).end_frame == 15


def test_extrapolate_agrees_with_stepping_the_last_velocity() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        vx, vy = rng.uniform(-3, 3, size=2)
        if math.hypot(vx, vy) < 0.8:
            continue
        start = (float(rng.uniform(40, 120)), float(rng.uniform(30, 90)))
        t = _target(0, _path(start, [(8, (vx, vy))]))
        got = queries.extrapolate(_memory([t]), 0)
        # brute force: step the last box until an edge of the frame is crossed
        b = np.array(t.boxes[-1], dtype=float)
        v = np.array([vx, vy, vx, vy])
        for _step in range(500):
            b = b + v
            hit = [
                s
                for s, out in (
                    ("left", b[0] < 0),
                    ("right", b[2] > W),
                    ("top", b[1] < 0),
                    ("bottom", b[3] > H),
                )
                if out
            ]
            if hit:
                break
        assert got.side in hit, (vx, vy, start, got)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many objects enter the frame?", MemoryQuestion(kind="count", event="enter")),
        ("How many red objects are there?", MemoryQuestion(kind="count")),
        ("Which object stops first?", MemoryQuestion(kind="order", event="stop", over_all=True)),
        ("Which one comes to rest last?", MemoryQuestion(kind="order", event="stop", first=False, over_all=True)),
        ("When does the red circle bounce off a wall?", MemoryQuestion(kind="when", event="bounce")),
        ("What does the red circle do after the blue square stops?", MemoryQuestion(kind="after", event="stop")),
        ("Which object does the red circle bounce off?", MemoryQuestion(kind="relation", relation="collide", event="collide")),
        ("What is left of the star when it stops?", MemoryQuestion(kind="relation", relation="left_of", event="stop")),
        ("Why does the circle change direction?", MemoryQuestion(kind="why", event="turn")),
        ("Why does it turn at about 1.5 seconds?", MemoryQuestion(kind="why", event="turn", at_s=1.5)),
        ("If it keeps moving, which wall does it reach first?", MemoryQuestion(kind="future")),
        ("In which part of the video does the red circle appear?", MemoryQuestion(kind="part")),
        ("How many seconds into the video does the star stop?", MemoryQuestion(kind="when", event="stop")),
        ("Tell me which shape halts before all the others.", MemoryQuestion(kind="order", event="stop", over_all=True)),
        ("What does the circle run into?", MemoryQuestion(kind="relation", relation="collide", event="collide")),
        ("When does the circle hit a wall?", MemoryQuestion(kind="when", event="bounce")),
        ("What makes the square alter its course?", MemoryQuestion(kind="why", event="turn")),
        ("Is a person visible at frame 100?", MemoryQuestion(kind="count", at_frame=100)),
        ("Which object is below the star at the end of the video?", MemoryQuestion(kind="relation", relation="below", at="end")),
        ("What does the red circle do?", None),
        ("Which is faster, the red circle or the blue square?", None),
    ],
)  # fmt: skip
def test_memory_question_reads_the_kind(question, expected) -> None:
    assert memory_question(question) == expected


def test_nouns_in_answers_agree_with_the_count(scene) -> None:
    assert [queries.plural(n) for n in ("person", "people", "car", "cars", "bus", "red circle")] == [
        "people", "people", "cars", "cars", "buses", "red circles",
    ]  # fmt: skip
    assert queries.count_objects(scene, [], noun="person").text == "I count 0 people."
    assert queries.count_objects(scene, [0], noun="circles").text.startswith(
        "I count 1 circle: red circle #0"
    )
    at = queries.count_objects(scene, [0, 1], frame=2, noun="person")
    assert at.count == 2 and at.text.startswith("At 0.2 s (frame 2) 2 people are in view")


def test_answer_memory_question_dispatches(scene) -> None:
    q = memory_question("What does the blue square do after the red circle stops?")
    assert queries.answer_memory_question(scene, q, [1], [0]).frame == 16
    q = memory_question("Which object stops first?")
    assert queries.answer_memory_question(scene, q, None).target_ids[0] == 0  # None: every object
    assert queries.answer_memory_question(scene, q, []).target_ids == []  # []: the phrase found nothing
    with pytest.raises(KeyError, match="no object #9"):
        queries.when(scene, 9)
    with pytest.raises(ValueError, match="unknown event 'jump'"):
        queries.count_objects(scene, event="jump")


def test_a_complete_turnover_of_the_objects_is_a_cut() -> None:
    """Concatenated world clips: every object of one clip ends where every object of the next starts, so the
    memory splits the video there even without a colour-histogram cut — and nobody 'enters' or 'leaves' there."""
    from synth import concat_clips

    clips = [generate_clip(s) for s in clip_seeds(3, 3)]
    long = concat_clips(clips)
    targets = _truth_targets(long)
    m = build_memory(
        "v", targets, num_frames=long.num_frames, fps=long.fps, width=long.width, height=long.height
    )
    assert m.parts == list(long.parts)
    bounds = {s for s, _ in long.parts[1:]}
    assert not [
        e for e in m.events if e.kind in ("enter", "leave") and min(abs(e.frame - b) for b in bounds) <= 2
    ]
    lone = _target(0, [None] * 10 + _path((40, 60), [(9, (1, 0))]))  # one track starting mid-video: no cut
    assert _memory([lone]).parts == [(0, 20)]
