"""Answer accuracy of the agent benchmark: an answer built from the truth scores 1, a wrong object / time / count /
event / wall / part / span / clarification candidate scores 0, a missing one 0; chance baselines equal
hand-computed values; tables carry both."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.state import TargetEvidence
from evals.agent_bench import (
    ANSWER_TYPES,
    WHEN_TOLERANCE_FRAMES,
    BenchResult,
    BenchVideo,
    TruthObj,
    TurnResult,
    aggregate,
    answer_interval,
    generated_bench,
    run_agent_bench,
    says_number,
    score_turn,
    turn_chances,
)
from synth import caption_for, generate_clip
from synth.build import clip_seeds
from tools.describers import HeuristicDescriber
from tools.schemas import QueryResult

NUM_CLIPS, SEED = 14, 11


@pytest.fixture(scope="module")
def bench():
    return generated_bench(NUM_CLIPS, SEED)


def _target(
    video: BenchVideo, target_id: int, object_id: int, said: list[str] | None = None
) -> TargetEvidence:
    key = [(f, b) for f, b in enumerate(video.objects[object_id].boxes) if b is not None][:3]
    return TargetEvidence(
        target_id=target_id, label="object", span=(key[0][0], key[-1][0]), key_boxes=key, said=said or []
    )


def _other(video: BenchVideo, *not_ids: int) -> int:
    return next(
        i for i, o in video.objects.items() if i not in not_ids and any(b is not None for b in o.boxes)
    )


def _oracle(truth: dict, video: BenchVideo) -> tuple[list[TargetEvidence], QueryResult]:
    """The right answer to a turn, as the agent's evidence and structured result would state it."""
    t = truth["type"]
    if t in ("comparison", "temporal", "relationship"):
        return [_target(video, 7, truth["answer_id"])], QueryResult(kind="order", text="it", target_ids=[7])
    if t == "when":
        return [], QueryResult(kind="when", text="then", frame=truth["frame"], time_s=truth["frame"] / 10)
    if t == "long_part":
        first, last = truth["frames"]
        return [], QueryResult(kind="part", text="there", part=truth["part"], frame=first, end_frame=last)
    if t == "counting":
        return [], QueryResult(kind="count", text=f"There are {truth['count']}.", count=truth["count"])
    if t == "sequential":
        return [], QueryResult(kind="after", text="it", event=truth["event"], frame=truth["frame"])
    if t == "reasoning":
        if truth["cause"] == "bounce":
            return [], QueryResult(kind="why", text="wall", event="bounce", side=truth["side"])
        ev = [_target(video, 3, truth["other_id"]), _target(video, 4, truth["object_id"])]
        return ev, QueryResult(kind="why", text="hit", event="collide", target_ids=[3, 4])
    if t == "future":
        return [], QueryResult(kind="future", text="wall", side=truth["side"])
    raise AssertionError(t)


def _wrongs(truth: dict, video: BenchVideo, right: QueryResult) -> list[tuple[list, QueryResult]]:
    """Answers wrong in exactly one way (object, time, count, event, wall, part)."""
    t = truth["type"]
    sides = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    if t in ("comparison", "temporal", "relationship"):
        return [([_target(video, 7, _other(video, truth["answer_id"]))], right)]
    if t in ("when",):
        return [([], right.model_copy(update={"frame": truth["frame"] + WHEN_TOLERANCE_FRAMES + 1})),
                ([], right.model_copy(update={"frame": None}))]  # fmt: skip
    if t == "long_part":
        off = WHEN_TOLERANCE_FRAMES + 1
        return [([], right.model_copy(update={"part": truth["part"] + 1})),
                ([], right.model_copy(update={"frame": truth["frames"][0] + off})),
                ([], right.model_copy(update={"end_frame": truth["frames"][1] - off})),
                ([], right.model_copy(update={"end_frame": None}))]  # fmt: skip
    if t == "counting":
        n = truth["count"]
        return [([], right.model_copy(update={"count": n + 1, "text": f"There are {n + 1}."})),
                ([], right.model_copy(update={"text": "Some objects do."}))]  # fmt: skip
    if t == "sequential":
        other = "stop" if truth["event"] != "stop" else "bounce"
        return [([], right.model_copy(update={"event": other})),
                ([], right.model_copy(update={"frame": truth["frame"] - WHEN_TOLERANCE_FRAMES - 1}))]  # fmt: skip
    if t == "reasoning":
        if truth["cause"] == "bounce":
            return [([], right.model_copy(update={"side": sides[truth["side"]]})),
                    ([], right.model_copy(update={"event": "collide"}))]  # fmt: skip
        wrong = _other(video, truth["other_id"])  # the subject itself in a clip of two
        return [([_target(video, 3, wrong), _target(video, 4, truth["other_id"])], right),
                ([], right.model_copy(update={"event": "bounce", "side": "left", "target_ids": []}))]  # fmt: skip
    return [([], right.model_copy(update={"side": sides[truth["side"]]}))]  # future


def _answer_turns(bench) -> list[tuple[dict, int, dict]]:  # noqa: ANN001
    return [(r, k, turn["truth"]) for r in bench.sets["template"] + bench.sets["heldout"]
            for k, turn in enumerate(r["turns"]) if turn["truth"]["type"] in ANSWER_TYPES]  # fmt: skip


def test_right_answers_score_one_wrong_and_missing_ones_zero(bench) -> None:  # noqa: ANN001
    seen = set()
    for r, k, truth in _answer_turns(bench):
        video = bench.videos[r["video_name"]]
        evidence, right = _oracle(truth, video)
        assert score_turn(r, k, evidence, video, 0.5, result=right, clarified=False).answer_correct is True
        for ev, wrong in _wrongs(truth, video, right):
            assert score_turn(r, k, ev, video, 0.5, result=wrong, clarified=False).answer_correct is False, (
                truth,
                wrong,
            )
        missing = score_turn(r, k, [], video, 0.5, result=None, clarified=False).answer_correct
        assert missing is False
        seen.add(truth["type"])
    assert seen == set(ANSWER_TYPES)


def test_time_tolerance_and_an_unstated_frame(bench) -> None:  # noqa: ANN001
    r, k, truth = next(x for x in _answer_turns(bench) if x[2]["type"] == "sequential")
    video = bench.videos[r["video_name"]]
    _, right = _oracle(truth, video)
    edge = right.model_copy(update={"frame": truth["frame"] + WHEN_TOLERANCE_FRAMES})
    scored = score_turn(r, k, [], video, 0.5, result=edge)
    assert scored.answer_correct is True and scored.result == edge.model_dump(mode="json")
    assert score_turn(r, k, [], video, 0.5, result=right.model_copy(update={"frame": None})).answer_correct


def test_an_answer_object_missing_from_the_evidence_is_wrong(bench) -> None:  # noqa: ANN001
    r, k, truth = next(x for x in _answer_turns(bench) if x[2]["type"] == "temporal")
    video = bench.videos[r["video_name"]]
    evidence, right = _oracle(truth, video)
    assert (
        score_turn(
            r, k, evidence, video, 0.5, result=right.model_copy(update={"target_ids": [8]})
        ).answer_correct
        is False
    )
    assert score_turn(r, k, [], video, 0.5, result=right).answer_correct is False


def test_comparison_without_a_result_falls_back_to_the_compare_line(bench) -> None:  # noqa: ANN001
    r, k, truth = next(x for x in _answer_turns(bench) if x[2]["type"] == "comparison")
    video = bench.videos[r["video_name"]]
    fast = truth["answer_id"]
    slow = next(i for i in truth["candidates"] if i != fast)
    right = [_target(video, 0, fast, ["compare: faster"]), _target(video, 1, slow)]
    wrong = [_target(video, 0, fast), _target(video, 1, slow, ["compare: faster"])]
    assert score_turn(r, k, right, video, 0.5).answer_correct is True
    assert score_turn(r, k, wrong, video, 0.5).answer_correct is False


def test_describe_answer_needs_the_object_its_attributes_and_motion(bench) -> None:  # noqa: ANN001
    clips = {f"clip_{i:05d}": generate_clip(cs) for i, cs in enumerate(clip_seeds(SEED, NUM_CLIPS))}
    r = next(r for r in bench.sets["template"] if r["kind"] == "describe" and r["video_name"] in clips)
    truth, video, clip = r["turns"][0]["truth"], bench.videos[r["video_name"]], clips[r["video_name"]]
    obj = clip.object(truth["object_id"])
    said = f"refer: {caption_for(obj, np.random.default_rng(0), clip).text}"
    right = score_turn(r, 0, [_target(video, 0, obj.id, [said])], video, 0.5, clarified=False)
    assert right.f1 == 1.0 and right.answer_correct is True
    extra = [_target(video, 0, obj.id, [said]), _target(video, 1, _other(video, obj.id), [said])]
    assert score_turn(r, 0, extra, video, 0.5).answer_correct is False  # a second target: F1 < 1
    colour = "red" if obj.colour != "red" else "blue"
    bad = f"refer: The {colour} {obj.shape} stays still."
    assert score_turn(r, 0, [_target(video, 0, obj.id, [bad])], video, 0.5).answer_correct is False


def _candidates(video: BenchVideo, ids: list[int]) -> list[dict]:
    """Candidates as the agent's clarification offers them: each object's box on their first common frame."""
    f = next(
        f for f in range(len(video.objects[ids[0]].boxes)) if all(video.objects[i].boxes[f] for i in ids)
    )
    return [
        {"number": n + 1, "label": "object", "frame_idx": f, "box": list(video.objects[i].boxes[f])}
        for n, i in enumerate(ids)
    ]


def test_a_clarification_is_right_when_it_offers_exactly_the_objects_the_phrase_fits(bench) -> None:  # noqa: ANN001
    amb = next(r for r in bench.sets["template"] if r["kind"] == "ambiguous")
    vid = bench.videos[amb["video_name"]]
    ids = amb["turns"][0]["truth"]["candidates"]
    right = _candidates(vid, ids)

    def score(candidates: list[dict], asked: bool = True) -> bool | None:
        return score_turn(amb, 0, [], vid, 0.5, clarified=asked, candidates=candidates).answer_correct

    assert score(right) is True and score(right[::-1]) is True
    assert score(right, asked=False) is False and score([]) is False
    assert score(right[:1]) is False  # one of the two missing
    assert score([right[0], right[0]]) is False  # the same object twice
    other = _other(vid, *ids)
    assert score(_candidates(vid, [ids[0], other])) is False  # a wrong object offered
    assert score(right + _candidates(vid, [other])) is False  # one too many
    # a candidate partly hidden by another object shows only its visible part: its box still points at it
    x0, y0, x1, y1 = right[1]["box"]
    visible = [x0, y0, x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2]
    assert score([right[0], {**right[1], "box": visible}]) is True
    assert score([right[0], {**right[1], "box": [-50.0, -50.0, -40.0, -40.0]}]) is False  # points at nothing


def test_says_number() -> None:
    assert says_number("There are 3 of them.", 3) and says_number("Three objects stop.", 3)
    assert says_number("No object enters.", 0) and says_number("none", 0) and says_number("0 objects", 0)
    assert not says_number("There are 13.", 3) and not says_number("Two objects.", 3)


def _obj(i: int, frames: int = 10) -> TruthObj:
    return TruthObj(i, "red", "circle", tuple((0.0, 0.0, 5.0, 5.0) for _ in range(frames)))


def _video(name: str, n: int) -> BenchVideo:
    return BenchVideo(name, lambda: None, {i: _obj(i) for i in range(n)})  # type: ignore[arg-type,return-value]


def _rec(rid: str, video: str, *truths: dict) -> dict:
    return {
        "id": rid,
        "kind": truths[0]["type"],
        "video_name": video,
        "turns": [{"truth": t} for t in truths],
    }


def test_chance_baselines_on_a_hand_made_set() -> None:
    videos = {"four": _video("four", 4), "two": _video("two", 2)}
    move = lambda d: [{"verb": "move", "direction": d, "speed": None, "side": None, "other": None}]  # noqa: E731
    records = [
        _rec("c1", "four", {"type": "counting", "count": 1}),
        _rec("c2", "four", {"type": "counting", "count": 1}),
        _rec("c3", "four", {"type": "counting", "count": 2}),
        _rec("c4", "two", {"type": "counting", "count": 3}),
        _rec("t1", "four", {"type": "temporal", "answer_id": 0}),
        _rec("t2", "two", {"type": "temporal", "answer_id": 1}),
        _rec("r1", "four", {"type": "relationship", "answer_id": 2}),
        _rec("w1", "four", {"type": "when", "frame": 5}),
        _rec("w2", "four", {"type": "when", "frame": 6}),
        _rec("w3", "two", {"type": "when", "frame": 20}),
        _rec("y1", "four", {"type": "reasoning", "cause": "bounce", "side": "left"}),
        _rec("y2", "four", {"type": "reasoning", "cause": "bounce", "side": "left"}),
        _rec("y3", "four", {"type": "reasoning", "cause": "collide", "side": None, "other_id": 1}),
        _rec("y4", "two", {"type": "reasoning", "cause": "collide", "side": None, "other_id": 0}),
        _rec("p1", "four", {"type": "comparison", "candidates": [0, 1], "answer_id": 0}),
        _rec("p2", "four", {"type": "comparison", "candidates": [2, 1], "answer_id": 2}),
        _rec("p3", "two", {"type": "comparison", "candidates": [0, 1], "answer_id": 1}),
        _rec("s1", "four", {"type": "comparison", "candidates": [0, 1, 2, 3], "answer_id": 3}),
        _rec("f1", "four", {"type": "future", "side": "top"}),
        _rec("f2", "four", {"type": "future", "side": "top"}),
        _rec("f3", "four", {"type": "future", "side": "left"}),
        _rec("f4", "two", {"type": "future", "side": "right"}),
        _rec("d1", "four", {"type": "describe", "object_id": 0, "motions": move("left")}),
        _rec("d2", "four", {"type": "describe", "object_id": 1, "motions": move("left")}),
        _rec("d3", "two", {"type": "describe", "object_id": 0, "motions": move("up")}),
        _rec("d4", "two", {"type": "describe", "object_id": 1, "motions": move("down")}),
        _rec(
            "m1",
            "four",
            {"type": "multi_target", "object_ids": [0, 1], "motions": {"0": move("left"), "1": move("up")}},
        ),  # fmt: skip
        _rec("a2", "four", {"type": "ambiguous", "candidates": [1, 3]}),
        _rec("l1", "four", {"type": "long_part", "object_id": 0, "part": 0, "frames": [0, 20]}),
        _rec("l2", "four", {"type": "long_part", "object_id": 0, "part": 0, "frames": [2, 22]}),
        _rec("l3", "four", {"type": "long_part", "object_id": 0, "part": 1, "frames": [1, 21]}),
        _rec("l4", "four", {"type": "long_part", "object_id": 0, "part": 0, "frames": [0, 40]}),
        _rec(
            "a1",
            "two",
            {"type": "ambiguous", "candidates": [0, 1]},
            {"type": "describe", "object_id": 0, "motions": move("up")},
        ),  # fmt: skip
    ]
    c = turn_chances(records, videos)
    assert c[("c1", 0)] == c[("c4", 0)] == pytest.approx(2 / 4)
    assert c[("t1", 0)] == pytest.approx(1 / 4) and c[("t2", 0)] == pytest.approx(1 / 2)
    assert c[("r1", 0)] == pytest.approx(1 / 3)
    assert c[("w1", 0)] == pytest.approx(2 / 3)  # a constant frame in 4..7 hits 5 and 6, not 20
    assert c[("y1", 0)] == pytest.approx(max(2 / 4, (1 / 3 + 1) / 4))
    assert c[("p1", 0)] == pytest.approx(2 / 3)  # the first named is faster twice in three
    assert c[("s1", 0)] == pytest.approx(1 / 4)  # the fastest of all four: which is which is not known
    assert c[("f1", 0)] == pytest.approx(2 / 4)
    # describe: 5 turns (a1's second turn too), motions left, left, up, down, up: the mode "left" 2/5
    assert c[("d1", 0)] == pytest.approx(1 / 4 * 2 / 5) and c[("d3", 0)] == pytest.approx(1 / 2 * 2 / 5)
    assert c[("a1", 1)] == pytest.approx(1 / 2 * 2 / 5) and c[("a1", 0)] == 0.5  # 2 of 2 objects: C(2, 2) = 1
    assert c[("a2", 0)] == pytest.approx(0.5 / 6)  # ask, and which 2 of 4 objects
    # long_part: (part, first, last) within 1 frame: the constant (0, 1, 21) hits l1 and l2, not l3 or l4
    assert c[("l1", 0)] == c[("l4", 0)] == pytest.approx(2 / 4)
    # multi_target: one turn, motions left and up (mode 1/2), 2 of 4 objects: 1/C(4,2) * (1/2)**2
    assert c[("m1", 0)] == pytest.approx(1 / 6 * 1 / 4)


def _turn(rid: str, kind: str, correct: bool | None, chance: float | None) -> TurnResult:
    return TurnResult(rid, kind, 0, kind, False, answer_correct=correct, chance=chance)


def test_per_kind_answer_table_and_json() -> None:
    turns = [
        _turn("a", "counting", True, 0.25),
        _turn("b", "counting", False, 0.25),
        _turn("c", "future", True, 0.5),
        _turn("d", "other", None, None),
    ]
    m = aggregate(turns, 4)
    assert m.answer_turns == 3 and m.answer_accuracy == pytest.approx(2 / 3)
    assert m.chance == pytest.approx((0.25 + 0.25 + 0.5) / 3)
    k = m.by_kind["counting"]
    assert (k["answer_turns"], k["answer_accuracy"], k["chance"], k["ratio"]) == (2, 0.5, 0.25, 2.0)
    assert m.by_kind["other"]["answer_turns"] == 0
    md = BenchResult("x", 0.5, {"heldout": m}, 0.0).to_markdown()
    assert "| kind | records | turns | answer acc | chance | ratio |" in md
    assert (
        "| counting | 2 | 2 | 0.500 | 0.250 | 2.0 | 0.09–0.91 |" in md
        and "| other | 1 | 1 | - | - | - | - |" in md
    )
    data = json.loads(json.dumps(BenchResult("x", 0.5, {"heldout": m}, 0.0).to_json()))
    assert data["sets"]["heldout"]["by_type"]["future"]["ratio"] == 2.0
    assert data["sets"]["heldout"]["answer_accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("correct", "n"), [(70, 77), (1, 2), (0, 13), (13, 13), (451, 500)])
def test_answer_interval_is_the_wilson_score_interval(correct: int, n: int) -> None:
    z = 1.959963984540054  # the normal quantile of 0.975
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = answer_interval(correct, n)
    assert (low, high) == (pytest.approx(centre - half), pytest.approx(centre + half))
    assert low <= p <= high
    assert answer_interval(0, 0) == (0.0, 1.0)


def test_bench_run_scores_every_turn_of_the_event_kinds() -> None:
    data = generated_bench(3, SEED, kinds=("counting", "future", "describe"))
    result = run_agent_bench(data, describer=HeuristicDescriber(), sets=("heldout",))
    m = result.sets["heldout"]
    assert m.answer_turns == m.turns == sum(len(r["turns"]) for r in data.sets["heldout"])
    assert 0.0 < m.chance <= 1.0 and 0.0 <= m.answer_accuracy <= 1.0
    assert all(t.chance is not None and t.answer_correct is not None for t in result.turns["heldout"])
    assert {"counting", "future"} <= set(m.by_kind)


def _run_json(results: dict[tuple[str, str], bool | None], answers: str = "") -> dict:
    turns = [
        TurnResult(rid, t, 0, t, False, answer=f"{answers}{rid}", answer_correct=ok)
        for (rid, t), ok in results.items()
    ]
    return json.loads(json.dumps(BenchResult("x", 0.5, {}, 0.0, turns={"heldout": turns}).to_json()))


def test_compare_runs_finds_the_turns_a_change_fixed_and_broke(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from cli.main import app
    from evals.agent_bench import compare_runs

    before = _run_json({("a", "describe"): True, ("b", "describe"): False, ("c", "when"): True,
                        ("d", "when"): False, ("e", "other"): None}, "was ")  # fmt: skip
    after = _run_json({("a", "describe"): False, ("b", "describe"): True, ("c", "when"): True,
                       ("d", "when"): False, ("e", "other"): None}, "now ")  # fmt: skip
    diff = compare_runs(before, after)
    assert [(c.record_id, c.before, c.after) for c in diff.broken] == [("a", "was a", "now a")]
    assert [c.record_id for c in diff.fixed] == ["b"]
    assert diff.counts == {
        "describe": {"fixed": 1, "broken": 1, "right": 0, "wrong": 0},
        "when": {"fixed": 0, "broken": 0, "right": 1, "wrong": 1},
    }
    md = diff.to_markdown()
    assert (
        "1 fixed, 1 broken" in md and "| describe | 1 | 1 | 0 | 0 |" in md and "- a turn 0 (describe)" in md
    )
    other = _run_json({("z", "describe"): True})
    with pytest.raises(ValueError, match="different turns"):
        compare_runs(before, other)
    with pytest.raises(ValueError, match="no 'template' turns"):
        compare_runs(before, after, "template")
    # the command line: two saved runs
    paths = []
    for name, run in (("before", before), ("after", after), ("other", other)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(run))
    res = CliRunner().invoke(app, ["eval", "agent-diff", str(paths[0]), str(paths[1])])
    assert res.exit_code == 0 and "1 fixed, 1 broken" in res.output, res.output
    bad = CliRunner().invoke(app, ["eval", "agent-diff", str(paths[0]), str(paths[2])])
    assert bad.exit_code != 0 and "different turns" in bad.output
