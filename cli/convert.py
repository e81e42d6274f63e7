"""``artemis convert``: released Artemis weights -> our format, and ``--verify`` of a converted directory."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

# The keys of ``artemis_model.convert.DTYPES``, spelled out so that ``--help`` does not import torch
# (tests/cli/test_lazy_imports.py holds them equal).
DTYPE_NAMES: tuple[str, ...] = ("bf16", "fp16", "fp32")


def convert_cmd(
    base: Path | None = typer.Option(
        None, "--base", help="Stage-2 Artemis-7b-ftune dir (weights, config, tokenizer)."
    ),
    lora: Path | None = typer.Option(
        None, "--lora", help="Stage-3 Artemis-7B-lora dir (adapter + non_lora_trainables)."
    ),
    clip: Path | None = typer.Option(
        None, "--clip", help="CLIP ViT-L/14 dir (openai/clip-vit-large-patch14)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output dir (absent or empty)."),
    dtype: str = typer.Option("fp16", "--dtype", help=f"Output dtype: {', '.join(DTYPE_NAMES)}."),
    max_shard_size: str = typer.Option("4GB", "--max-shard-size", help="Output shard size, e.g. 4GB, 500MB."),
    verify_image_tower: bool = typer.Option(
        False, "--verify-image-tower", help="Compare the stage-2 CLIP copy with --clip (logged)."
    ),
    config_overrides: Path | None = typer.Option(
        None, "--config-overrides", help="JSON file of ArtemisConfig fields to replace (non-7B checkpoints)."
    ),
    verify: Path | None = typer.Option(
        None, "--verify", help="Load a converted dir and answer one referring question on a generated clip."
    ),
    device: str | None = typer.Option(
        None, "--device", help="Device for --verify (default: cuda if available)."
    ),
) -> None:
    """Convert the released weights (--base/--lora/--clip/--out) and/or --verify a converted directory."""
    from artemis_model.convert import DTYPES, ConversionError, ConvertOptions, convert_checkpoint, parse_size

    sources = (base, lora, clip, out)
    if all(s is None for s in sources) and verify is None:
        raise typer.BadParameter("give --base, --lora, --clip and --out to convert, or --verify DIR")
    if any(s is not None for s in sources):
        if any(s is None for s in sources):
            raise typer.BadParameter("converting needs all of --base, --lora, --clip and --out")
        if dtype not in DTYPES:
            raise typer.BadParameter(f"--dtype {dtype!r} is unknown; allowed: {sorted(DTYPES)}")
        overrides = json.loads(config_overrides.read_text()) if config_overrides is not None else {}
        options = ConvertOptions(
            dtype=DTYPES[dtype],
            max_shard_bytes=parse_size(max_shard_size),
            verify_image_tower=verify_image_tower,
            config_overrides=overrides,
        )
        try:
            report = convert_checkpoint(base, lora, clip, out, options)
        except ConversionError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=2) from exc
        typer.echo(json.dumps(asdict(report), indent=2, default=str))
    if verify is not None:
        from artemis_model.convert.verify import verify_converted

        typer.echo(verify_converted(verify, device=device).summary())
