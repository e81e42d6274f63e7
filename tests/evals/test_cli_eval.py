from __future__ import annotations

import json

from typer.testing import CliRunner

import evals.predictors
from cli.main import app
from evals.runner import read_jsonl
from tests.evals.helpers import CountingPredictor, write_hcstvg

runner = CliRunner()


def test_referring_with_a_non_model_directory_fails_clearly(tmp_path):
    path, root = write_hcstvg(tmp_path, n_videos=1)
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    res = runner.invoke(
        app,
        ["eval", "referring", "--data", str(path), "--video-root", str(root), "--model", str(not_a_model)]
        + ["--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 2, res.output
    assert "is not an Artemis model directory" in res.output and "Traceback" not in res.output


def test_referring_sharded_cli_merge_and_report(tmp_path, monkeypatch, scorer):
    monkeypatch.setattr(evals.predictors, "load_artemis_predictor", lambda *a, **k: CountingPredictor())
    monkeypatch.setattr("evals.metrics.get_scorer", lambda: scorer)
    path, root = write_hcstvg(tmp_path, n_videos=5)
    out = tmp_path / "run"
    base = [
        "eval",
        "referring",
        "--data",
        str(path),
        "--video-root",
        str(root),
        "--model",
        "m",
        "--out",
        str(out),
    ]
    for i in range(3):
        res = runner.invoke(
            app, [*base, "--num-shards", "3", "--shard-id", str(i)] + (["--merge"] if i == 2 else [])
        )
        assert res.exit_code == 0, res.output
    assert [r["video_name"] for r in read_jsonl(out / "predictions.jsonl")] == [f"vid{i}" for i in range(5)]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["scored"] == 5 and "SPICE" in metrics["unavailable"]

    res = runner.invoke(
        app, ["eval", "merge", "--out", str(out), "--num-shards", "3", "--data", str(path), "--no-score"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "report", str(out), "--out", str(tmp_path / "rep"), "--label", "fake"])
    assert res.exit_code == 0, res.output
    assert "ours: fake" in (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "referring.png").stat().st_size > 1000
    res = runner.invoke(app, [*base, "--num-shards", "3", "--shard-id", "3"])
    assert res.exit_code != 0 and "shard_id" in res.output
