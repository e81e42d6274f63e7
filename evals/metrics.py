"""Caption metrics (pycocoevalcap) for referring descriptions, with the bookkeeping the original hid.

One :class:`CaptionScorer` per process holds the METEOR JVM (~9 s to start); :func:`get_scorer` returns the
shared one. Everything is computed in one call: :func:`score_captions` tokenizes references and predictions in
a single PTB tokenizer run, then computes BLEU-1..4, METEOR, ROUGE_L, CIDEr and, only when its Stanford CoreNLP
jars are installed, SPICE. A metric that cannot be computed is reported in ``unavailable`` with the reason,
never as 0.

The original protocol deduplicated by ``video_name`` and silently kept only predictions with
``5 < len(pred) < 300`` characters. Here dedup counts what it drops, and the length filter is an explicit option
that reports how many predictions it removed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import shutil
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRIC_NAMES = ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
ORIGINAL_MIN_CHARS = 5
ORIGINAL_MAX_CHARS = 300
SPICE_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


@dataclass(frozen=True)
class CaptionPair:
    """One prediction and its reference(s)."""

    key: str
    prediction: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class LengthFilter:
    """The original's filter: keep a prediction only if ``min_chars < len(pred) < max_chars``."""

    min_chars: int = ORIGINAL_MIN_CHARS
    max_chars: int = ORIGINAL_MAX_CHARS

    def keeps(self, text: str) -> bool:
        return self.min_chars < len(text) < self.max_chars


@dataclass(frozen=True)
class CaptionCounts:
    records: int
    """Rows given, before dedup."""
    duplicates: int
    """Rows dropped because their key (``video_name``) was already seen; the first is kept."""
    empty_predictions: int
    """After dedup: predictions that are empty or whitespace only."""
    overlong_predictions: int
    """After dedup: predictions of ``>= ORIGINAL_MAX_CHARS`` characters."""
    length_filter_applied: bool
    length_filter_dropped: int
    scored: int


@dataclass(frozen=True)
class CaptionMetrics:
    """Scores in [0, 1] (CIDEr may exceed 1); ``unavailable`` maps a metric to the reason it is missing."""

    scores: dict[str, float]
    unavailable: dict[str, str]
    counts: CaptionCounts
    length_filter: dict[str, int] | None = None
    per_item: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self, *, with_per_item: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_per_item:
            out.pop("per_item")
        return out


def spice_unavailable_reason() -> str | None:
    """``None`` when SPICE can run offline, else why not. Never triggers pycocoevalcap's jar download."""
    spec = importlib.util.find_spec("pycocoevalcap.spice.spice")
    if spec is None or spec.origin is None:
        return "pycocoevalcap.spice is not installed"
    spice_dir = Path(spec.origin).parent
    if not (spice_dir / "spice-1.0.jar").exists():
        return f"spice-1.0.jar is missing from {spice_dir}"
    missing = [j for j in SPICE_CORENLP_JARS if not (spice_dir / "lib" / j).exists()]
    if missing:
        return (
            f"Stanford CoreNLP jars {missing} are missing from {spice_dir / 'lib'}; pycocoevalcap would download "
            "them on first use, which is not done offline. Copy them there to enable SPICE."
        )
    if shutil.which("java") is None:
        return "java is not on PATH"
    return None


def dedup_by_key(rows: Sequence[dict[str, Any]], key: str = "video_name") -> tuple[list[dict[str, Any]], int]:
    """Keep the first row per ``row[key]``; return the kept rows and the number dropped."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    for row in rows:
        if key not in row:
            raise KeyError(f"row {row!r} has no {key!r} field; fields are {sorted(row)}")
        k = str(row[key])
        if k in seen:
            continue
        seen.add(k)
        kept.append(row)
    return kept, len(rows) - len(kept)


class CaptionScorer:
    """Holds the pycocoevalcap scorers; METEOR's JVM starts on first use and is reused by every call."""

    def __init__(self, *, with_spice: bool | None = None) -> None:
        reason = spice_unavailable_reason()
        if with_spice and reason:
            raise RuntimeError(f"SPICE was requested but is unavailable: {reason}")
        self._spice_reason = reason if with_spice is not False else "disabled by the caller"
        self._meteor: Any = None
        self._lock = threading.Lock()

    def _get_meteor(self) -> Any:
        if self._meteor is None:
            from pycocoevalcap.meteor.meteor import Meteor

            logger.info("starting the METEOR JVM")
            self._meteor = Meteor()
        return self._meteor

    def close(self) -> None:
        """Stop the METEOR JVM (it is restarted on the next call)."""
        with self._lock:
            if self._meteor is not None:
                proc = self._meteor.meteor_p
                if proc.stdin:
                    proc.stdin.close()
                proc.kill()
                proc.wait()
                self._meteor = None

    def score(
        self, pairs: Sequence[CaptionPair]
    ) -> tuple[dict[str, float], dict[str, str], dict[str, dict[str, float]]]:
        """Corpus scores, unavailable metrics with reasons, and per-item scores (by key)."""
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        if not pairs:
            raise ValueError("no captions to score")
        keys = [p.key for p in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("caption keys must be unique; deduplicate first")
        if any(not p.references for p in pairs):
            bad = [p.key for p in pairs if not p.references][:5]
            raise ValueError(f"every prediction needs at least one reference; none for {bad}")
        # One tokenizer JVM run for references and predictions: distinct keys in one dict.
        raw: dict[str, list[dict[str, str]]] = {}
        for n, p in enumerate(pairs):
            raw[f"g{n}"] = [{"caption": r} for r in p.references]
            raw[f"r{n}"] = [{"caption": p.prediction}]
        with self._lock, contextlib.redirect_stdout(io.StringIO()) as captured:
            tok = PTBTokenizer().tokenize(raw)
            gts = {n: tok[f"g{n}"] for n in range(len(pairs))}
            res = {n: tok[f"r{n}"] for n in range(len(pairs))}
            scores: dict[str, float] = {}
            per_item: dict[str, list[float]] = {}
            bleu, bleu_items = Bleu(4).compute_score(gts, res)
            for i in range(4):
                scores[f"BLEU_{i + 1}"] = float(bleu[i])
                per_item[f"BLEU_{i + 1}"] = [float(v) for v in bleu_items[i]]
            for name, scorer in (("METEOR", self._get_meteor()), ("ROUGE_L", Rouge()), ("CIDEr", Cider())):
                value, items = scorer.compute_score(gts, res)
                scores[name] = float(value)
                per_item[name] = [float(v) for v in items]
            unavailable: dict[str, str] = {}
            if self._spice_reason is None:
                from pycocoevalcap.spice.spice import Spice

                value, items = Spice().compute_score(gts, res)
                scores["SPICE"] = float(value)
                per_item["SPICE"] = [float(it["All"]["f"]) for it in items]
            else:
                unavailable["SPICE"] = self._spice_reason
        if captured.getvalue().strip():
            logger.debug("pycocoevalcap output: %s", captured.getvalue().strip())
        by_key = {p.key: {m: per_item[m][n] for m in per_item} for n, p in enumerate(pairs)}
        return scores, unavailable, by_key


@functools.lru_cache(maxsize=1)
def get_scorer() -> CaptionScorer:
    """The process-wide scorer (one METEOR JVM per process)."""
    return CaptionScorer()


def score_captions(
    rows: Sequence[dict[str, Any]],
    *,
    scorer: CaptionScorer | None = None,
    key: str = "video_name",
    prediction_field: str = "pred",
    reference_field: str = "groundtruth",
    length_filter: LengthFilter | None = None,
    with_per_item: bool = False,
) -> CaptionMetrics:
    """Score prediction rows (``{video_name, groundtruth, pred}``) with all caption metrics in one call.

    Rows are deduplicated by ``key`` (first kept, duplicates counted). Empty and over-long predictions are
    counted; they are scored as they are unless ``length_filter`` is given, which drops predictions outside
    its bounds and reports how many. ``reference_field`` may hold a string or a list of strings.
    """
    scorer = scorer or get_scorer()
    kept, duplicates = dedup_by_key(rows, key)
    empty = sum(1 for r in kept if not str(r.get(prediction_field) or "").strip())
    overlong = sum(1 for r in kept if len(str(r.get(prediction_field) or "")) >= ORIGINAL_MAX_CHARS)
    dropped = 0
    if length_filter is not None:
        before = len(kept)
        kept = [r for r in kept if length_filter.keeps(str(r.get(prediction_field) or ""))]
        dropped = before - len(kept)
        logger.info("length filter %s dropped %d of %d predictions", length_filter, dropped, before)
    pairs = []
    for r in kept:
        refs = r.get(reference_field)
        if refs is None:
            raise KeyError(f"row {r.get(key)!r} has no {reference_field!r} field")
        refs_t = (refs,) if isinstance(refs, str) else tuple(str(x) for x in refs)
        pairs.append(
            CaptionPair(key=str(r[key]), prediction=str(r.get(prediction_field) or ""), references=refs_t)
        )
    counts = CaptionCounts(
        records=len(rows),
        duplicates=duplicates,
        empty_predictions=empty,
        overlong_predictions=overlong,
        length_filter_applied=length_filter is not None,
        length_filter_dropped=dropped,
        scored=len(pairs),
    )
    if not pairs:
        reason = "no predictions left to score"
        return CaptionMetrics(
            scores={},
            unavailable=dict.fromkeys(METRIC_NAMES, reason),
            counts=counts,
            length_filter=asdict(length_filter) if length_filter else None,
        )
    scores, unavailable, per_item = scorer.score(pairs)
    return CaptionMetrics(
        scores=scores,
        unavailable=unavailable,
        counts=counts,
        length_filter=asdict(length_filter) if length_filter else None,
        per_item=per_item if with_per_item else {},
    )


def metrics_markdown(metrics: CaptionMetrics, *, title: str = "Caption metrics") -> str:
    """A markdown table of the scores (×100, as papers report them) and the counts."""
    head = "| " + " | ".join(METRIC_NAMES) + " |"
    sep = "|" + "---|" * len(METRIC_NAMES)
    cells = []
    for m in METRIC_NAMES:
        if m in metrics.scores:
            cells.append(f"{100 * metrics.scores[m]:.1f}")
        else:
            cells.append("n/a")
    lines = [f"### {title}", "", "Scores ×100.", "", head, sep, "| " + " | ".join(cells) + " |", ""]
    for m, reason in metrics.unavailable.items():
        lines.append(f"- {m} unavailable: {reason}")
    c = metrics.counts
    lines += [
        f"- records {c.records}, duplicates dropped {c.duplicates}, scored {c.scored}",
        f"- empty predictions {c.empty_predictions}, over-long (>= {ORIGINAL_MAX_CHARS} chars) {c.overlong_predictions}",
        (
            f"- length filter {metrics.length_filter}: dropped {c.length_filter_dropped}"
            if c.length_filter_applied
            else "- no length filter (all predictions scored)"
        ),
    ]
    return "\n".join(lines) + "\n"
