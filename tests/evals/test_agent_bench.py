"""The agent benchmark: metrics in range, an oracle describer scores its attributes perfectly, a constant one low."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artemis_model.types import Description, Track
from evals.agent_bench import (
    BenchResult,
    aggregate,
    described,
    generated_bench,
    load_bench,
    run_agent_bench,
    truth_targets,
)
from synth import Clip, caption_for, generate_clip
from synth.build import clip_seeds
from synth.motion_truth import primary_motion
from tools.describers import HeuristicDescriber

NUM_CLIPS, SEED = 4, 11
KINDS = ("describe", "multi_target", "ambiguous", "follow_up", "comparison")


def _iou(a, b) -> float:  # noqa: ANN001
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class OracleDescriber:
    """Says the truth caption of the object whose truth box best matches the queried box."""

    def __init__(self, clips: dict[str, Clip]) -> None:
        self.clips = clips

    def __call__(self, video, box, *, frame_idx: int, question: str | None) -> Description:  # noqa: ANN001
        clip = self.clips[video.name]
        objs = [o for o in clip.objects if o.boxes[frame_idx] is not None]
        best = max(objs, key=lambda o: _iou(box, o.boxes[frame_idx]))
        text = caption_for(best, np.random.default_rng(0), clip).text
        track = Track(boxes=(tuple(box),), width=clip.width, height=clip.height)
        return Description(text, question or "", frame_idx, tuple(box), track, (frame_idx,))


class ConstantDescriber:
    def __call__(self, video, box, *, frame_idx: int, question: str | None) -> Description:  # noqa: ANN001
        track = Track(boxes=(tuple(box),), width=1, height=1)
        return Description(
            "The red circle moves up.", question or "", frame_idx, tuple(box), track, (frame_idx,)
        )


@pytest.fixture(scope="module")
def bench():
    return generated_bench(NUM_CLIPS, SEED, kinds=KINDS)


@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return {f"clip_{i:05d}": generate_clip(cs) for i, cs in enumerate(clip_seeds(SEED, NUM_CLIPS))}


def _check_range(result: BenchResult) -> None:
    for m in result.sets.values():
        assert m.target_turns > 0
        for v in (m.target_f1, m.attribute_accuracy, m.motion_accuracy, m.clarification_asked):
            assert 0.0 <= v <= 1.0
        assert 0.0 <= m.clarification_handled <= m.clarification_asked
        assert m.answer_turns == m.turns and 0.0 <= m.answer_accuracy <= 1.0 and 0.0 < m.chance < 1.0
        for k in m.by_kind.values():
            assert 0.0 <= k["answer_accuracy"] <= 1.0 and 0.0 < k["chance"] <= 1.0


def test_heuristic_metrics_in_range_both_sets(bench) -> None:  # noqa: ANN001
    result = run_agent_bench(bench, describer=HeuristicDescriber())
    assert set(result.sets) == {"template", "heldout"}
    _check_range(result)
    # each clarification offers the two objects the phrase fits, and is scored right when they are the truth's
    amb = [t for t in result.turns["heldout"] if t.truth_type == "ambiguous"]
    assert amb and all(len(t.candidates) == 2 for t in amb if t.clarified)
    assert sum(bool(t.answer_correct) for t in amb) >= 0.8 * len(amb)
    md = result.to_markdown()
    assert "| template |" in md and "| heldout |" in md
    assert json.loads(json.dumps(result.to_json()))["sets"]["heldout"]["records"] == len(
        bench.sets["heldout"]
    )


def test_oracle_describer_scores_attributes_perfectly(bench, clips) -> None:  # noqa: ANN001
    oracle = run_agent_bench(bench, describer=OracleDescriber(clips), sets=("template",)).sets["template"]
    const = run_agent_bench(bench, describer=ConstantDescriber(), sets=("template",)).sets["template"]
    assert oracle.attribute_targets > 3 and oracle.motion_targets > 3
    assert oracle.attribute_accuracy == 1.0
    assert oracle.motion_accuracy >= 0.8
    assert const.attribute_accuracy < 0.5
    assert const.motion_accuracy < oracle.motion_accuracy


def test_described_prefers_refer_caption_then_label() -> None:
    said = ["ground (text): blue square, score 0.90", "refer: The small blue square moves to the left."]
    assert described("blue square", said) == ("blue", "square", "move:left")
    assert described("green star", ["ground (text): green star, score 0.9"]) == ("green", "star", None)


def test_truth_targets_read_turn_truth(bench) -> None:  # noqa: ANN001
    rec = next(r for r in bench.sets["template"] if r["kind"] == "multi_target")
    ids, motions = truth_targets(rec["turns"][0]["truth"])
    assert ids == rec["turns"][0]["truth"]["object_ids"] and set(motions) == set(ids)
    assert aggregate([], 0).target_f1 == 0.0


def test_primary_motion_shared_with_world_scripts() -> None:
    from synth import parse_caption

    assert primary_motion(parse_caption("The red circle stays still.").motions) == "still"


def test_load_bench_reads_synth_output(tmp_path) -> None:  # noqa: ANN001
    from synth.build import write_dataset

    write_dataset(tmp_path, 2, seed=3)
    data = load_bench(tmp_path, max_videos=1)
    assert data.sets["template"] and {r["video_name"] for r in data.sets["template"]} == {"clip_00000"}
    assert data.videos["clip_00000"].open().num_frames == len(data.videos["clip_00000"].objects[0].boxes)


def test_comparison_turns_score_both_candidates_and_the_winner(bench) -> None:  # noqa: ANN001
    result = run_agent_bench(bench, describer=HeuristicDescriber(), sets=("template",)).sets["template"]
    comp = result.by_type["comparison"]
    assert comp["target_turns"] >= 1 and comp["comparison_turns"] == comp["target_turns"]
    assert (
        comp["target_f1"] >= 0.9
    )  # every object of the clip found (the superlative is over all), nothing else
    assert comp["comparison_accuracy"] >= 0.75 and result.comparison_accuracy == comp["comparison_accuracy"]
    assert result.by_type["describe"]["spurious_clarifications"] == 0
    assert "Per question type (template)" in BenchResult("x", 0.5, {"template": result}, 0.0).to_markdown()


def test_score_turn_comparison_needs_the_winner_on_the_fastest_object(bench) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    from evals.agent_bench import score_turn

    rec = next(r for r in bench.sets["template"] if r["kind"] == "comparison")
    truth = rec["turns"][0]["truth"]
    video = bench.videos[rec["video_name"]]

    def ev(obj_id: int, winner: bool) -> SimpleNamespace:
        boxes = video.objects[obj_id].boxes
        key = [(f, b) for f, b in enumerate(boxes) if b is not None][:3]
        return SimpleNamespace(label="x", key_boxes=key, said=["compare: it is faster"] if winner else [])

    best, ids = truth["answer_id"], truth["candidates"]
    other = next(i for i in ids if i != best)
    right = score_turn(rec, 0, [ev(i, i == best) for i in ids], video, 0.5, clarified=False)
    wrong = score_turn(rec, 0, [ev(i, i == other) for i in ids], video, 0.5, clarified=False)
    one = score_turn(rec, 0, [ev(best, True)], video, 0.5, clarified=False)
    assert right.f1 == wrong.f1 == 1.0 and right.compare_correct == 1 and wrong.compare_correct == 0
    assert right.answer_correct is True and wrong.answer_correct is False
    assert len(ids) >= 3 and one.f1 == pytest.approx(2 / (1 + len(ids))) and one.compare_total == 1


class WrongFirstDescriber(OracleDescriber):
    """First captions always "The red circle moves up."; sampled ones (``sampling=``) the truth caption."""

    def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None, sampling=None):  # noqa: ANN001
        describe = ConstantDescriber() if sampling is None else self
        return [
            describe(video, b, frame_idx=f, question=question) for b, f in zip(boxes, frame_idxs, strict=True)
        ]


def test_check_samples_choose_the_sampled_captions_that_agree_with_the_evidence(bench, clips) -> None:  # noqa: ANN001
    """With the checks (the default) the contradicted constant captions are replaced by sampled truth captions;
    ``check_samples=0`` scores the first captions, as the constant describer does."""
    describer = WrongFirstDescriber(clips)
    checked = run_agent_bench(bench, describer=describer, sets=("template",)).sets["template"]
    alone = run_agent_bench(bench, describer=describer, sets=("template",), check_samples=0).sets["template"]
    assert alone.attribute_accuracy < 0.5
    assert checked.attribute_accuracy >= 0.9 and checked.attribute_accuracy > alone.attribute_accuracy + 0.4
