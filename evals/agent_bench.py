"""The agent benchmark on the synthetic world's complex-question set (template wording and held-out paraphrases).

Every question record (``synth.questions``) is one conversation: its turns are asked in order on one thread of
the agent (rule planner). A clarification the agent asks is answered by the next turn of the record (the
"the left one" turn of an ``ambiguous`` record); one asked on the last turn is left unanswered.

Per turn with a target set in its truth (describe, multi_target, comparison candidates, when, long_part):

* **target-set F1**: evidence targets matched one-to-one to the truth objects by the mean box IoU over the
  target's key frames (a frame where the object is absent counts 0) >= ``iou_threshold``;
* **attribute accuracy**: per matched target, colour and shape of what the describer said (the first ``refer``
  line of the evidence parsed with :func:`synth.parse_caption`, else the target label's words) == truth;
* **motion accuracy**: per matched target whose truth motions the turn holds, the primary motion
  (:func:`synth.motion_truth.primary_motion`) of the description == the truth's.

``comparison`` turns also score **comparison accuracy**: the evidence target the agent's ``compare`` step
names as the winner (its ``said`` holds a ``compare:`` line) is matched to the truth's faster object.

``ambiguous`` turns score **clarification**: asked (the agent interrupted) and handled (asked, and the
resolving turn found exactly the meant object). Clarifications on other turns are counted as spurious.
``temporal`` turns ("which object stops first?") and the event kinds (counting, sequential, relationship,
reasoning, future) have no target set (their answer is an object, a time, a count, an event or a wall, not a
set of described targets) and score none of the above.

Every turn scores **answer accuracy** (``TurnResult.answer_correct``, :func:`score_answer`):

* describe / multi_target: the targets are exactly the truth objects (F1 = 1) and every matched target's
  colour, shape and primary motion are right; ambiguous: the clarification is asked and its candidates are
  exactly the objects the phrase fits (each candidate's box on its frame matched to one of them);
* the other types from the structured answer ``Evidence.result`` (``tools.schemas.QueryResult``): the
  answer's object (``target_ids[0]``, its evidence target matched by key-frame IoU to the best truth object)
  for comparison, temporal and relationship (comparison without a result naming an object: the ``compare:``
  winner); the frame within ``WHEN_TOLERANCE_FRAMES`` for when; the part and the span the object is seen in it
  (first and last frame, each within the tolerance) for long_part; the count, also stated
  in the text, for counting; the event (and the frame, when given) for sequential; the cause and its wall or
  object for reasoning; the wall for future. A turn that needs a result and has none is wrong.

Each answer turn has a **chance** baseline (:func:`turn_chances`: a guesser that knows the set's answer
distribution but not the clip); tables give the accuracy, the chance, their ratio and the accuracy's 95 %
Wilson interval (a kind of a few dozen turns is a sample: its figure moves by several points between draws of
questions on the same clips).

Every metric is reported per set, per record kind and per question type (the truth type of each turn).

    result = run_agent_bench(load_bench(Path("data/synth")), describer=HeuristicDescriber())
    print(result.to_markdown())
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synth import MotionPhrase, concat_clips, generate_clip, parse_caption
from synth.build import CLIPS_PER_LONG_VIDEO, clip_seeds
from synth.grammar import NounPhrase
from synth.motion_truth import primary_motion
from synth.questions import build_question_set
from tools.video import ArrayVideo, VideoLike, load_video

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
SETS = ("template", "heldout")
COLOURS_SHAPES_FALLBACK = 2  # label words looked at when no caption parses: "<colour> <shape>"
CONFIDENCE = 0.95
"""Of the per-kind answer accuracy intervals (:func:`answer_interval`)."""
POINT_IOU = 0.1
"""A clarification's candidate box points at the object it overlaps most, when that IoU is at least this."""
WHEN_TOLERANCE_FRAMES = 1
"""A time answer (``when``, ``sequential``, ``long_part``) is right within this many frames of the truth (0.1 s at
10 fps: the agent reads times from tracks, frame by frame; 2 frames let a guess of the most common time
score over a third of a set's ``when`` questions)."""
ANSWER_TYPES = (
    "comparison",
    "temporal",
    "when",
    "long_part",
    "counting",
    "sequential",
    "relationship",
    "reasoning",
    "future",
)
"""Turn types scored from the structured answer (``Evidence.result``); describe and multi_target are scored from
the targets, ambiguous from the clarification."""
CATEGORICAL = {"counting": "count", "sequential": "event", "future": "side"}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class TruthObj:
    id: int
    colour: str
    shape: str
    boxes: tuple[Box | None, ...]


@dataclass
class BenchVideo:
    """One video of the benchmark: how the agent opens it and the truth of its objects."""

    name: str
    open: Callable[[], VideoLike]
    objects: dict[int, TruthObj]


@dataclass
class BenchData:
    videos: dict[str, BenchVideo]
    sets: dict[str, list[dict]]
    """``{"template": records, "heldout": records}`` as written by ``synth.questions.build_question_set``."""


@dataclass(frozen=True)
class TurnResult:
    record_id: str
    kind: str
    turn: int
    truth_type: str
    clarified: bool
    truths: int = 0
    predictions: int = 0
    matched: int = 0
    f1: float | None = None
    attr_correct: int = 0
    attr_total: int = 0
    motion_correct: int = 0
    motion_total: int = 0
    compare_correct: int = 0
    compare_total: int = 0
    answer: str = ""
    answer_correct: bool | None = None
    chance: float | None = None
    result: dict[str, Any] | None = None
    """The structured answer (``Evidence.result``) the turn was scored on, as JSON."""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    """The objects a clarification the turn asked offered (``agent.state.Candidate`` dicts)."""


@dataclass
class SetMetrics:
    records: int = 0
    turns: int = 0
    target_turns: int = 0
    target_f1: float = 0.0
    attribute_accuracy: float = 0.0
    attribute_targets: int = 0
    motion_accuracy: float = 0.0
    motion_targets: int = 0
    ambiguous_turns: int = 0
    clarification_asked: float = 0.0
    clarification_handled: float = 0.0
    spurious_clarifications: int = 0
    comparison_accuracy: float = 0.0
    comparison_turns: int = 0
    answer_turns: int = 0
    answer_accuracy: float = 0.0
    chance: float = 0.0
    """Mean chance baseline of the answer turns (see :func:`turn_chances`)."""
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per truth type of the turns (describe, multi_target, comparison, when, long_part, ambiguous, ...)."""


@dataclass
class BenchResult:
    describer: str
    iou_threshold: float
    sets: dict[str, SetMetrics]
    seconds: float
    turns: dict[str, list[TurnResult]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    def to_markdown(self) -> str:
        head = (
            "| set | records | answer turns | answer acc | chance | target turns | target F1 | attribute acc "
            "| motion acc | comparison acc | clar. asked | clar. handled | spurious clar. |"
        )
        lines = [
            f"Agent benchmark (describer: {self.describer}, IoU >= {self.iou_threshold}, "
            f"times within {WHEN_TOLERANCE_FRAMES} frames)",
            "",
            head,
        ]
        lines.append("|" + "---|" * 13)
        for name, m in self.sets.items():
            cmp = f"{m.comparison_accuracy:.3f} ({m.comparison_turns})" if m.comparison_turns else "-"
            lines.append(
                f"| {name} | {m.records} | {m.answer_turns} | {m.answer_accuracy:.3f} | {m.chance:.3f} "
                f"| {m.target_turns} | {m.target_f1:.3f} | {m.attribute_accuracy:.3f} "
                f"| {m.motion_accuracy:.3f} | {cmp} | {m.clarification_asked:.3f} ({m.ambiguous_turns}) "
                f"| {m.clarification_handled:.3f} | {m.spurious_clarifications} |"
            )
        for name, m in self.sets.items():
            for title, rows, first in (
                ("Per kind", m.by_kind, "kind"),
                ("Per question type", m.by_type, "type"),
            ):
                lines += [
                    "",
                    f"{title} ({name}):",
                    "",
                    f"| {first} | records | turns | answer acc | chance | ratio | {CONFIDENCE:.0%} CI "
                    "| target F1 (turns) | attribute acc | motion acc | comparison acc | spurious clar. |",
                    "|---|---|---|---|---|---|---|---|---|---|---|---|",
                ]
                lines += [f"| {key} | {_row(k)} |" for key, k in sorted(rows.items())]
        lines.append(f"\n{self.seconds:.1f} s")
        return "\n".join(lines)


def _row(k: dict[str, float]) -> str:
    attr = f"{k['attribute_accuracy']:.3f}" if k["attribute_targets"] else "-"
    motion = f"{k['motion_accuracy']:.3f}" if k["motion_targets"] else "-"
    f1 = f"{k['target_f1']:.3f} ({k['target_turns']:.0f})" if k["target_turns"] else "-"
    cmp = f"{k['comparison_accuracy']:.3f}" if k["comparison_turns"] else "-"
    answer = f"{k['answer_accuracy']:.3f}" if k["answer_turns"] else "-"
    chance = f"{k['chance']:.3f}" if k["answer_turns"] else "-"
    ratio = f"{k['ratio']:.1f}" if k["answer_turns"] and k["chance"] > 0 else "-"
    ci = f"{k['answer_ci_low']:.2f}–{k['answer_ci_high']:.2f}" if k["answer_turns"] else "-"
    return (
        f"{k['records']:.0f} | {k['turns']:.0f} | {answer} | {chance} | {ratio} | {ci} | {f1} | {attr} | {motion} "
        f"| {cmp} | {k['spurious_clarifications']:.0f}"
    )


# ----------------------------------------------------------------------------------------------- data


def _box(b: Sequence[float]) -> Box | None:
    return tuple(float(v) for v in b) if b else None  # type: ignore[return-value]


def _objects(truth_objects: Sequence[Any]) -> dict[int, TruthObj]:
    out = {}
    for o in truth_objects:
        if isinstance(o, dict):
            out[int(o["id"])] = TruthObj(
                int(o["id"]), o["colour"], o["shape"], tuple(_box(b) for b in o["boxes"])
            )
        else:
            out[o.id] = TruthObj(o.id, o.colour, o.shape, tuple(_box(b) if b else None for b in o.boxes))
    return out


def load_bench(data: str | Path, *, max_videos: int | None = None) -> BenchData:
    """A data set written by ``artemis data synth``: truth/, videos/, questions.json, questions_heldout.json.

    ``max_videos`` keeps the records of the first N videos (clips first, then long videos, as listed)."""
    data = Path(data)
    files = {"template": data / "questions.json", "heldout": data / "questions_heldout.json"}
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found; is {data} a data set written by `artemis data synth`?"
            )
    sets = {k: json.loads(p.read_text()) for k, p in files.items()}
    names = list(dict.fromkeys(r["video_name"] for r in sets["template"] + sets["heldout"]))
    if max_videos is not None:
        names = names[:max_videos]
    keep = set(names)
    sets = {k: [r for r in v if r["video_name"] in keep] for k, v in sets.items()}
    videos = {}
    for name in names:
        truth = json.loads((data / "truth" / f"{name}.json").read_text())
        path = data / "videos" / f"{name}.mp4"
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing for truth {name}")
        videos[name] = BenchVideo(name, lambda p=path: load_video(p), _objects(truth["objects"]))
    return BenchData(videos, sets)


def generated_bench(
    num_clips: int, seed: int, *, num_frames: int | None = None, kinds: tuple[str, ...] | None = None
) -> BenchData:
    """Clips generated in memory as ``artemis data synth --seed`` makes them (plus its long videos)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    clips = [generate_clip(cs, num_frames=num_frames) for cs in clip_seeds(seed, num_clips)]
    items = [(f"clip_{i:05d}", c) for i, c in enumerate(clips)]
    for k in range(num_clips // (2 * CLIPS_PER_LONG_VIDEO)):
        part = clips[k * CLIPS_PER_LONG_VIDEO : (k + 1) * CLIPS_PER_LONG_VIDEO]
        items.append((f"long_{k:05d}", concat_clips(part)))
    videos = {
        name: BenchVideo(
            name, lambda c=c, n=name: ArrayVideo(c.frames, fps=c.fps, name=n), _objects(c.objects)
        )
        for name, c in items
    }
    triples = [(name, name, c) for name, c in items]
    sets = {
        "template": build_question_set(triples, seed, kinds=kinds),
        "heldout": build_question_set(triples, seed + 1, heldout=True, kinds=kinds),
    }
    return BenchData(videos, sets)


# ---------------------------------------------------------------------------------------------- scoring


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def key_frame_iou(key_boxes: Sequence[tuple[int, Box]], obj: TruthObj) -> float:
    """Mean IoU over the key frames (0 on a frame where the object is absent or the frame is out of range)."""
    if not key_boxes:
        return 0.0
    total = 0.0
    for f, box in key_boxes:
        tb = obj.boxes[f] if 0 <= f < len(obj.boxes) else None
        total += _iou(tuple(box), tb) if tb is not None else 0.0
    return total / len(key_boxes)


def match_targets(
    key_boxes: Sequence[Sequence[tuple[int, Box]]], objects: Sequence[TruthObj], iou_threshold: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one matches ``(prediction index, object index)`` by key-frame IoU, best first."""
    pairs = sorted(
        ((key_frame_iou(kb, o), i, j) for i, kb in enumerate(key_boxes) for j, o in enumerate(objects)),
        reverse=True,
    )
    used_p, used_o, out = set(), set(), []
    for iou, i, j in pairs:
        if iou < iou_threshold or i in used_p or j in used_o:
            continue
        used_p.add(i)
        used_o.add(j)
        out.append((i, j))
    return out


def described(label: str, said: Sequence[str]) -> tuple[str | None, str | None, str | None]:
    """(colour, shape, primary motion) of what was said about a target: first parsable ``refer`` caption,
    else the label's words (then no motion)."""
    for line in said:
        tool, _, text = line.partition(": ")
        if tool != "refer":
            continue
        parsed = parse_caption(text)
        if parsed is not None:
            return parsed.colour, parsed.shape, primary_motion(parsed.motions)
    words = label.lower().replace(".", " ").split()
    parsed = parse_caption(f"the {' '.join(words[-COLOURS_SHAPES_FALLBACK:])} stays still")
    if parsed is not None:
        return parsed.colour, parsed.shape, None
    return None, None, None


def truth_targets(truth: dict) -> tuple[list[int], dict[int, str | None]]:
    """The object ids a turn is about and, where the turn holds them, their truth primary motions."""
    t = truth["type"]
    motions: dict[int, str | None] = {}
    if t == "describe":
        ids = [truth["object_id"]]
        motions[ids[0]] = _primary(truth["motions"])
    elif t == "multi_target":
        ids = list(truth["object_ids"])
        motions = {int(k): _primary(v) for k, v in truth["motions"].items()}
    elif t == "comparison":
        ids = list(truth["candidates"])
    elif t in ("when", "long_part"):
        ids = [truth["object_id"]]
    else:
        ids = []
    return [int(i) for i in ids], motions


def _primary(motions: Sequence[dict]) -> str | None:
    phrases = []
    for m in motions:
        other = m.get("other")
        phrases.append(
            MotionPhrase(**{**m, "other": NounPhrase(**other) if isinstance(other, dict) else other})
        )
    return primary_motion(phrases)


def score_turn(
    record: dict,
    turn_idx: int,
    evidence: Sequence[Any],
    video: BenchVideo,
    iou_threshold: float,
    *,
    result: Any | None = None,
    clarified: bool = False,
    candidates: Sequence[dict] = (),
    **kw: Any,
) -> TurnResult:
    """Score one turn from its evidence targets (``TargetEvidence``-like: target_id, label, key_boxes, said)
    and the structured answer ``result`` (``tools.schemas.QueryResult``-like) of the evidence."""
    truth = record["turns"][turn_idx]["truth"]
    ids, motions = truth_targets(truth)
    base = {
        "record_id": record["id"],
        "kind": record["kind"],
        "turn": turn_idx,
        "truth_type": truth["type"],
        "clarified": clarified,
        "candidates": [dict(c) for c in candidates],
    }
    if not ids:
        correct = score_answer(
            truth, result, evidence, video, iou_threshold, clarified=clarified, candidates=candidates
        )
        return TurnResult(
            **base, predictions=len(evidence), answer_correct=correct, result=_dump(result), **kw
        )
    objs = [video.objects[i] for i in ids if any(b is not None for b in video.objects[i].boxes)]
    matches = match_targets([list(e.key_boxes) for e in evidence], objs, iou_threshold)
    denom = len(evidence) + len(objs)
    f1 = 2 * len(matches) / denom if denom else 1.0
    ac = at = mc = mt = 0
    for i, j in matches:
        colour, shape, motion = described(evidence[i].label, evidence[i].said)
        o = objs[j]
        at += 1
        ac += int(colour == o.colour and shape == o.shape)
        if o.id in motions and motions[o.id] is not None:
            mt += 1
            mc += int(motion == motions[o.id])
    cc = ct = 0
    if truth["type"] == "comparison" and "answer_id" in truth:
        ct = 1
        winners = {i for i, e in enumerate(evidence) if any(line.startswith("compare:") for line in e.said)}
        cc = int(any(i in winners and objs[j].id == truth["answer_id"] for i, j in matches))
    if truth["type"] in ("describe", "multi_target"):
        correct: bool | None = f1 == 1.0 and ac == at and mc == mt
    elif truth["type"] == "comparison" and (result is None or not result.target_ids):
        correct = bool(cc) if ct else None  # no structured answer naming an object: the compare step's winner
    else:
        correct = score_answer(truth, result, evidence, video, iou_threshold)
    return TurnResult(
        **base, truths=len(objs), predictions=len(evidence), matched=len(matches), f1=f1,
        attr_correct=ac, attr_total=at, motion_correct=mc, motion_total=mt, compare_correct=cc,
        compare_total=ct, answer_correct=correct, result=_dump(result), **kw,
    )  # fmt: skip


def _dump(result: Any | None) -> dict[str, Any] | None:
    return result.model_dump(mode="json") if result is not None else None


def answer_object(
    result: Any, evidence: Sequence[Any], video: BenchVideo, iou_threshold: float
) -> int | None:
    """The truth object the answer names: its first ``target_ids`` entry's evidence target, matched to the
    video's object of best key-frame IoU (>= ``iou_threshold``); None when there is no such target or match."""
    if result is None or not result.target_ids:
        return None
    target = next((e for e in evidence if getattr(e, "target_id", None) == result.target_ids[0]), None)
    if target is None or not target.key_boxes:
        return None
    iou, oid = max((key_frame_iou(list(target.key_boxes), o), o.id) for o in video.objects.values())
    return oid if iou >= iou_threshold else None


def _near(frame: int | None, truth: int) -> bool:
    return frame is not None and abs(frame - truth) <= WHEN_TOLERANCE_FRAMES


def candidates_match(candidates: Sequence[dict], truth_ids: Sequence[int], video: BenchVideo) -> bool:
    """Whether a clarification's candidates (``{"frame_idx", "box", ...}``) point at exactly the objects
    ``truth_ids``, one each: the object a candidate points at is the one its box on its frame overlaps most
    (IoU >= ``POINT_IOU``; a candidate partly hidden behind another object shows only its visible part, so
    the targets' IoU threshold against the whole truth box would be too strict)."""
    pointed = []
    for c in candidates:
        f, box = int(c["frame_idx"]), tuple(c["box"])
        ious = [
            (_iou(box, o.boxes[f]), o.id)
            for o in video.objects.values()
            if 0 <= f < len(o.boxes) and o.boxes[f] is not None
        ]
        best = max(ious, default=(0.0, None))
        pointed.append(best[1] if best[0] >= POINT_IOU else None)
    return len(pointed) == len(set(pointed)) and set(pointed) == {int(i) for i in truth_ids}


def says_number(text: str, n: int) -> bool:
    """Whether ``text`` states the number ``n`` (digits or a word: "3", "three"; "0", "zero", "no", "none")."""
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    spelled = {NUMBER_WORDS[n]} if 0 <= n < len(NUMBER_WORDS) else set()
    return str(n) in words or bool(spelled & words) or (n == 0 and bool({"no", "none"} & words))


def score_answer(
    truth: dict,
    result: Any | None,
    evidence: Sequence[Any],
    video: BenchVideo,
    iou_threshold: float,
    *,
    clarified: bool = False,
    candidates: Sequence[dict] = (),
) -> bool | None:
    """Whether the structured answer ``result`` is right about ``truth`` (None: a turn type without an answer).

    Objects by :func:`answer_object`; times within ``WHEN_TOLERANCE_FRAMES``; counts must also be stated in
    ``result.text``; ``sequential``: the event (and the frame when given); ``reasoning``: the cause and its wall
    side or other object (the answer's object); ``future``: the wall; ``long_part``: the part and the span the
    object is seen in it (``frame`` to ``end_frame``, each within the tolerance). A missing result is wrong.
    ``ambiguous``: the clarification is asked and offers exactly the objects the phrase fits (``candidates``:
    its ``agent.state.Candidate`` dicts, each matched by its box on its frame, :func:`candidates_match`)."""
    t = truth["type"]
    if t == "ambiguous":
        return clarified and candidates_match(candidates, truth["candidates"], video)
    if t not in ANSWER_TYPES:
        return None
    if result is None:
        return False
    if t in ("comparison", "temporal", "relationship"):
        return answer_object(result, evidence, video, iou_threshold) == truth["answer_id"]
    if t == "when":
        return _near(result.frame, truth["frame"])
    if t == "long_part":
        first, last = truth["frames"]
        return result.part == truth["part"] and _near(result.frame, first) and _near(result.end_frame, last)
    if t == "counting":
        return result.count == truth["count"] and says_number(result.text, truth["count"])
    if t == "sequential":
        on_time = result.frame is None or _near(result.frame, truth["frame"])
        return result.event == truth["event"] and on_time
    if t == "reasoning":
        if result.event != truth["cause"]:
            return False
        if truth["cause"] == "bounce":
            return result.side == truth["side"]
        return answer_object(result, evidence, video, iou_threshold) == truth["other_id"]
    return result.side == truth["side"]  # future


# ------------------------------------------------------------------------------------------------ chance


def _mode_share(values: Sequence[Any]) -> float:
    return max(Counter(values).values()) / len(values) if values else 0.0


def turn_chances(records: Sequence[dict], videos: dict[str, BenchVideo]) -> dict[tuple[str, int], float]:
    """The chance baseline of every answer turn ``(record id, turn) -> expected accuracy`` of a guesser that
    knows the set's answer distribution but not the clip (it cannot see which of the clip's ``n`` objects is
    which):

    * object answers: ``1/n`` (temporal), ``1/(n-1)`` (relationship: not the named object), comparison:
      ``1/n`` over its ``n`` candidates (the superlative over all the clip's objects), or, between two named
      candidates, the share of the most common position of the answer among them;
    * categorical answers (count, event, wall side): the share of the most common answer in the set;
      reasoning: the best of "the most common wall" and "another object" (then ``1/(n-1)``);
    * when: the hit rate (within ``WHEN_TOLERANCE_FRAMES``) of the best constant frame; long_part: that of the
      best constant (part, first frame, last frame);
    * describe: ``1/n`` times the share of the most common primary motion; multi_target: ``1/C(n, k)`` times
      that share to the power ``k``; ambiguous: 1/2 (its wording is that of a describe question: ask or not)
      times ``1/C(n, k)`` (which ``k`` of the clip's objects the phrase fits).
    """
    by_type: dict[str, list[tuple[tuple[str, int], dict, int]]] = {}
    for r in records:
        objects = videos[r["video_name"]].objects.values()
        n = max(1, sum(any(b is not None for b in o.boxes) for o in objects))
        for k, turn in enumerate(r["turns"]):
            by_type.setdefault(turn["truth"]["type"], []).append(((r["id"], k), turn["truth"], n))
    out: dict[tuple[str, int], float] = {}
    for t, turns in by_type.items():
        truths = [truth for _, truth, _ in turns]
        if t in ("describe", "multi_target"):
            motions = [
                _primary(m)
                for truth in truths
                for m in ([truth["motions"]] if t == "describe" else list(truth["motions"].values()))
            ]
            share = _mode_share(motions)
            for key, truth, n in turns:
                k = 1 if t == "describe" else len(truth["object_ids"])
                out[key] = share**k / math.comb(max(n, k), k)
        elif t == "temporal":
            out.update({key: 1 / n for key, _, n in turns})
        elif t == "relationship":
            out.update({key: 1 / max(1, n - 1) for key, _, n in turns})
        elif t == "comparison":
            pairs = [tr for tr in truths if len(tr["candidates"]) == 2]
            share = _mode_share([tr["candidates"].index(tr["answer_id"]) for tr in pairs])
            out.update({key: share if len(tr["candidates"]) == 2 else 1 / len(tr["candidates"])
                        for key, tr, _ in turns})  # fmt: skip
        elif t == "when":
            frames = [tr["frame"] for tr in truths]
            best = max(sum(_near(c, f) for f in frames) for c in range(max(frames) + 1))
            out.update({key: best / len(frames) for key, _, _ in turns})
        elif t == "long_part":
            spans = [(tr["part"], *tr["frames"]) for tr in truths]
            best = max(
                sum(p == q and _near(f, a) and _near(g, b) for q, a, b in spans)
                for p, f0, g0 in spans
                for f in range(f0 - WHEN_TOLERANCE_FRAMES, f0 + WHEN_TOLERANCE_FRAMES + 1)
                for g in range(g0 - WHEN_TOLERANCE_FRAMES, g0 + WHEN_TOLERANCE_FRAMES + 1)
            )  # fmt: skip
            out.update({key: best / len(spans) for key, _, _ in turns})
        elif t in CATEGORICAL:
            share = _mode_share([tr[CATEGORICAL[t]] for tr in truths])
            out.update({key: share for key, _, _ in turns})
        elif t == "reasoning":
            walls = [tr["side"] for tr in truths if tr["cause"] == "bounce"]
            best_wall = max(Counter(walls).values()) / len(truths) if walls else 0.0
            hit = sum(1 / max(1, n - 1) for _, tr, n in turns if tr["cause"] == "collide") / len(truths)
            out.update({key: max(best_wall, hit) for key, _, _ in turns})
        elif t == "ambiguous":
            out.update({key: 0.5 / math.comb(max(n, len(tr["candidates"])), len(tr["candidates"]))
                        for key, tr, n in turns})  # fmt: skip
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def aggregate(turns: Sequence[TurnResult], records: int) -> SetMetrics:
    """Set metrics: means over target turns, micro accuracies over matched targets, clarification rates."""
    m = SetMetrics(records=records, turns=len(turns))
    scored = [t for t in turns if t.f1 is not None]
    m.target_turns = len(scored)
    m.target_f1 = _mean([t.f1 for t in scored])  # type: ignore[misc]
    m.attribute_targets = sum(t.attr_total for t in turns)
    m.attribute_accuracy = sum(t.attr_correct for t in turns) / max(m.attribute_targets, 1)
    m.motion_targets = sum(t.motion_total for t in turns)
    m.motion_accuracy = sum(t.motion_correct for t in turns) / max(m.motion_targets, 1)
    amb = [t for t in turns if t.truth_type == "ambiguous"]
    m.ambiguous_turns = len(amb)
    m.clarification_asked = _mean([float(t.clarified) for t in amb])
    handled = []
    for t in amb:
        nxt = next((u for u in turns if u.record_id == t.record_id and u.turn == t.turn + 1), None)
        handled.append(float(t.clarified and nxt is not None and nxt.f1 == 1.0))
    m.clarification_handled = _mean(handled)
    m.spurious_clarifications = sum(1 for t in turns if t.clarified and t.truth_type != "ambiguous")
    m.comparison_turns = sum(t.compare_total for t in turns)
    m.comparison_accuracy = sum(t.compare_correct for t in turns) / max(m.comparison_turns, 1)
    answered = [t for t in turns if t.answer_correct is not None]
    m.answer_turns = len(answered)
    m.answer_accuracy = _mean([float(bool(t.answer_correct)) for t in answered])
    m.chance = _mean([t.chance for t in answered if t.chance is not None])
    m.by_kind = {k: _group([t for t in turns if t.kind == k]) for k in sorted({t.kind for t in turns})}
    m.by_type = {
        k: _group([t for t in turns if t.truth_type == k]) for k in sorted({t.truth_type for t in turns})
    }
    return m


def answer_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of an accuracy ``correct / n`` ((0, 1) without turns): how far the figure of
    one draw of questions may be from the agent's accuracy on the world (a kind of 77 turns at 0.909 is
    0.82-0.96)."""
    from scipy.stats import binomtest

    if n == 0:
        return 0.0, 1.0
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _group(turns: Sequence[TurnResult]) -> dict[str, float]:
    """The metrics of a group of turns (one record kind or one question type)."""
    f1s = [t.f1 for t in turns if t.f1 is not None]
    answered = [t for t in turns if t.answer_correct is not None]
    accuracy = _mean([float(bool(t.answer_correct)) for t in answered])
    chance = _mean([t.chance for t in answered if t.chance is not None])
    low, high = answer_interval(sum(bool(t.answer_correct) for t in answered), len(answered))
    return {
        "records": float(len({t.record_id for t in turns})),
        "turns": float(len(turns)),
        "target_turns": float(len(f1s)),
        "target_f1": _mean(f1s),  # type: ignore[arg-type]
        "attribute_accuracy": sum(t.attr_correct for t in turns) / max(sum(t.attr_total for t in turns), 1),
        "attribute_targets": float(sum(t.attr_total for t in turns)),
        "motion_accuracy": sum(t.motion_correct for t in turns) / max(sum(t.motion_total for t in turns), 1),
        "motion_targets": float(sum(t.motion_total for t in turns)),
        "comparison_accuracy": sum(t.compare_correct for t in turns)
        / max(sum(t.compare_total for t in turns), 1),
        "comparison_turns": float(sum(t.compare_total for t in turns)),
        "spurious_clarifications": float(sum(t.clarified and t.truth_type != "ambiguous" for t in turns)),
        "answer_turns": float(len(answered)),
        "answer_accuracy": accuracy,
        "answer_ci_low": low,
        "answer_ci_high": high,
        "chance": chance,
        "ratio": accuracy / chance if chance > 0 else 0.0,
    }


# ------------------------------------------------------------------------------------------------ running


def run_record(
    graph: Any,
    record: dict,
    video: BenchVideo,
    iou_threshold: float,
    chances: dict[tuple[str, int], float] | None = None,
) -> list[TurnResult]:
    """Ask every turn of ``record`` on a fresh thread and score each (``chances``: :func:`turn_chances`)."""
    from agent.graph import ask, final_state

    thread = f"bench-{record['id']}-{'h' if record.get('heldout') else 't'}"
    out = []
    for k, turn in enumerate(record["turns"]):
        kwargs = {"video": video.name} if k == 0 else {}
        clarified, answer, candidates = False, "", []
        for node, update in ask(graph, thread, turn["question"], **kwargs):
            if node == "__interrupt__":
                clarified = True
                candidates = list(update["clarification"].get("candidates", []))
        state = final_state(graph, thread)
        found = state.get("evidence") or _NoEvidence()
        evidence = [] if clarified else list(found.targets)
        result = None if clarified else found.result
        answer = "" if clarified else str(state.get("answer", ""))
        chance = (chances or {}).get((record["id"], k))
        out.append(
            score_turn(
                record, k, evidence, video, iou_threshold, result=result, clarified=clarified, answer=answer,
                chance=chance, candidates=candidates,
            )
        )  # fmt: skip
    return out


class _NoEvidence:
    targets: tuple = ()
    result = None


def run_agent_bench(
    data: BenchData,
    *,
    describer: Any,
    describer_name: str = "",
    iou_threshold: float = 0.5,
    sets: Sequence[str] = SETS,
    check_samples: int | None = None,
) -> BenchResult:
    """Run the agent (rule planner, in-memory checkpointer) on every record of ``sets`` and score it.

    ``check_samples``: the agent's :attr:`agent.deps.AgentDeps.check_samples` (``None``: its default; 0: the
    describer's first captions unchecked)."""
    from langgraph.checkpoint.memory import InMemorySaver

    from agent.deps import AgentDeps
    from agent.graph import build_agent, checkpoint_serializer
    from tools.grounding.backends import WORLD_GROUNDING
    from tools.runtime import Runtime

    for s in sets:
        if s not in SETS:
            raise ValueError(f"unknown question set {s!r}; allowed: {SETS}")
    t0 = time.perf_counter()
    runtime = Runtime(  # records come grouped by video: one decoded at a time; the world's shapes backend
        describer=describer, max_videos=1, grounding_settings=WORLD_GROUNDING
    )
    checks = {} if check_samples is None else {"check_samples": check_samples}
    deps = AgentDeps(runtime=runtime, **checks)
    result = BenchResult(describer_name or type(describer).__name__, iou_threshold, {}, 0.0)
    for s in sets:
        graph = build_agent(deps, checkpointer=InMemorySaver(serde=checkpoint_serializer()))
        turns: list[TurnResult] = []
        chances = turn_chances(data.sets[s], data.videos)
        for n, record in enumerate(data.sets[s]):
            video = data.videos[record["video_name"]]
            if video.name not in runtime.videos:
                runtime.videos.add(video.name, video.open())
            turns += run_record(graph, record, video, iou_threshold, chances)
            if (n + 1) % 50 == 0:
                logger.info("%s: %d/%d records", s, n + 1, len(data.sets[s]))
        result.sets[s] = aggregate(turns, len(data.sets[s]))
        result.turns[s] = turns
    result.seconds = time.perf_counter() - t0
    return result


__all__ = [
    "BenchData",
    "BenchResult",
    "SetMetrics",
    "TurnResult",
    "aggregate",
    "answer_object",
    "described",
    "generated_bench",
    "key_frame_iou",
    "load_bench",
    "match_targets",
    "run_agent_bench",
    "says_number",
    "score_answer",
    "score_turn",
    "truth_targets",
    "turn_chances",
]


# --------------------------------------------------------------------------------------------- comparing


_CHANGE = {(False, True): "fixed", (True, False): "broken", (True, True): "right", (False, False): "wrong"}
"""(right before, right after) -> what happened to a turn."""


@dataclass(frozen=True)
class TurnChange:
    """One answer turn whose correctness differs between two runs."""

    record_id: str
    turn: int
    truth_type: str
    before: str
    after: str


@dataclass
class TurnComparison:
    """Two runs of the agent benchmark on the same data, turn by turn (:func:`compare_runs`)."""

    set_name: str
    counts: dict[str, dict[str, int]]
    """Per question type: ``fixed`` (wrong before, right after), ``broken``, ``right`` (both), ``wrong`` (both)."""
    fixed: list[TurnChange] = field(default_factory=list)
    broken: list[TurnChange] = field(default_factory=list)

    def to_markdown(self, show: int = 20) -> str:
        lines = [
            f"Turn by turn ({self.set_name}): {len(self.fixed)} fixed, {len(self.broken)} broken",
            "",
            "| type | fixed | broken | right in both | wrong in both |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {t} | {c['fixed']} | {c['broken']} | {c['right']} | {c['wrong']} |"
            for t, c in sorted(self.counts.items())
        ]
        for title, changes in (("Broken", self.broken), ("Fixed", self.fixed)):
            if changes:
                lines += [
                    "",
                    f"{title} ({len(changes)}{f', the first {show}' if len(changes) > show else ''}):",
                ]
                for c in changes[:show]:
                    lines += [
                        f"- {c.record_id} turn {c.turn} ({c.truth_type})",
                        f"  - before: {c.before[:300]}",
                        f"  - after: {c.after[:300]}",
                    ]
        return "\n".join(lines)


def compare_runs(before: dict[str, Any], after: dict[str, Any], set_name: str = "heldout") -> TurnComparison:
    """Which answer turns a change fixed and which it broke: ``before`` and ``after`` are two runs' JSON
    (:meth:`BenchResult.to_json`, as ``artemis eval agent --out`` writes it) on the same data. A headline accuracy
    moves by several points between draws of questions; two runs on the same questions differ only where the
    change did something.

    Raises ValueError when a run lacks ``set_name`` or the runs asked different turns (different data)."""
    runs = {}
    for name, run in (("before", before), ("after", after)):
        turns = run.get("turns", {})
        if set_name not in turns:
            raise ValueError(f"the {name} run has no {set_name!r} turns; it has: {sorted(turns) or 'none'}")
        runs[name] = {(t["record_id"], t["turn"]): t for t in turns[set_name]}
    if set(runs["before"]) != set(runs["after"]):
        only = len(set(runs["after"]) ^ set(runs["before"]))
        raise ValueError(
            f"the runs asked different turns ({only} in one run only): compare runs on the same data"
        )
    out = TurnComparison(set_name, {})
    for key, a in runs["after"].items():
        b = runs["before"][key]
        if a["answer_correct"] is None or b["answer_correct"] is None:
            continue
        counts = out.counts.setdefault(a["truth_type"], {"fixed": 0, "broken": 0, "right": 0, "wrong": 0})
        was, now = bool(b["answer_correct"]), bool(a["answer_correct"])
        counts[_CHANGE[was, now]] += 1
        if was != now:
            change = TurnChange(key[0], key[1], a["truth_type"], _said(b), _said(a))
            (out.fixed if now else out.broken).append(change)
    out.fixed.sort(key=lambda c: (c.record_id, c.turn))
    out.broken.sort(key=lambda c: (c.record_id, c.turn))
    return out


def _said(turn: dict[str, Any]) -> str:
    if turn.get("clarified"):
        return "(asked which one: " + "; ".join(c.get("label", "?") for c in turn.get("candidates", [])) + ")"
    return turn.get("answer") or "(no answer)"
