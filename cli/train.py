"""``artemis train CONFIG.yaml [key=value ...]``: the one training entry point (see training/train.py)."""

from __future__ import annotations

import typer


def train_cmd(
    config: str = typer.Argument(..., help="A stage YAML, e.g. training/configs/stage3_referring.yaml."),
    overrides: list[str] | None = typer.Argument(
        None, help="Dotted key=value overrides, e.g. optim.learning_rate=1e-4."
    ),
) -> None:
    """Train one Artemis stage as its YAML says (projector / full LLM / LoRA + region encoder)."""
    from training.train import main

    result = main([config, *(overrides or [])])
    typer.echo(f"done: {result.global_step} steps -> {result.final_dir or result.output_dir}")
