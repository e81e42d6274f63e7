"""Build the initial tiny Artemis of the synthetic world: tokenizer, config, random weights, processor.

    python scripts/world_init.py --data DIR [DIR ...] --out checkpoints/world/init [--vision-from CKPT]

The tokenizer is a byte-level BPE trained on the text of the data sets' JSON files (stage 1-3 answers and
questions) plus the prompt templates of training and inference; its vocabulary is large enough that every word
of the world is one token, while any other text still encodes (byte fallback). The placeholders ``<image>``,
``<video>``, ``<region>`` are appended last. The architecture is the real one (CLIP vision tower + projector +
multi-level region encoder + Llama) at a tiny size: see :func:`world_config`.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable
from pathlib import Path
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
from artemis_model.prompts import DEFAULT_QUESTION, TRACKING_NOTES

logger = logging.getLogger("world_init")

BPE_VOCAB = 1200
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
IMAGE_SIZE = 112
PATCH_SIZE = 16


def _training_templates() -> list[str]:
    """The stage-3 question templates and notes of training/ (text only; no import cycle for the library)."""
    try:
        from training.referring_data import QUESTION_TEMPLATES
        from training.referring_data import TRACKING_NOTES as TRAIN_NOTES
    except ImportError:
        return []
    return [*QUESTION_TEMPLATES, *TRAIN_NOTES]


def corpus_lines(data_dirs: Iterable[Path]) -> list[str]:
    """Every human/gpt value, caption and question of the data sets' JSON files, plus the prompt templates."""
    lines = [tpl.system for tpl in TEMPLATES.values()]
    lines += [
        EVAL_QUESTION,
        DEFAULT_QUESTION,
        *TRACKING_NOTES,
        *_training_templates(),
        "USER: ASSISTANT: </s>",
    ]
    for root in data_dirs:
        for name in ("stage1.json", "stage2.json", "stage3/synth_ref.json"):
            path = Path(root) / name
            if not path.is_file():
                continue
            for rec in json.loads(path.read_text()):
                for turn in rec.get("conversations", []):
                    lines.append(turn["value"])
                for key in ("caption", "question"):
                    if rec.get(key):
                        lines.append(rec[key])
    return lines


def build_tokenizer(lines: list[str], vocab_size: int = BPE_VOCAB) -> PreTrainedTokenizerFast:
    """Byte-level BPE on ``lines``; ``<unk>``=0, ``<s>``=1, ``</s>``=2, ``<pad>``=3, placeholders appended."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="right",
    )
    add_placeholder_tokens(tokenizer)
    return tokenizer


def world_config(tokenizer: PreTrainedTokenizerFast, **overrides: Any) -> ArtemisConfig:
    """The tiny world architecture: CLIP 112 px / 16 px patches (7x7 grid), width 64, 4 layers; Llama width 192,
    3 layers; region encoder on hidden states 0-3; 8 tracked boxes, 4 region tokens; 16 temporal tokens."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}
    vision = {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE,
        "projection_dim": 64,
    }
    text = {
        "hidden_size": 192,
        "intermediate_size": 512,
        "num_hidden_layers": 3,
        "num_attention_heads": 6,
        "num_key_value_heads": 6,
        "max_position_embeddings": 1024,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    vision.update(overrides.pop("vision_config", {}) or {})
    text.update(overrides.pop("text_config", {}) or {})
    kwargs: dict[str, Any] = {
        "vision_config": vision,
        "text_config": text,
        "vision_feature_layer": -2,
        "region_feature_layers": (-5, -4, -3, -2),
        "region_upsample_factors": (2, 1, 1, 1),
        "fuse_rounds": 2,
        "fuse_shuffle_channels": 16,
        "fuse_groupnorm_groups": 8,
        "roi_output_size": 7,
        "box_mlp_hidden": 64,
        "num_tracked_boxes": 8,
        "num_region_tokens": 4,
        "num_temporal_tokens": 16,
        "image_token_id": ids["<image>"],
        "video_token_id": ids["<video>"],
        "region_token_id": ids["<region>"],
        "tie_word_embeddings": True,
    }
    kwargs.update(overrides)
    return ArtemisConfig(**kwargs)


def world_processor(config: ArtemisConfig, tokenizer: PreTrainedTokenizerFast) -> ArtemisProcessor:
    size = config.vision_config.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    return ArtemisProcessor.from_config(config, tokenizer, image_processor, resize_mode="consistent")


def build_init(
    data_dirs: list[Path], out: Path, *, seed: int = 0, vision_from: Path | None = None
) -> tuple[ArtemisForConditionalGeneration, ArtemisProcessor]:
    """Tokenizer + config + random model (vision tower copied from ``vision_from`` when given), saved to ``out``."""
    tokenizer = build_tokenizer(corpus_lines(data_dirs))
    config = world_config(tokenizer)
    torch.manual_seed(seed)
    model = ArtemisForConditionalGeneration(config)
    if vision_from is not None:
        from safetensors.torch import load_file

        state = load_file(str(vision_from))
        missing, unexpected = model.vision_tower.load_state_dict(state, strict=False)
        if unexpected:
            raise ValueError(f"{vision_from}: unexpected vision tower keys {unexpected[:5]}")
        logger.info("vision tower from %s (missing %s)", vision_from, missing)
    processor = world_processor(config, tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    logger.info("saved %s: %d parameters, vocab %d", out, n, len(tokenizer))
    return model, processor


def ablate_regions(src: Path, dst: Path) -> Path:
    """Copy checkpoint ``src`` to ``dst`` with the region encoder's ``up_proj`` zeroed: every region token is 0.

    With ``trainable.region_encoder: frozen`` this is the region-blind baseline (the tokens stay zero)."""
    model = ArtemisForConditionalGeneration.from_pretrained(src)
    processor = ArtemisProcessor.from_pretrained(src)
    with torch.no_grad():
        model.region_encoder.up_proj.weight.zero_()
        model.region_encoder.up_proj.bias.zero_()
    model.save_pretrained(dst)
    processor.save_pretrained(dst)
    logger.info("region-blind copy of %s at %s", src, dst)
    return dst


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", type=Path, help="data set roots (artemis data synth)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--vision-from", type=Path, default=None, help="safetensors of a pre-trained vision tower"
    )
    ap.add_argument(
        "--ablate-regions",
        type=Path,
        default=None,
        metavar="SRC",
        help="instead: copy checkpoint SRC to --out with zero region tokens (region-blind baseline)",
    )
    args = ap.parse_args()
    if args.ablate_regions is not None:
        ablate_regions(args.ablate_regions, args.out)
        return
    if not args.data:
        ap.error("--data is required to build the initial checkpoint")
    build_init(args.data, args.out, seed=args.seed, vision_from=args.vision_from)


if __name__ == "__main__":
    main()
