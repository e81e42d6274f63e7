"""Generation of prepared targets: :func:`generate_prepared` (the second step of the pipeline).

A :class:`PreparedTarget` holds everything generation needs for one boxed target -- its rendered prompt, its
video's global features and its region tokens -- plus what the answer is reported with (question, key frame and
box, track, selected frames). :func:`artemis_model.pipeline.prepare_targets` makes them; any number of them, of
one video or of several, are generated here ``batch_size`` rows per ``generate`` call (prompts left padded, the
per-row video features stacked ``[B, Tv, Cv]``).

``strategy="prefix"``: when the rows of a call share one video (the same feature tensor) and their prompts have
equal lengths, the LM runs the common prefix -- system text and the video tokens -- once and its KV cache is
repeated for the rows; otherwise (and always with ``"batched"``) the rows are generated as a padded batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from artemis_model.types import Box, GenerationOptions, Track

Strategy = Literal["batched", "prefix"]
STRATEGIES: tuple[str, ...] = ("batched", "prefix")


@dataclass(frozen=True)
class PreparedTarget:
    """One target ready to generate: prompt, video features, region tokens, and what the answer reports."""

    prompt: str
    video_features: torch.Tensor
    """``[Tv, Cv]`` global video features (shared by the targets of one video, not copied)."""
    region_tokens: torch.Tensor
    """``[1 + K, D]`` key token then the K selected tracked tokens."""
    question: str
    frame_idx: int
    box: Box
    track: Track
    selected_frames: tuple[int, ...]
    """Key frame first, then the frames of the K selected tracked tokens."""


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
    strategy: Strategy = "batched",
    extra_generate_kwargs: dict[str, Any] | None = None,
) -> list[str]:
    """Answers of ``targets`` (any videos), ``batch_size`` rows per ``generate`` call, in order.

    Greedy answers do not depend on ``batch_size`` or ``strategy`` (up to floating-point ties); sampled ones
    do (one seeded generator per call). ``extra_generate_kwargs`` go to ``generate`` as they are
    (e.g. ``min_new_tokens``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is unknown; allowed: {STRATEGIES}")
    kwargs = {**generation_kwargs(processor, options), **(extra_generate_kwargs or {})}
    answers: list[str] = []
    for lo in range(0, len(targets), batch_size):
        answers += _generate_chunk(model, processor, targets[lo : lo + batch_size], dict(kwargs), strategy)
    return answers


def _generate_chunk(
    model: Any,
    processor: Any,
    chunk: Sequence[PreparedTarget],
    kwargs: dict[str, Any],
    strategy: Strategy,
) -> list[str]:
    enc = processor([t.prompt for t in chunk])  # left padded
    device = next(model.language_model.parameters()).device
    input_ids = enc["input_ids"].to(device)
    attention_mask = enc["attention_mask"].to(device)
    batch = input_ids.shape[0]
    shared = all(t.video_features is chunk[0].video_features for t in chunk)
    if shared:
        video = chunk[0].video_features[None].expand(batch, -1, -1)  # [Tv, Cv] -> [B, Tv, Cv]
    else:
        video = torch.stack([t.video_features for t in chunk])  # B x [Tv, Cv] -> [B, Tv, Cv]
    video = video.to(device)
    region = torch.stack([t.region_tokens for t in chunk]).to(device)  # B x [1+K, D] -> [B, 1+K, D]
    prefix = _shared_prefix_length(input_ids, attention_mask, model.config.region_token_id) if shared else 0
    if strategy == "prefix" and batch > 1 and prefix > 0 and kwargs["use_cache"]:
        generated = _generate_with_shared_prefix(
            model, input_ids, attention_mask, video, region, prefix, kwargs, device
        )
    else:
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            video_features=video,
            region_features=region,
            **kwargs,
        )
    return processor.batch_decode(generated[:, input_ids.shape[1] :])


def _generate_with_shared_prefix(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    video: torch.Tensor,
    region: torch.Tensor,
    prefix: int,
    kwargs: dict[str, Any],
    device: torch.device,
) -> torch.Tensor:
    """Run the first ``prefix`` tokens once, repeat their KV cache for the ``B`` rows, generate from there."""
    batch = input_ids.shape[0]
    embeds = model.embed_inputs(input_ids, video_features=video, region_features=region)
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
    if not kwargs["do_sample"]:
        call.update(temperature=None, top_p=None, top_k=None)
    if seed is None:
        return model.language_model.generate(**call)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return model.language_model.generate(**call)


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
