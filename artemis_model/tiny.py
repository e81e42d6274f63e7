"""Tiny, offline, randomly initialised Artemis models for tests, demos and CPU experiments.

``tiny_config()`` -> a config of a few hundred thousand parameters (28 px frames, 7 px patches = 4x4 grid,
CLIP width 32 with 4 layers, Llama width 64 with 2 layers). ``tiny_tokenizer()`` -> a byte-level BPE tokenizer
trained in milliseconds on an in-code English corpus (the prompt templates plus the synthetic world's words),
with ``<unk> <s> </s> <pad>`` and the 3 placeholder tokens appended last. Everything is deterministic.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import CLIPImageProcessor, PreTrainedTokenizerFast

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import (
    EVAL_QUESTION,
    PLACEHOLDER_TOKENS,
    TEMPLATES,
    ArtemisProcessor,
    add_placeholder_tokens,
)

TINY_IMAGE_SIZE = 28
TINY_PATCH_SIZE = 7
TINY_BPE_VOCAB = 1000

COLOURS = [
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "white",
    "black",
    "cyan",
    "magenta",
    "gray",
    "pink",
]
SHAPES = [
    "circle",
    "square",
    "triangle",
    "star",
    "disk",
    "box",
    "ball",
    "object",
    "shape",
    "target",
    "region",
]
MOTIONS = [
    "moves left",
    "moves right",
    "moves up",
    "moves down",
    "stops",
    "bounces",
    "turns back",
    "speeds up",
    "slows down",
    "enters",
    "leaves",
    "stays still",
    "goes",
    "comes",
    "appears",
    "disappears",
    "rotates",
    "jumps",
    "falls",
    "rises",
    "grows",
    "shrinks",
    "waits",
    "follows",
    "chases",
    "passes",
    "crosses",
    "hides",
]
WORDS = (
    "the a an and then it is its to of in on at from into out over under near far behind front top bottom "
    "left right up down center middle corner edge side screen frame video clip scene first after before "
    "while during finally later again quickly slowly fast slow small large big tiny other another two three "
    "what where when which who how why does do doing this that there here region's tracking list you are "
    "provided man woman person people car dog cat walking running standing sitting holding looking toward "
    "away with without by for as is are was were be being has have had not no yes moving moved stop stopped "
    "bounce bounced turn turned speed enter entered leave left leaves describe describes description answer "
    "question user assistant human chat between curious artificial intelligence gives helpful detailed polite "
    "answers questions sure I see can cannot"
)


def tiny_corpus() -> list[str]:
    lines = [tpl.system for tpl in TEMPLATES.values()]
    lines += [EVAL_QUESTION, "USER: ASSISTANT: </s>", WORDS, "0 1 2 3 4 5 6 7 8 9 . , ? ! : ; ' \" ( ) - \n"]
    for colour in COLOURS:
        for shape in SHAPES:
            for motion in MOTIONS:
                lines.append(f"The {colour} {shape} {motion}. A {colour} {shape} {motion} and then stops.")
    return lines


@functools.lru_cache(maxsize=1)
def tiny_tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_BPE_VOCAB,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tiny_corpus(), trainer)
    return tok.to_str()


def tiny_tokenizer(*, placeholders: bool = True) -> PreTrainedTokenizerFast:
    """A fresh tiny tokenizer: ``<unk>``=0, ``<s>``=1, ``</s>``=2, ``<pad>``=3, placeholders last (omitted with
    ``placeholders=False``: a stand-in for a plain language model's tokenizer)."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tiny_tokenizer_json()),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="right",
    )
    if placeholders:
        add_placeholder_tokens(tokenizer)
    return tokenizer


@functools.lru_cache(maxsize=1)
def _tiny_vocab() -> tuple[int, dict[str, int]]:
    tokenizer = tiny_tokenizer()
    return len(tokenizer), {t: tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}


def tiny_config(**overrides: Any) -> ArtemisConfig:
    """A tiny :class:`ArtemisConfig` matching :func:`tiny_tokenizer`. ``overrides`` replace top-level fields;
    ``vision_config`` / ``text_config`` dicts are merged into the tiny defaults."""
    vocab_size, ids = _tiny_vocab()
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "image_size": TINY_IMAGE_SIZE,
        "patch_size": TINY_PATCH_SIZE,
        "projection_dim": 32,
    }
    text = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 1024,
        "vocab_size": vocab_size,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 3,
    }
    vision.update(overrides.pop("vision_config", {}) or {})
    text.update(overrides.pop("text_config", {}) or {})
    kwargs: dict[str, Any] = {
        "vision_config": vision,
        "text_config": text,
        "vision_feature_layer": -2,
        "region_feature_layers": (-5, -4, -3, -2),
        "region_upsample_factors": (8, 4, 2, 1),
        "fuse_rounds": 2,
        "fuse_shuffle_channels": 8,
        "fuse_groupnorm_groups": 8,
        "roi_output_size": 7,
        "box_mlp_hidden": 16,
        "num_temporal_tokens": 16,
        "image_token_id": ids["<image>"],
        "video_token_id": ids["<video>"],
        "region_token_id": ids["<region>"],
    }
    kwargs.update(overrides)
    return ArtemisConfig(**kwargs)


def tiny_processor(
    config: ArtemisConfig | None = None, *, resize_mode: str = "consistent"
) -> ArtemisProcessor:
    """The processor for :func:`tiny_config` (or a config with the same tokenizer)."""
    config = config or tiny_config()
    size = config.vision_config.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    return ArtemisProcessor.from_config(config, tiny_tokenizer(), image_processor, resize_mode=resize_mode)


def tiny_model_and_processor(
    seed: int = 0, **config_overrides: Any
) -> tuple[ArtemisForConditionalGeneration, ArtemisProcessor]:
    """A randomly initialised tiny model (float32, CPU, eval mode) and its processor; same ``seed`` = same weights."""
    config = tiny_config(**config_overrides)
    devices: list[torch.device] = []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = ArtemisForConditionalGeneration(config)
    model.eval()
    return model, tiny_processor(config)
