"""Fast decoding (``GenerationOptions(cache="static", compile=...)``) gives the plain path's greedy tokens.

On the tiny model on CPU, float32: one target, several targets of one video (batched and prefix sharing), several
videos and prompts of different lengths (left padded); the static cache really is what ``generate`` decodes with,
a :class:`StaticCachePool` keeps it between calls and what an earlier call left in it never changes an answer; ``compile=True`` really
compiles (dynamo counts a graph) and still gives the same tokens (marked slow: ~27 s with a cold inductor cache);
bad options are refused with the bad value and the allowed ones named. The tiny LM is initialised with a 10x wider
spread than the default (``initializer_range`` 0.2) so that its attention is sharp enough for a wrong key in the
cache to change tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import torch
from transformers import StaticCache

from artemis_model.generation import (
    STATIC_CACHE_BUCKET,
    PreparedTarget,
    StaticCachePool,
    decode_kwargs,
    generate_prepared,
)
from artemis_model.processing_artemis import render_prompt
from artemis_model.prompts import normalize_question, referring_prompt
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.types import GenerationOptions, Track

NEW = 10
PLAIN = GenerationOptions(max_new_tokens=NEW)
STATIC = GenerationOptions(max_new_tokens=NEW, cache="static")
FULL_LENGTH = {"min_new_tokens": NEW}  # every row generates all NEW tokens: the comparison covers them all
QUESTIONS = (
    None,
    "What is the <region> doing?",
    "Describe where the <region> goes and what it does after it stops near the edge of the screen.",
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_proc():
    return tiny_model_and_processor(seed=0, text_config={"initializer_range": 0.2})


def _targets(
    model: Any, questions: Sequence[str | None], *, videos: int = 1, seed: int = 0
) -> list[PreparedTarget]:
    """One target per question; target ``i`` on video ``i % videos`` (targets of one video share its tensor)."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    feats = [
        torch.randn(cfg.num_video_tokens, cfg.vision_config.hidden_size, generator=gen) for _ in range(videos)
    ]
    track = Track(boxes=((1.0, 1.0, 8.0, 8.0),), width=10, height=10)
    out = []
    for i, q in enumerate(questions):
        question = normalize_question(q)
        prompt = render_prompt(
            referring_prompt(question, cfg.num_region_tokens, template="train"), template="train"
        )
        region = 3 * torch.randn(1 + cfg.num_region_tokens, cfg.text_config.hidden_size, generator=gen)
        out.append(
            PreparedTarget(
                prompt=prompt,
                video_features=feats[i % videos],
                region_tokens=region,
                question=question,
                frame_idx=0,
                box=(1.0, 1.0, 8.0, 8.0),
                track=track,
                selected_frames=(0,),
            )
        )
    return out


def _token_ids(monkeypatch, model, proc, targets, options, **kwargs) -> list[list[int]]:
    """The new token ids per target (captured where ``generate_prepared`` decodes them), and the answers agree."""
    captured: list[list[int]] = []
    decode = proc.batch_decode

    def spy(ids, **kw):
        captured.extend(row.tolist() for row in ids)
        return decode(ids, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(proc, "batch_decode", spy)
        answers = generate_prepared(
            model, proc, targets, options, extra_generate_kwargs=FULL_LENGTH, **kwargs
        )
    assert len(captured) == len(targets) == len(answers)
    assert all(len(row) == NEW for row in captured)
    return captured


def test_single_target_static_cache_gives_the_plain_tokens(monkeypatch, model_proc):
    model, proc = model_proc
    targets = _targets(model, [None])
    plain = _token_ids(monkeypatch, model, proc, targets, PLAIN)
    assert _token_ids(monkeypatch, model, proc, targets, STATIC) == plain


@pytest.mark.parametrize("strategy", ["batched", "prefix"])
def test_targets_of_one_video_static_cache_gives_the_plain_tokens(monkeypatch, model_proc, strategy):
    model, proc = model_proc
    targets = _targets(model, [None] * 4)  # one video, equal prompts: the prefix strategy shares the prefix
    plain = _token_ids(monkeypatch, model, proc, targets, PLAIN, batch_size=4)
    one_by_one = [_token_ids(monkeypatch, model, proc, [t], PLAIN)[0] for t in targets]
    assert plain == one_by_one and len({tuple(r) for r in plain}) > 1  # a non-trivial oracle
    fast = _token_ids(monkeypatch, model, proc, targets, STATIC, batch_size=4, strategy=strategy)
    assert fast == plain


def test_prompts_of_different_lengths_and_videos_static_cache_gives_the_plain_tokens(monkeypatch, model_proc):
    model, proc = model_proc
    targets = _targets(model, [QUESTIONS[i % 3] for i in range(6)], videos=2)
    lengths = {len(proc([t.prompt])["input_ids"][0]) for t in targets}
    assert len(lengths) == 3  # left padding in every batch
    plain = [_token_ids(monkeypatch, model, proc, [t], PLAIN)[0] for t in targets]
    assert len({tuple(r) for r in plain}) > 1
    for strategy in ("batched", "prefix"):
        fast = _token_ids(monkeypatch, model, proc, targets, STATIC, batch_size=3, strategy=strategy)
        assert fast == plain, strategy


def _spy_generate(monkeypatch, model) -> list[dict[str, Any]]:
    """The keyword arguments of every call of the language model's ``generate``."""
    calls: list[dict[str, Any]] = []
    original = model.language_model.generate

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(model.language_model, "generate", spy)
    return calls


def _cache_of(call: dict[str, Any]) -> Any:
    return call["cache"] if "cache" in call else call.get("past_key_values")


@pytest.mark.parametrize("strategy", ["batched", "prefix"])
def test_generate_decodes_with_a_static_cache(monkeypatch, model_proc, strategy):
    """What reaches ``generate``: a ``StaticCache`` of the call's rows, sized to a bucket, compilation off."""
    model, proc = model_proc
    calls = _spy_generate(monkeypatch, model)
    generate_prepared(model, proc, _targets(model, [None] * 3), STATIC, batch_size=3, strategy=strategy)
    (call,) = calls
    assert call["disable_compile"] is True and "compile_config" not in call
    assert "cache_implementation" not in call
    cache = _cache_of(call)
    assert isinstance(cache, StaticCache)
    needed = call["input_ids"].shape[1] + NEW
    assert cache.get_max_length() % STATIC_CACHE_BUCKET == 0
    assert needed <= cache.get_max_length() < needed + STATIC_CACHE_BUCKET
    assert cache.layers[0].keys.shape[0] == 3  # one row per target


def test_static_caches_are_kept_between_calls_and_leave_nothing_behind(monkeypatch, model_proc):
    """With a pool: one cache object per (rows, length bucket) across calls -- what CUDA graphs replay on -- and
    positions an earlier, longer call wrote never change a later answer (the prefix path leaves the most
    behind). Without one, every call decodes in a fresh cache."""
    model, proc = model_proc
    pool = StaticCachePool()
    long_q, short_q = QUESTIONS[0], QUESTIONS[1]  # 107 and 104 prompt positions: one bucket
    long_t, short_t = _targets(model, [long_q, long_q]), _targets(model, [short_q, short_q], seed=1)
    lengths = [len(proc([t[0].prompt])["input_ids"][0]) + NEW for t in (long_t, short_t)]
    bucket = [-(-n // STATIC_CACHE_BUCKET) for n in lengths]
    assert lengths[0] > lengths[1] and bucket[0] == bucket[1]
    plain = _token_ids(monkeypatch, model, proc, short_t, PLAIN, batch_size=2)

    calls = _spy_generate(monkeypatch, model)
    generate_prepared(model, proc, long_t, STATIC, batch_size=2, strategy="prefix", static_caches=pool)
    generate_prepared(model, proc, short_t[:1], STATIC, static_caches=pool)  # one row: another cache
    fast = _token_ids(
        monkeypatch, model, proc, short_t, STATIC, batch_size=2, strategy="prefix", static_caches=pool
    )
    assert fast == plain
    first, single, again = (_cache_of(c) for c in calls)
    assert again is first and single is not first
    assert pool.release(model) == 2
    generate_prepared(model, proc, short_t, STATIC, batch_size=2, static_caches=pool)
    assert len(calls) == 4 and _cache_of(calls[-1]) is not first and pool.release(model) == 1
    generate_prepared(model, proc, short_t, STATIC, batch_size=2)
    generate_prepared(model, proc, short_t, STATIC, batch_size=2)
    assert _cache_of(calls[-1]) is not _cache_of(calls[-2])  # no pool: a fresh cache per call


@pytest.mark.slow
def test_compile_gives_the_plain_tokens(monkeypatch, model_proc):
    from torch._dynamo.utils import counters

    model, proc = model_proc
    targets = _targets(model, [None, None])
    plain = _token_ids(monkeypatch, model, proc, targets, PLAIN, batch_size=2)
    before = counters["stats"]["unique_graphs"]
    options = GenerationOptions(max_new_tokens=NEW, cache="static", compile=True)
    pool = StaticCachePool()
    fast = _token_ids(
        monkeypatch, model, proc, targets, options, batch_size=2, strategy="prefix", static_caches=pool
    )
    compiled = counters["stats"]["unique_graphs"]
    assert compiled > before  # the decoding step went through torch.compile
    assert fast == plain
    again = _token_ids(
        monkeypatch, model, proc, targets[::-1], options, batch_size=2, static_caches=pool
    )  # the batched path
    assert again == plain[::-1]
    # same rows and length bucket: the kept cache, no recompilation
    assert counters["stats"]["unique_graphs"] == compiled


def test_decode_kwargs_per_device():
    assert decode_kwargs(PLAIN, "cpu") == {}
    assert decode_kwargs(STATIC, "cuda") == {"disable_compile": True}
    compiled = GenerationOptions(cache="static", compile=True)
    gpu = decode_kwargs(compiled, torch.device("cuda", 0))["compile_config"]
    assert gpu.mode == "reduce-overhead" and not gpu._compile_all_devices  # CUDA graphs
    cpu = decode_kwargs(compiled, "cpu")
    assert cpu["disable_compile"] is False
    assert cpu["compile_config"].mode == "default" and cpu["compile_config"]._compile_all_devices


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cache": "paged"}, r"cache='paged' is unknown; allowed: 'dynamic', 'static'"),
        ({"compile": True}, r"compile=True needs cache='static' \(got cache='dynamic'\)"),
        ({"cache": "static", "use_cache": False}, r"cache='static' needs use_cache=True"),
    ],
)
def test_invalid_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationOptions(**kwargs)
