"""The data set on disk: the CLI writes it, it loads back, and its records agree with the truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app as data_app
from synth.datasets import NUMBER_WORDS, qa_pairs
from synth.grammar import parse_caption
from synth.heldout_templates import HELDOUT_TEMPLATES
from synth.questions import TEMPLATES
from synth.world import generate_clip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    result = CliRunner().invoke(
        data_app, ["data", "synth", "--out", str(out), "--num-videos", "6", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return out


def _load(path: Path):
    return json.loads(path.read_text())


def test_cli_writes_every_artefact(dataset: Path) -> None:
    manifest = _load(dataset / "manifest.json")
    for key, rel in manifest["files"].items():
        data = _load(dataset / rel)
        assert isinstance(data, list) and len(data) == manifest["counts"][key] > 0
    assert len(list((dataset / "videos").glob("clip_*.mp4"))) == 6
    assert len(list((dataset / "videos").glob("long_*.mp4"))) == manifest["num_long_videos"] == 1
    assert len(list((dataset / "truth").glob("*.json"))) == 7


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        data_app, ["data", "synth", "--out", str(tmp_path / "x"), "--num-videos", "2", "--width", "101"]
    )
    assert result.exit_code != 0 and "even" in result.output


def test_stage1_and_stage2_records(dataset: Path) -> None:
    for stage in ("stage1", "stage2"):
        for rec in _load(dataset / f"{stage}.json"):
            assert (dataset / rec["video"]).is_file()
            conv = rec["conversations"]
            assert [t["from"] for t in conv] == ["human", "gpt"] * (len(conv) // 2)
            assert conv[0]["value"].startswith("<video>\n")
            assert sum("<video>" in t["value"] for t in conv) == 1
    for rec in _load(dataset / "stage1.json"):
        truth = _load(dataset / "truth" / f"{rec['id']}.json")
        n = len(truth["objects"])
        assert rec["conversations"][1]["value"].startswith(
            f"There {'is' if n == 1 else 'are'} {NUMBER_WORDS[n]} object"
        )


def test_stage2_answers_are_true() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for s in range(20):
        clip = generate_clip(s)
        for q, a in qa_pairs(clip, rng):
            m = re.fullmatch(r"How many (\w+) objects are there\?", q)
            if q == "How many objects are there in the video?":
                assert a.split()[2] == NUMBER_WORDS[len(clip.objects)]
                checked += 1
            elif m:
                assert a.split()[2] == NUMBER_WORDS[sum(o.colour == m.group(1) for o in clip.objects)]
                checked += 1
            elif q.startswith("What colour is the "):
                shape = q[len("What colour is the ") : -1]
                assert a == f"The {shape} is {next(o.colour for o in clip.objects if o.shape == shape)}."
                checked += 1
    assert checked >= 40


def test_stage3_records_match_truth_and_frames(dataset: Path) -> None:
    records = _load(dataset / "stage3" / "synth_ref.json")
    for rec in records:
        frame_dir = dataset / rec["frame_path"]
        assert all((frame_dir / f).is_file() for f in rec["frame_id"])
        assert len(rec["track_list"]) == len(rec["frame_id"])
        k = rec["key_frame_idx"]
        assert (
            rec["frame_id"][k] == rec["key_frame_id"] and rec["track_list"][k] == rec["key_frame_box"] != []
        )
        assert "question" not in rec or "<bbox>" in rec["question"]
        truth = _load(dataset / "truth" / f"{rec['video_name']}.json")
        obj = truth["objects"][rec["object_id"]]
        assert rec["track_list"] == obj["boxes"]
        parsed = parse_caption(rec["caption"])
        assert parsed is not None and (parsed.colour, parsed.shape) == (obj["colour"], obj["shape"])
        assert sum(1 for b in rec["track_list"] if b) >= 8


def test_same_seed_same_dataset(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert (
        CliRunner()
        .invoke(data_app, ["data", "synth", "--out", str(out), "--num-videos", "6", "--seed", "3"])
        .exit_code
        == 0
    )
    for rel in (
        "stage1.json",
        "stage2.json",
        "stage3/synth_ref.json",
        "questions.json",
        "truth/clip_00002.json",
    ):
        assert (out / rel).read_bytes() == (dataset / rel).read_bytes()
    other = tmp_path / "other"
    assert (
        CliRunner()
        .invoke(data_app, ["data", "synth", "--out", str(other), "--num-videos", "6", "--seed", "4"])
        .exit_code
        == 0
    )
    assert (other / "stage1.json").read_bytes() != (dataset / "stage1.json").read_bytes()


def _template_regex(templates: dict[str, tuple[str, ...]]) -> list[re.Pattern]:
    return [re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(t))) for ts in templates.values() for t in ts]


def test_question_sets_and_heldout_wording(dataset: Path) -> None:
    train, heldout = _load(dataset / "questions.json"), _load(dataset / "questions_heldout.json")
    train_rx, held_rx = _template_regex(TEMPLATES), _template_regex(HELDOUT_TEMPLATES)
    for recs, own, foreign in ((train, train_rx, held_rx), (heldout, held_rx, train_rx)):
        assert {r["kind"] for r in recs} >= {"describe", "temporal", "follow_up", "long_video"}
        for r in recs:
            assert (dataset / r["video"]).is_file()
            for turn in r["turns"]:
                assert any(rx.fullmatch(turn["question"]) for rx in own)
                assert not any(rx.fullmatch(turn["question"]) for rx in foreign)
                assert turn["answer"] and turn["truth"]["type"]
