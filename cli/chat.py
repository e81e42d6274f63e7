"""``artemis chat VIDEO "question"``: ask the agent about a video, printing its plan, tool calls and evidence."""

from __future__ import annotations

import importlib
import json
import uuid
from pathlib import Path

import typer

from artemis_model.errors import ArtemisInputError
from cli.describe import parse_box
from cli.describer import DESCRIBER_HELP, MODEL_HELP
from cli.runtime import make_runtime


def chat(
    video: Path = typer.Argument(..., help="Video file or folder of frames."),
    question: str = typer.Argument(..., help='Question, e.g. "What do the red objects do?"'),
    box: str | None = typer.Option(None, "--box", help="x1,y1,x2,y2 in pixels on --frame: the first target."),
    frame: int = typer.Option(0, "--frame", help="Frame index of --box."),
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    describer: str = typer.Option("auto", "--describer", help=DESCRIBER_HELP),
    planner: str = typer.Option("rule", "--planner", help="rule | llm"),
    llm: str | None = typer.Option(
        None, "--llm", help="module:factory returning a LangChain chat model (planner llm)."
    ),
    summarizer: str = typer.Option(
        "merge", "--summarizer", help="merge | smollm2 | auto (or the --llm model)."
    ),
    thread: str | None = typer.Option(None, "--thread", help="Conversation id; reuse it for follow-ups."),
    db: Path = typer.Option(
        Path.home() / ".cache" / "artemis" / "chat.sqlite", "--db", help="SQLite memory file."
    ),
    annotate: Path | None = typer.Option(
        None, "--annotate", help="Write annotated evidence frames (JPEG) here."
    ),
) -> None:
    """Ask the Artemis agent a question about VIDEO (follow-ups: same --thread and --db)."""
    from agent.deps import AgentDeps
    from agent.graph import build_agent, sqlite_checkpointer
    from agent.lc_tools import as_text_llm
    from agent.planner import LLMPlanner, RulePlanner
    from tools.describers import describer_name

    if planner not in ("rule", "llm"):
        raise typer.BadParameter(f"--planner {planner!r} must be 'rule' or 'llm'")
    parsed_box = parse_box(box) if box else None
    chat_model = _load_llm(llm) if llm else None
    if planner == "llm" and chat_model is None:
        raise typer.BadParameter("--planner llm needs --llm module:factory (a LangChain chat model)")
    runtime = make_runtime(
        model, describer, summarizer=as_text_llm(chat_model) if chat_model is not None else summarizer
    )
    typer.echo(f"describer: {describer_name(runtime.describer)}")
    try:
        runtime.open_video(video)  # opened once here; the agent's nodes get this same opened video
    except ArtemisInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="'VIDEO'") from exc
    deps = AgentDeps(runtime=runtime, planner=LLMPlanner(chat_model) if planner == "llm" else RulePlanner())
    thread = thread or uuid.uuid4().hex[:8]
    graph = build_agent(deps, checkpointer=sqlite_checkpointer(db))
    typer.echo(f"thread {thread}")
    try:
        done = run_turn(
            graph,
            thread,
            question,
            video=str(video),
            box=parsed_box,
            frame_idx=frame,
            annotate_dir=str(annotate) if annotate else None,
        )
    except ArtemisInputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not done:
        typer.echo(f'  answer with: artemis chat {video} "the left one" --thread {thread} --db {db}')


def run_turn(graph, thread: str, question: str, **kwargs) -> bool:
    """Run one message, echoing the plan, tool calls, answer and evidence. False when the agent asks back."""
    from agent.graph import ask, final_state

    for node, update in ask(graph, thread, question, **kwargs):
        if node == "__interrupt__":
            typer.echo(f"? {update['clarification']['question']}")
            return False
        for step in update.get("steps", []):
            if step.node == "plan":
                typer.echo(f"plan ({step.tool}): {step.output}")
            elif step.tool:
                typer.echo(f"  {step.tool}({json.dumps(step.input)}) -> {step.output}")
    state = final_state(graph, thread)
    typer.echo(f"answer: {state['answer']}")
    for ev in state["evidence"].targets:
        boxes = ", ".join(f"f{f}:[{', '.join(f'{v:.0f}' for v in b)}]" for f, b in ev.key_boxes)
        typer.echo(f"  evidence #{ev.target_id} {ev.label} frames {ev.span[0]}-{ev.span[1]} boxes {boxes}")
        for said in ev.said:
            typer.echo(f"    {said}")
    for path in state["evidence"].frames:
        typer.echo(f"  frame {path}")
    return True


def _load_llm(spec: str):
    module, _, name = spec.partition(":")
    if not name:
        raise typer.BadParameter(f"--llm {spec!r} must be module:factory")
    return getattr(importlib.import_module(module), name)()
