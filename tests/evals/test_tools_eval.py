"""Tool metrics on the synthetic world: the current tools on 50 generated clips, an oracle, a blind baseline.

The 50 clips are the world's default size (160x120) but 10 frames long instead of 20-40 (full-length clips take
~10-20 s on this machine instead of ~3 s).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from evals.tools_eval import (
    ToolCase,
    TruthObject,
    evaluate_tools,
    generated_cases,
    grounding_queries,
    load_cases,
)
from synth import COLOURS, SHAPES
from synth.build import write_dataset
from tools.schemas import Target
from tools.video import VideoLike

NUM_CLIPS, NUM_FRAMES, SEED = 50, 10, 0
# Measured with these settings: grounding mean recall 0.906, mean precision 0.914 (object queries 0.905 / 0.905,
# colour queries 0.914 / 0.965); tracking mean IoU 0.968 (2.5% frames lost, 2 switches). Floors a margin below.
RECALL_FLOOR, PRECISION_FLOOR, TRACK_IOU_FLOOR = 0.8, 0.8, 0.85


@pytest.fixture(scope="module")
def cases() -> list[ToolCase]:
    return generated_cases(NUM_CLIPS, SEED, num_frames=NUM_FRAMES)


class Oracle:
    """Grounds and tracks by reading the truth (parsing the query with its own word lists)."""

    def __init__(self, cases: list[ToolCase]) -> None:
        self.by_video = {id(c.video): c for c in cases}

    def ground(self, video: VideoLike, query: str) -> list[Target]:
        words = query.split()
        colours = [w for w in words if w in COLOURS]
        shapes = [w for w in words if w in SHAPES]
        assert len(colours) == 1 and len(shapes) <= 1 and ("objects" in words) == (not shapes), query
        named = [
            o
            for o in self.by_video[id(video)].objects
            if o.colour == colours[0] and (not shapes or o.shape == shapes[0]) and o.ever_visible
        ]
        return [
            Target(
                id=i,
                label=query,
                boxes=list(o.boxes),
                width=video.width,
                height=video.height,
                score=1.0,
                source="oracle",
            )
            for i, o in enumerate(named)
        ]

    def track(self, video: VideoLike, box, *, frame_idx: int) -> Target:
        (obj,) = [o for o in self.by_video[id(video)].objects if o.boxes[frame_idx] == tuple(box)]
        return Target(
            id=0,
            label="x",
            boxes=list(obj.boxes),
            width=video.width,
            height=video.height,
            score=1,
            source="o",
        )


def test_current_tools_on_50_generated_clips(cases):
    m = evaluate_tools(cases)
    g, t = m.grounding, m.tracking
    assert m.clips == NUM_CLIPS and g.queries >= NUM_CLIPS * 2 and t.objects >= NUM_CLIPS * 2
    for v in (
        g.mean_recall,
        g.mean_precision,
        g.micro_recall,
        g.micro_precision,
        t.mean_iou,
        t.lost_fraction,
        g.matched_track_iou,
    ):
        assert 0.0 <= v <= 1.0
    assert all(0 <= r.recall <= 1 and 0 <= r.precision <= 1 for r in m.per_query)
    assert set(g.by_kind) == {"object", "colour"}
    assert g.mean_recall > RECALL_FLOOR and g.mean_precision > PRECISION_FLOOR, m.to_markdown()
    assert t.mean_iou > TRACK_IOU_FLOOR, m.to_markdown()
    assert 0 <= t.frames_lost <= t.visible_frames
    assert "| all (mean per query) |" in m.to_markdown()


def test_oracle_scores_perfectly(cases):
    oracle = Oracle(cases)
    m = evaluate_tools(cases, ground_fn=oracle.ground, track_fn=oracle.track)
    g, t = m.grounding, m.tracking
    assert g.mean_recall == g.mean_precision == g.micro_recall == g.micro_precision == 1.0
    assert g.matched == g.truths == g.predictions > 0 and g.matched_track_iou == 1.0
    assert t.mean_iou == 1.0 and t.frames_lost == 0 and t.identity_switches == 0
    assert t.objects + t.skipped == sum(len(c.objects) for c in cases)


def _disjoint(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_identity_switches_of_known_detours(cases):
    """A tracker that follows the truth but, for some objects, sits on another object for one frame: each such
    detour is exactly two identity switches (to the other object and back) and one lost frame."""
    detours: dict[tuple[int, int], tuple[int, int]] = {}  # (case, object) -> (frame, the other object)
    for c, case in enumerate(cases):
        for o in case.objects:
            f = o.first_full_frame
            visible = [j for j, b in enumerate(o.boxes) if b is not None]
            if f is None or (c + o.id) % 2:  # about half the objects keep a perfect track
                continue
            middle = [j for j in visible[1:-1] if j != f]  # the truth is followed before and after the detour
            options = [
                (j, p.id)
                for j in middle
                for p in case.objects
                if p.id != o.id and p.boxes[j] is not None and _disjoint(p.boxes[j], o.boxes[j])
            ]
            if options:
                detours[(c, o.id)] = options[0]
    assert len(detours) >= 10

    def detour_track(video, box, *, frame_idx):
        c = next(k for k, case in enumerate(cases) if case.video is video)
        (obj,) = [o for o in cases[c].objects if o.boxes[frame_idx] == tuple(box)]
        boxes = list(obj.boxes)
        if (c, obj.id) in detours:
            j, other = detours[(c, obj.id)]
            boxes[j] = next(p for p in cases[c].objects if p.id == other).boxes[j]
        return Target(
            id=0, label="x", boxes=boxes, width=video.width, height=video.height, score=1, source="detour"
        )

    t = evaluate_tools(cases, track_fn=detour_track, grounding=False).tracking
    assert t.identity_switches == 2 * len(detours)
    assert t.objects_with_switch == len(detours) and t.frames_lost == len(detours)


def test_blind_tools_score_zero(cases):
    """Nothing found, and a track that sits on a wrong object: the metrics must punish both."""

    def track_other(video, box, *, frame_idx):  # follow another object of the clip (an identity error)
        case = next(c for c in cases if c.video is video)
        other = next(o for o in case.objects if o.boxes[frame_idx] != tuple(box))
        return Target(id=0, label="x", boxes=list(other.boxes), width=160, height=120, score=1, source="o")

    few = [c for c in cases if len(c.objects) >= 2][:10]
    m = evaluate_tools(few, ground_fn=lambda video, query: [], track_fn=track_other)
    assert m.grounding.mean_recall < 0.2 and m.grounding.micro_recall == 0.0
    assert m.tracking.mean_iou < 0.5 and m.tracking.frames_lost > 0


def test_queries_from_truth():
    def obj(i, colour, shape, size):
        return TruthObject(i, colour, shape, size, ((0.0, 0.0, 4.0, 4.0),), (1.0,))

    objs = [
        obj(0, "red", "circle", "small"),
        obj(1, "red", "circle", "large"),
        obj(2, "red", "star", "small"),
    ]
    objs.append(obj(3, "blue", "square", "small"))
    qs = {q.text: (q.kind, q.object_ids) for q in grounding_queries(objs)}
    assert qs == {
        "the red circle": ("object", (0, 1)),
        "the red star": ("object", (2,)),
        "the blue square": ("object", (3,)),
        "the red objects": ("colour", (0, 1, 2)),
    }


def test_cli_on_a_written_data_set(tmp_path):
    data = tmp_path / "synth"
    write_dataset(data, num_videos=3, seed=1, num_long_videos=0)
    assert len(load_cases(data)) == 3
    out = tmp_path / "tools.json"
    res = CliRunner().invoke(
        app, ["eval", "tools", "--data", str(data), "--max-clips", "2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "Tool metrics on 2 clips" in res.output and "identity switches" in res.output
    saved = json.loads(out.read_text())
    assert saved["clips"] == 2 and 0.0 <= saved["grounding"]["mean_recall"] <= 1.0
    assert {r["clip"] for r in saved["per_query"]} == {"clip_00000", "clip_00001"}

    res = CliRunner().invoke(app, ["eval", "tools", "--generate", "2", "--seed", "3", "--num-frames", "8"])
    assert res.exit_code == 0 and "Tool metrics on 2 clips" in res.output, res.output
    res = CliRunner().invoke(app, ["eval", "tools"])
    assert res.exit_code == 2 and "exactly one of --data" in res.output
