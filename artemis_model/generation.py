"""Generation of prepared targets: :func:`generate_prepared` (the second step of the pipeline).

A :class:`PreparedTarget` holds everything generation needs for one boxed target -- its rendered prompt, its
video's global features and its region tokens -- plus what the answer is reported with (question, key frame and
box, track, selected frames). :func:`artemis_model.pipeline.prepare_targets` makes them; any number of them, of
one video or of several, are generated here ``batch_size`` rows per ``generate`` call (prompts left padded, the
per-row video features stacked ``[B, Tv, Cv]``).

``strategy="prefix"``: when the rows of a call share one video (the same feature tensor) and their prompts have
equal lengths, the LM runs the common prefix -- system text and the video tokens -- once and its KV cache is
repeated for the rows; otherwise (and always with ``"batched"``) the rows are generated as a padded batch.
Neither ever generates a placeholder id (``<image>``, ``<video>``, ``<region>``: ``suppress_tokens``).

Fast decoding (``GenerationOptions.cache`` / ``GenerationOptions.compile``): ``cache="static"`` decodes with
a transformers ``StaticCache`` of the call's ``B`` rows (on the prefix path the shared prefix's KV is written into
it), and ``compile=True`` lets ``generate`` ``torch.compile`` its decoding step (:func:`decode_kwargs`:
``CompileConfig``, CUDA graphs on a GPU). Given a :class:`StaticCachePool` (``static_caches=``; the
:class:`~artemis_model.pipeline.ArtemisPipeline` owns one), static caches are **kept between calls** per language
model, batch size and length bucket (:data:`STATIC_CACHE_BUCKET` positions): a CUDA graph replays only on the
buffers it was recorded with, so a fresh cache per call (what happens without a pool, and transformers' own
``cache_implementation="static"``) would re-record the graphs every call. :meth:`StaticCachePool.release` frees
them. Both strategies support both options; greedy tokens are those of the plain path
(``tests/artemis_model/test_fast_generation.py``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import CompileConfig, StaticCache

from artemis_model.lru import LRUCache
from artemis_model.types import Box, GenerationOptions, Track

logger = logging.getLogger(__name__)

Strategy = Literal["batched", "prefix"]
STRATEGIES: tuple[str, ...] = ("batched", "prefix")
COMPILE_DEVICE_TYPES: tuple[str, ...] = ("cuda", "xpu", "mps")
"""Device types where ``compile=True`` uses transformers' default ``CompileConfig``
(``mode="reduce-overhead"``: CUDA graphs); elsewhere (CPU: tests, dry runs) it compiles with
``mode="default"``."""
STATIC_CACHE_BUCKET = 64
"""Static caches are sized to prompt + ``max_new_tokens`` rounded up to a multiple of this: prompts of nearby
lengths share one cache (and one compiled graph); the extra positions are masked."""
STATIC_CACHES_KEPT = 4
"""Free static caches a :class:`StaticCachePool` keeps per language model (least recently used dropped first)."""


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


def placeholder_ids(processor: Any) -> list[int]:
    """The ids of ``<image>``, ``<video>``, ``<region>`` in ``processor``'s tokenizer, sorted."""
    return sorted(int(i) for i in processor.token_ids.values())


def with_suppressed(kwargs: dict[str, Any], ids: Sequence[int]) -> dict[str, Any]:
    """``kwargs`` (modified in place) with ``ids`` added to its ``suppress_tokens`` (a caller's list is kept)."""
    given = kwargs.get("suppress_tokens") or []
    kwargs["suppress_tokens"] = sorted({int(i) for i in given} | {int(i) for i in ids})
    return kwargs


def generation_kwargs(processor: Any, options: GenerationOptions) -> dict[str, Any]:
    """``generate`` keyword arguments of ``options`` (greedy unless ``do_sample``).

    ``suppress_tokens`` holds the placeholder ids (``<image>``, ``<video>``, ``<region>``): rows of the
    vocabulary (32003 for Artemis-7B) that are not words, so no strategy ever generates them.
    """
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "do_sample": options.do_sample,
        "use_cache": options.use_cache,
        "eos_token_id": processor.tokenizer.eos_token_id,
        "suppress_tokens": placeholder_ids(processor),
    }
    if options.do_sample:
        kwargs["temperature"] = options.temperature
        if options.top_p is not None:
            kwargs["top_p"] = options.top_p
        if options.top_k is not None:
            kwargs["top_k"] = options.top_k
        kwargs["seed"] = options.seed if options.seed is not None else 0
    return kwargs


@dataclass(frozen=True)
class GeneratedAnswer:
    """One generated answer: its text, how many tokens it took (``</s>`` included) and whether it hit
    ``max_new_tokens`` before ``</s>`` (then it may be cut short)."""

    text: str
    num_tokens: int
    hit_limit: bool


def _answer_lengths(new_tokens: torch.Tensor, eos_token_id: int | None) -> list[tuple[int, bool]]:
    """Per row of ``[B, N]`` generated ids: (tokens up to and including the first ``</s>``, no ``</s>`` at all)."""
    lengths = []
    for row in new_tokens.tolist():
        if eos_token_id is not None and eos_token_id in row:
            lengths.append((row.index(eos_token_id) + 1, False))
        else:
            lengths.append((len(row), True))
    return lengths


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
    static_caches: StaticCachePool | None = None,
) -> list[str]:
    """Answers of ``targets`` (any videos), ``batch_size`` rows per ``generate`` call, in order (the texts of
    :func:`generate_answers`)."""
    answers = generate_answers(
        model,
        processor,
        targets,
        options,
        batch_size=batch_size,
        strategy=strategy,
        extra_generate_kwargs=extra_generate_kwargs,
        static_caches=static_caches,
    )
    return [a.text for a in answers]


@torch.no_grad()
def generate_answers(
    model: Any,
    processor: Any,
    targets: Sequence[PreparedTarget],
    options: GenerationOptions = GenerationOptions(),
    *,
    batch_size: int = 8,
    strategy: Strategy = "batched",
    extra_generate_kwargs: dict[str, Any] | None = None,
    static_caches: StaticCachePool | None = None,
) -> list[GeneratedAnswer]:
    """Answers of ``targets`` (any videos) with their token counts, ``batch_size`` rows per ``generate`` call.

    Greedy answers do not depend on ``batch_size`` or ``strategy`` (up to floating-point ties); sampled ones
    do (one seeded generator per call). ``extra_generate_kwargs`` go to ``generate`` as they are
    (e.g. ``min_new_tokens``), except that a ``suppress_tokens`` there is merged with the placeholder ids.
    With ``options.cache == "static"``, ``static_caches`` keeps the caches for the next calls (``None``: fresh
    caches per call).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is unknown; allowed: {STRATEGIES}")
    device = next(model.language_model.parameters()).device
    kwargs = {
        **generation_kwargs(processor, options),
        **decode_kwargs(options, device),
        **(extra_generate_kwargs or {}),
    }
    with_suppressed(kwargs, placeholder_ids(processor))  # extra kwargs may add to the list, never drop it
    if options.cache == "static" and static_caches is None:
        static_caches = StaticCachePool()  # this call's caches (shared by its chunks), dropped afterwards
    pool = static_caches if options.cache == "static" else None
    answers: list[GeneratedAnswer] = []
    for lo in range(0, len(targets), batch_size):
        answers += _generate_chunk(
            model, processor, targets[lo : lo + batch_size], dict(kwargs), strategy, pool
        )
    hits = sum(a.hit_limit for a in answers)
    if hits:
        logger.warning(
            "%d of %d answers hit max_new_tokens=%d before </s> and may be cut short",
            hits,
            len(answers),
            kwargs["max_new_tokens"],
        )
    return answers


def decode_kwargs(options: GenerationOptions, device: torch.device | str) -> dict[str, Any]:
    """``generate`` keyword arguments of the compilation of ``options`` on ``device`` (the static cache itself is
    passed by :func:`generate_prepared`).

    ``cache="dynamic"``: none (transformers' default ``DynamicCache``, no compilation). ``cache="static"``:
    ``disable_compile=not options.compile`` (transformers would otherwise compile a static-cache decode on a GPU
    on its own); with ``compile=True`` a ``CompileConfig`` (the default one on :data:`COMPILE_DEVICE_TYPES`;
    elsewhere ``mode="default"`` with the flag that lets ``generate`` compile there).
    """
    if options.cache == "dynamic":
        return {}
    kwargs: dict[str, Any] = {"disable_compile": not options.compile}
    if options.compile:
        if torch.device(device).type in COMPILE_DEVICE_TYPES:
            config = CompileConfig()
        else:
            config = CompileConfig(mode="default")
            config._compile_all_devices = True  # transformers' own switch for compiling off-GPU (tests, CPU)
        kwargs["compile_config"] = config
    return kwargs


def _generate_chunk(
    model: Any,
    processor: Any,
    chunk: Sequence[PreparedTarget],
    kwargs: dict[str, Any],
    strategy: Strategy,
    static_caches: StaticCachePool | None = None,
) -> list[GeneratedAnswer]:
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
    with _static_cache(
        static_caches, model.language_model, batch, input_ids.shape[1] + kwargs["max_new_tokens"]
    ) as cache:
        if strategy == "prefix" and batch > 1 and prefix > 0 and kwargs["use_cache"]:
            generated = _generate_with_shared_prefix(
                model, input_ids, attention_mask, video, region, prefix, kwargs, device, cache
            )
        else:
            if cache is not None:
                kwargs[_cache_kwarg(model.language_model)] = cache
            generated = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                video_features=video,
                region_features=region,
                **kwargs,
            )
    new_tokens = generated[:, input_ids.shape[1] :]
    texts = processor.batch_decode(new_tokens)
    lengths = _answer_lengths(new_tokens, kwargs.get("eos_token_id"))
    return [
        GeneratedAnswer(text, count, no_eos and count >= kwargs["max_new_tokens"])
        for text, (count, no_eos) in zip(texts, lengths, strict=True)
    ]


def _generate_with_shared_prefix(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    video: torch.Tensor,
    region: torch.Tensor,
    prefix: int,
    kwargs: dict[str, Any],
    device: torch.device,
    static_cache: StaticCache | None = None,
) -> torch.Tensor:
    """Run the first ``prefix`` tokens once, repeat their KV cache for the ``B`` rows, generate from there.

    With a (reset) ``static_cache`` of ``B`` rows the repeated prefix is written into it and generation goes on
    in it; else the prefix's ``DynamicCache`` is repeated.
    """
    batch = input_ids.shape[0]
    embeds = model.embed_inputs(input_ids, video_features=video, region_features=region)
    out = model.language_model(inputs_embeds=embeds[:1, :prefix], use_cache=True)
    past = out.cache if "cache" in out else out.past_key_values  # renamed in recent transformers
    if static_cache is not None:
        past = _write_repeated(static_cache, past, batch)
    else:
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


def _write_repeated(cache: StaticCache, prefix_cache: Any, batch: int) -> StaticCache:
    """``cache`` (empty, ``batch`` rows) with the one-row ``prefix_cache`` written into each row (positions 0..P-1)."""
    if len(cache.layers) != len(prefix_cache.layers):
        raise ValueError(
            f"the prefix cache has {len(prefix_cache.layers)} layers, the static cache {len(cache.layers)}"
        )
    for idx, layer in enumerate(prefix_cache.layers):  # [1, H, P, d] -> [B, H, P, d], written in place
        cache.update(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1), idx)
    return cache


class StaticCachePool:
    """Free ``StaticCache`` s kept between generation calls, per language model, batch size, length bucket
    (:data:`STATIC_CACHE_BUCKET`), dtype and device: at most ``kept`` per language model, the least recently
    used dropped first (``kept=0``: none kept, a fresh cache per call). A cache is held by one call at a time.

    Owned by whoever owns the model (:class:`~artemis_model.pipeline.ArtemisPipeline`) and passed to
    :func:`generate_answers` as ``static_caches``.
    """

    def __init__(self, kept: int = STATIC_CACHES_KEPT) -> None:
        self.kept = kept
        self._free: weakref.WeakKeyDictionary[Any, LRUCache[tuple[Any, ...], StaticCache]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @contextmanager
    def take(self, language_model: Any, batch: int, length: int) -> Iterator[StaticCache]:
        """A reset ``StaticCache`` for ``batch`` rows of ``length`` positions (rounded up to
        :data:`STATIC_CACHE_BUCKET`), taken from the free ones or new, and given back afterwards."""
        ref = next(language_model.parameters())
        max_cache_len = -(-length // STATIC_CACHE_BUCKET) * STATIC_CACHE_BUCKET
        key = (batch, max_cache_len, ref.dtype, ref.device)
        with self._lock:
            free = self._free.get(language_model)
            if free is None:
                free = self._free[language_model] = LRUCache(self.kept)
        cache = free.pop(key)
        if cache is None:
            cache = StaticCache(config=language_model.config, max_cache_len=max_cache_len)
        else:
            cache.reset()  # zeroes the buffers in place: their addresses (what a CUDA graph replays on) stay
        yield cache
        free.put(key, cache)

    def release(self, model: Any) -> int:
        """Drop the caches kept for ``model`` (an Artemis model or its language model); how many."""
        language_model = getattr(model, "language_model", model)
        with self._lock:
            free = self._free.pop(language_model, None)
        return len(free) if free is not None else 0


@contextmanager
def _static_cache(
    pool: StaticCachePool | None, language_model: Any, batch: int, length: int
) -> Iterator[StaticCache | None]:
    """``pool``'s cache for the call (see :meth:`StaticCachePool.take`); ``None`` without a pool."""
    if pool is None:
        yield None
        return
    with pool.take(language_model, batch, length) as cache:
        yield cache


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
