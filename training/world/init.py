"""Build the initial tiny Artemis of the synthetic world: tokenizer, config, random weights, processor.

    python -m training.world.init --data DIR [DIR ...] --out runs/world/init [--vision-from CKPT]

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
from training.data import read_records
from training.media import GlobalFeatureProvider, VideoRef
from training.referring_data import QUESTION_TEMPLATES, ReferringDataset
from training.referring_data import TRACKING_NOTES as TRAIN_NOTES

logger = logging.getLogger(__name__)

BPE_VOCAB = 1200
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
REGION_OFFSET_SEED = 20240601
IMAGE_SIZE = 112
PATCH_SIZE = 16


def corpus_lines(data_dirs: Iterable[Path]) -> list[str]:
    """Every human/gpt value, caption and question of the data sets' JSON files, plus the prompt templates."""
    lines = [tpl.system for tpl in TEMPLATES.values()]
    lines += [
        EVAL_QUESTION,
        DEFAULT_QUESTION,
        *TRACKING_NOTES,
        *QUESTION_TEMPLATES,
        *TRAIN_NOTES,
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
        # 4 tracked boxes uniform in time, all 4 kept (K-means selection is a no-op at n == K): the first two
        # tracked tokens then span the object's first movement. With 8 -> 4 K-means picks, even a perfect reader
        # of the picked boxes' positions gets the first motion direction of 250 held-out clips right only 70 %
        # of the time (uniform 4: 89 %; /tmp analysis in MODEL_CARD.md).
        "num_tracked_boxes": 4,
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
    data_dirs: list[Path],
    out: Path,
    *,
    seed: int = 0,
    vision_from: Path | None = None,
    center: bool = True,
    feature_cache_dir: Path | None = None,
) -> tuple[ArtemisForConditionalGeneration, ArtemisProcessor]:
    """Tokenizer + config + random model (vision tower copied from ``vision_from`` when given), saved to ``out``."""
    tokenizer = build_tokenizer(corpus_lines(data_dirs))
    config = world_config(tokenizer)
    torch.manual_seed(seed)
    model = ArtemisForConditionalGeneration(config)
    region_pretrained = False
    if vision_from is not None:
        from safetensors.torch import load_file

        state = load_file(str(vision_from))
        if any(k.startswith(("vision_tower.", "region_encoder.")) for k in state):
            # training.world.region_pretrain: the tower and the region encoder, both trained
            missing, unexpected = model.load_state_dict(state, strict=False)
            missing = [k for k in missing if k.startswith(("vision_tower.", "region_encoder."))]
            if unexpected or missing:
                raise ValueError(f"{vision_from}: unexpected keys {unexpected[:5]}, missing {missing[:5]}")
            region_pretrained = True
        else:  # a tower-only file (vision_tower state dict without prefix)
            missing, unexpected = model.vision_tower.load_state_dict(state, strict=False)
            if unexpected:
                raise ValueError(f"{vision_from}: unexpected vision tower keys {unexpected[:5]}")
        logger.info("vision tower%s from %s", " and region encoder" if region_pretrained else "", vision_from)
    processor = world_processor(config, tokenizer)
    if center:
        stats = center_multimodal_inputs(
            model,
            processor,
            data_dirs[0],
            feature_cache_dir=feature_cache_dir,
            standardize_region_inputs=not region_pretrained,
        )
        logger.info("centred projector and region up_proj on %s: %s", data_dirs[0], stats)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    logger.info("saved %s: %d parameters, vocab %d", out, n, len(tokenizer))
    return model, processor


@torch.no_grad()
def _center_linear(linear: torch.nn.Linear, inputs: torch.Tensor, *, standardize_inputs: bool = True) -> None:
    """Zero-mean, unit-RMS the outputs of ``linear`` on ``inputs`` [N, in].

    With ``standardize_inputs`` (a random ``linear``) the input standardisation is folded in first; a trained
    ``linear`` keeps its function up to one affine rescaling of its output."""
    if standardize_inputs:
        mean, std = inputs.mean(0), inputs.std(0).clamp_min(1e-4)
        linear.weight.div_(std[None, :])
        linear.bias.sub_(linear.weight @ mean)
    out = torch.nn.functional.linear(inputs, linear.weight, linear.bias)  # [N, out]
    out_mean = out.mean(0)
    linear.bias.sub_(out_mean)
    scale = (out - out_mean).pow(2).mean().sqrt().clamp_min(1e-6)
    linear.weight.div_(scale)
    linear.bias.div_(scale)


@torch.no_grad()
def center_multimodal_inputs(
    model: ArtemisForConditionalGeneration,
    processor: ArtemisProcessor,
    data_root: Path,
    *,
    num_videos: int = 128,
    num_regions: int = 96,
    feature_cache_dir: Path | None = None,
    standardize_region_inputs: bool = True,
) -> dict[str, float]:
    """Data-dependent init of the projector and the region encoder's ``up_proj`` (no architecture change).

    The frozen tower's hidden states and the region encoder's ReLU/LayerNorm outputs share a large common
    component (cosine ~0.99 between different clips), and the LM's RMSNorm does not remove a mean: a random
    projection hands the LM nearly identical tokens and it learns to ignore them. Standardising the inputs of
    these linears and centring their outputs on training data makes the tokens differ from clip to clip.
    """
    stage1 = read_records([data_root / "stage1_world.json"])[:num_videos]
    provider = GlobalFeatureProvider("cache", disk_dir=feature_cache_dir)
    refs = [VideoRef(path=str(data_root / r["video"])) for r in stage1]
    feats = provider.features(model, processor, refs).flatten(0, 1)  # [n, T+P, Cv] -> [n*(T+P), Cv]
    proj = model.projector
    _center_linear(proj.linear_1, feats)
    if proj.linear_2 is not None:
        _center_linear(proj.linear_2, proj.act(proj.linear_1(feats)))
    records = read_records([data_root / "stage3_world"])[:num_regions]
    dataset = ReferringDataset(records, processor, media_root=data_root)
    captured: list[torch.Tensor] = []
    hook = model.region_encoder.up_proj.register_forward_hook(lambda m, i, o: captured.append(i[0]))
    try:
        for k in range(len(dataset)):
            sample = dataset[k]
            model.build_region_features(
                sample.region_pixels, sample.region_frame_ids[None], sample.region_boxes_norm[None]
            )
    finally:
        hook.remove()
    up_proj = model.region_encoder.up_proj
    _center_linear(up_proj, torch.cat(captured), standardize_inputs=standardize_region_inputs)
    # A shared "I am a region token" direction as large as the varying part (unit RMS per element): without
    # it, centred region tokens have nothing in common that attention could look for.
    gen = torch.Generator().manual_seed(REGION_OFFSET_SEED)
    offset = torch.randn(up_proj.out_features, generator=gen)
    up_proj.bias.add_(offset / offset.pow(2).mean().sqrt())
    video = model.projector(feats[:2000])
    return {"video_token_rms": float(video.pow(2).mean().sqrt()), "region_inputs": len(captured)}


def recenter(
    src: Path,
    dst: Path,
    data_root: Path,
    feature_cache_dir: Path | None = None,
    *,
    region_pretrained: bool = False,
) -> Path:
    """Copy checkpoint ``src`` to ``dst`` with the projector and region ``up_proj`` re-centred on ``data_root``.

    Used before stage 3: stage 2's projector drifted back towards one common direction (the LM had not learnt
    to read the video tokens), and the region encoder was never trained; stage 3 then keeps both frozen."""
    model = ArtemisForConditionalGeneration.from_pretrained(src)
    processor = ArtemisProcessor.from_pretrained(src)
    stats = center_multimodal_inputs(
        model,
        processor,
        data_root,
        feature_cache_dir=feature_cache_dir,
        standardize_region_inputs=not region_pretrained,
    )
    model.save_pretrained(dst)
    processor.save_pretrained(dst)
    logger.info("re-centred copy of %s at %s: %s", src, dst, stats)
    return dst


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
    ap.add_argument(
        "--no-center", action="store_true", help="keep the random projector / up_proj init (no centring)"
    )
    ap.add_argument("--feature-cache", type=Path, default=None, help="feature cache dir (as the YAMLs)")
    ap.add_argument(
        "--recenter",
        type=Path,
        default=None,
        metavar="SRC",
        help="instead: copy checkpoint SRC to --out with the projector / up_proj re-centred on --data",
    )
    ap.add_argument(
        "--region-pretrained",
        action="store_true",
        help="with --recenter: the region encoder was pre-trained (training.world.region_pretrain); only rescale "
        "its up_proj's output instead of standardising its inputs",
    )
    args = ap.parse_args()
    if args.recenter is not None:
        recenter(
            args.recenter,
            args.out,
            args.data[0],
            args.feature_cache,
            region_pretrained=args.region_pretrained,
        )
        return
    if args.ablate_regions is not None:
        ablate_regions(args.ablate_regions, args.out)
        return
    if not args.data:
        ap.error("--data is required to build the initial checkpoint")
    build_init(
        args.data,
        args.out,
        seed=args.seed,
        vision_from=args.vision_from,
        center=not args.no_center,
        feature_cache_dir=args.feature_cache,
    )


if __name__ == "__main__":
    main()
