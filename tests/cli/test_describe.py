"""``artemis describe``: answers with the tiny model, writes evidence, exits 2 with the bad value on bad input."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from tests.clipgen import make_squares, write_squares_mp4


def test_describe_cli(tmp_path):
    clip = make_squares(num_frames=12, num_targets=1)
    video = write_squares_mp4(clip, tmp_path / "v.mp4")
    x1, y1, x2, y2 = clip.boxes[0][2]
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "describe",
            str(video),
            "--box",
            f"{x1},{y1},{x2},{y2}",
            "--frame",
            "2",
            "--max-new-tokens",
            "4",
            "--save-evidence",
            str(tmp_path / "ev"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() and (tmp_path / "ev" / "evidence.gif").is_file()
    assert (tmp_path / "ev" / "T0_frame000002.jpg").is_file()
    bad = runner.invoke(app, ["describe", str(video), "--box", "10,10,5,20", "--frame", "2"])
    assert bad.exit_code == 2 and "inverted" in bad.output
    far = runner.invoke(app, ["describe", str(video), "--box", "1,1,5,5", "--frame", "99"])
    assert far.exit_code == 2 and "99" in far.output
