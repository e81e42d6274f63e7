"""Tool-quality metrics on the synthetic world: how well ``tools.ground`` and ``tools.track`` do against truth.

For every clip (in memory from :func:`synth.generate_clip`, or a data set written by ``artemis data synth``):

* **grounding**: one query per object, ``"the <colour> <shape>"``, naming every object of that colour and
  shape (two when they differ only in size), plus ``"the <colour> objects"`` for every colour at least two
  objects share. The targets the grounding tool returns are matched one-to-one to the truth tracks of the
  named objects (objects never visible are left out) with :func:`synth.metrics.grounding_scores` at track
  IoU >= 0.5; we report the mean per-query recall and precision and the micro counts.
* **tracking**: every object is tracked with the tracking tool from its first fully visible frame (box = its
  truth box there) and scored with :func:`synth.metrics.tracking_scores` against its truth, the other
  objects of the clip as distractors: mean IoU over the frames it is visible, frames lost (IoU < 0.5) and
  identity switches. Objects never fully visible are counted as skipped.

    metrics = evaluate_tools(generated_cases(50, seed=0))       # or load_cases("data/synth")
    print(metrics.to_markdown())
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synth import Clip, generate_clip
from synth.build import clip_seeds
from synth.metrics import grounding_scores, tracking_scores
from tools.video import ArrayVideo, VideoLike, load_video

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


class HasBoxes(Protocol):
    """What the evaluator reads from a grounding target or a track: one box (or ``None``) per frame."""

    @property
    def boxes(self) -> Sequence[Sequence[float] | None]: ...


GroundFn = Callable[[VideoLike, str], Sequence[HasBoxes]]
TrackFn = Callable[..., HasBoxes]
"""``track_fn(video, box, *, frame_idx) -> Track``, like :func:`tools.track`."""


@dataclass(frozen=True)
class TruthObject:
    """The truth of one object that the metrics need: attributes, a box per frame, visible fraction per frame."""

    id: int
    colour: str
    shape: str
    size: str
    boxes: tuple[Box | None, ...]
    visible: tuple[float, ...]

    @property
    def ever_visible(self) -> bool:
        return any(b is not None for b in self.boxes)

    @property
    def first_full_frame(self) -> int | None:
        """First frame where the whole object is in the frame and unoccluded, or ``None``."""
        return next((t for t, v in enumerate(self.visible) if v >= 1.0 and self.boxes[t] is not None), None)


@dataclass(frozen=True)
class ToolCase:
    """One clip to evaluate the tools on: a video and the truth of its objects."""

    name: str
    video: VideoLike
    objects: tuple[TruthObject, ...]


@dataclass(frozen=True)
class GroundingQuery:
    text: str
    kind: str  # "object" ("the red circle") or "colour" ("the red objects")
    object_ids: tuple[int, ...]


@dataclass(frozen=True)
class QueryResult:
    clip: str
    query: str
    kind: str
    truths: int
    predictions: int
    matched: int
    recall: float
    precision: float
    matched_iou: float = 0.0
    """Sum of the track IoUs (:func:`synth.metrics.track_iou`) of the matched pairs."""


@dataclass(frozen=True)
class TrackResult:
    clip: str
    object_id: int
    label: str
    frame_idx: int
    visible_frames: int
    mean_iou: float
    frames_lost: int
    identity_switches: int


@dataclass(frozen=True)
class GroundingMetrics:
    queries: int
    mean_recall: float
    mean_precision: float
    truths: int
    predictions: int
    matched: int
    micro_recall: float
    micro_precision: float
    by_kind: dict[str, dict[str, float]]
    """Per query kind: {"queries", "mean_recall", "mean_precision"}."""
    matched_track_iou: float = 0.0
    """Mean track IoU of the matched (target, object) pairs: how well the boxes sit on the objects frame by frame,
    where recall and precision only count a match at the IoU threshold."""


@dataclass(frozen=True)
class TrackingMetrics:
    objects: int
    skipped: int
    """Objects never fully visible (no frame to prompt from)."""
    mean_iou: float
    """Mean over objects of the per-object mean IoU (over the frames where the object is visible)."""
    visible_frames: int
    frames_lost: int
    lost_fraction: float
    identity_switches: int
    objects_with_switch: int


@dataclass(frozen=True)
class ToolMetrics:
    clips: int
    iou_threshold: float
    grounding: GroundingMetrics
    tracking: TrackingMetrics
    seconds: float
    per_query: tuple[QueryResult, ...] = ()
    per_track: tuple[TrackResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def to_markdown(self) -> str:
        g, t = self.grounding, self.tracking
        lines = [
            f"Tool metrics on {self.clips} clips (IoU threshold {self.iou_threshold:g}, {self.seconds:.1f} s)",
            "",
            "| grounding | queries | recall | precision |",
            "|---|---:|---:|---:|",
            f"| all (mean per query) | {g.queries} | {g.mean_recall:.3f} | {g.mean_precision:.3f} |",
        ]
        for kind, row in sorted(g.by_kind.items()):
            lines.append(
                f"| {kind} queries | {int(row['queries'])} | {row['mean_recall']:.3f} | "
                f"{row['mean_precision']:.3f} |"
            )
        lines += [
            f"| micro ({g.matched} matched / {g.truths} truths / {g.predictions} predictions) | {g.queries} | "
            f"{g.micro_recall:.3f} | {g.micro_precision:.3f} |",
            "",
            f"Matched targets' mean track IoU (frame by frame, over the frames either is seen): "
            f"{g.matched_track_iou:.3f}",
            "",
            "| tracking | objects | mean IoU | frames lost | identity switches |",
            "|---|---:|---:|---:|---:|",
            f"| all | {t.objects} (+{t.skipped} never fully visible) | {t.mean_iou:.3f} | "
            f"{t.frames_lost} / {t.visible_frames} ({t.lost_fraction:.1%}) | "
            f"{t.identity_switches} ({t.objects_with_switch} objects) |",
        ]
        return "\n".join(lines)


def _box(b: Sequence[float] | None) -> Box | None:
    if b is None or len(b) == 0:
        return None
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def case_from_clip(clip: Clip, name: str) -> ToolCase:
    """An in-memory case: the clip's exact frames as an :class:`ArrayVideo`."""
    objects = tuple(
        TruthObject(o.id, o.colour, o.shape, o.size, tuple(_box(b) for b in o.boxes), tuple(o.visible))
        for o in clip.objects
    )
    return ToolCase(name, ArrayVideo(clip.frames, fps=clip.fps, name=name), objects)


def generated_cases(
    num_clips: int, seed: int, *, num_frames: int | None = None, width: int = 160, height: int = 120
) -> list[ToolCase]:
    """``num_clips`` clips generated in memory with the per-clip seeds ``artemis data synth --seed`` uses."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    return [
        case_from_clip(generate_clip(cs, num_frames=num_frames, width=width, height=height), f"clip_{i:05d}")
        for i, cs in enumerate(clip_seeds(seed, num_clips))
    ]


def load_cases(
    data: str | Path, *, max_clips: int | None = None, include_long: bool = False
) -> list[ToolCase]:
    """Cases from a data set written by ``artemis data synth``: ``truth/<name>.json`` + ``videos/<name>.mp4``
    (decoded from the H.264 file, as the tools see real videos). Long (concatenated) videos only when asked."""
    data = Path(data)
    truth_dir = data / "truth"
    if not truth_dir.is_dir():
        raise FileNotFoundError(
            f"{truth_dir} not found; is {data} a data set written by `artemis data synth`?"
        )
    paths = sorted(truth_dir.glob("clip_*.json"))
    if include_long:
        paths += sorted(truth_dir.glob("long_*.json"))
    if max_clips is not None:
        paths = paths[:max_clips]
    if not paths:
        raise FileNotFoundError(f"no truth/clip_*.json under {data}")
    cases = []
    for path in paths:
        truth = json.loads(path.read_text())
        video_path = data / "videos" / f"{path.stem}.mp4"
        if not video_path.is_file():
            raise FileNotFoundError(f"{video_path} missing for truth {path}")
        objects = tuple(
            TruthObject(
                int(o["id"]),
                o["colour"],
                o["shape"],
                o["size"],
                tuple(_box(b) for b in o["boxes"]),
                tuple(float(v) for v in o["visible"]),
            )
            for o in truth["objects"]
        )
        cases.append(ToolCase(path.stem, load_video(video_path), objects))
    return cases


def grounding_queries(objects: Sequence[TruthObject]) -> list[GroundingQuery]:
    """Queries built from the truth: per object "the <colour> <shape>", per shared colour "the <colour> objects"."""
    queries: dict[str, GroundingQuery] = {}
    for o in objects:
        text = f"the {o.colour} {o.shape}"
        if text not in queries:
            ids = tuple(p.id for p in objects if p.colour == o.colour and p.shape == o.shape)
            queries[text] = GroundingQuery(text, "object", ids)
    for colour in dict.fromkeys(o.colour for o in objects):
        ids = tuple(o.id for o in objects if o.colour == colour)
        if len(ids) >= 2:
            queries[f"the {colour} objects"] = GroundingQuery(f"the {colour} objects", "colour", ids)
    return list(queries.values())


def _boxes(pred: HasBoxes, num_frames: int, what: str) -> list[Box | None]:
    boxes = [_box(b) for b in pred.boxes]
    if len(boxes) != num_frames:
        raise ValueError(f"{what} has {len(boxes)} boxes for a video of {num_frames} frames")
    return boxes


def _ground_case(case: ToolCase, ground_fn: GroundFn, iou_threshold: float) -> list[QueryResult]:
    n = case.video.num_frames
    by_id = {o.id: o for o in case.objects}
    results = []
    for q in grounding_queries(case.objects):
        truths = [list(by_id[i].boxes) for i in q.object_ids if by_id[i].ever_visible]
        preds = [_boxes(p, n, f"grounding target for {q.text!r}") for p in ground_fn(case.video, q.text)]
        s = grounding_scores(preds, truths, iou_threshold=iou_threshold)
        results.append(
            QueryResult(
                case.name,
                q.text,
                q.kind,
                len(truths),
                len(preds),
                len(s.matches),
                s.recall,
                s.precision,
                sum(m[2] for m in s.matches),
            )
        )
    return results


def _track_case(case: ToolCase, track_fn: TrackFn, iou_threshold: float) -> tuple[list[TrackResult], int]:
    n = case.video.num_frames
    results, skipped = [], 0
    for o in case.objects:
        f = o.first_full_frame
        if f is None:
            skipped += 1
            continue
        pred = _boxes(track_fn(case.video, o.boxes[f], frame_idx=f), n, f"track of object {o.id}")
        others = [list(p.boxes) for p in case.objects if p.id != o.id]
        s = tracking_scores(pred, list(o.boxes), distractors=others, iou_threshold=iou_threshold)
        visible = sum(b is not None for b in o.boxes)
        label = f"{o.size} {o.colour} {o.shape}"
        results.append(
            TrackResult(case.name, o.id, label, f, visible, s.mean_iou, s.frames_lost, s.identity_switches)
        )
    return results, skipped


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _grounding_metrics(rows: Sequence[QueryResult]) -> GroundingMetrics:
    truths = sum(r.truths for r in rows)
    preds = sum(r.predictions for r in rows)
    matched = sum(r.matched for r in rows)
    by_kind = {
        kind: {
            "queries": float(len(sub)),
            "mean_recall": _mean([r.recall for r in sub]),
            "mean_precision": _mean([r.precision for r in sub]),
        }
        for kind in sorted({r.kind for r in rows})
        for sub in [[r for r in rows if r.kind == kind]]
    }
    return GroundingMetrics(
        queries=len(rows),
        mean_recall=_mean([r.recall for r in rows]),
        mean_precision=_mean([r.precision for r in rows]),
        truths=truths,
        predictions=preds,
        matched=matched,
        micro_recall=matched / truths if truths else 1.0,
        micro_precision=matched / preds if preds else (1.0 if not truths else 0.0),
        by_kind=by_kind,
        matched_track_iou=sum(r.matched_iou for r in rows) / matched if matched else 0.0,
    )


def _tracking_metrics(rows: Sequence[TrackResult], skipped: int) -> TrackingMetrics:
    visible = sum(r.visible_frames for r in rows)
    lost = sum(r.frames_lost for r in rows)
    return TrackingMetrics(
        objects=len(rows),
        skipped=skipped,
        mean_iou=_mean([r.mean_iou for r in rows]),
        visible_frames=visible,
        frames_lost=lost,
        lost_fraction=lost / visible if visible else 0.0,
        identity_switches=sum(r.identity_switches for r in rows),
        objects_with_switch=sum(r.identity_switches > 0 for r in rows),
    )


def _default_ground() -> GroundFn:
    """``tools.ground`` with a track cache of its own: the queries of one clip detect and link once."""
    from tools.grounding import ground, new_track_cache
    from tools.grounding.backends import WORLD_GROUNDING

    cache = new_track_cache()

    def run(video: VideoLike, query: str) -> Sequence[HasBoxes]:
        return ground(video, query, settings=WORLD_GROUNDING, cache=cache)

    return run


def _default_track(video: VideoLike, box: Box, *, frame_idx: int = 0) -> HasBoxes:
    from tools.track import track

    return track(video, box, frame_idx=frame_idx)


def evaluate_tools(
    cases: Sequence[ToolCase],
    *,
    ground_fn: GroundFn | None = None,
    track_fn: TrackFn | None = None,
    iou_threshold: float = 0.5,
    grounding: bool = True,
    tracking: bool = True,
) -> ToolMetrics:
    """Grounding and tracking metrics of ``ground_fn`` / ``track_fn`` (default: ``tools.ground`` /
    ``tools.track``) on ``cases`` (see :func:`generated_cases`, :func:`load_cases`)."""
    if not cases:
        raise ValueError("evaluate_tools needs at least one case")
    ground_fn = ground_fn or _default_ground()
    track_fn = track_fn or _default_track
    start = time.perf_counter()
    queries: list[QueryResult] = []
    tracks: list[TrackResult] = []
    skipped = 0
    for case in cases:
        if grounding:
            queries += _ground_case(case, ground_fn, iou_threshold)
        if tracking:
            rows, k = _track_case(case, track_fn, iou_threshold)
            tracks += rows
            skipped += k
        logger.debug("%s: %d queries, %d tracks so far", case.name, len(queries), len(tracks))
    metrics = ToolMetrics(
        clips=len(cases),
        iou_threshold=iou_threshold,
        grounding=_grounding_metrics(queries),
        tracking=_tracking_metrics(tracks, skipped),
        seconds=time.perf_counter() - start,
        per_query=tuple(queries),
        per_track=tuple(tracks),
    )
    logger.info(
        "tools on %d clips: grounding R %.3f P %.3f track IoU %.3f; tracking mIoU %.3f, %d frames lost, %d switches",
        len(cases),
        metrics.grounding.mean_recall,
        metrics.grounding.mean_precision,
        metrics.grounding.matched_track_iou,
        metrics.tracking.mean_iou,
        metrics.tracking.frames_lost,
        metrics.tracking.identity_switches,
    )
    return metrics
