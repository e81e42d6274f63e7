"""Our runs beside the published numbers: a markdown table and a bar chart (PNG) per task.

Each run directory holds the ``metrics.json`` written by :mod:`evals.referring` or :mod:`evals.videorefer`. Rows
from papers are marked with their source and "as published"; ours with the run directory and the number of
scored items. A metric we could not compute (e.g. SPICE offline) is shown as ``n/a`` with the reason, and no bar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.published import BENCH_Q_TYPE_PREFIX, COLUMNS, PUBLISHED, UNITS, PublishedRow

logger = logging.getLogger(__name__)

_HC_KEYS = {"BLEU@4": "BLEU_4", "METEOR": "METEOR", "ROUGE_L": "ROUGE_L", "CIDEr": "CIDEr", "SPICE": "SPICE"}
_D_KEYS = {
    "SC": "Subject Correspondence",
    "AD": "Appearance Description",
    "TD": "Temporal Description",
    "HD": "Hallucination Detection",
}


@dataclass(frozen=True)
class RunRow:
    """One of our runs, on the same scale as the published rows of its task."""

    task: str
    label: str
    scores: dict[str, float | None]
    source: str
    notes: dict[str, str] = field(default_factory=dict)
    """Per column: why the value is missing."""


def run_row_from_metrics(metrics: dict[str, Any], *, label: str, source: str) -> RunRow:
    """Convert a ``metrics.json`` payload to the published scale of its task."""
    task = metrics.get("task")
    if task == "referring":
        scores: dict[str, float | None] = {}
        notes: dict[str, str] = {}
        for col, key in _HC_KEYS.items():
            value = metrics["scores"].get(key)
            scores[col] = 100.0 * value if value is not None else None
            if value is None:
                notes[col] = metrics.get("unavailable", {}).get(key, "not computed")
        n = metrics["counts"]["scored"]
        return RunRow(task, label, scores, f"{source} (n={n})", notes)
    if task == "videorefer-d":
        scores = {col: metrics["dimension_means"].get(dim) for col, dim in _D_KEYS.items()}
        scores["Avg"] = metrics.get("average")
        src = f"{source} (judge {metrics.get('judge_model')}, n={metrics.get('records')}, parsed {metrics.get('ok')})"
        return RunRow(task, label, scores, src)
    if task == "videorefer-q":
        official = metrics["official"]
        scores = dict.fromkeys(COLUMNS[task])
        for qtype, ts in official["per_type"].items():
            col = BENCH_Q_TYPE_PREFIX.get(qtype.split()[0].lower())
            if col is None:
                logger.warning("Bench-Q type %r has no report column", qtype)
                continue
            scores[col] = 100.0 * ts["accuracy"]
        scores["Average"] = 100.0 * official["overall"]
        return RunRow(task, label, scores, f"{source} (n={official['total']}, official letter rules)")
    raise ValueError(f"metrics task {task!r} is not one of {sorted(PUBLISHED)}")


def load_run(run_dir: Path, label: str | None = None) -> RunRow:
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; score the run first")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    return run_row_from_metrics(metrics, label=label or Path(run_dir).name, source=f"this repo, {run_dir}")


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_markdown(
    task: str, runs: Sequence[RunRow], published: Sequence[PublishedRow] | None = None
) -> str:
    """Published rows (as published, with their source) followed by our runs."""
    published = PUBLISHED[task] if published is None else published
    cols = COLUMNS[task]
    digits = 2 if task == "videorefer-d" else 1
    lines = [
        f"### {task} ({UNITS[task]})",
        "",
        "| model | " + " | ".join(cols) + " | source |",
        "|---|" + "---|" * len(cols) + "---|",
    ]
    for row in published:
        cells = [_fmt(row.scores.get(c), digits) for c in cols]
        lines.append(f"| {row.model} | " + " | ".join(cells) + f" | {row.source}, as published |")
    for run in runs:
        cells = [f"**{_fmt(run.scores.get(c), digits)}**" for c in cols]
        lines.append(f"| **ours: {run.label}** | " + " | ".join(cells) + f" | {run.source} |")
    notes = [f"- ours {run.label}: {col} n/a: {why}" for run in runs for col, why in run.notes.items()]
    lines += [""] + notes + ["", "Published numbers are copied from the papers; we have not reproduced them."]
    return "\n".join(lines) + "\n"


def bar_chart(
    task: str, runs: Sequence[RunRow], path: Path, published: Sequence[PublishedRow] | None = None
) -> Path:
    """Grouped bars: one group per metric, one bar per model; our runs hatched. Missing values get no bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    published = PUBLISHED[task] if published is None else published
    cols = COLUMNS[task]
    series = [(r.model, r.scores, False) for r in published] + [
        (f"ours: {r.label}", r.scores, True) for r in runs
    ]
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(cols) + 0.3 * len(series)), 4.5))
    cmap = plt.get_cmap("tab20")
    for i, (name, scores, ours) in enumerate(series):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(cols))]
        vals = [scores.get(c) for c in cols]
        keep = [(x, v) for x, v in zip(xs, vals, strict=True) if v is not None]
        if not keep:
            continue
        ax.bar(
            [x for x, _ in keep],
            [v for _, v in keep],
            width,
            label=name,
            color=cmap(i % 20),
            hatch="//" if ours else None,
            edgecolor="black" if ours else None,
        )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylabel(UNITS[task])
    ax.set_title(f"{task}: ours vs published")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    charts: dict[str, Path]


def build_report(
    run_dirs: Sequence[Path], out_dir: Path, *, labels: Sequence[str] | None = None
) -> ReportFiles:
    """``report.md`` and one ``<task>.png`` per task found among the runs (published rows always included)."""
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    runs = [load_run(d, labels[i] if labels else None) for i, d in enumerate(run_dirs)]
    tasks = [t for t in PUBLISHED if any(r.task == t for r in runs)] or ["referring"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# Evaluation report", ""]
    charts = {}
    for task in tasks:
        mine = [r for r in runs if r.task == task]
        parts.append(report_markdown(task, mine))
        charts[task] = bar_chart(task, mine, out_dir / f"{task}.png")
        parts.append(f"![{task}]({task}.png)\n")
    md = out_dir / "report.md"
    md.write_text("\n".join(parts), encoding="utf-8")
    return ReportFiles(md, charts)
