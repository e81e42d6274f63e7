"""Original behaviour, points 2 and 3: conversion from a ``tokenizer.model``-only base, and the generation config.

The original saved Vicuna's tokenizer slow (``tokenizer.model`` + ``tokenizer_config.json``) and its ``generate``
inherited the base's ``generation_config.json`` (Vicuna v1.5's: ``top_p`` 0.6, ``temperature`` 0.9).
"""

from __future__ import annotations

import json

import pytest
import sentencepiece as spm
from transformers import GenerationConfig

from artemis_model.convert.synthetic import write_original_checkpoint
from artemis_model.processing_artemis import EVAL_QUESTION, ArtemisProcessor, render_prompt
from tests.artemis_model.convert.test_convert import _cfg, _convert
from tests.original_behaviour.sentencepiece_models import (
    train_tiny_tokenizer_model,
    write_llama_tokenizer_model,
)
from tests.original_behaviour.test_prompt_ids import golden_eval_prompt

VICUNA_GENERATION_CONFIG = {  # lmsys/vicuna-7b-v1.5's generation_config.json
    "bos_token_id": 1,
    "eos_token_id": 2,
    "max_length": 4096,
    "pad_token_id": 0,
    "temperature": 0.9,
    "top_p": 0.6,
    "transformers_version": "4.31.0",
}


def _eval_ids_by_sentencepiece(model_file, region_id: int, video_id: int, num_video: int) -> list[int]:
    """The original's ids of the evaluation prompt: each text chunk through the SentencePiece model itself."""
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    text = render_prompt(EVAL_QUESTION, template="eval_original")
    head, rest = text.split("<video>")
    ids = [sp.bos_id(), *sp.encode(head), *[video_id] * num_video]
    chunks = rest.split("<region>")
    for i, chunk in enumerate(chunks):
        ids += sp.encode(chunk) if chunk else []
        if i < len(chunks) - 1:
            ids.append(region_id)
    return ids


def test_convert_from_a_tokenizer_model_only_base(tmp_path):
    model_file = train_tiny_tokenizer_model(tmp_path / "tiny.model")
    ckpt = write_original_checkpoint(tmp_path / "orig", _cfg(), tokenizer_model=model_file)
    assert sorted(p.name for p in ckpt.base.glob("tokenizer*")) == [
        "tokenizer.model",
        "tokenizer_config.json",
    ]
    out = tmp_path / "out"
    report = _convert(ckpt, out)
    assert report.added_tokens == {"<image>": 400, "<video>": 401, "<region>": 402}
    assert (out / "tokenizer.model").read_bytes() == model_file.read_bytes()
    processor = ArtemisProcessor.from_pretrained(out)
    assert processor.prompt_template == "eval_original" and processor.sentencepiece_model is not None
    assert processor.tokenizer.pad_token == "<unk>"  # as the original: pad = unk
    want = _eval_ids_by_sentencepiece(model_file, 402, 401, processor.num_video_tokens)
    assert processor.encode(render_prompt(EVAL_QUESTION, template="eval_original")) == want
    assert json.loads((out / "artemis_conversion.json").read_text())["sentencepiece_model"] is True


def test_convert_from_a_tokenizer_json_base_keeps_working(tmp_path):
    ckpt = write_original_checkpoint(tmp_path / "orig", _cfg())
    assert (ckpt.base / "tokenizer.json").is_file() and not (ckpt.base / "tokenizer.model").exists()
    out = tmp_path / "out"
    _convert(ckpt, out)
    processor = ArtemisProcessor.from_pretrained(out)
    assert processor.sentencepiece_model is None and not (out / "tokenizer.model").exists()
    assert processor.encode(render_prompt(EVAL_QUESTION, template="eval_original"))[0] == 1  # BOS


def test_convert_with_the_real_llama_vocabulary_gives_the_original_prompt(tmp_path):
    """The real 32000-word vocabulary, ``tokenizer.model`` only: the converted processor's 425 golden ids."""
    model_file = write_llama_tokenizer_model(tmp_path / "llama.model")
    ckpt = write_original_checkpoint(tmp_path / "orig", _cfg(), tokenizer_model=model_file, num_shards=1)
    out = tmp_path / "out"
    report = _convert(ckpt, out)
    assert report.vocab_size == 32003
    processor = ArtemisProcessor.from_pretrained(out)
    want = golden_eval_prompt(processor.num_video_tokens)  # a tiny model: fewer video tokens than 356
    assert processor.encode(render_prompt(EVAL_QUESTION, template="eval_original")) == want


@pytest.mark.parametrize("present", [True, False])
def test_the_base_generation_config_is_carried_over(tmp_path, present):
    ckpt = write_original_checkpoint(
        tmp_path / "orig", _cfg(), generation_config=VICUNA_GENERATION_CONFIG if present else None
    )
    out = tmp_path / "out"
    report = _convert(ckpt, out)
    assert report.generation_config["found"] is present
    generation = GenerationConfig.from_pretrained(out)
    if present:
        assert report.generation_config["settings"]["top_p"] == 0.6
        assert (generation.top_p, generation.temperature, generation.max_length) == (0.6, 0.9, 4096)
    else:
        assert report.generation_config["settings"] == {}
        assert generation.top_p is None and generation.eos_token_id == 2
    provenance = json.loads((out / "artemis_conversion.json").read_text())
    assert provenance["generation_config"]["found"] is present
