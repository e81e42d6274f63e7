"""Original behaviour, point 3: ``--sample`` reproduces the original's decoding settings exactly.

The original called ``generate(do_sample=True, temperature=0.2, max_new_tokens=1024)`` on a model whose
``generation_config.json`` came from Vicuna v1.5 (``top_p`` 0.6, ``temperature`` 0.9) with transformers' ``top_k``
default of 50. The converter carries that file over (``test_convert_tokenizer.py``); here the options read from
it and what reaches ``generate``.
"""

from __future__ import annotations

import json

import torch

from artemis_model.generation import generation_kwargs
from artemis_model.pipeline import ArtemisPipeline
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.types import GenerationOptions
from artemis_model.video.array import ArrayVideo
from evals.predictors import generation_options, original_sampling
from tests.original_behaviour.test_convert_tokenizer import VICUNA_GENERATION_CONFIG


def test_sample_reads_the_converted_generation_config(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps(VICUNA_GENERATION_CONFIG))
    options = generation_options(sample=True, seed=3, model_dir=tmp_path)
    assert options == original_sampling(tmp_path, seed=3)
    assert (options.do_sample, options.temperature, options.top_p, options.top_k) == (True, 0.2, 0.6, 50)
    assert options.max_new_tokens == 1024 and options.seed == 3
    _, processor = tiny_model_and_processor()
    kwargs = generation_kwargs(processor, options)
    assert {k: kwargs[k] for k in ("do_sample", "temperature", "top_p", "top_k", "max_new_tokens")} == {
        "do_sample": True,
        "temperature": 0.2,  # the call's value, not the file's 0.9
        "top_p": 0.6,
        "top_k": 50,
        "max_new_tokens": 1024,
    }


def test_a_top_k_in_the_file_is_used(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({**VICUNA_GENERATION_CONFIG, "top_k": 20}))
    assert original_sampling(tmp_path).top_k == 20


def test_the_sampling_filters_reach_generate(tmp_path):
    """top_p / top_k change what is sampled: with top_k=1 sampling is greedy, whatever the seed."""
    model, processor = tiny_model_and_processor(seed=0)
    pipe = ArtemisPipeline(model, processor)
    gen = torch.Generator().manual_seed(0)
    video = ArrayVideo(torch.randint(0, 256, (6, 40, 48, 3), generator=gen, dtype=torch.uint8).numpy())
    box = (8, 6, 30, 28)
    greedy = pipe.describe(video, box, options=GenerationOptions(max_new_tokens=12)).answer
    hot = [
        pipe.describe(
            video, box, options=GenerationOptions(max_new_tokens=12, do_sample=True, temperature=5.0, seed=s)
        )
        for s in (1, 2, 3)
    ]
    assert any(d.answer != greedy for d in hot)  # at T=5 unfiltered sampling wanders off the greedy answer
    for seed in (1, 2, 3):
        options = GenerationOptions(max_new_tokens=12, do_sample=True, temperature=5.0, top_k=1, seed=seed)
        assert pipe.describe(video, box, options=options).answer == greedy
