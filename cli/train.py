"""``artemis train``: one stage from its YAML (``artemis train CONFIG.yaml [key=value ...]``, training/train.py),
and the shipped world model's whole recipe (``artemis train world``, training/world/recipe.py)."""

from __future__ import annotations

import subprocess
from enum import Enum

import click
import typer
from typer.core import TyperGroup

from training.world.recipe import STEPS

STAGE_COMMAND = "stage"
WorldStep = Enum("WorldStep", [(s, s) for s in ("all", *STEPS)], type=str)


class _StageByDefault(TyperGroup):
    """``artemis train CONFIG.yaml ...`` means ``artemis train stage CONFIG.yaml ...``: a first argument that is
    not a sub-command (nor an option) is a stage YAML."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [STAGE_COMMAND, *args]
        return super().parse_args(ctx, args)


train_app = typer.Typer(
    cls=_StageByDefault,
    no_args_is_help=True,
    help="Train one stage (`artemis train CONFIG.yaml key=value ...`) or the embedded world model's whole recipe "
    "(`artemis train world`).",
)


@train_app.command(STAGE_COMMAND)
def train_cmd(
    config: str = typer.Argument(..., help="A stage YAML, e.g. training/configs/stage3_referring.yaml."),
    overrides: list[str] | None = typer.Argument(
        None, help="Dotted key=value overrides, e.g. optim.learning_rate=1e-4."
    ),
) -> None:
    """Train one Artemis stage as its YAML says (projector / full LLM / LoRA + region encoder).

    The default command: `artemis train CONFIG.yaml` is `artemis train stage CONFIG.yaml`.
    """
    from training.train import main

    result = main([config, *(overrides or [])])
    typer.echo(f"done: {result.global_step} steps -> {result.final_dir or result.output_dir}")


@train_app.command("world")
def world_cmd(
    step: WorldStep = typer.Option(
        WorldStep.all, "--step", help="One step of the recipe, or all of them in order."
    ),
    train_seed: int = typer.Option(1, "--train-seed", help="Seed of the training data set."),
    eval_seed: int = typer.Option(9999, "--eval-seed", help="Seed of the held-out data set and evaluation."),
    num_videos: int = typer.Option(2000, "--num-videos", min=1, help="Training clips."),
) -> None:
    """Train the embedded world model (models/artemis-tiny-world) from scratch, bit for bit.

    Synthetic data, vision pre-training, init, stages 1-3, region-blind baseline, evaluation, ship.
    Working files in data/world/ and runs/world/; one CPU thread per process (~40 min on 2 cores).
    """
    from cli.eval import world_eval
    from training.world.recipe import RUNS, WorldRecipe, run_recipe

    recipe = WorldRecipe(
        train_seed=train_seed, eval_seed=eval_seed, num_videos=num_videos, evaluate=world_eval
    )
    try:
        steps = run_recipe(recipe, step.value)
    except subprocess.CalledProcessError as exc:
        typer.echo(f"error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", err=True)
        raise typer.Exit(exc.returncode) from exc
    typer.echo(f"done: {', '.join(steps)} (working files in {recipe.root / RUNS})")
