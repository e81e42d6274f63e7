"""``artemis data ...``: the synthetic referring world on disk."""

from __future__ import annotations

import json
from pathlib import Path

import typer

data_app = typer.Typer(
    help="Synthetic data: videos, frame folders, truth and training/eval JSONs.", no_args_is_help=True
)


@data_app.callback()
def _data() -> None:
    """Synthetic data commands."""


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (the video_folder of every record)."),
    num_videos: int = typer.Option(20, "--num-videos", min=1, help="Number of clips."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed writes the same data set."),
    width: int = typer.Option(160, "--width", help="Frame width in pixels (even)."),
    height: int = typer.Option(120, "--height", help="Frame height in pixels (even)."),
    fps: int = typer.Option(10, "--fps", min=1, help="Frames per second."),
    frame_ext: str = typer.Option("jpg", "--frame-ext", help="Frame folder format: jpg or png."),
    num_long_videos: int | None = typer.Option(
        None, "--num-long-videos", help="Concatenated long videos (default N // 6)."
    ),
) -> None:
    """Write clips (mp4 + frames + truth), stage 1-3 JSONs and the complex question sets."""
    from synth.build import write_dataset

    try:
        manifest = write_dataset(
            out,
            num_videos,
            seed,
            width=width,
            height=height,
            fps=fps,
            frame_ext=frame_ext,
            num_long_videos=num_long_videos,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(json.dumps(manifest.counts))
