"""The evaluation tasks, each registered once: name, description, and the functions that run and score it.

The CLI (``artemis eval NAME``) takes each task's help from here, and its ``merge`` / ``score`` commands dispatch
through :func:`score_run` and :func:`record_ids`. Add a task: write its module, register it at the bottom with
one line, and give it an ``artemis eval NAME`` command for its options. Functions are named ``"module:function"``
and imported when used, so listing the tasks (``artemis --help``) imports no model or task code.

- ``run``: the task's entry function (what ``artemis eval NAME`` calls).
- ``score`` (tasks whose runs are sharded prediction files): ``(out_dir, ScoreOptions) -> summary`` scores
  ``out_dir``'s merged rows, writes ``metrics.json`` / ``metrics.md`` there and returns a JSON-able summary.
- ``record_ids``: ``(data, video_root) -> ids`` of an evaluation file, in data order (to merge shards in order).
- ``score_on_merge``: whether merged predictions can be scored at once (Bench-D needs the judge first).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ScoreOptions:
    """Options of the scorers; each uses those of its task (``length_filter``: referring; ``judge_model``: the
    judge's name recorded with Bench-D scores)."""

    length_filter: bool = False
    judge_model: str | None = None


@dataclass(frozen=True)
class EvalTask:
    name: str
    description: str
    run: str
    score: str | None = None
    record_ids: str | None = None
    score_on_merge: bool = True


_TASKS: dict[str, EvalTask] = {}


def register_task(task: EvalTask) -> EvalTask:
    """Add ``task`` to the registry (a name registers once)."""
    if task.name in _TASKS:
        raise ValueError(f"evaluation task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def available_tasks(*, scored: bool = False) -> list[str]:
    """Registered task names in registration order (``scored``: only those with a scorer, i.e. sharded runs)."""
    return [name for name, task in _TASKS.items() if task.score is not None or not scored]


def get_task(name: str, *, scored: bool = False) -> EvalTask:
    """The task ``name``; a ValueError names the allowed ones (``scored``: among tasks with a scorer)."""
    allowed = available_tasks(scored=scored)
    if name not in allowed:
        raise ValueError(f"unknown evaluation task {name!r}; allowed: {', '.join(allowed)}")
    return _TASKS[name]


def load_function(ref: str) -> Callable[..., Any]:
    """Import ``"module:function"``."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def score_run(name: str, out_dir: Path, options: ScoreOptions = ScoreOptions()) -> dict[str, Any]:
    """Score the run folder ``out_dir`` of task ``name``; the summary its scorer returns."""
    task = get_task(name, scored=True)
    return load_function(task.score)(Path(out_dir), options)  # type: ignore[arg-type]


def record_ids(name: str, data: Path, video_root: Path | None = None) -> list[str]:
    """Record ids of task ``name``'s evaluation file ``data``, in data order."""
    task = get_task(name, scored=True)
    if task.record_ids is None:
        raise ValueError(f"evaluation task {name!r} has no record order")
    return load_function(task.record_ids)(Path(data), video_root)


register_task(
    EvalTask(
        "referring",
        "Describe every boxed target of an HC-STVG-format file (HC-STVG / VideoRef45K protocol) and score with "
        "BLEU/METEOR/ROUGE_L/CIDEr (SPICE when installed).",
        run="evals.referring:run_referring",
        score="evals.referring:score_summary",
        record_ids="evals.referring:record_ids",
    )
)
register_task(
    EvalTask(
        "videorefer-q",
        "VideoRefer-Bench-Q: each <region> -> a target described by Artemis; the chat model picks a letter; "
        "accuracy per question type. Without a chat model a deterministic word-overlap fallback answers "
        "(labelled, not an LLM).",
        run="evals.videorefer.bench_q:run_bench_q",
        score="evals.videorefer.bench_q:score_summary",
        record_ids="evals.videorefer.bench_q:record_ids",
    )
)
register_task(
    EvalTask(
        "videorefer-d",
        "VideoRefer-Bench-D: write the descriptions; with --judge (after all shards), judge and score them.",
        run="evals.videorefer.bench_d:run_bench_d",
        score="evals.videorefer.bench_d:score_summary",
        record_ids="evals.videorefer.bench_d:record_ids",
        score_on_merge=False,
    )
)
register_task(
    EvalTask(
        "judge-d",
        "Judge Bench-D descriptions (resumable) and score SC/AD/TD/HD/Avg; parse failures are reported.",
        run="evals.videorefer.bench_d:judge_predictions",
    )
)
register_task(
    EvalTask(
        "tools",
        "Grounding recall/precision and tracking mean IoU / frames lost / ID switches of the current tools on the "
        "synthetic world (a data set from `artemis data synth`, or clips generated on the fly).",
        run="evals.tools_eval:evaluate_tools",
    )
)
register_task(
    EvalTask(
        "agent",
        "The agent (rule planner) on the synthetic world's complex questions, template and held-out wording: "
        "target-set F1, attribute and motion accuracy, clarification handling, per question kind.",
        run="evals.agent_bench:run_agent_bench",
    )
)
register_task(
    EvalTask(
        "world",
        "The world model's descriptions of held-out synthetic clips (truth tracks), parsed and scored: colour + "
        "shape, first motion (with chance levels), held-out combinations, caption metrics.",
        run="evals.world:evaluate",
    )
)
register_task(
    EvalTask(
        "real",
        "The real-footage benchmark: hand-checked labels of public clips (evals/real/labels) scored against "
        "grounding (per-object track IoU, ID switches, frames present while absent, tracks across cuts) and "
        "count / temporal / presence / shot questions answered from the grounding results.",
        run="evals.real:run_real",
    )
)
