"""``artemis demo`` (what ``make demo`` runs): the agent answers a multi-target question about a world video.

The video is generated deterministically by the synthetic world (seed 0 onwards: the first clip where two
objects share a colour), so the demo needs no download. The describer follows the rule of every entry point
(:func:`tools.describers.choose_describer`) for a world command, ``--describer world`` by default: ``--model``,
else the embedded ``models/artemis-tiny-world``, else the weight-free heuristic describer.
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
) -> None:
    """Generate a world clip and ask the agent what the objects of one colour do."""
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
