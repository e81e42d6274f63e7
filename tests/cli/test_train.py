"""``artemis train``: a stage YAML by default, ``artemis train world`` for the world model's recipe."""

from __future__ import annotations

from typer.testing import CliRunner

import training.world.recipe
from cli.eval import world_eval
from cli.main import app

runner = CliRunner()


def _text(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def test_train_world_and_eval_world_help() -> None:
    res = runner.invoke(app, ["train", "world", "--help"])
    assert res.exit_code == 0, res.output
    assert "--step" in res.output and "stage3" in res.output and "--num-videos" in res.output
    res = runner.invoke(app, ["eval", "world", "--help"])
    assert res.exit_code == 0, res.output
    for option in ("--model", "--seed", "--clips", "--combo-queries", "--no-captions", "--out"):
        assert option in res.output
    res = runner.invoke(app, ["train", "--help"])
    assert res.exit_code == 0 and "stage" in res.output and "world" in res.output


def test_train_world_runs_the_chosen_step(monkeypatch) -> None:  # noqa: ANN001
    calls: list[tuple[training.world.recipe.WorldRecipe, str]] = []

    def fake_run_recipe(recipe, step):  # noqa: ANN001, ANN202
        calls.append((recipe, step))
        return (step,)

    monkeypatch.setattr(training.world.recipe, "run_recipe", fake_run_recipe)
    res = runner.invoke(app, ["train", "world", "--step", "stage1", "--eval-seed", "7"])
    assert res.exit_code == 0, res.output
    [(recipe, step)] = calls
    assert step == "stage1" and "done: stage1" in res.output
    assert (recipe.train_seed, recipe.eval_seed, recipe.num_videos) == (1, 7, 2000)
    assert recipe.root == training.world.recipe.REPO_ROOT and recipe.evaluate is world_eval
    res = runner.invoke(app, ["train", "world", "--step", "stage4"])
    assert res.exit_code == 2 and "'stage4' is not one of" in _text(res.output)


def test_a_yaml_argument_is_the_stage_command(tmp_path) -> None:  # noqa: ANN001
    missing = tmp_path / "missing.yaml"
    for args in (["train", str(missing)], ["train", "stage", str(missing)]):
        res = runner.invoke(app, args)
        assert isinstance(res.exception, FileNotFoundError) and "missing.yaml" in str(res.exception)
