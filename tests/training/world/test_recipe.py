"""``training.world.recipe``: the steps of the shipped world model's recipe, as the shell script ran them."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from synth.held_out import HELD_OUT_COMBOS
from training.world import recipe as world_recipe
from training.world.data import held_out_clips, scene_combos
from training.world.recipe import STEPS, WorldRecipe, run_recipe, selected_steps

# The commands of the former scripts/train_world.sh (``$PY scripts/X.py`` -> ``python -m training.world.X``).
SHELL_SCRIPT = {
    "vision": [
        "-m training.world.init --data data/world/train --out runs/world/init_random --no-center",
        "-m training.world.probe --model runs/world/init_random --clips 200 --out runs/world/probe_random.json",
        "-m training.world.region_pretrain --model runs/world/init_random --out runs/world/region/region.safetensors"
        " --clips 2000 --val-clips 100 --epochs 12 --lr 3e-3",
    ],
    "init": [
        "-m training.world.init --data data/world/train --out runs/world/init"
        " --vision-from runs/world/region/region.safetensors --feature-cache runs/world/feature_cache",
    ],
    "stage1": ["-m training.train training/configs/world/stage1_pretrain.yaml"],
    "stage2": ["-m training.train training/configs/world/stage2_finetune.yaml"],
    "stage3": [
        "-m training.world.init --recenter runs/world/stage2/final --region-pretrained --data data/world/train"
        " --feature-cache runs/world/feature_cache --out runs/world/stage2/final_centred",
        "-m training.train training/configs/world/stage3_referring.yaml",
    ],
    "front": ["-m training.train training/configs/world/stage3_front.yaml"],
    "big": ["-m training.train training/configs/world/stage3_front_big.yaml"],
    "blind": [
        "-m training.train training/configs/world/stage3_referring.yaml model.region_blind=true"
        " run.output_dir=runs/world/stage3_blind run.save_steps=500",
    ],
}


class Recorder:
    def __init__(self) -> None:
        self.commands: list[str] = []
        self.evaluations: list[tuple[Path, Path, dict]] = []

    def run(self, argv, cwd: Path) -> None:  # noqa: ANN001
        assert argv[0] == "python" and cwd == Path("/repo")
        self.commands.append(" ".join(argv[1:]))

    def evaluate(self, model_dir: Path, out: Path, **kwargs: int) -> None:
        self.evaluations.append((model_dir, out, kwargs))


def test_training_steps_run_the_shell_scripts_commands_in_fresh_processes() -> None:
    rec = Recorder()
    recipe = WorldRecipe(root=Path("/repo"), python="python", run=rec.run, evaluate=rec.evaluate)
    for step, commands in SHELL_SCRIPT.items():
        rec.commands.clear()
        assert run_recipe(recipe, step) == (step,)
        assert rec.commands == commands, step
    for yaml in (
        "stage1_pretrain",
        "stage2_finetune",
        "stage3_referring",
        "stage3_front",
        "stage3_front_big",
    ):
        assert (world_recipe.REPO_ROOT / "training" / "configs" / "world" / f"{yaml}.yaml").is_file()


def test_eval_step_scores_the_model_and_the_blind_baseline_on_the_eval_seed() -> None:
    rec = Recorder()
    recipe = WorldRecipe(root=Path("/repo"), eval_seed=77, run=rec.run, evaluate=rec.evaluate)
    run_recipe(recipe, "eval")
    settings = {"seed": 77, "clips": 250, "combo_queries": 30}
    assert rec.evaluations == [
        (Path("/repo/runs/world/stage3/final"), Path("/repo/runs/world/eval_stage3.json"), settings),
        (Path("/repo/runs/world/stage3_front/final"), Path("/repo/runs/world/eval_front.json"), settings),
        (Path("/repo/runs/world/stage3_front_big/final"), Path("/repo/runs/world/eval_model.json"), settings),
        (Path("/repo/runs/world/stage3_blind/final"), Path("/repo/runs/world/eval_blind.json"), settings),
    ]
    with pytest.raises(ValueError, match="evals.world"):
        run_recipe(WorldRecipe(run=rec.run), "eval")


def test_steps_in_order_and_unknown_step_refused() -> None:
    assert STEPS == (
        "data",
        "vision",
        "init",
        "stage1",
        "stage2",
        "stage3",
        "front",
        "big",
        "blind",
        "eval",
        "ship",
    )
    assert selected_steps("all") == STEPS and selected_steps("blind") == ("blind",)
    with pytest.raises(ValueError, match="unknown step 'stage4'; allowed: all, data, vision"):
        selected_steps("stage4")


def test_ship_copies_the_final_checkpoint(tmp_path) -> None:  # noqa: ANN001
    final = tmp_path / "runs" / "world" / "stage3_front_big" / "final"
    final.mkdir(parents=True)
    for name in (*world_recipe.SHIPPED_FILES, "generation_config.json", "trainer_state.json"):
        (final / name).write_text(name)
    run_recipe(WorldRecipe(root=tmp_path), "ship")
    shipped = tmp_path / "models" / "artemis-tiny-world"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(
        (*world_recipe.SHIPPED_FILES, "generation_config.json")
    )
    assert (shipped / "model.safetensors").read_text() == "model.safetensors"
    (final / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError):
        run_recipe(WorldRecipe(root=tmp_path), "ship")


def test_data_step_writes_both_data_sets_and_removes_held_out_combinations(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(world_recipe, "EVAL_VIDEOS", 2)
    run_recipe(WorldRecipe(root=tmp_path, num_videos=40, num_big_videos=60, train_seed=1), "data")
    train = tmp_path / "data" / "world" / "train"
    assert len(json.loads((tmp_path / "data" / "world" / "eval" / "stage1.json").read_text())) == 2
    counts = json.loads((train / "world_filter.json").read_text())
    stage1 = json.loads((train / "stage1.json").read_text())
    kept = json.loads((train / "stage1_world.json").read_text())
    assert counts["clips"] == 40 and counts["held_out_clips"] == len(held_out_clips(stage1)) > 0
    assert len(kept) == 40 - counts["held_out_clips"]
    for rec in kept:
        assert not scene_combos(rec["conversations"][-1]["value"]) & HELD_OUT_COMBOS
    stage3 = json.loads((train / "stage3_world" / "synth_ref.json").read_text())
    assert {r["video_name"] for r in stage3} <= {r["id"] for r in kept}
    # the big set: 60 clips of the same seed, the first 40 the training clips, filtered the same way
    big = tmp_path / "data" / "world" / "train_big"
    big_stage1 = json.loads((big / "stage1.json").read_text())
    assert len(big_stage1) == 60 and big_stage1[:40] == stage1
    big_kept = json.loads((big / "stage1_world.json").read_text())
    assert big_kept[: len(kept)] == kept and len(big_kept) == 60 - len(held_out_clips(big_stage1))


@pytest.mark.parametrize("module", ["init", "probe", "region_pretrain", "data"])
def test_each_recipe_command_parses_its_options(module, monkeypatch, capsys) -> None:  # noqa: ANN001
    """The recipe runs ``python -m training.world.<module>``: each one has a command line."""
    main = importlib.import_module(f"training.world.{module}").main
    monkeypatch.setattr("sys.argv", [module, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
