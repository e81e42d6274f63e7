"""Original behaviour, point 1: the evaluation prompt's ids are the original's, with the real LLaMA vocabulary.

The original tokenized every text chunk between placeholders with the slow SentencePiece tokenizer, which puts the
dummy prefix ``▁`` before each chunk: a chunk that starts with a space begins with the lone ``▁`` (29871). The
golden ids below are written from that rule with the LLaMA vocabulary (``▁doing`` = 2599, ``▁A`` = 319,
``<0x0A>`` = 13); the full prompt has 425 positions (ours had 423 before the fix).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sentencepiece as spm
from transformers import AutoTokenizer, CLIPImageProcessor

from artemis_model.processing_artemis import (
    EVAL_QUESTION,
    ArtemisProcessor,
    add_placeholder_tokens,
    render_prompt,
)
from tests.original_behaviour.sentencepiece_models import (
    train_tiny_tokenizer_model,
    write_llama_tokenizer_json,
    write_llama_tokenizer_model,
    write_slow_tokenizer_dir,
)

BOS = 1
VIDEO, REGION = 32001, 32002  # <image>, <video>, <region> are appended after the 32000 words
SYSTEM_USER = [  # "A chat between a curious human ... the human's questions. USER: "
    319, 13563, 1546, 263, 12758, 5199, 322, 385, 23116, 21082, 20255, 29889, 450, 20255, 4076, 8444, 29892,
    13173, 29892, 322, 1248, 568, 6089, 304, 278, 5199, 29915, 29879, 5155, 29889, 3148, 1001, 29901, 29871,
]  # fmt: skip
NEWLINE_WHAT_IS_THE = [29871, 13, 5618, 338, 278, 29871]  # "\nWhat is the "
DOING_NOTE = [  # " doing in this video? This is the region's video tracking list: "
    29871, 2599, 297, 445, 4863, 29973, 910, 338, 278, 5120, 29915, 29879, 4863, 23110, 1051, 29901, 29871,
]  # fmt: skip
ASSISTANT = [29871, 319, 1799, 9047, 13566, 29901]  # " ASSISTANT:"


def golden_eval_prompt(num_video_tokens: int = 356) -> list[int]:
    """The original's ids of the evaluation prompt (356 video tokens for Artemis-7B)."""
    return (
        [BOS, *SYSTEM_USER]
        + [VIDEO] * num_video_tokens
        + NEWLINE_WHAT_IS_THE
        + [REGION]
        + DOING_NOTE
        + [REGION] * 4
        + ASSISTANT
    )


GOLDEN_EVAL_PROMPT = golden_eval_prompt()


@pytest.fixture(scope="module")
def llama_model_file(tmp_path_factory) -> Path:
    return write_llama_tokenizer_model(tmp_path_factory.mktemp("llama") / "tokenizer.model")


def _processor(tokenizer_dir: Path, template: str = "eval_original", *, sentencepiece: bool = True):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    add_placeholder_tokens(tokenizer)
    model_file = tokenizer_dir / "tokenizer.model"
    return ArtemisProcessor(
        tokenizer,
        CLIPImageProcessor(),
        prompt_template=template,
        num_temporal_tokens=100,
        sentencepiece_model=model_file if sentencepiece and model_file.is_file() else None,
    )


@pytest.mark.parametrize("legacy", [False, True, None])
def test_eval_original_prompt_has_the_original_425_ids(tmp_path, llama_model_file, legacy):
    """A Vicuna directory with only ``tokenizer.model`` (as the original saved it), any ``legacy`` setting."""
    processor = _processor(write_slow_tokenizer_dir(tmp_path / "vicuna", llama_model_file, legacy=legacy))
    assert processor.token_ids == {"<image>": 32000, "<video>": VIDEO, "<region>": REGION}
    ids = processor.encode(render_prompt(EVAL_QUESTION, template="eval_original"))
    assert len(GOLDEN_EVAL_PROMPT) == 425
    assert ids == GOLDEN_EVAL_PROMPT
    # The processor saves and reloads its SentencePiece model.
    processor.save_pretrained(tmp_path / "saved")
    reloaded = ArtemisProcessor.from_pretrained(tmp_path / "saved")
    assert reloaded.encode(render_prompt(EVAL_QUESTION, template="eval_original")) == GOLDEN_EVAL_PROMPT


@pytest.mark.parametrize("legacy", [False, True])
def test_eval_original_prompt_from_a_fast_tokenizer_json(tmp_path, legacy):
    """Without a SentencePiece model: the fast tokenizer with LLaMA's published merges, dummy prefix restored."""
    processor = _processor(write_llama_tokenizer_json(tmp_path / "fast", legacy=legacy), sentencepiece=False)
    assert processor.sentencepiece_model is None
    assert processor.encode(render_prompt(EVAL_QUESTION, template="eval_original")) == GOLDEN_EVAL_PROMPT


def test_our_template_keeps_the_fast_tokenizer_pieces(tmp_path, llama_model_file):
    processor = _processor(write_slow_tokenizer_dir(tmp_path / "vicuna", llama_model_file), "train")
    text = render_prompt(EVAL_QUESTION, template="eval_original")
    ours = processor.encode(text)  # the processor's own template: the pieces as the fast tokenizer cuts them
    assert len(ours) == 423
    key = ours.index(REGION)
    assert ours[key + 1 : key + 3] == [2599, 297]  # "▁doing ▁in": no lone "▁"
    assert ours[-5:] == [319, 1799, 9047, 13566, 29901]
    # The template can be named per call, whatever the processor's default.
    assert processor.encode(text, template="eval_original") == GOLDEN_EVAL_PROMPT
    assert processor(text, template="eval_original")["input_ids"][0].tolist() == GOLDEN_EVAL_PROMPT


def test_a_sentencepiece_model_of_another_vocabulary_is_refused(tmp_path, llama_model_file):
    tiny = train_tiny_tokenizer_model(tmp_path / "tiny.model")
    tokenizer = AutoTokenizer.from_pretrained(
        write_slow_tokenizer_dir(tmp_path / "vicuna", llama_model_file), local_files_only=True
    )
    add_placeholder_tokens(tokenizer)
    with pytest.raises(ValueError, match="differs from the tokenizer at id"):
        ArtemisProcessor(tokenizer, CLIPImageProcessor(), sentencepiece_model=tiny)


def _chunks(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    words = (
        "the man in red walks to a door . , ? : ' s video region tracking list ASSISTANT USER 12 é".split()
    )
    chunks = []
    for _ in range(count):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        chunks.append(rng.choice(["", " ", "  ", "\n", " \n"]) + text + rng.choice(["", " ", ": "]))
    return chunks


@pytest.mark.parametrize("model", ["llama", "tiny", "llama-fast-json"])
def test_every_chunk_matches_sentencepiece(tmp_path, llama_model_file, model):
    """Oracle: the sentencepiece library itself (the slow tokenizer's algorithm), chunk by chunk."""
    model_file = llama_model_file if model != "tiny" else train_tiny_tokenizer_model(tmp_path / "tiny.model")
    oracle = spm.SentencePieceProcessor(model_file=str(model_file))
    if model == "llama-fast-json":  # no SentencePiece model: the fast tokenizer with the prefix restored
        processor = _processor(
            write_llama_tokenizer_json(tmp_path / "dir", legacy=False), sentencepiece=False
        )
    else:
        processor = _processor(write_slow_tokenizer_dir(tmp_path / "dir", model_file))
    for chunk in _chunks(0, 200):
        # A placeholder before the chunk: the chunk is tokenized on its own, BOS only at the start.
        got = processor.encode("<region>" + chunk)[2:]
        assert got == oracle.encode(chunk), repr(chunk)
