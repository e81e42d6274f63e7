"""``artemis init-model``: a language model + CLIP -> the stage-1 initial Artemis checkpoint (model.path)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.convert import DTYPE_NAMES


def init_model_cmd(
    llm: Path = typer.Option(
        ..., "--llm", help="LlamaForCausalLM dir (e.g. Vicuna-7B-v1.5: weights, tokenizer)."
    ),
    clip: Path = typer.Option(
        ..., "--clip", help="CLIP dir (openai/clip-vit-large-patch14 or a CLIPVisionModel)."
    ),
    out: Path = typer.Option(..., "--out", help="Output dir (absent or empty)."),
    dtype: str | None = typer.Option(
        None, "--dtype", help=f"Output dtype: {', '.join(DTYPE_NAMES)} (default: the LLM weights' dtype)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the fresh projector and region encoder."),
    config_overrides: Path | None = typer.Option(
        None,
        "--config-overrides",
        help="JSON file of ArtemisConfig fields to replace (e.g. for a small CLIP).",
    ),
) -> None:
    """Assemble LLM + CLIP + a fresh projector and region encoder: the checkpoint stage 1 starts from."""
    if dtype is not None and dtype not in DTYPE_NAMES:
        raise typer.BadParameter(f"--dtype {dtype!r} is unknown; allowed: {list(DTYPE_NAMES)}")
    overrides = json.loads(config_overrides.read_text()) if config_overrides is not None else None
    from artemis_model.convert import DTYPES
    from artemis_model.convert.assemble import assemble_model
    from artemis_model.convert.checkpoint_io import ConversionError

    try:
        path = assemble_model(
            llm,
            clip,
            out,
            dtype=DTYPES[dtype] if dtype is not None else None,
            config_overrides=overrides,
            seed=seed,
        )
    except ConversionError as exc:  # AssemblyError and unreadable sources
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"assembled Artemis checkpoint: {path}")
