"""Batched generation **across videos**: evaluation records of different videos in one ``generate`` call.

``artemis_model.pipeline.describe_many`` batches the targets of *one* video; an evaluation set (HC-STVG) has one
target per video, so that alone generates at batch 1. Here each record is first *prepared* -- its video's global
features and its region tokens, through the pipeline's feature cache (each video decoded and encoded once) --
and then up to ``batch_size`` prepared records of any videos are generated together: prompts left padded, the
per-row video features stacked ``[B, Tv, Cv]``.

The preparation follows the pipeline step by step (key frame + ``num_tracked_boxes`` tracked frames chosen
uniformly over the frames where the target's valid track is visible, key box first; the same prompt). The test
``tests/evals/test_batched_generation.py`` holds it to the pipeline: in float64, the answers of this path at
batch 4/8 equal the pipeline's at batch 1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from artemis_model.errors import InvalidBoxError
from artemis_model.features import FeatureCache, stack_region_maps
from artemis_model.processing_artemis import render_prompt
from artemis_model.prompts import normalize_question, referring_prompt
from artemis_model.selection import choose_track_frames
from artemis_model.types import Box, GenerationOptions, Track, validate_box, validate_frame_idx
from artemis_model.video import VideoSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetRequest:
    """One boxed target of ``source``: key box on ``frame_idx`` and its ground-truth ``track``."""

    key: str
    box: Box
    frame_idx: int
    track: Track
    question: str | None = None


@dataclass(frozen=True)
class PreparedTarget:
    """Everything generation needs for one target."""

    key: str
    prompt: str
    video_features: torch.Tensor
    """``[Tv, Cv]`` global video features (shared by the targets of one video, not copied)."""
    region_tokens: torch.Tensor
    """``[1 + K, D]`` key token then the K selected tracked tokens."""


def _usable_boxes(track: Track, frame_idx: int, box: Box) -> dict[int, Box]:
    usable: dict[int, Box] = {}
    for f in track.visible_frames:
        raw = track.boxes[f]
        assert raw is not None  # visible_frames lists only frames with a box
        try:
            usable[f] = validate_box(raw, track.width, track.height)
        except InvalidBoxError as exc:
            logger.warning("ignoring the track box on frame %d: %s", f, exc)
    usable.setdefault(frame_idx, box)
    return usable


@torch.no_grad()
def prepare_targets(
    model: Any,
    processor: Any,
    source: VideoSource,
    requests: Sequence[TargetRequest],
    *,
    cache: FeatureCache,
    template: str = "train",
) -> list[PreparedTarget]:
    """Features and region tokens of several targets of one video (one feature pass for their frame union)."""
    cfg = model.config
    planned: list[tuple[TargetRequest, Box, tuple[int, ...], tuple[Box, ...], str]] = []
    for req in requests:
        validate_frame_idx(req.frame_idx, source.num_frames)
        box = validate_box(req.box, source.width, source.height)
        usable = _usable_boxes(req.track, req.frame_idx, box)
        frames = tuple(choose_track_frames(sorted(usable), cfg.num_tracked_boxes))
        planned.append((req, box, frames, tuple(usable[f] for f in frames), normalize_question(req.question)))
    union = sorted({f for req, _, frames, _, _ in planned for f in (req.frame_idx, *frames)})
    feats = cache.get_features(model, processor, source, union)
    position = {f: k for k, f in enumerate(union)}
    frame_ids = torch.tensor(
        [[position[f] for f in (req.frame_idx, *frames)] for req, _, frames, _, _ in planned],
        dtype=torch.long,
    )  # [B, 1 + n]
    boxes_norm = torch.stack(
        [
            processor.normalize_boxes([box, *tboxes], source.width, source.height)
            for _, box, _, tboxes, _ in planned
        ]
    )  # [B, 1 + n, 4]
    region = model.build_region_features(
        None, frame_ids, boxes_norm, fused_maps=stack_region_maps(feats.region_maps, union)
    )
    assert feats.video_features is not None  # asked with_global=True
    return [
        PreparedTarget(
            key=req.key,
            prompt=render_prompt(
                referring_prompt(q, cfg.num_region_tokens, template=template), template=template
            ),
            video_features=feats.video_features,
            region_tokens=region.tokens[b],
        )
        for b, (req, _, _, _, q) in enumerate(planned)
    ]


def generation_kwargs(processor: Any, options: GenerationOptions) -> dict[str, Any]:
    """``generate`` keyword arguments of ``options`` (greedy unless ``do_sample``)."""
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
def generate_prepared(
    model: Any,
    processor: Any,
    targets: Sequence[PreparedTarget],
    options: GenerationOptions = GenerationOptions(),
    *,
    batch_size: int = 8,
    extra_generate_kwargs: dict[str, Any] | None = None,
) -> list[str]:
    """Answers of ``targets`` (any videos), ``batch_size`` rows per ``generate`` call, in order.

    Greedy answers do not depend on ``batch_size`` (up to floating-point ties); sampled ones do (one seeded
    generator per call). ``extra_generate_kwargs`` go to ``generate`` as they are (e.g. ``min_new_tokens``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    device = next(model.language_model.parameters()).device
    kwargs = {**generation_kwargs(processor, options), **(extra_generate_kwargs or {})}
    answers: list[str] = []
    for lo in range(0, len(targets), batch_size):
        chunk = targets[lo : lo + batch_size]
        enc = processor([t.prompt for t in chunk])  # left padded
        input_ids = enc["input_ids"].to(device)
        video = torch.stack([t.video_features for t in chunk]).to(device)  # B x [Tv, Cv] -> [B, Tv, Cv]
        region = torch.stack([t.region_tokens for t in chunk]).to(device)  # B x [1+K, D] -> [B, 1+K, D]
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=enc["attention_mask"].to(device),
            video_features=video,
            region_features=region,
            **kwargs,
        )
        answers += processor.batch_decode(generated[:, input_ids.shape[1] :])
    return answers
