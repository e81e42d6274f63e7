"""``artemis describe VIDEO --box x1,y1,x2,y2 --frame N``: what does the boxed target do in the video?"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.describer import DESCRIBER_HELP, MODEL_HELP
from cli.runtime import make_runtime

if TYPE_CHECKING:
    from artemis_model.types import Box

logger = logging.getLogger(__name__)


def parse_box(text: str) -> Box:
    """``"x1,y1,x2,y2"`` -> 4 floats (a usage error otherwise); checked against the frame by the tool it goes
    to."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise typer.BadParameter(f"box {text!r} must be 4 numbers x1,y1,x2,y2")
    try:
        return tuple(float(p) for p in parts)  # type: ignore[return-value]
    except ValueError as exc:
        raise typer.BadParameter(f"box {text!r} must be 4 numbers x1,y1,x2,y2") from exc


def describe_cmd(
    video: Path = typer.Argument(..., help="Video file or folder of frames."),
    box: str = typer.Option(..., "--box", help="Target box x1,y1,x2,y2 in pixels of frame --frame."),
    frame: int = typer.Option(0, "--frame", help="Frame index of the box (0-based)."),
    question: str | None = typer.Option(
        None,
        "--question",
        help="Question with <region> where the target goes (added when absent; default: "
        "'What is the <region> doing in this video?').",
    ),
    model_dir: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    describer: str = typer.Option("auto", "--describer", help=DESCRIBER_HELP),
    save_evidence: Path | None = typer.Option(
        None, "--save-evidence", help="Write annotated frames + GIF here."
    ),
    max_new_tokens: int = typer.Option(
        64, "--max-new-tokens", help="Answer length limit in tokens (model describers)."
    ),
    device: str | None = typer.Option(None, "--device", help="torch device for the model (default: CPU)."),
) -> None:
    """Describe what the boxed target does over the whole video: prints the answer; the track and the frames the
    describer was given are logged."""
    from tqdm import tqdm

    from artemis_model.errors import ArtemisInputError
    from artemis_model.types import GenerationOptions
    from tools.describers import describer_name
    from tools.refer import refer

    box_xyxy = parse_box(box)
    try:
        with tqdm(total=4, desc="loading model", unit="step", leave=False) as bar:
            runtime = make_runtime(
                model_dir, describer, device=device, options=GenerationOptions(max_new_tokens=max_new_tokens)
            )
            describe = runtime.describer
            logger.info("describer: %s", describer_name(describe))
            bar.update()
            bar.set_description("opening video")
            source = runtime.open_video(video)
            bar.update()
            bar.set_description("tracking + features + answer")
            result = refer(source, box_xyxy, frame_idx=frame, question=question, describer=describe)
            bar.update()
            paths = []
            if save_evidence is not None:
                bar.set_description("saving evidence")
                from artemis_model.evidence import save_evidence as write_evidence

                paths = write_evidence(source, result, save_evidence)
            bar.update()
    except ArtemisInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(result.answer)
    span = result.track.span
    logger.info(
        "track: visible %d/%d frames%s; frames fed to the model: %s; timings: %s",
        len(result.track.visible_frames),
        result.track.num_frames,
        f" ({span[0]}..{span[1]})" if span else "",
        list(result.selected_frames),
        {k: round(v, 3) for k, v in result.timings.items()},
    )
    for p in paths:
        logger.info("evidence: %s", p)
