"""Video + box -> answer: :func:`describe` (one target) and :func:`describe_many` (several targets of one video).

Steps: open the video; validate each box on its frame; track it (unless a track is given); choose 8 tracked
frames uniformly over the frames where the track has a usable box (:func:`choose_track_frames`, deterministic;
as the original and our training, the key frame is NOT added to these candidates when the track lacks it; only
a track with no usable box at all falls back on the key frame and box), key frame + box first; get the global
features and the fused region maps of the union of all targets' RoI frames from the
:class:`~artemis_model.features.FeatureCache` (one decode pass, each frame through the vision tower once);
region tokens + K-means selection per target; then one generation for all targets.

The two steps are public: :func:`prepare_targets` (planning, features, region tokens, prompt -> one
:class:`~artemis_model.generation.PreparedTarget` per target of one video) and
:func:`~artemis_model.generation.generate_prepared` (answers of prepared targets of any videos, batched);
:func:`describe_many` is open + validate + track + these two. Evaluations use them to batch across videos.

Several targets share the video prefix of the prompt either by **batched** generation (left padded, the
default) or by **prefix** sharing (the LM runs the common prefix -- system text and the 356 video tokens --
once and its KV cache is repeated for the targets; used when the prompts have equal lengths, else batched).

Boxes are clipped to the frame unless the processor keeps the original's behaviour (``processor.clip_boxes``
False, resize mode ``"original"``): then a box partly outside the frame is normalised as it is (coordinates
below 0 or above 1, RoIAlign samples zeros outside), as the original did. A box entirely outside the frame,
inverted, empty or NaN is refused either way (the tracker always gets the clipped key box).

``snap=True`` (several targets) moves a target's tracked frame to a frame already chosen for an earlier target
(or already cached) when the target is visible there and it lies within half a sampling interval: fewer frames
to encode, slightly different frames (see ``benchmarks/bench_pipeline.py`` for what it does to answers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artemis_model.errors import ArtemisInputError, InvalidBoxError, NotAnArtemisModelError
from artemis_model.features import FeatureCache, stack_region_maps
from artemis_model.generation import (
    STRATEGIES,
    GeneratedAnswer,
    PreparedTarget,
    StaticCachePool,
    Strategy,
    generate_answers,
    generate_prepared,
)
from artemis_model.processing_artemis import render_prompt
from artemis_model.prompts import normalize_question, referring_prompt
from artemis_model.selection import choose_track_frames
from artemis_model.types import Box, Description, GenerationOptions, Track, validate_box, validate_frame_idx
from artemis_model.video import VideoInput, VideoSource, open_video

logger = logging.getLogger(__name__)

__all__ = [
    "ArtemisPipeline",
    "GeneratedAnswer",
    "PreparedTarget",
    "StaticCachePool",
    "Strategy",
    "TargetRequest",
    "check_artemis_dir",
    "describe",
    "describe_many",
    "generate_answers",
    "generate_prepared",
    "prepare_targets",
]


@dataclass(frozen=True)
class TargetRequest:
    """One boxed target of a video: key ``box`` (pixels) on ``frame_idx``, its ``track``, its question."""

    box: Sequence[float]
    frame_idx: int
    track: Track
    question: str | None = None


@dataclass(frozen=True)
class _Target:
    box: Box
    frame_idx: int
    question: str
    track: Track
    tracked_frames: tuple[int, ...]
    tracked_boxes: tuple[Box, ...]


def describe(
    model: Any,
    processor: Any,
    video: VideoInput,
    box_xyxy: Sequence[float],
    *,
    frame_idx: int = 0,
    question: str | None = None,
    options: GenerationOptions = GenerationOptions(),
    cache: FeatureCache | None = None,
    tracker: Any = None,
    track: Track | None = None,
    template: str | None = None,
    static_caches: StaticCachePool | None = None,
) -> Description:
    """Describe the boxed target over the whole video. Box in pixels on frame ``frame_idx``.

    ``video``: a path, bytes, a folder of frames or a :class:`VideoSource`. ``track``: per-frame boxes of the
    target (computed with ``tracker`` -- default :class:`artemis_model.tracking.Tracker` -- when omitted).
    ``cache=None`` uses a throw-away cache. ``template``: the prompt template; ``None`` takes the processor's
    ``prompt_template`` (``"eval_original"`` for converted original weights, ``"train"`` for ours).
    ``static_caches``: the static KV caches to reuse with ``options.cache == "static"``.
    """
    return describe_many(
        model,
        processor,
        video,
        [box_xyxy],
        frame_idx=frame_idx,
        questions=question,
        options=options,
        cache=cache,
        tracker=tracker,
        tracks=None if track is None else [track],
        template=template,
        static_caches=static_caches,
    )[0]


def describe_many(
    model: Any,
    processor: Any,
    video: VideoInput,
    boxes: Sequence[Sequence[float]],
    *,
    frame_idx: int | Sequence[int] = 0,
    questions: str | Sequence[str | None] | None = None,
    options: GenerationOptions = GenerationOptions(),
    cache: FeatureCache | None = None,
    tracker: Any = None,
    tracks: Sequence[Track] | None = None,
    template: str | None = None,
    snap: bool = False,
    strategy: Strategy = "batched",
    batch_size: int = 8,
    static_caches: StaticCachePool | None = None,
) -> list[Description]:
    """Describe several boxed targets of one video; one description per box, in order.

    ``frame_idx``: one frame for all boxes or one per box. ``questions``: one for all, one per box, or
    ``None`` (the default question). ``strategy``: ``"batched"`` or ``"prefix"`` (see the module docstring).
    ``batch_size``: targets per generation call. ``static_caches``: the static KV caches to reuse with
    ``options.cache == "static"``. :func:`prepare_targets` then :func:`generate_prepared`.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is unknown; allowed: {', '.join(map(repr, STRATEGIES))}")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    source = open_video(video)
    count = len(boxes)
    if count == 0:
        raise ArtemisInputError("boxes is empty: give at least one x1,y1,x2,y2 box")
    frame_idxs = _per_target(frame_idx, count, "frame_idx")
    qs = _per_target(questions, count, "questions")
    if tracks is not None and len(tracks) != count:
        raise ArtemisInputError(f"{len(tracks)} tracks for {count} boxes")
    checked = []
    for box, f in zip(boxes, frame_idxs, strict=True):
        validate_frame_idx(f, source.num_frames)
        # Kept unclipped here: prepare_targets clips per processor; the tracker gets the clipped box.
        checked.append(validate_box(box, source.width, source.height, clip=False))
    questions_n = [normalize_question(q) for q in qs]
    timings["open"] = time.perf_counter() - start

    start = time.perf_counter()
    if tracks is None:
        from artemis_model.tracking import track_box

        tracks = [
            track_box(source, validate_box(box, source.width, source.height), frame_idx=f, tracker=tracker)
            for box, f in zip(checked, frame_idxs, strict=True)
        ]
    timings["track"] = time.perf_counter() - start

    requests = [
        TargetRequest(box=box, frame_idx=f, track=trk, question=q)
        for box, f, q, trk in zip(checked, frame_idxs, questions_n, tracks, strict=True)
    ]
    prepared = prepare_targets(
        model, processor, source, requests, cache=cache, template=template, snap=snap, timings=timings
    )
    start = time.perf_counter()
    answers = generate_answers(
        model,
        processor,
        prepared,
        options,
        batch_size=batch_size,
        strategy=strategy,
        static_caches=static_caches,
    )
    timings["generate"] = time.perf_counter() - start
    return [description_of(t, a, timings) for a, t in zip(answers, prepared, strict=True)]


def description_of(target: PreparedTarget, answer: GeneratedAnswer, timings: dict[str, float]) -> Description:
    """The :class:`Description` of a prepared target and its generated answer (``timings`` copied)."""
    return Description(
        answer=answer.text,
        question=target.question,
        frame_idx=target.frame_idx,
        box=target.box,
        track=target.track,
        selected_frames=target.selected_frames,
        timings=dict(timings),
        hit_token_limit=answer.hit_limit,
    )


@torch.no_grad()
def prepare_targets(
    model: Any,
    processor: Any,
    source: VideoSource,
    requests: Sequence[TargetRequest],
    *,
    cache: FeatureCache | None = None,
    template: str | None = None,
    snap: bool = False,
    timings: dict[str, float] | None = None,
) -> list[PreparedTarget]:
    """Plan, encode and tokenise several targets of one video: one :class:`PreparedTarget` per request, in order.

    Per target: key frame + ``num_tracked_boxes`` frames uniform over the frames where its track has a usable
    box (the key frame is not added; snapped onto shared frames with ``snap``); boxes clipped to the frame
    unless ``processor.clip_boxes`` is False (the original's resize mode); the global features and fused region
    maps of the union of all targets' frames from ``cache`` (one decode pass; ``None``: a throw-away cache); region tokens with the
    K-means selection; the rendered prompt (``template=None``: the processor's ``prompt_template``).
    ``timings``, when given, receives the seconds of the ``"features"`` and ``"region"`` steps.
    """
    template = template or getattr(processor, "prompt_template", "train")
    timings = timings if timings is not None else {}
    cfg = model.config
    cache = cache if cache is not None else FeatureCache(max_bytes=0)
    known = cache.cached_region_frames(model, processor, source) if snap else set()
    clip = bool(getattr(processor, "clip_boxes", True))
    targets: list[_Target] = []
    for req in requests:
        validate_frame_idx(req.frame_idx, source.num_frames)
        box = validate_box(req.box, source.width, source.height, clip=clip)
        question = normalize_question(req.question)
        target = _plan_target(
            source, box, req.frame_idx, question, req.track, cfg.num_tracked_boxes, clip=clip,
            mode=cfg.track_frame_mode,
        )  # fmt: skip
        if snap:
            shared = known | {t for tg in targets for t in (tg.frame_idx, *tg.tracked_frames)}
            target = _snap(target, shared, clip=clip)
        targets.append(target)

    start = time.perf_counter()
    union = sorted({f for t in targets for f in (t.frame_idx, *t.tracked_frames)})
    feats = cache.get_features(model, processor, source, union)
    assert feats.video_features is not None  # get_features returns the global features too
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    position = {f: k for k, f in enumerate(union)}
    frame_ids = torch.tensor(
        [[position[f] for f in (t.frame_idx, *t.tracked_frames)] for t in targets], dtype=torch.long
    )  # [B, 1 + n]
    boxes_norm = torch.stack(
        [processor.normalize_boxes([t.box, *t.tracked_boxes], source.width, source.height) for t in targets]
    )  # [B, 1 + n, 4]
    region = model.build_region_features(
        None, frame_ids, boxes_norm, fused_maps=stack_region_maps(feats.region_maps, union)
    )
    timings["region"] = time.perf_counter() - start
    return [
        PreparedTarget(
            prompt=render_prompt(
                referring_prompt(t.question, cfg.num_region_tokens, template=template), template=template
            ),
            video_features=feats.video_features,
            region_tokens=region.tokens[b],
            question=t.question,
            frame_idx=t.frame_idx,
            box=t.box,
            track=t.track,
            selected_frames=(t.frame_idx, *(t.tracked_frames[int(s)] for s in region.selected[b])),
        )
        for b, t in enumerate(targets)
    ]


def _per_target(value: Any, count: int, name: str) -> list[Any]:
    if value is None or isinstance(value, (int, str)):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ArtemisInputError(f"{name} has {len(values)} entries for {count} boxes")
    return values


def _plan_target(
    source: VideoSource,
    box: Box,
    frame_idx: int,
    question: str,
    track: Track,
    n: int,
    *,
    clip: bool = True,
    mode: str = "uniform",
) -> _Target:
    """Key frame + ``n`` tracked frames over the frames where the track has a usable box (``mode`` of
    :func:`~artemis_model.selection.choose_track_frames`: uniform, or front-weighted for the tiny world model).

    As the original (``track_list`` non-empty frames, artemis_reference.md §1.9) and our training
    (``training/referring_data.py``), the key frame is a candidate only when the track has a box there. A track
    without any usable box falls back on the key frame and box (repeated ``n`` times), with a warning.
    """
    if track.num_frames != source.num_frames or (track.width, track.height) != (source.width, source.height):
        raise ArtemisInputError(
            f"track of {track.num_frames} frames at {track.width}x{track.height} does not fit the video "
            f"({source.num_frames} frames at {source.width}x{source.height})"
        )
    usable: dict[int, Box] = {}
    for f in track.visible_frames:
        valid = _valid_box(track, f, clip=clip)
        if valid is not None:
            usable[f] = valid
    if not usable:
        logger.warning("no usable box in the track: key frame %d stands in for the tracked ones", frame_idx)
        usable[frame_idx] = box
    frames = tuple(choose_track_frames(sorted(usable), n, mode=mode))
    return _Target(
        box=box,
        frame_idx=frame_idx,
        question=question,
        track=track,
        tracked_frames=frames,
        tracked_boxes=tuple(usable[f] for f in frames),
    )


def _valid_box(track: Track, frame_idx: int, *, clip: bool = True) -> Box | None:
    """The track's box on ``frame_idx`` (clipped with ``clip``), or ``None`` (absent or degenerate, e.g. a
    collapsed tracker, or entirely outside the frame)."""
    box = track.boxes[frame_idx]
    if box is None:
        return None
    try:
        return validate_box(box, track.width, track.height, clip=clip)
    except InvalidBoxError as exc:
        logger.warning("ignoring the tracked box on frame %d: %s", frame_idx, exc)
        return None


def _snap(target: _Target, shared: set[int], *, clip: bool = True) -> _Target:
    """Move each tracked frame to the nearest shared frame where the target is visible, within half an interval."""
    visible = [f for f in target.track.visible_frames if f in shared]
    if not visible:
        return target
    span = max(target.tracked_frames) - min(target.tracked_frames)
    tolerance = max(1, span // (2 * max(1, len(target.tracked_frames) - 1)))
    frames, boxes = [], []
    for f, b in zip(target.tracked_frames, target.tracked_boxes, strict=True):
        nearest = min(visible, key=lambda g: (abs(g - f), g))
        snapped = _valid_box(target.track, nearest, clip=clip) if abs(nearest - f) <= tolerance else None
        if snapped is not None:
            f, b = nearest, snapped
        frames.append(f)
        boxes.append(b)
    order = sorted(range(len(frames)), key=lambda k: frames[k])
    return _Target(
        box=target.box,
        frame_idx=target.frame_idx,
        question=target.question,
        track=target.track,
        tracked_frames=tuple(frames[k] for k in order),
        tracked_boxes=tuple(boxes[k] for k in order),
    )


class ArtemisPipeline:
    """A model, its processor, a feature cache and the static KV caches of its fast decoding, with
    :func:`describe` / :func:`describe_many` as methods (the pipeline's caches are used unless others are
    passed)."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        cache: FeatureCache | None = None,
        static_caches: StaticCachePool | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.cache = cache if cache is not None else FeatureCache()
        self.static_caches = static_caches if static_caches is not None else StaticCachePool()

    def describe(self, video: VideoInput, box_xyxy: Sequence[float], **kwargs: Any) -> Description:
        kwargs.setdefault("cache", self.cache)
        kwargs.setdefault("static_caches", self.static_caches)
        return describe(self.model, self.processor, video, box_xyxy, **kwargs)

    def describe_many(
        self, video: VideoInput, boxes: Sequence[Sequence[float]], **kwargs: Any
    ) -> list[Description]:
        kwargs.setdefault("cache", self.cache)
        kwargs.setdefault("static_caches", self.static_caches)
        return describe_many(self.model, self.processor, video, boxes, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cache: FeatureCache | None = None,
    ) -> ArtemisPipeline:
        """Load a saved Artemis model + processor. Raises :class:`NotAnArtemisModelError` for anything else."""
        from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
        from artemis_model.processing_artemis import PROCESSOR_FILE, ArtemisProcessor

        directory = Path(directory)
        check_artemis_dir(directory)
        if not (directory / PROCESSOR_FILE).is_file():
            raise NotAnArtemisModelError(
                f"{directory} has an Artemis config but no {PROCESSOR_FILE}: save the processor beside the model"
            )
        kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
        model = ArtemisForConditionalGeneration.from_pretrained(directory, **kwargs).eval()
        if device is not None:
            model = model.to(device)
        return cls(model, ArtemisProcessor.from_pretrained(directory), cache)


def check_artemis_dir(directory: str | Path) -> Path:
    """Raise :class:`NotAnArtemisModelError` unless ``directory/config.json`` has ``model_type == "artemis"``."""
    import json

    directory = Path(directory)
    config = directory / "config.json"
    if not directory.is_dir() or not config.is_file():
        raise NotAnArtemisModelError(f"{directory} is not an Artemis model directory: no config.json")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise NotAnArtemisModelError(f"{config} is not a readable JSON config: {exc}") from exc
    if model_type != "artemis":
        raise NotAnArtemisModelError(
            f"{directory} holds a {model_type!r} model; expected model_type 'artemis'"
        )
    return directory
