from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from evals.runner import Shard, read_jsonl
from evals.videorefer.bench_d import (
    DIMENSIONS,
    judge_predictions,
    parse_judge_reply,
    run_bench_d,
    score_bench_d_run,
)
from evals.videorefer.bench_q import (
    AnswerResult,
    extract_letter,
    merge_bench_q,
    render_question,
    run_bench_q,
    score_bench_q,
    score_bench_q_run,
)
from evals.videorefer.data import load_bench_d, load_bench_q
from tests.evals.helpers import CountingPredictor, write_frames
from tests.evals.test_videorefer_data import H, W, bench_q_raw, rect, rle

OPTS = ["(A) a cat", "(B) a dog", "(C) a bird", "(D) a horse"]


@pytest.mark.parametrize(
    ("pred", "official", "lenient"),
    [
        ("(B)", "B", "B"),
        ("B.", "B", "B"),
        ("b", "B", "B"),
        ("The answer is b", "T", "B"),  # official: first character -> wrong; lenient reads it
        ("Answer: (C) a bird", "C", "C"),
        ("D) a horse", "D", "D"),
        ("a dog", "A", "B"),  # lenient matches the option text
        ("A dog runs away", "A", None),
        ("", None, None),
        ("   ", None, None),
        ("(E)", "E", None),  # not an option
    ],
)
def test_letter_rules(pred, official, lenient):
    assert extract_letter(pred) == official
    assert extract_letter(pred, rules="lenient", options=OPTS) == lenient


def test_accuracy_per_type_and_overall_is_micro():
    def row(t, gold, pred):
        return {"type": t, "Answer": f"({gold}) x", "pred": pred, "options": OPTS}

    rows = [
        row("Basic Questions", "A", "(A)"),
        row("Basic Questions", "B", "B."),
        row("Basic Questions", "C", "(D)"),
        row("Future Predictions", "D", "The answer is d"),
        row("Future Predictions", "A", ""),
    ]
    off = score_bench_q(rows)
    assert off.per_type["Basic Questions"].correct == 2 and off.per_type["Basic Questions"].total == 3
    assert off.per_type["Future Predictions"].accuracy == 0.0
    assert off.overall == pytest.approx(2 / 5)  # not the mean of type accuracies (1/3)
    assert off.no_letter == 1
    len_ = score_bench_q(rows, rules="lenient")
    assert len_.per_type["Future Predictions"].accuracy == 0.5 and len_.overall == pytest.approx(3 / 5)


class FakeAnswerer:
    """Picks the option whose text appears in the first description; records what it was given."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    def answer(self, question, options, descriptions):
        self.questions.append(question)
        if "explode" in question:
            raise RuntimeError("answerer broke")
        for opt in options:
            if opt[4:] in descriptions[0].text:
                return AnswerResult(opt[1], f"matched {opt}", (f"chose {opt[1]}",))
        return AnswerResult(None, "The answer is a", ("no match",))


class DescribingPredictor(CountingPredictor):
    def predict(self, records):
        super().predict(records)
        return [
            f"{r.record_id} {'stands still' if r.record_id.startswith('4/') else 'moves right'}, key box {r.key_box}"
            for r in records
        ]


def test_bench_q_end_to_end_with_fake_answerer(tmp_path):
    raws = []
    for i in range(5):
        raw = bench_q_raw()
        raw["id"] = i
        if i == 3:
            raw["Question"] = "Will <object3><region> explode near <object1><region>?"
        raws.append(raw)
    path = tmp_path / "q.json"
    path.write_text(json.dumps(raws))
    recs, _ = load_bench_q(path)
    frames = tmp_path / "frames"
    write_frames(frames / recs[0].video, 12, size=(W, H))

    answerer = FakeAnswerer()
    out = tmp_path / "run"
    for s in range(2):
        run_bench_q(recs, DescribingPredictor(), answerer, frames, out, shard=Shard(2, s), batch_size=2)
    merge_bench_q(out, 2, recs)
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]
    first = rows[0]
    assert len(first["descriptions"]) == 2 and [d["label"] for d in first["descriptions"]] == [
        "<object3>",
        "<object1>",
    ]
    assert first["trace"][0].startswith("region 1 <object3>: 0/obj0 ")
    assert first["trace"][1].startswith("region 2 <object1>: 0/obj1 ")
    assert answerer.questions[0] == "Where does <object3>[region 1] go relative to <object1>[region 2]?"
    assert rows[3]["error"].startswith("RuntimeError") and rows[3]["pred"] == ""

    scores = score_bench_q_run(out)
    # Gold is (B) everywhere: ids 0-2 answer B (right), id 3's answerer failed (recorded, no letter),
    # id 4 answers "The answer is a" (wrong under both rules).
    assert rows[0]["pred"] == "(B)" and rows[4]["pred"] == "The answer is a"
    off, len_ = scores["official"], scores["lenient"]
    assert (off.correct, off.total, off.failed, off.no_letter) == (3, 5, 1, 1)
    assert off.overall == pytest.approx(0.6) and len_.overall == pytest.approx(0.6)
    assert json.loads((out / "metrics.json").read_text())["official"]["total"] == 5

    # Resume: nothing is described again.
    again = DescribingPredictor()
    summary = run_bench_q(recs, again, answerer, frames, out, shard=Shard(2, 0))
    assert again.calls == 0 and summary.skipped == 3


def test_render_question_numbers_regions():
    assert render_question("Is <region> near <object2><region>?") == "Is [region 1] near <object2>[region 2]?"


def test_judge_parsing_is_robust():
    clean = (
        "1. Subject Correspondence: 5\nExplanation: ok\n2. Appearance Description: 3\nExplanation: x\n"
        "3. Temporal Description: 2\nExplanation: y\n4. Hallucination Detection: 4\nExplanation: z"
    )
    scores, problems = parse_judge_reply(clean)
    assert scores == dict(zip(DIMENSIONS, [5.0, 3.0, 2.0, 4.0], strict=True)) and problems == []
    decorated = (
        "1. **Subject Correspondence**: 4/5\n2. **Appearance Description:** 2\n"
        "3. Temporal Description: **1**\n4. Hallucination Detection: 9"
    )
    scores, problems = parse_judge_reply(decorated)
    assert scores == {DIMENSIONS[0]: 4.0, DIMENSIONS[1]: 2.0, DIMENSIONS[2]: 1.0}
    assert problems == ["Hallucination Detection: 9.0 is outside [0, 5]"]
    assert parse_judge_reply("I cannot judge this.") == ({}, [])


class BrokenJudge:
    model_name = "broken"

    def invoke(self, messages):
        raise ConnectionError("no network")


def test_bench_d_descriptions_and_judge(tmp_path):
    raws = [
        {
            "id": i,
            "video": f"clip{i}.mp4",
            "caption": f"Reference {i}.",
            "frame_idx": "2",
            "annotation": [{"2": {"segmentation": rle(rect(1, 1, 6, 6))}, "5": {"segmentation": None}}],
        }
        for i in range(3)
    ]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(raws))
    recs, _ = load_bench_d(path)
    videos = tmp_path / "videos"
    videos.mkdir()
    for r in recs:
        (videos / r.video).write_bytes(b"")
    out = tmp_path / "d"
    pred = CountingPredictor()
    run_bench_d(recs, pred, videos, out)
    rows = read_jsonl(out / "predictions.jsonl")
    assert [set(r) for r in rows] == [{"id", "video", "caption", "pred", "mode"}] * 3

    replies = [
        AIMessage(
            "1. Subject Correspondence: 4\n2. Appearance Description: 2\n3. Temporal Description: 2\n"
            "4. Hallucination Detection: 4"
        ),
        AIMessage("1. **Subject Correspondence**: 2\n2. **Appearance Description**: 4"),
        AIMessage("no scores here"),
    ]
    judge_predictions(out, FakeMessagesListChatModel(responses=replies))
    s = score_bench_d_run(out, judge_model="fake")
    assert (s.ok, s.partial, s.failed, s.error) == (1, 1, 1, 0)
    assert s.dimension_means[DIMENSIONS[0]] == 3.0 and s.dimension_means[DIMENSIONS[2]] == 2.0
    assert s.average == pytest.approx((3.0 + 3.0 + 2.0 + 4.0) / 4)
    assert "failed to parse 1" in (out / "metrics.md").read_text()

    out2 = tmp_path / "d2"
    run_bench_d(recs, CountingPredictor(), videos, out2)
    judge_predictions(out2, BrokenJudge(), max_retries=2)
    s2 = score_bench_d_run(out2, judge_model="broken")
    assert s2.error == 3 and s2.average is None
