"""VideoRefer-Bench-D: descriptions in the benchmark's format, and an optional LLM judge.

Descriptions are written as JSONL rows ``{id, video, caption, pred, mode}`` (the judge's input format). The judge
is any LangChain chat model; it scores four dimensions from 0 to 5 (spec §4.5). Our own judge prompt states the
same task in our words. Replies are parsed robustly (decorated names such as ``**Subject Correspondence**``,
``4/5``); every record ends as ``ok`` (4 scores), ``partial``, ``failed`` (no score parsed) or ``error`` (the judge
raised after retries), and those counts are reported: nothing is dropped silently. Aggregation as the original:
per dimension, the mean over records that have it; average = mean of the four dimension means.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.protocol import Predictor
from evals.runner import RunSummary, Shard, merge_shards, read_jsonl, run_resumable, shard_output_path
from evals.videorefer.data import BenchDRecord, bench_d_record, load_bench_d

if TYPE_CHECKING:
    from evals.tasks import ScoreOptions

logger = logging.getLogger(__name__)

PREDICTIONS_STEM = "predictions"
JUDGEMENTS_STEM = "judgements"
DIMENSIONS = (
    "Subject Correspondence",
    "Appearance Description",
    "Temporal Description",
    "Hallucination Detection",
)
_DIM_KEYWORDS = {"subject": 0, "appearance": 1, "temporal": 2, "hallucination": 3}
_SCORE_LINE = re.compile(
    r"^\s*(?:\d+\s*[.)]\s*)?[*_#\s]*([A-Za-z][A-Za-z \-]*?)[*_\s]*:\s*[*_\s]*(\d+(?:\.\d+)?)\s*(?:/\s*5)?",
    re.MULTILINE,
)

JUDGE_SYSTEM_PROMPT = (
    "You evaluate how factually accurate a predicted description of one object in a video is, compared with "
    "a correct reference description of the same object.\n"
    "Rate the predicted description on four dimensions, each with an integer from 0 (no relevance) to 5 "
    "(perfect match):\n"
    "1. Subject Correspondence: does the described subject match the subject of the reference?\n"
    "2. Appearance Description: are colour, shape, size, texture and other visual attributes right?\n"
    "3. Temporal Description: do the described motions and actions match the real ones over time?\n"
    "4. Hallucination Detection: is the prediction free of facts, actions or elements that do not exist "
    "(5 = none invented)?\n"
    "Reply exactly in this form, one short explanation per dimension:\n"
    "1. Subject Correspondence: <score>\nExplanation: <text>\n"
    "2. Appearance Description: <score>\nExplanation: <text>\n"
    "3. Temporal Description: <score>\nExplanation: <text>\n"
    "4. Hallucination Detection: <score>\nExplanation: <text>"
)


def judge_user_message(reference: str, prediction: str) -> str:
    return f"##Correct answer: {reference}\n##Predicted answer: {prediction}\n"


def parse_judge_reply(reply: str) -> tuple[dict[str, float], list[str]]:
    """Scores found in a judge reply (canonical dimension names) and the problems met (out of range, ...)."""
    scores: dict[str, float] = {}
    problems: list[str] = []
    for m in _SCORE_LINE.finditer(reply or ""):
        name = m.group(1).strip().lower()
        idx = next((i for kw, i in _DIM_KEYWORDS.items() if kw in name), None)
        if idx is None:
            continue
        dim = DIMENSIONS[idx]
        value = float(m.group(2))
        if not 0.0 <= value <= 5.0:
            problems.append(f"{dim}: {value} is outside [0, 5]")
            continue
        scores.setdefault(dim, value)
    return scores, problems


def parse_status(scores: dict[str, float]) -> str:
    return "ok" if len(scores) == len(DIMENSIONS) else ("partial" if scores else "failed")


def run_bench_d(
    records: Sequence[BenchDRecord],
    predictor: Predictor,
    video_root: Path,
    out_dir: Path,
    *,
    mode: str = "multi",
    shard: Shard = Shard(),
    batch_size: int = 4,
) -> RunSummary:
    """Describe each Bench-D object; rows ``{id, video, caption, pred, mode}`` (resumable, sharded)."""

    def predict(batch: list[BenchDRecord]) -> list[dict[str, Any]]:
        recs = [bench_d_record(r, video_root, mode) for r in batch]
        preds = predictor.predict(recs)
        if len(preds) != len(recs):
            raise ValueError(f"predictor returned {len(preds)} answers for {len(recs)} records")
        return [
            {"video": r.video, "caption": r.caption, "pred": str(p), "mode": mode}
            for r, p in zip(batch, preds, strict=True)
        ]

    mine = shard.select(records)
    for r in mine:
        bench_d_record(r, video_root, mode)  # fail fast on missing clips, naming them
    return run_resumable(
        mine,
        item_id=lambda r: str(r.id),
        predict_batch=predict,
        output=shard_output_path(Path(out_dir), PREDICTIONS_STEM, shard),
        batch_size=batch_size,
    )


def merge_bench_d(out_dir: Path, num_shards: int, records: Sequence[BenchDRecord] | None = None) -> Path:
    order = [str(r.id) for r in records] if records is not None else None
    return merge_shards(Path(out_dir), PREDICTIONS_STEM, num_shards, order=order).output


def _reply_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def judge_model_name(chat_model: Any) -> str:
    for attr in ("model_name", "model", "deployment_name"):
        value = getattr(chat_model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(chat_model).__name__


def judge_predictions(
    out_dir: Path, chat_model: Any, *, max_retries: int = 5, batch_size: int = 8
) -> RunSummary:
    """Judge ``out_dir/predictions.jsonl`` into ``out_dir/judgements.jsonl`` (resumable).

    ``chat_model`` is any LangChain chat model (``invoke(messages)``); sampling settings are its own.
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    out_dir = Path(out_dir)
    rows = read_jsonl(out_dir / f"{PREDICTIONS_STEM}.jsonl")
    if not rows:
        raise FileNotFoundError(f"no predictions in {out_dir}; run (and merge) first")

    def judge_one(row: dict[str, Any]) -> dict[str, Any]:
        reference = row.get("caption", row.get("Answer"))
        messages = [
            SystemMessage(JUDGE_SYSTEM_PROMPT),
            HumanMessage(judge_user_message(str(reference), str(row["pred"]))),
        ]
        errors: list[str] = []
        for _ in range(max_retries):
            try:
                reply = _reply_text(chat_model.invoke(messages))
            except Exception as exc:  # noqa: BLE001 - the judge is remote/any model: retry, then record the error
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            scores, problems = parse_judge_reply(reply)
            return {
                **_base(row),
                "judge_reply": reply,
                "scores": scores,
                "parse": parse_status(scores),
                "problems": problems,
            }
        return {**_base(row), "judge_reply": None, "scores": {}, "parse": "error", "problems": errors}

    def _base(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("video", "caption", "pred") if k in row}

    return run_resumable(
        rows,
        item_id=lambda r: str(r["id"]),
        predict_batch=lambda batch: [judge_one(r) for r in batch],
        output=out_dir / f"{JUDGEMENTS_STEM}.jsonl",
        batch_size=batch_size,
    )


@dataclass(frozen=True)
class BenchDScores:
    dimension_means: dict[str, float | None]
    """Mean per dimension over the records that have that score (``None`` if none has)."""
    average: float | None
    """Mean of the four dimension means (``None`` unless all four exist)."""
    records: int
    ok: int
    partial: int
    failed: int
    error: int


def score_bench_d(rows: Sequence[dict[str, Any]]) -> BenchDScores:
    sums = dict.fromkeys(DIMENSIONS, 0.0)
    counts = dict.fromkeys(DIMENSIONS, 0)
    status = {"ok": 0, "partial": 0, "failed": 0, "error": 0}
    for row in rows:
        status[row.get("parse", "failed")] += 1
        for dim, value in (row.get("scores") or {}).items():
            if dim in sums:
                sums[dim] += float(value)
                counts[dim] += 1
    means: dict[str, float | None] = {d: (sums[d] / counts[d] if counts[d] else None) for d in DIMENSIONS}
    values = [v for v in means.values() if v is not None]
    average = sum(values) / len(values) if len(values) == len(DIMENSIONS) else None
    return BenchDScores(means, average, len(rows), **status)


def score_bench_d_run(out_dir: Path, *, judge_model: str) -> BenchDScores:
    """Score ``out_dir/judgements.jsonl``; write ``metrics.json`` and ``metrics.md`` (with the judge model)."""
    out_dir = Path(out_dir)
    rows = read_jsonl(out_dir / f"{JUDGEMENTS_STEM}.jsonl")
    if not rows:
        raise FileNotFoundError(f"no judgements in {out_dir}; run the judge first")
    scores = score_bench_d(rows)
    payload = {"task": "videorefer-d", "judge_model": judge_model, **asdict(scores)}
    (out_dir / "metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    cells = [f"{v:.2f}" if v is not None else "n/a" for v in scores.dimension_means.values()]
    avg = f"{scores.average:.2f}" if scores.average is not None else "n/a"
    md = (
        f"Judge: {judge_model}. Scores 0–5.\n\n| SC | AD | TD | HD | Avg |\n|---|---|---|---|---|\n"
        f"| {' | '.join(cells)} | {avg} |\n\n"
        f"- records {scores.records}: parsed {scores.ok}, partial {scores.partial}, failed to parse "
        f"{scores.failed}, judge errors {scores.error}\n"
    )
    (out_dir / "metrics.md").write_text(md, encoding="utf-8")
    return scores


def score_summary(out_dir: Path, options: ScoreOptions) -> dict[str, Any]:
    """The task registry's scorer (:mod:`evals.tasks`): :func:`score_bench_d_run` (judge ``unknown`` when not
    given)."""
    return asdict(score_bench_d_run(out_dir, judge_model=options.judge_model or "unknown"))


def record_ids(data: Path, video_root: Path | None = None) -> list[str]:
    """Record ids of ``VideoRefer-Bench-D.json`` in its order."""
    return [str(r.id) for r in load_bench_d(data)[0]]


__all__ = [
    "DIMENSIONS",
    "JUDGE_SYSTEM_PROMPT",
    "BenchDScores",
    "judge_predictions",
    "judge_user_message",
    "merge_bench_d",
    "parse_judge_reply",
    "record_ids",
    "run_bench_d",
    "score_bench_d",
    "score_bench_d_run",
    "score_summary",
]
