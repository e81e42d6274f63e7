"""Video + box -> answer: :func:`describe` (one target) and :func:`describe_many` (several targets of one video).

Steps: open the video; validate each box on its frame; track it (unless a track is given); choose 8 tracked
frames uniformly over the frames where the target is visible (:func:`choose_track_frames`, deterministic), key
frame + box first; get the global features and the fused region maps of the union of all targets' RoI frames
from the :class:`~artemis_model.features.FeatureCache` (one decode pass, each frame through the vision tower
once); region tokens + K-means selection per target; then one generation for all targets.

Several targets share the video prefix of the prompt either by **batched** generation (left padded, the
default) or by **prefix** sharing (the LM runs the common prefix -- system text and the 356 video tokens --
once and its KV cache is repeated for the targets; used when the prompts have equal lengths, else batched).

``snap=True`` (several targets) moves a target's tracked frame to a frame already chosen for an earlier target
(or already cached) when the target is visible there and it lies within half a sampling interval: fewer frames
to encode, slightly different frames (see ``benchmarks/bench_pipeline.py`` for what it does to answers).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from artemis_model.errors import ArtemisInputError, InvalidBoxError, NotAnArtemisModelError
from artemis_model.features import FeatureCache, stack_region_maps
from artemis_model.processing_artemis import render_prompt
from artemis_model.prompts import normalize_question, referring_prompt
from artemis_model.selection import choose_track_frames
from artemis_model.types import Box, Description, GenerationOptions, Track, validate_box, validate_frame_idx
from artemis_model.video import VideoInput, VideoSource, open_video

logger = logging.getLogger(__name__)

Strategy = Literal["batched", "prefix"]


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
) -> Description:
    """Describe the boxed target over the whole video. Box in pixels on frame ``frame_idx``.

    ``video``: a path, bytes, a folder of frames or a :class:`VideoSource`. ``track``: per-frame boxes of the
    target (computed with ``tracker`` -- default :class:`artemis_model.tracking.Tracker` -- when omitted).
    ``cache=None`` uses a throw-away cache. ``template``: the prompt template; ``None`` takes the processor's ``prompt_template`` (``"eval_original"``
    for converted original weights, ``"train"`` for ours).
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
) -> list[Description]:
    """Describe several boxed targets of one video; one description per box, in order.

    ``frame_idx``: one frame for all boxes or one per box. ``questions``: one for all, one per box, or
    ``None`` (the default question). ``strategy``: ``"batched"`` or ``"prefix"`` (see the module docstring).
    ``batch_size``: targets per generation call.
    """
    if strategy not in ("batched", "prefix"):
        raise ValueError(f"strategy {strategy!r} is unknown; allowed: 'batched', 'prefix'")
    template = template or getattr(processor, "prompt_template", "train")
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
        checked.append(validate_box(box, source.width, source.height))
    questions_n = [normalize_question(q) for q in qs]
    timings["open"] = time.perf_counter() - start

    start = time.perf_counter()
    if tracks is None:
        from artemis_model.tracking import track_box

        tracks = [
            track_box(source, box, frame_idx=f, tracker=tracker)
            for box, f in zip(checked, frame_idxs, strict=True)
        ]
    timings["track"] = time.perf_counter() - start

    cfg = model.config
    cache = cache if cache is not None else FeatureCache(max_bytes=0)
    known = cache.cached_region_frames(model, processor, source) if snap else set()
    targets: list[_Target] = []
    for box, f, q, trk in zip(checked, frame_idxs, questions_n, tracks, strict=True):
        target = _plan_target(source, box, f, q, trk, cfg.num_tracked_boxes)
        if snap:
            target = _snap(target, known | {t for tg in targets for t in (tg.frame_idx, *tg.tracked_frames)})
        targets.append(target)

    start = time.perf_counter()
    union = sorted({f for t in targets for f in (t.frame_idx, *t.tracked_frames)})
    feats = cache.get_features(model, processor, source, union)
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    position = {f: k for k, f in enumerate(union)}
    frame_ids = torch.tensor(
        [[position[f] for f in (t.frame_idx, *t.tracked_frames)] for t in targets], dtype=torch.long
    )  # [B, 1 + n]
    boxes_norm = torch.stack(
        [processor.normalize_boxes([t.box, *t.tracked_boxes], source.width, source.height) for t in targets]
    )  # [B, 1 + n, 4]
    with torch.no_grad():
        region = model.build_region_features(
            None, frame_ids, boxes_norm, fused_maps=stack_region_maps(feats.region_maps, union)
        )
    selected = [
        (t.frame_idx, *(t.tracked_frames[int(s)] for s in region.selected[b])) for b, t in enumerate(targets)
    ]
    timings["region"] = time.perf_counter() - start

    start = time.perf_counter()
    prompts = [
        render_prompt(
            referring_prompt(t.question, cfg.num_region_tokens, template=template), template=template
        )
        for t in targets
    ]
    answers: list[str] = []
    for lo in range(0, count, batch_size):
        answers += _generate(
            model,
            processor,
            prompts[lo : lo + batch_size],
            feats.video_features,
            region.tokens[lo : lo + batch_size],
            options,
            strategy,
        )
    timings["generate"] = time.perf_counter() - start
    return [
        Description(
            answer=a,
            question=t.question,
            frame_idx=t.frame_idx,
            box=t.box,
            track=t.track,
            selected_frames=tuple(int(f) for f in sel),
            timings=dict(timings),
        )
        for a, t, sel in zip(answers, targets, selected, strict=True)
    ]


def _per_target(value: Any, count: int, name: str) -> list[Any]:
    if value is None or isinstance(value, (int, str)):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ArtemisInputError(f"{name} has {len(values)} entries for {count} boxes")
    return values


def _plan_target(
    source: VideoSource, box: Box, frame_idx: int, question: str, track: Track, n: int
) -> _Target:
    """Key frame + ``n`` tracked frames uniform over the frames where the (valid) track is visible."""
    if track.num_frames != source.num_frames or (track.width, track.height) != (source.width, source.height):
        raise ArtemisInputError(
            f"track of {track.num_frames} frames at {track.width}x{track.height} does not fit the video "
            f"({source.num_frames} frames at {source.width}x{source.height})"
        )
    usable: dict[int, Box] = {}
    for f in track.visible_frames:
        valid = _valid_box(track, f)
        if valid is not None:
            usable[f] = valid
    usable.setdefault(frame_idx, box)
    frames = tuple(choose_track_frames(sorted(usable), n))
    return _Target(
        box=box,
        frame_idx=frame_idx,
        question=question,
        track=track,
        tracked_frames=frames,
        tracked_boxes=tuple(usable[f] for f in frames),
    )


def _valid_box(track: Track, frame_idx: int) -> Box | None:
    """The track's box on ``frame_idx``, clipped, or ``None`` (absent or degenerate, e.g. a collapsed tracker)."""
    box = track.boxes[frame_idx]
    if box is None:
        return None
    try:
        return validate_box(box, track.width, track.height)
    except InvalidBoxError as exc:
        logger.warning("ignoring the tracked box on frame %d: %s", frame_idx, exc)
        return None


def _snap(target: _Target, shared: set[int]) -> _Target:
    """Move each tracked frame to the nearest shared frame where the target is visible, within half an interval."""
    visible = [f for f in target.track.visible_frames if f in shared]
    if not visible:
        return target
    span = max(target.tracked_frames) - min(target.tracked_frames)
    tolerance = max(1, span // (2 * max(1, len(target.tracked_frames) - 1)))
    frames, boxes = [], []
    for f, b in zip(target.tracked_frames, target.tracked_boxes, strict=True):
        nearest = min(visible, key=lambda g: (abs(g - f), g))
        snapped = _valid_box(target.track, nearest) if abs(nearest - f) <= tolerance else None
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


def _generation_kwargs(processor: Any, options: GenerationOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "do_sample": options.do_sample,
        "use_cache": options.use_cache,
        "eos_token_id": processor.tokenizer.eos_token_id,
    }
    if options.do_sample:
        kwargs["temperature"] = options.temperature
        if options.top_p is not None:
            kwargs["top_p"] = options.top_p
        kwargs["seed"] = options.seed if options.seed is not None else 0
    return kwargs


@torch.no_grad()
def _generate(
    model: Any,
    processor: Any,
    prompts: list[str],
    video_features: torch.Tensor,
    region_tokens: torch.Tensor,
    options: GenerationOptions,
    strategy: Strategy,
) -> list[str]:
    """Answers for ``prompts`` (one per target) sharing one video."""
    enc = processor(prompts)  # left padded
    device = next(model.language_model.parameters()).device
    input_ids = enc["input_ids"].to(device)
    attention_mask = enc["attention_mask"].to(device)
    batch = input_ids.shape[0]
    video = video_features[None].expand(batch, -1, -1)  # [Tv, Cv] -> [B, Tv, Cv]
    kwargs = _generation_kwargs(processor, options)
    prefix = _shared_prefix_length(input_ids, attention_mask, model.config.region_token_id)
    if strategy == "prefix" and batch > 1 and prefix > 0 and options.use_cache:
        embeds = model.embed_inputs(input_ids, video_features=video, region_features=region_tokens)
        out = model.language_model(inputs_embeds=embeds[:1, :prefix], use_cache=True)
        past = out.cache if "cache" in out else out.past_key_values  # renamed in recent transformers
        past.batch_repeat_interleave(batch)
        seed = kwargs.pop("seed", None)
        call = dict(
            input_ids=input_ids,
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            pad_token_id=model.config.text_config.pad_token_id,
            **kwargs,
        )
        call[_cache_kwarg(model.language_model)] = past
        if not options.do_sample:
            call.update(temperature=None, top_p=None, top_k=None)
        if seed is None:
            generated = model.language_model.generate(**call)
        else:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                generated = model.language_model.generate(**call)
    else:
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            video_features=video,
            region_features=region_tokens,
            **kwargs,
        )
    return processor.batch_decode(generated[:, input_ids.shape[1] :])


def _cache_kwarg(language_model: Any) -> str:
    """``cache`` on recent transformers (``past_key_values`` is deprecated there), ``past_key_values`` before."""
    params = inspect.signature(language_model.prepare_inputs_for_generation).parameters
    return "cache" if "cache" in params else "past_key_values"


def _shared_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor, region_token_id: int) -> int:
    """Tokens shared by every row before the first ``<region>`` (0 when rows are padded)."""
    if not bool(attention_mask.all()):
        return 0
    same = (input_ids == input_ids[:1]).all(0) & (input_ids[0] != region_token_id)  # [L]
    differs = (~same).nonzero()
    return int(differs[0, 0]) if differs.numel() else input_ids.shape[1] - 1


class ArtemisPipeline:
    """A model, its processor and a feature cache, with :func:`describe` / :func:`describe_many` as methods."""

    def __init__(self, model: Any, processor: Any, cache: FeatureCache | None = None) -> None:
        self.model = model
        self.processor = processor
        self.cache = cache if cache is not None else FeatureCache()

    def describe(self, video: VideoInput, box_xyxy: Sequence[float], **kwargs: Any) -> Description:
        kwargs.setdefault("cache", self.cache)
        return describe(self.model, self.processor, video, box_xyxy, **kwargs)

    def describe_many(
        self, video: VideoInput, boxes: Sequence[Sequence[float]], **kwargs: Any
    ) -> list[Description]:
        kwargs.setdefault("cache", self.cache)
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
