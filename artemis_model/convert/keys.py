"""Name mapping and config building for :mod:`artemis_model.convert.converter` (original_checkpoint.md §1-§4, §6).

Every original key is either mapped to one of our parameter names, dropped for a stated reason, or unmatched
(which stops a conversion). The rules are full-string regular expressions; nothing is matched by substring.

| source | original key | ours |
|---|---|---|
| stage 2 | ``model.embed_tokens.weight`` / ``lm_head.weight`` | ``language_model.model.embed_tokens.weight`` / ``language_model.lm_head.weight`` (+ placeholder rows) |
| stage 2 | ``model.layers.{i}.<rest>.weight`` / ``model.norm.weight`` | ``language_model.model.layers.{i}.<rest>.weight`` / ``language_model.model.norm.weight`` |
| stage 2 | ``model.layers.{i}.self_attn.rotary_emb.inv_freq`` | dropped (recomputed) |
| stage 2 | ``model.mm_projector.{0,2}.*`` | dropped (stage 3 retrained it) |
| stage 2 | ``model.image_tower.vision_tower.vision_model.*`` | dropped (CLIP comes from its own directory) |
| LoRA | ``base_model.model.<stage-2 module>.lora_{A,B}.weight`` | merged into ``<stage-2 module>.weight`` |
| non-LoRA | ``base_model.model.model.mm_projector.{0,2}.*`` | ``projector.linear_{1,2}.*`` |
| non-LoRA | ``base_model.model.model.spi_model.*`` | ``region_encoder.*`` (table in :data:`_NON_LORA_RULES`) |
| CLIP | ``vision_model.*`` (openai layout) or ``embeddings.* / encoder.* / ...`` (CLIPVisionModel) | ``vision_tower.*`` |
| CLIP | ``text_model.*``, ``text_projection.*``, ``visual_projection.*``, ``logit_scale``, ``*.position_ids`` | dropped |
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import CLIPVisionConfig

from artemis_model.configuration_artemis import PROJECTOR_TYPES, ArtemisConfig
from artemis_model.convert.checkpoint_io import ConversionError

EMBED_KEY = "language_model.model.embed_tokens.weight"
LM_HEAD_KEY = "language_model.lm_head.weight"
NON_LORA_PREFIX = "base_model.model."

DROP_ROTARY = "rotary_emb.inv_freq (recomputed from the config)"
DROP_STAGE2_PROJECTOR = "stage-2 mm_projector (superseded by the stage-3 copy in non_lora_trainables)"
DROP_IMAGE_TOWER = "stage-2 image_tower copy (CLIP is read from the CLIP directory)"
DROP_CLIP_OTHER = "CLIP text model / projections / logit_scale / position_ids (not used)"

_LINEAR = r"(self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)"

_STAGE2_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"model\.embed_tokens\.weight"), EMBED_KEY),
    (re.compile(rf"model\.layers\.(\d+)\.{_LINEAR}\.weight"), r"language_model.model.layers.\1.\2.weight"),
    (
        re.compile(r"model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.weight"),
        r"language_model.model.layers.\1.\2.weight",
    ),
    (re.compile(r"model\.norm\.weight"), "language_model.model.norm.weight"),
    (re.compile(r"lm_head\.weight"), LM_HEAD_KEY),
]
_STAGE2_DROPS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq"), DROP_ROTARY),
    (re.compile(r"model\.mm_projector\.[02]\.(?:weight|bias)"), DROP_STAGE2_PROJECTOR),
    (re.compile(r"model\.image_tower\.vision_tower\.vision_model\..+"), DROP_IMAGE_TOWER),
]
IMAGE_TOWER_PREFIX = "model.image_tower.vision_tower.vision_model."

_SPI = r"model\.spi_model\."
_NON_LORA_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"model\.mm_projector\.0\.(weight|bias)"), r"projector.linear_1.\1"),
    (re.compile(r"model\.mm_projector\.2\.(weight|bias)"), r"projector.linear_2.\1"),
    (re.compile(rf"{_SPI}mlvl_fuse\.input_conv\.(\d+)\.(weight|bias)"), r"region_encoder.input_convs.\1.\2"),
    (
        re.compile(rf"{_SPI}mlvl_fuse\.fuse_convs\.(\d+)\.conv\.weight"),
        r"region_encoder.fuse_blocks.\1.conv.weight",
    ),
    (
        re.compile(rf"{_SPI}mlvl_fuse\.fuse_convs\.(\d+)\.gn\.(weight|bias)"),
        r"region_encoder.fuse_blocks.\1.norm.\2",
    ),
    (re.compile(rf"{_SPI}roi_align\.pconvs\.(\d+)\.(weight|bias)"), r"region_encoder.level_convs.\1.\2"),
    (re.compile(rf"{_SPI}roi_align\.pos_embedd\.0\.(weight|bias)"), r"region_encoder.box_mlp.linear_1.\1"),
    (re.compile(rf"{_SPI}roi_align\.pos_embedd\.2\.(weight|bias)"), r"region_encoder.box_mlp.norm_1.\1"),
    (re.compile(rf"{_SPI}roi_align\.pos_embedd\.3\.(weight|bias)"), r"region_encoder.box_mlp.linear_2.\1"),
    (re.compile(rf"{_SPI}roi_align\.pos_embedd\.5\.(weight|bias)"), r"region_encoder.box_mlp.norm_2.\1"),
    (re.compile(rf"{_SPI}roi_align\.updims\.(weight|bias)"), r"region_encoder.up_proj.\1"),
    (re.compile(rf"{_SPI}roi_align\.flatten_linear\.(weight|bias)"), r"region_encoder.flatten_linear.\1"),
]

_CLIP_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"vision_model\.(.+)"), r"vision_tower.\1"),
    (re.compile(r"((?:embeddings|encoder|pre_layrnorm|post_layernorm)\..+)"), r"vision_tower.\1"),
]
_CLIP_DROPS = re.compile(
    r"(?:text_model\..+|text_projection\..+|visual_projection\..+|logit_scale|(?:.+\.)?position_ids)"
)

_LORA_RULE = re.compile(rf"base_model\.model\.(model\.layers\.\d+\.{_LINEAR})\.lora_(A|B)\.weight")


@dataclass(frozen=True)
class KeyAction:
    """What happens to one original key: ``target`` (our name) or ``drop`` (the reason); both None = unmatched."""

    target: str | None = None
    drop: str | None = None

    @property
    def unmatched(self) -> bool:
        return self.target is None and self.drop is None


def _apply(rules: list[tuple[re.Pattern[str], str]], name: str) -> str | None:
    for pattern, replacement in rules:
        match = pattern.fullmatch(name)
        if match:
            return match.expand(replacement)
    return None


def map_stage2_key(name: str) -> KeyAction:
    """A key of the stage-2 (``Artemis-7b-ftune``) checkpoint."""
    target = _apply(_STAGE2_RULES, name)
    if target is not None:
        return KeyAction(target=target)
    for pattern, reason in _STAGE2_DROPS:
        if pattern.fullmatch(name):
            return KeyAction(drop=reason)
    return KeyAction()


def map_non_lora_key(name: str) -> KeyAction:
    """A key of ``non_lora_trainables.bin`` (with its ``base_model.model.`` prefix)."""
    if not name.startswith(NON_LORA_PREFIX):
        return KeyAction()
    target = _apply(_NON_LORA_RULES, name[len(NON_LORA_PREFIX) :])
    return KeyAction(target=target) if target is not None else KeyAction()


def map_clip_key(name: str) -> KeyAction:
    """A key of the CLIP directory (full ``CLIPModel`` as openai ships it, or a ``CLIPVisionModel``)."""
    if _CLIP_DROPS.fullmatch(name):
        return KeyAction(drop=DROP_CLIP_OTHER)
    target = _apply(_CLIP_RULES, name)
    return KeyAction(target=target) if target is not None else KeyAction()


def clip_key_for_image_tower(name: str) -> str:
    """``model.image_tower.vision_tower.vision_model.X`` (stage 2) -> our ``vision_tower.X``."""
    return "vision_tower." + name[len(IMAGE_TOWER_PREFIX) :]


def lora_base_key(name: str) -> tuple[str, str] | None:
    """``base_model.model.<module>.lora_A.weight`` -> (``<module>.weight`` in stage-2 naming, ``"A"``)."""
    match = _LORA_RULE.fullmatch(name)
    if match is None:
        return None
    return f"{match.group(1)}.weight", match.group(3)


# ---- LoRA adapter config ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraSettings:
    """The parts of ``adapter_config.json`` the merge needs. ``scaling`` = alpha / r (alpha / sqrt(r) for rsLoRA)."""

    r: int
    alpha: float
    scaling: float
    target_modules: tuple[str, ...] | str

    def targets(self, module: str) -> bool:
        """Whether peft would put a LoRA on ``module`` (e.g. ``model.layers.0.self_attn.q_proj``)."""
        if isinstance(self.target_modules, str):
            return re.fullmatch(self.target_modules, module) is not None
        return any(module == t or module.endswith("." + t) for t in self.target_modules)


def read_lora_settings(lora_dir: Path) -> LoraSettings:
    path = Path(lora_dir) / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f"cannot read the LoRA config {path}: {exc}") from exc
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ConversionError(f"{path}: peft_type {cfg.get('peft_type')!r} is not supported; allowed: 'LORA'")
    bad = {
        key: cfg[key]
        for key, ok in (("fan_in_fan_out", False), ("bias", "none"), ("use_dora", False))
        if key in cfg and cfg[key] != ok
    }
    if cfg.get("modules_to_save"):
        bad["modules_to_save"] = cfg["modules_to_save"]
    if bad:
        raise ConversionError(
            f"{path}: unsupported LoRA settings {bad}; allowed: fan_in_fan_out=false, bias='none', "
            "use_dora=false, no modules_to_save"
        )
    r, alpha = cfg.get("r"), cfg.get("lora_alpha")
    if not isinstance(r, int) or r < 1 or not isinstance(alpha, (int, float)):
        raise ConversionError(f"{path}: r={r!r} and lora_alpha={alpha!r} must be a positive int and a number")
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora", False) else alpha / r
    targets = cfg.get("target_modules")
    if not (isinstance(targets, str) or (isinstance(targets, list) and targets)):
        raise ConversionError(f"{path}: target_modules {targets!r} must be a non-empty list or a regex")
    return LoraSettings(
        r=r,
        alpha=float(alpha),
        scaling=float(scaling),
        target_modules=targets if isinstance(targets, str) else tuple(targets),
    )


# ---- config -----------------------------------------------------------------------------------------------

_LLAMA_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
_LLAMA_OPTIONAL = (
    "num_key_value_heads",
    "max_position_embeddings",
    "rms_norm_eps",
    "hidden_act",
    "rope_theta",
    "rope_scaling",
    "attention_bias",
    "mlp_bias",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "tie_word_embeddings",
    "initializer_range",
)


def original_region_layers(select_layer: int, levels: int = 4) -> list[int]:
    """The original's ``hidden_states[select_layer::-3]`` reversed, last ``levels``: -2 -> [-11, -8, -5, -2]."""
    return [select_layer - 3 * i for i in range(levels)][::-1]


def build_config(
    base_config: Mapping[str, Any],
    vision_config: CLIPVisionConfig,
    *,
    vocab_size: int,
    token_ids: Mapping[str, int],
    overrides: Mapping[str, Any] | None = None,
) -> ArtemisConfig:
    """``ArtemisConfig`` from the stage-2 ``config.json`` (LLaMA part, ``mm_*`` fields) and the CLIP config.

    ``token_ids`` maps ``<image>``, ``<video>``, ``<region>`` to their ids; ``overrides`` replace top-level
    Artemis fields (``text_config`` / ``vision_config`` dicts are merged). The K-means takes the original's
    initialisation (``kmeans_init="random"``: torch_kmeans' seeded ``'rnd'`` draw, original_checkpoint.md §5.6).
    """
    missing = [k for k in _LLAMA_REQUIRED if k not in base_config]
    if missing:
        raise ConversionError(f"the stage-2 config.json lacks the LLaMA fields {missing}")
    text = {k: base_config[k] for k in _LLAMA_REQUIRED}
    text.update({k: base_config[k] for k in _LLAMA_OPTIONAL if base_config.get(k) is not None})
    text.setdefault("num_key_value_heads", text["num_attention_heads"])
    text["vocab_size"] = int(vocab_size)
    vision = vision_config.to_dict()
    mm_hidden = base_config.get("mm_hidden_size", vision_config.hidden_size)
    if mm_hidden != vision_config.hidden_size:
        raise ConversionError(
            f"config.json mm_hidden_size {mm_hidden} differs from the CLIP hidden_size {vision_config.hidden_size}"
        )
    projector_type = base_config.get("mm_projector_type", "mlp2x_gelu")
    if projector_type not in PROJECTOR_TYPES:
        raise ConversionError(
            f"config.json mm_projector_type {projector_type!r} is unknown; allowed: {PROJECTOR_TYPES}"
        )
    select_layer = int(base_config.get("mm_vision_select_layer", -2))
    kwargs: dict[str, Any] = {
        "vision_feature_layer": select_layer,
        "region_feature_layers": original_region_layers(select_layer),
        "projector_type": projector_type,
        "image_token_id": token_ids["<image>"],
        "video_token_id": token_ids["<video>"],
        "region_token_id": token_ids["<region>"],
        "kmeans_init": "random",  # the original's torch_kmeans init_method='rnd' (seed 123, 8 restarts)
    }
    overrides = dict(overrides or {})
    text.update(overrides.pop("text_config", None) or {})
    vision.update(overrides.pop("vision_config", None) or {})
    kwargs.update(overrides)
    try:
        return ArtemisConfig(vision_config=vision, text_config=text, **kwargs)
    except ValueError as exc:
        raise ConversionError(f"the converted config is invalid: {exc}") from exc
