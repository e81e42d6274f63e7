"""Bench-Q through the agent (Artemis describes each <region>, a chat model answers) and the Bench-D CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

import evals.predictors
from cli.main import app
from evals.chat_models import OpenAICompatibleChat
from evals.runner import read_jsonl
from evals.videorefer.answerers import AgentAnswerer, WordOverlapAnswerer
from evals.videorefer.bench_q import ObjectDescription
from tests.evals.helpers import CountingPredictor, write_frames, write_mp4
from tests.evals.test_videorefer_data import H, W, bench_q_raw, rect, rle

runner = CliRunner()
OPTS = ["(A) it jumps over the fence", "(B) it sits on the red chair", "(C) it swims"]
DESCS = [
    ObjectDescription(0, "<object1>", "A cat sits on a red chair.", 2, (1.0, 2.0, 9.0, 9.0), (0, 10)),
    ObjectDescription(1, None, "A dog runs past.", 2, (10.0, 2.0, 20.0, 9.0), (2, 5)),
]
REPLIES = ["(B)", "The answer is (C).", "(A) because it jumps"]
FAKE_CHATS: list[FakeListChatModel] = []


def fake_chat() -> FakeListChatModel:
    """``--llm tests.evals.test_bench_q_agent:fake_chat``: a scripted chat model (kept to read its prompts)."""
    FAKE_CHATS.append(FakeListChatModel(responses=REPLIES))
    return FAKE_CHATS[-1]


class RecordingChat(FakeListChatModel):
    """Keeps the messages it was sent."""

    prompts: list = []

    def invoke(self, messages, *args, **kwargs):
        self.prompts.append(messages)
        return super().invoke(messages, *args, **kwargs)


def test_agent_answerer_prompt_reply_and_reasoning():
    chat = RecordingChat(responses=["(B)"])
    result = AgentAnswerer(chat).answer("Where is <object1>[region 1]?", OPTS, DESCS)
    assert result.letter is None and result.text == "(B)"  # the raw reply is scored by the official rules
    human = chat.prompts[-1][-1].content
    assert "[region 1] <object1>: boxed at (1, 2, 9, 9) on frame 2, tracked on frames 0-10" in human
    assert "A cat sits on a red chair." in human and "[region 2] region 2:" in human
    assert all(o in human for o in OPTS) and result.trace[-1] == "reply: (B)"

    reasoning = RecordingChat(responses=["Region 1 is a cat (A) maybe... no.\nAnswer: (b)"])
    r = AgentAnswerer(reasoning, reason=True).answer("Q?", OPTS, DESCS)
    assert r.letter == "B" and "final answer line: (B)" in r.trace[-1]
    none = AgentAnswerer(RecordingChat(responses=["Answer: (Z)"]), reason=True).answer("Q?", OPTS, DESCS)
    assert none.letter is None and none.text == "Answer: (Z)"


def test_word_overlap_fallback_is_labelled_and_deterministic():
    fb = WordOverlapAnswerer()
    assert fb.answer("Q?", OPTS, DESCS).letter == "B"  # 'sits', 'red', 'chair' shared
    tie = [ObjectDescription(0, None, "nothing in common")]
    assert fb.answer("Q?", OPTS, tie).letter == "A"  # ties go to the first option
    assert "no LLM" in fb.name


def test_openai_compatible_chat_maps_roles_and_reads_the_reply():
    from langchain_core.messages import HumanMessage, SystemMessage

    calls = []

    def create(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="(C)"))])

    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    chat = OpenAICompatibleChat(model_name="m", base_url="http://x/v1", client=client)
    reply = AgentAnswerer(chat).answer("Q?", OPTS, DESCS)
    assert reply.text == "(C)" and AgentAnswerer(chat).name == "agent:m"
    assert [m["role"] for m in calls[0]["messages"]] == ["system", "user"] and calls[0]["temperature"] == 0.0
    assert chat.invoke([SystemMessage("s"), HumanMessage("h")]).content == "(C)"


def _bench_q_fixture(tmp_path):
    raws = []
    for i in range(3):
        raw = bench_q_raw()
        raw["id"] = i
        raws.append(raw)
    raws[2]["Question"] = "What does <region> do?"  # one object only
    raws[2]["annotation"] = raws[2]["annotation"][:1]
    path = tmp_path / "q.json"
    path.write_text(json.dumps(raws))
    write_frames(tmp_path / "frames" / raws[0]["video"], 12, size=(W, H))
    return path, tmp_path / "frames"


def test_bench_q_cli_end_to_end_with_tiny_artemis_and_a_fake_chat_model(tmp_path, one_thread):
    from artemis_model.pipeline import ArtemisPipeline
    from artemis_model.types import GenerationOptions
    from evals.artemis_predictor import ArtemisPredictor
    from evals.videorefer.data import bench_q_object_records, load_bench_q
    from tools.describers import EMBEDDED_MODEL_DIR

    path, frames = _bench_q_fixture(tmp_path)
    out = tmp_path / "q"
    args = ["eval", "videorefer-q", "--data", str(path), "--frames", str(frames), "--out", str(out)]
    res = runner.invoke(
        app, [*args, "--llm", "tests.evals.test_bench_q_agent:fake_chat", "--max-new-tokens", "4"]
    )
    assert res.exit_code == 0, res.output
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["pred"] for r in rows] == REPLIES and {r["answerer"] for r in rows} == {
        "agent:FakeListChatModel"
    }

    # One Artemis description per referred object, in <region> order: the default (embedded) model's answers.
    recs, _ = load_bench_q(path)
    artemis = ArtemisPredictor(
        ArtemisPipeline.from_pretrained(EMBEDDED_MODEL_DIR), options=GenerationOptions(max_new_tokens=4)
    )
    for rec, row in zip(recs, rows, strict=True):
        expected = artemis.predict(bench_q_object_records(rec, frames, "single"))
        assert [d["text"] for d in row["descriptions"]] == expected
        region_lines = [t for t in row["trace"] if t.startswith("region ")]
        assert len(region_lines) == len(rec.objects) == rec.question.count("<region>")
        assert [line.split(": ", 1)[1] for line in region_lines] == expected
        prompt = next(t for t in row["trace"] if t.startswith("prompt: "))
        assert all(f"Description: {e.strip() or '(empty)'}" in prompt for e in expected)
    metrics = json.loads((out / "metrics.json").read_text())
    # Gold is (B): reply 1 "(B)" right; "The answer is (C)." -> C; "(A) because" -> A.
    assert metrics["official"]["correct"] == 1 and metrics["official"]["total"] == 3
    assert metrics["answerers"] == ["agent:FakeListChatModel"]


def test_bench_q_cli_without_llm_uses_the_labelled_fallback(tmp_path, monkeypatch):
    class Describer(CountingPredictor):
        def predict(self, records):
            super().predict(records)
            return ["the object moves right" for _ in records]

    monkeypatch.setattr(evals.predictors, "load_artemis_predictor", lambda *a, **k: Describer())
    path, frames = _bench_q_fixture(tmp_path)
    out = tmp_path / "q"
    res = runner.invoke(
        app,
        [
            "eval",
            "videorefer-q",
            "--data",
            str(path),
            "--frames",
            str(frames),
            "--out",
            str(out),
            "--model",
            "m",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "fallback-word-overlap (no LLM)" in res.output
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["pred"] for r in rows] == ["(B)"] * 3  # 'right' is shared with option (B) only
    assert json.loads((out / "metrics.json").read_text())["answerers"] == ["fallback-word-overlap (no LLM)"]
    assert "fallback-word-overlap (no LLM)" in (out / "metrics.md").read_text()
    bad = runner.invoke(
        app,
        [
            "eval",
            "videorefer-q",
            "--data",
            str(path),
            "--frames",
            str(frames),
            "--out",
            str(out),
            "--llm-base-url",
            "http://localhost:1/v1",
        ],
    )
    assert bad.exit_code != 0 and "--llm-model" in bad.output


def test_bench_d_cli_end_to_end_with_tiny_model(tmp_path, one_thread):
    raws = [
        {
            "id": i,
            "video": f"clip{i}.mp4",
            "caption": f"Reference {i}.",
            "frame_idx": "2",
            "annotation": [
                {
                    "2": {"segmentation": rle(rect(1 + i, 1, 9, 8))},
                    "5": {"segmentation": None},
                    "6": {"segmentation": rle(rect(4, 3, 14, 12))},
                }
            ],
        }
        for i in range(2)
    ]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(raws))
    videos = tmp_path / "videos"
    videos.mkdir()
    for r in raws:
        write_mp4(videos / r["video"], 8, size=(W, H))
    out = tmp_path / "d"
    res = runner.invoke(
        app,
        [
            "eval",
            "videorefer-d",
            "--data",
            str(path),
            "--videos",
            str(videos),
            "--out",
            str(out),
            "--max-new-tokens",
            "4",
            "--batch-size",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "tiny RANDOM model" not in res.output  # the README's rule: no --model -> the embedded model
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == ["0", "1"] and all(isinstance(r["pred"], str) for r in rows)
    assert [r["caption"] for r in rows] == ["Reference 0.", "Reference 1."] and {r["mode"] for r in rows} == {
        "multi"
    }
