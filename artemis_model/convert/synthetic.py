"""A randomly initialised checkpoint in the ORIGINAL Artemis layout (stage-2 base, stage-3 LoRA, CLIP), written
from the key tables of original_checkpoint.md, at any size: a dry run of ``artemis convert`` without the
released weights, and the input of the converter's tests and benchmark.

Deliberately independent of ``artemis_model.convert.keys``: every original name below is spelled out from the
spec (§1.2 LLaMA, §1.3 projector, §1.4 CLIP, §2.2 non-LoRA, §3.2 LoRA), with the given config's sizes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer, CLIPConfig, CLIPModel, CLIPVisionModel, PreTrainedTokenizerFast

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.tiny import tiny_tokenizer_json

# Artemis fields that do not follow from the stage-2 config.json (tiny values differ from Artemis-7B).
REGION_FIELDS = (
    "region_feature_layers",
    "region_upsample_factors",
    "fuse_rounds",
    "fuse_shuffle_channels",
    "fuse_groupnorm_groups",
    "roi_output_size",
    "box_mlp_hidden",
    "num_temporal_tokens",
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class OriginalCheckpoint:
    base: Path
    lora: Path
    clip: Path
    stage2: dict[str, torch.Tensor]
    adapter: dict[str, torch.Tensor]
    non_lora: dict[str, torch.Tensor]
    clip_vision: dict[str, torch.Tensor]  # CLIP vision tensors under their spec names (``embeddings.*`` ...)
    base_vocab: int
    lora_r: int
    lora_alpha: float
    overrides: dict


def llama_table(cfg: ArtemisConfig, vocab: int) -> dict[str, tuple[int, ...]]:
    """Spec §1.2 (stage 2, including the ``rotary_emb.inv_freq`` buffers)."""
    t = cfg.text_config
    d, f, head_dim = t.hidden_size, t.intermediate_size, t.hidden_size // t.num_attention_heads
    table = {"model.embed_tokens.weight": (vocab, d)}
    for i in range(t.num_hidden_layers):
        p = f"model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            table[f"{p}self_attn.{proj}.weight"] = (d, d)
        table[f"{p}self_attn.rotary_emb.inv_freq"] = (head_dim // 2,)
        table[f"{p}mlp.gate_proj.weight"] = (f, d)
        table[f"{p}mlp.up_proj.weight"] = (f, d)
        table[f"{p}mlp.down_proj.weight"] = (d, f)
        table[f"{p}input_layernorm.weight"] = (d,)
        table[f"{p}post_attention_layernorm.weight"] = (d,)
    table["model.norm.weight"] = (d,)
    table["lm_head.weight"] = (vocab, d)
    return table


def projector_table(cfg: ArtemisConfig, prefix: str = "model.mm_projector.") -> dict[str, tuple[int, ...]]:
    """Spec §1.3."""
    c, d = cfg.vision_config.hidden_size, cfg.text_config.hidden_size
    return {
        f"{prefix}0.weight": (d, c),
        f"{prefix}0.bias": (d,),
        f"{prefix}2.weight": (d, d),
        f"{prefix}2.bias": (d,),
    }


def clip_table(cfg: ArtemisConfig) -> dict[str, tuple[int, ...]]:
    """Spec §1.4, names under ``vision_model.`` (no ``position_ids``)."""
    v = cfg.vision_config
    c, m = v.hidden_size, v.intermediate_size
    positions = (v.image_size // v.patch_size) ** 2 + 1
    table = {
        "embeddings.class_embedding": (c,),
        "embeddings.patch_embedding.weight": (c, 3, v.patch_size, v.patch_size),
        "embeddings.position_embedding.weight": (positions, c),
        "pre_layrnorm.weight": (c,),
        "pre_layrnorm.bias": (c,),
        "post_layernorm.weight": (c,),
        "post_layernorm.bias": (c,),
    }
    for i in range(v.num_hidden_layers):
        p = f"encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            table[f"{p}self_attn.{proj}.weight"] = (c, c)
            table[f"{p}self_attn.{proj}.bias"] = (c,)
        for norm in ("layer_norm1", "layer_norm2"):
            table[f"{p}{norm}.weight"] = (c,)
            table[f"{p}{norm}.bias"] = (c,)
        table[f"{p}mlp.fc1.weight"] = (m, c)
        table[f"{p}mlp.fc1.bias"] = (m,)
        table[f"{p}mlp.fc2.weight"] = (c, m)
        table[f"{p}mlp.fc2.bias"] = (c,)
    return table


def non_lora_table(cfg: ArtemisConfig) -> dict[str, tuple[int, ...]]:
    """Spec §2.2 with the ``base_model.model.`` prefix: 4 projector + 43 spi_model tensors (5 fuse rounds)."""
    c, d = cfg.vision_config.hidden_size, cfg.text_config.hidden_size
    h, r = cfg.box_mlp_hidden, cfg.roi_output_size
    table = projector_table(cfg, prefix="base_model.model.model.mm_projector.")
    spi = "base_model.model.model.spi_model."
    for i in range(4):
        table[f"{spi}mlvl_fuse.input_conv.{i}.weight"] = (c, c + 2, 1, 1)
        table[f"{spi}mlvl_fuse.input_conv.{i}.bias"] = (c,)
    for i in range(cfg.fuse_rounds):
        table[f"{spi}mlvl_fuse.fuse_convs.{i}.conv.weight"] = (c, c, 3, 3)
        table[f"{spi}mlvl_fuse.fuse_convs.{i}.gn.weight"] = (c,)
        table[f"{spi}mlvl_fuse.fuse_convs.{i}.gn.bias"] = (c,)
    for i in range(4):
        table[f"{spi}roi_align.pconvs.{i}.weight"] = (c, c, 3, 3)
        table[f"{spi}roi_align.pconvs.{i}.bias"] = (c,)
    table.update(
        {
            f"{spi}roi_align.pos_embedd.0.weight": (h, 4),
            f"{spi}roi_align.pos_embedd.0.bias": (h,),
            f"{spi}roi_align.pos_embedd.2.weight": (h,),
            f"{spi}roi_align.pos_embedd.2.bias": (h,),
            f"{spi}roi_align.pos_embedd.3.weight": (c, h),
            f"{spi}roi_align.pos_embedd.3.bias": (c,),
            f"{spi}roi_align.pos_embedd.5.weight": (c,),
            f"{spi}roi_align.pos_embedd.5.bias": (c,),
            f"{spi}roi_align.updims.weight": (d, c),
            f"{spi}roi_align.updims.bias": (d,),
            f"{spi}roi_align.flatten_linear.weight": (c, c * r * r),
            f"{spi}roi_align.flatten_linear.bias": (c,),
        }
    )
    return table


def lora_table(cfg: ArtemisConfig, r: int) -> dict[str, tuple[int, ...]]:
    """Spec §3.2: 7 linears x A/B per layer, no adapter name in the keys."""
    t = cfg.text_config
    d, f = t.hidden_size, t.intermediate_size
    dims = {"q_proj": (d, d), "k_proj": (d, d), "v_proj": (d, d), "o_proj": (d, d)}
    dims |= {"gate_proj": (f, d), "up_proj": (f, d), "down_proj": (d, f)}
    table = {}
    for i in range(t.num_hidden_layers):
        for proj, (out_dim, in_dim) in dims.items():
            block = "self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            key = f"base_model.model.model.layers.{i}.{block}.{proj}"
            table[f"{key}.lora_A.weight"] = (r, in_dim)
            table[f"{key}.lora_B.weight"] = (out_dim, r)
    return table


def _random(
    table: dict[str, tuple[int, ...]], gen: torch.Generator, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    out = {}
    for name, shape in table.items():
        value = torch.randn(shape, generator=gen) * 0.05
        if name.endswith(("norm.weight", "gn.weight", "pos_embedd.2.weight", "pos_embedd.5.weight")):
            value = 1.0 + value  # norms around 1
        out[name] = value.to(dtype)
    return out


def _save_clip(clip_dir: Path, cfg: ArtemisConfig, layout: str, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    if layout == "openai":  # full CLIPModel: vision_model.*, text_model.*, projections, logit_scale
        text = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
        model = CLIPModel(
            CLIPConfig(vision_config=cfg.vision_config.to_dict(), text_config=text, projection_dim=8)
        )
        vision = {
            k.removeprefix("vision_model."): v
            for k, v in model.state_dict().items()
            if k.startswith("vision_model.")
        }
    elif layout == "vision":  # CLIPVisionModel (transformers 5 names: no vision_model. prefix)
        model = CLIPVisionModel(cfg.vision_config)
        vision = dict(model.state_dict())
    else:
        raise ValueError(f"layout {layout!r}; allowed: 'openai', 'vision'")
    model.save_pretrained(clip_dir)
    vision = {k: v.detach().clone() for k, v in vision.items() if not k.endswith("position_ids")}
    table = clip_table(cfg)
    assert set(vision) == set(table), sorted(set(vision) ^ set(table))  # the spec table matches HF CLIP
    assert all(tuple(vision[k].shape) == s for k, s in table.items())
    return vision


def write_original_checkpoint(
    root: Path,
    cfg: ArtemisConfig,
    *,
    num_shards: int = 3,
    lora_r: int = 4,
    lora_alpha: float = 8.0,
    stage2_dtype: torch.dtype = torch.bfloat16,
    stage3_dtype: torch.dtype = torch.float16,
    clip_layout: str = "openai",
    seed: int = 0,
    mutate: Callable[[dict[str, dict[str, torch.Tensor]]], None] | None = None,
    tokenizer_model: Path | None = None,
    generation_config: dict | None = None,
) -> OriginalCheckpoint:
    """Write ``root/{base,lora,clip}`` in the original layout; ``mutate`` edits the dicts before saving.

    ``tokenizer_model``: a SentencePiece model; the base then holds only ``tokenizer.model`` +
    ``tokenizer_config.json`` (as the original saved Vicuna's tokenizer) instead of a fast ``tokenizer.json``.
    ``generation_config``: written as the base's ``generation_config.json``.
    """
    base, lora, clip = root / "base", root / "lora", root / "clip"
    for d in (base, lora, clip):
        d.mkdir(parents=True)
    if tokenizer_model is not None:
        write_slow_tokenizer_dir(base, tokenizer_model)
        vocab = len(AutoTokenizer.from_pretrained(base, local_files_only=True))
    else:
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(tiny_tokenizer_json()),
            unk_token="<unk>",
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
        )
        tokenizer.save_pretrained(base)
        vocab = len(tokenizer)
    if generation_config is not None:
        (base / "generation_config.json").write_text(json.dumps(generation_config, indent=2))
    clip_vision = _save_clip(clip, cfg, clip_layout, seed)

    gen = torch.Generator().manual_seed(seed)
    stage2 = _random(llama_table(cfg, vocab), gen, stage2_dtype)
    t = cfg.text_config
    head_dim = t.hidden_size // t.num_attention_heads
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    for name in stage2:
        if name.endswith("rotary_emb.inv_freq"):
            stage2[name] = inv_freq.to(stage2_dtype)
    stage2.update(_random(projector_table(cfg), gen, stage2_dtype))  # the superseded stage-2 projector
    for name, value in clip_vision.items():
        stage2[f"model.image_tower.vision_tower.vision_model.{name}"] = value.to(stage2_dtype)
    adapter = _random(lora_table(cfg, lora_r), gen, stage3_dtype)
    non_lora = _random(non_lora_table(cfg), gen, stage3_dtype)
    parts = {"stage2": stage2, "adapter": adapter, "non_lora": non_lora}
    if mutate is not None:
        mutate(parts)

    sizes = {n: t.numel() * t.element_size() for n, t in stage2.items()}
    total_bytes, running, groups = sum(sizes.values()), 0, [[] for _ in range(num_shards)]
    for name, size in sizes.items():  # contiguous shards of about equal bytes, as save_pretrained makes
        groups[min(running * num_shards // total_bytes, num_shards - 1)].append(name)
        running += size
    weight_map, total = {}, 0
    for k, shard_names in enumerate(groups):
        file = f"pytorch_model-{k + 1:05d}-of-{num_shards:05d}.bin"
        torch.save({n: stage2[n] for n in shard_names}, base / file)
        weight_map |= dict.fromkeys(shard_names, file)
        total += sum(stage2[n].numel() * stage2[n].element_size() for n in shard_names)
    (base / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    llava_config = {
        "model_type": "llava",
        "architectures": ["LlavaLlamaForCausalLM"],
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.num_hidden_layers,
        "num_attention_heads": t.num_attention_heads,
        "num_key_value_heads": t.num_key_value_heads,
        "max_position_embeddings": t.max_position_embeddings,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "vocab_size": vocab,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 3,
        "tie_word_embeddings": False,
        "rope_scaling": None,
        "pretraining_tp": 1,
        "torch_dtype": "bfloat16",
        "mm_image_tower": "/path/to/clip-vit-large-patch14",
        "mm_spi_model": False,
        "k_means": False,
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": cfg.vision_feature_layer,
        "mm_vision_select_feature": "patch",
        "mm_hidden_size": cfg.vision_config.hidden_size,
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "mm_use_bbox_token": False,
        "tokenizer_model_max_length": 3072,
    }
    (base / "config.json").write_text(json.dumps(llava_config, indent=2))
    (lora / "config.json").write_text(json.dumps({**llava_config, "mm_spi_model": True, "k_means": True}))
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": 0.05,
        "bias": "none",
        "fan_in_fan_out": False,
        "target_modules": LORA_TARGETS,
        "modules_to_save": None,
        "init_lora_weights": True,
        "inference_mode": True,
        "base_model_name_or_path": "./checkpoints/Artemis-7b-ftune",
    }
    (lora / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2, sort_keys=True))
    torch.save(adapter, lora / "adapter_model.bin")
    torch.save(non_lora, lora / "non_lora_trainables.bin")
    return OriginalCheckpoint(
        base=base,
        lora=lora,
        clip=clip,
        stage2=stage2,
        adapter=adapter,
        non_lora=non_lora,
        clip_vision=clip_vision,
        base_vocab=vocab,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        overrides={k: getattr(cfg, k) for k in REGION_FIELDS},
    )


def write_slow_tokenizer_dir(directory: Path, model_file: Path, *, legacy: bool | None = False) -> Path:
    """``tokenizer.model`` (a SentencePiece model) + ``tokenizer_config.json`` (LlamaTokenizer, as Vicuna's) in
    ``directory``: a tokenizer saved slow, as the original saved it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.model").write_bytes(Path(model_file).read_bytes())
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "model_max_length": 4096,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
    }
    if legacy is not None:
        config["legacy"] = legacy
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return directory
