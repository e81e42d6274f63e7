"""VideoRefer-Bench-Q: letter extraction, accuracy, and a runner with pluggable describer and answerer.

Artemis cannot answer multiple-choice questions itself (its published Bench-Q score does not exist). The runner
therefore asks a :class:`~evals.protocol.Predictor` (Artemis) for one description per referred object, in
``<region>`` order, and hands them with the question and options to an :class:`Answerer` (e.g. the agent),
which returns a letter and a reasoning trace. Any number this produces is a new number, not a reproduction.

Scoring follows the official rules (spec §3.5): gold letter = first ``(X)`` in ``Answer``; predicted letter =
first ``(X)``, else first ``X)``, else the first character once ``.`` are removed; compared case-insensitively;
overall = total correct / total (micro average). Decisions the original left open: an empty answer has no letter
(wrong, counted) instead of crashing. A ``lenient`` rule set also reads "The answer is b", "B." and option text;
both are reported, the official one first.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from artemis_model.types import Box
from evals.protocol import EvalRecord, Predictor
from evals.runner import RunSummary, Shard, merge_shards, read_jsonl, run_resumable, shard_output_path
from evals.videorefer.data import REGION, BenchQRecord, bench_q_object_records, list_frames, load_bench_q

if TYPE_CHECKING:
    from evals.tasks import ScoreOptions

logger = logging.getLogger(__name__)

RULES = ("official", "lenient")
PREDICTIONS_STEM = "predictions"
_PAREN = re.compile(r"\(([A-Z])\)")
_CLOSE = re.compile(r"([A-Z])\)")
_LEAD = re.compile(r"^\s*\(?([A-Za-z])\s*(?:[.):,]|$)")
_ANSWER_IS = re.compile(
    r"\b(?:answer|option|choice)\s*(?:is|:)?\s*(?:option\s*)?:?\s*\(?([A-Za-z])\b", re.IGNORECASE
)
_LABELLED_REGION = re.compile(r"(<object\d+>)?\s*" + re.escape(REGION))
_OPTION = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.DOTALL)


def gold_letter(answer: str) -> str:
    """The first ``(X)`` of the ``Answer`` field."""
    m = _PAREN.search(answer)
    if m is None:
        raise ValueError(f"Answer {answer!r} has no '(X)' option letter")
    return m.group(1)


def option_letters(options: Sequence[str]) -> dict[str, str]:
    """``{"A": "text of A", ...}`` from options written ``"(A) text"``."""
    out = {}
    for opt in options:
        m = _OPTION.match(opt.strip())
        if m is None:
            raise ValueError(f"option {opt!r} is not written '(X) text'")
        out[m.group(1)] = m.group(2).strip()
    return out


def extract_letter(pred: str, *, rules: str = "official", options: Sequence[str] | None = None) -> str | None:
    """The predicted option letter (upper case) or ``None`` when there is none.

    ``official``: ``(X)``, else ``X)``, else the first character after removing ``.`` (so "The answer is b"
    gives ``T``: wrong, as in the original). ``lenient`` (letters restricted to ``options`` when given):
    ``(x)``, a leading ``x`` / ``x.`` / ``x)``, "answer is x" / "option x", then an exact option text.
    """
    if rules not in RULES:
        raise ValueError(f"rules={rules!r}; allowed: {RULES}")
    text = (pred or "").strip()
    if rules == "official":
        for pattern in (_PAREN, _CLOSE):
            m = pattern.search(text)
            if m:
                return m.group(1)
        stripped = text.replace(".", "").strip()
        return stripped[0].upper() if stripped else None
    valid = option_letters(options) if options else None

    def ok(letter: str) -> str | None:
        letter = letter.upper()
        return letter if valid is None or letter in valid else None

    for pattern in (re.compile(r"\(([A-Za-z])\)"), _LEAD, _ANSWER_IS):
        for m in pattern.finditer(text):
            if (letter := ok(m.group(1))) is not None:
                return letter
    if valid:
        norm = text.rstrip(".").strip().lower()
        for letter, opt_text in valid.items():
            if norm and norm == opt_text.rstrip(".").strip().lower():
                return letter
    return None


@dataclass(frozen=True)
class TypeScore:
    correct: int
    total: int
    accuracy: float


@dataclass(frozen=True)
class BenchQScores:
    rules: str
    per_type: dict[str, TypeScore]
    correct: int
    total: int
    overall: float
    """Total correct / total questions (micro average), as the official script."""
    no_letter: int
    failed: int
    """Rows whose describer or answerer raised (recorded, scored wrong)."""


def score_bench_q(rows: Sequence[dict[str, Any]], *, rules: str = "official") -> BenchQScores:
    """Per-type and overall accuracy of rows ``{Answer, pred, type}`` (+ ``options`` for lenient rules)."""
    if not rows:
        raise ValueError("no Bench-Q rows to score")
    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    no_letter = failed = 0
    for row in rows:
        qtype = str(row["type"])
        total[qtype] = total.get(qtype, 0) + 1
        failed += 1 if row.get("error") else 0
        letter = extract_letter(str(row.get("pred") or ""), rules=rules, options=row.get("options"))
        if letter is None:
            no_letter += 1
            continue
        if letter.upper() == gold_letter(str(row["Answer"])).upper():
            correct[qtype] = correct.get(qtype, 0) + 1
    per_type = {t: TypeScore(correct.get(t, 0), n, correct.get(t, 0) / n) for t, n in total.items()}
    n_correct, n_total = sum(correct.values()), sum(total.values())
    return BenchQScores(rules, per_type, n_correct, n_total, n_correct / n_total, no_letter, failed)


@dataclass(frozen=True)
class ObjectDescription:
    region: int
    """0-based index of the ``<region>`` (= ``annotation`` index)."""
    label: str | None
    """The ``<objectN>`` text label before that ``<region>``, if any."""
    text: str
    frame_idx: int | None = None
    """Frame of the key box given to the describer."""
    box: Box | None = None
    """The key box (xyxy pixels on ``frame_idx``)."""
    span: tuple[int, int] | None = None
    """First and last frame of the box track given to the describer."""


@dataclass(frozen=True)
class AnswerResult:
    letter: str | None
    """The chosen option letter, or ``None`` (then ``text`` is parsed with the letter rules)."""
    text: str
    trace: tuple[str, ...] = ()


@runtime_checkable
class Answerer(Protocol):
    """Chooses an option from per-object descriptions. ``question`` has ``[region i]`` (1-based) in place of
    the i-th ``<region>``; the ``<objectN>`` labels stay as text."""

    def answer(
        self, question: str, options: Sequence[str], descriptions: Sequence[ObjectDescription]
    ) -> AnswerResult: ...


def answerer_name(answerer: Answerer) -> str:
    """The answerer's ``name`` attribute (written into every row), else its class name."""
    name = getattr(answerer, "name", None)
    return name if isinstance(name, str) and name else type(answerer).__name__


def object_description(index: int, label: str | None, text: str, record: EvalRecord) -> ObjectDescription:
    frames = [f for f, _ in record.track]
    span = (frames[0], frames[-1]) if frames else (record.key_frame_idx, record.key_frame_idx)
    return ObjectDescription(index, label, text, record.key_frame_idx, record.key_box, span)


def region_labels(question: str) -> list[str | None]:
    """The ``<objectN>`` label before each ``<region>`` (``None`` for a bare one), left to right."""
    return [m.group(1) for m in _LABELLED_REGION.finditer(question)]


def render_question(question: str) -> str:
    """Replace the i-th ``<region>`` by ``[region i]`` (1-based), keeping ``<objectN>`` labels."""
    counter = iter(range(1, question.count(REGION) + 1))
    return re.sub(re.escape(REGION), lambda _: f"[region {next(counter)}]", question)


def _answer_rows(
    batch: list[BenchQRecord], describer: Predictor, answerer: Answerer, frames_root: Path, mode: str
) -> list[dict[str, Any]]:
    per_record = [bench_q_object_records(rec, frames_root, mode) for rec in batch]
    flat = [r for recs in per_record for r in recs]
    texts = describer.predict(flat) if flat else []
    if len(texts) != len(flat):
        raise ValueError(f"describer returned {len(texts)} descriptions for {len(flat)} objects")
    rows = []
    pos = 0
    for rec, recs in zip(batch, per_record, strict=True):
        labels = region_labels(rec.question)
        descs = [object_description(i, labels[i], str(texts[pos + i]), recs[i]) for i in range(len(recs))]
        pos += len(recs)
        trace = [f"region {d.region + 1}{f' {d.label}' if d.label else ''}: {d.text}" for d in descs]
        row: dict[str, Any] = {
            "video": rec.video,
            "type": rec.type,
            "Answer": rec.answer,
            "options": list(rec.options),
            "mode": mode,
            "answerer": answerer_name(answerer),
            "descriptions": [asdict(d) for d in descs],
        }
        try:
            result = answerer.answer(render_question(rec.question), rec.options, descs)
        except Exception as exc:  # noqa: BLE001 - a failed answer is recorded and scored wrong, never defaulted
            logger.warning("Bench-Q %s: the answerer failed: %s", rec.id, exc)
            row.update(pred="", raw="", trace=trace, error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
            continue
        pred = f"({result.letter.upper()})" if result.letter else result.text
        row.update(pred=pred, raw=result.text, trace=trace + list(result.trace))
        rows.append(row)
    return rows


def run_bench_q(
    records: Sequence[BenchQRecord],
    describer: Predictor,
    answerer: Answerer,
    frames_root: Path,
    out_dir: Path,
    *,
    mode: str = "single",
    shard: Shard = Shard(),
    batch_size: int = 4,
) -> RunSummary:
    """Describe each referred object, answer, and append rows to the shard's ``predictions`` file (resumable)."""
    mine = shard.select(records)
    for video in sorted({r.video for r in mine}):
        list_frames(frames_root, video)  # fail fast, naming the missing folder
    return run_resumable(
        mine,
        item_id=lambda r: str(r.id),
        predict_batch=lambda batch: _answer_rows(batch, describer, answerer, Path(frames_root), mode),
        output=shard_output_path(Path(out_dir), PREDICTIONS_STEM, shard),
        batch_size=batch_size,
    )


def merge_bench_q(out_dir: Path, num_shards: int, records: Sequence[BenchQRecord] | None = None) -> Path:
    order = [str(r.id) for r in records] if records is not None else None
    return merge_shards(Path(out_dir), PREDICTIONS_STEM, num_shards, order=order).output


def bench_q_markdown(scores: Sequence[BenchQScores]) -> str:
    types = sorted({t for s in scores for t in s.per_type})
    lines = ["| rules | " + " | ".join(types) + " | overall | no letter | failed |"]
    lines.append("|" + "---|" * (len(types) + 4))
    for s in scores:
        cells = [f"{100 * s.per_type[t].accuracy:.1f}" if t in s.per_type else "–" for t in types]
        lines.append(
            f"| {s.rules} | " + " | ".join(cells) + f" | {100 * s.overall:.1f} | {s.no_letter} | {s.failed} |"
        )
    return "Accuracy %, overall = total correct / total.\n\n" + "\n".join(lines) + "\n"


def score_bench_q_run(out_dir: Path) -> dict[str, BenchQScores]:
    """Score ``out_dir/predictions.jsonl`` with both rule sets; write ``metrics.json`` and ``metrics.md``."""
    out_dir = Path(out_dir)
    rows = read_jsonl(out_dir / f"{PREDICTIONS_STEM}.jsonl")
    if not rows:
        raise FileNotFoundError(f"no predictions in {out_dir}; run (and merge) first")
    scores = {rules: score_bench_q(rows, rules=rules) for rules in RULES}
    answerers = sorted({str(r.get("answerer", "unknown")) for r in rows})
    payload = {
        "task": "videorefer-q",
        "rows": len(rows),
        "answerers": answerers,
        **{k: asdict(v) for k, v in scores.items()},
    }
    (out_dir / "metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    header = f"Answerer: {', '.join(answerers)}.\n\n"
    (out_dir / "metrics.md").write_text(header + bench_q_markdown(list(scores.values())), encoding="utf-8")
    return scores


def score_summary(out_dir: Path, options: ScoreOptions) -> dict[str, Any]:
    """The task registry's scorer (:mod:`evals.tasks`): overall accuracy and total per rule set."""
    scores = score_bench_q_run(out_dir)
    return {k: {"overall": v.overall, "total": v.total} for k, v in scores.items()}


def record_ids(data: Path, video_root: Path | None = None) -> list[str]:
    """Question ids of ``VideoRefer-Bench-Q.json`` in its order."""
    return [str(r.id) for r in load_bench_q(data)[0]]
