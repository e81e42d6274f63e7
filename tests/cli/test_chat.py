from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from tests.clipgen import Obj, make_clip, write_mp4


def test_chat_asks_back_and_the_follow_up_resolves(tmp_path):
    clip = make_clip(
        [
            Obj("green", "circle", (30, 20), (35, 100), radius=12),
            Obj("yellow", "circle", (125, 100), (120, 20), radius=12),
        ],
        num_frames=16,
    )
    video = str(write_mp4(clip.frames, tmp_path / "c.mp4"))
    runner = CliRunner(env={"ARTEMIS_GROUNDING_BACKEND": "offline"})  # a world clip: the flat-shape backend
    common = ["--thread", "t1", "--db", str(tmp_path / "chat.sqlite"), "--describer", "heuristic"]
    first = runner.invoke(app, ["chat", video, "What does the circle do?", *common])
    assert first.exit_code == 0, first.output
    assert "plan (rule)" in first.output and "ground(" in first.output and "Which one" in first.output
    second = runner.invoke(app, ["chat", video, "the right one", *common, "--annotate", str(tmp_path / "ev")])
    assert second.exit_code == 0, second.output
    assert "answer: The yellow circle moves up." in second.output
    assert "evidence #0 yellow circle frames 0-15" in second.output
    assert (tmp_path / "ev").is_dir() and any((tmp_path / "ev").glob("*.jpg"))


def test_chat_rejects_a_bad_box(tmp_path):
    clip = make_clip([Obj("red", "square", (30, 30), (60, 30))], num_frames=8)
    video = str(write_mp4(clip.frames, tmp_path / "s.mp4"))
    out = CliRunner().invoke(
        app, ["chat", video, "what?", "--box", "1,2,3", "--db", str(tmp_path / "d.sqlite")]
    )
    assert out.exit_code != 0 and "x1,y1,x2,y2" in out.output
