"""Assemble the stage-1 initial Artemis checkpoint from a language model and a CLIP directory.

Stage 1 (reference §2.1) starts from Vicuna-v1.5-7B + CLIP ViT-L/14 with a fresh projector and region encoder.
:func:`assemble_model` builds that checkpoint in our format so that ``model.path`` of
``training/configs/stage1_pretrain.yaml`` can point at it:

- config: ``ArtemisConfig`` from the LLM's ``LlamaConfig`` (every field kept; ``vocab_size`` grown by the
  placeholder rows) and the CLIP vision config (``CLIPVisionConfig.from_pretrained`` reads either a full
  ``CLIPModel`` or a ``CLIPVisionModel`` directory); the Artemis knobs at their defaults unless overridden;
- weights: the LLM's ``LlamaForCausalLM`` tensors (``language_model.*``) and CLIP's vision tensors
  (``vision_tower.*``, keys mapped by :func:`artemis_model.convert.keys.map_clip_key`), read with the safe
  readers of :mod:`artemis_model.convert.checkpoint_io` (safetensors, or ``torch.load(weights_only=True)``). Every
  name and shape is checked before any data is read; unmatched, missing or mis-shaped tensors are all listed
  in one :class:`AssemblyError`;
- tokenizer: the LLM's, plus ``<image>``, ``<video>``, ``<region>``; ``embed_tokens`` / ``lm_head`` grow by
  one row per new token, each the mean of the existing rows (as :mod:`artemis_model.convert.converter`);
- projector + region encoder: the model's own initialisation (``_init_weights``) under ``seed``, in float32,
  then cast: the same seed and config give the same weights whatever the output dtype;
- saved: ``save_pretrained`` (safetensors), the processor (resize mode ``"consistent"``, prompt template
  ``"train"``) and ``artemis_assembly.json`` (provenance).

The whole model is held in memory once, in the output dtype (7B in bf16: ~14 GB); no streaming.

Command line: ``artemis init-model --llm DIR --clip DIR --out DIR [--dtype bf16]``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig
from transformers.initialization import no_init_weights

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.convert.checkpoint_io import ConversionError, TensorFile, resolve_weight_files
from artemis_model.convert.converter import DTYPES, _append_mean_rows, _load_tokenizer, _read_json
from artemis_model.convert.keys import EMBED_KEY, LM_HEAD_KEY, KeyAction, map_clip_key
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration, ArtemisProjector
from artemis_model.processing_artemis import ArtemisProcessor, add_placeholder_tokens
from artemis_model.region_encoder import ArtemisRegionEncoder

__all__ = ["ASSEMBLY_FILE", "AssemblyError", "assemble_model", "build_assembled_config", "map_llm_key"]

logger = logging.getLogger(__name__)

ASSEMBLY_FILE = "artemis_assembly.json"
RESIZE_MODE = "consistent"
PROMPT_TEMPLATE = "train"
LLM_MODEL_TYPES = ("llama",)
LLM_PREFIX = "language_model."
_LLM_DROPS = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")  # recomputed from the config
_MAX_LISTED = 20


class AssemblyError(ConversionError):
    """The language model or CLIP directory cannot be assembled into an Artemis checkpoint."""


def build_assembled_config(
    llm_config: Mapping[str, Any],
    vision_config: CLIPVisionConfig,
    *,
    vocab_size: int,
    token_ids: Mapping[str, int],
    overrides: Mapping[str, Any] | None = None,
) -> ArtemisConfig:
    """``ArtemisConfig`` from the LLM's ``config.json`` (all ``LlamaConfig`` fields kept, ``vocab_size``
    replaced), the CLIP vision config and the placeholder ids. ``overrides`` replace top-level Artemis fields;
    ``text_config`` / ``vision_config`` dicts are merged into the sources' configs."""
    _check_model_type(llm_config)
    overrides = dict(overrides or {})
    text = LlamaConfig(**{k: v for k, v in llm_config.items() if k != "model_type"}).to_dict()
    text.update(overrides.pop("text_config", None) or {})
    text["vocab_size"] = int(vocab_size)
    vision = vision_config.to_dict()
    vision.update(overrides.pop("vision_config", None) or {})
    kwargs: dict[str, Any] = {
        "image_token_id": token_ids["<image>"],
        "video_token_id": token_ids["<video>"],
        "region_token_id": token_ids["<region>"],
    }
    kwargs.update(overrides)
    try:
        return ArtemisConfig(vision_config=vision, text_config=text, **kwargs)
    except (TypeError, ValueError) as exc:
        raise AssemblyError(f"the assembled config is invalid (fix it with config_overrides): {exc}") from exc


def _check_model_type(llm_config: Mapping[str, Any]) -> None:
    model_type = llm_config.get("model_type")
    if model_type not in LLM_MODEL_TYPES:
        raise AssemblyError(
            f"the language model's model_type {model_type!r} is not supported; allowed: {LLM_MODEL_TYPES}"
        )


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise AssemblyError(f"output {out_dir} exists and is not an empty directory")


def map_llm_key(name: str) -> KeyAction:
    """A tensor of a ``LlamaForCausalLM`` checkpoint: ``X`` -> ``language_model.X`` (old rotary buffers dropped)."""
    if _LLM_DROPS.fullmatch(name):
        return KeyAction(drop="rotary_emb.inv_freq (recomputed from the config)")
    return KeyAction(target=LLM_PREFIX + name)


class _Plan:
    """Which tensor of which file goes where; built from metadata only."""

    def __init__(self) -> None:
        self.moves: dict[Path, dict[str, str]] = {}  # file -> {source name: our name}
        self.errors: list[str] = []
        self.targets: set[str] = set()

    def add_source(
        self,
        label: str,
        directory: Path,
        map_key: Callable[[str], KeyAction],
        expected: Mapping[str, tuple[int, ...]],
        grown: Mapping[str, int],
    ) -> None:
        try:
            files, _ = resolve_weight_files(directory)
        except ConversionError as exc:
            raise AssemblyError(f"{label}: {exc}") from exc
        for path in files:
            moves: dict[str, str] = {}
            with TensorFile(path) as f:
                for name, meta in f.meta.items():
                    action = map_key(name)
                    if action.drop is not None:
                        continue
                    target = action.target
                    if target is None or target not in expected:
                        self.errors.append(f"{label} {path.name}: {name!r} matches no Artemis parameter")
                        continue
                    if target in self.targets:
                        self.errors.append(f"{label} {path.name}: {name!r} -> {target} is given twice")
                        continue
                    want = list(expected[target])
                    want[0] -= grown.get(target, 0)
                    if list(meta.shape) != want:
                        self.errors.append(
                            f"{label} {path.name}: {name!r} has shape {list(meta.shape)}, {target} needs {want}"
                        )
                        continue
                    if not meta.dtype.is_floating_point:
                        self.errors.append(f"{label} {path.name}: {name!r} has non-float dtype {meta.dtype}")
                        continue
                    moves[name] = target
                    self.targets.add(target)
            self.moves[path] = moves

    def raise_errors(self) -> None:
        if self.errors:
            shown = "\n  ".join(self.errors[:_MAX_LISTED])
            more = (
                f"\n  ... and {len(self.errors) - _MAX_LISTED} more" if len(self.errors) > _MAX_LISTED else ""
            )
            raise AssemblyError(f"{len(self.errors)} problems with the source weights:\n  {shown}{more}")


def _source_dtype(llm_dir: Path) -> torch.dtype:
    """The dtype of the LLM's token embeddings (what ``dtype=None`` follows)."""
    files, weight_map = resolve_weight_files(llm_dir)
    name = EMBED_KEY[len(LLM_PREFIX) :]
    candidates = [llm_dir / weight_map[name]] if weight_map and name in weight_map else files
    for path in candidates:
        with TensorFile(path) as f:
            if name in f.meta:
                return f.meta[name].dtype
    raise AssemblyError(f"{llm_dir} has no {name!r} tensor (is it a LlamaForCausalLM checkpoint?)")


def _fresh_modules(
    model: ArtemisForConditionalGeneration, config: ArtemisConfig, seed: int
) -> dict[str, dict[str, torch.Tensor]]:
    """Projector and region encoder initialised as the model initialises them, in float32, under ``seed``."""
    devices: list[torch.device] = []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        modules: dict[str, nn.Module] = {
            "projector": ArtemisProjector(config),
            "region_encoder": ArtemisRegionEncoder(config),
        }
        for module in modules.values():
            module.float()
            for sub in module.modules():
                model._init_weights(sub)
    return {name: module.state_dict() for name, module in modules.items()}


def assemble_model(
    llm_dir: str | Path,
    clip_dir: str | Path,
    out_dir: str | Path,
    *,
    dtype: torch.dtype | None = None,
    config_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Write the stage-1 initial Artemis checkpoint (LLM + CLIP + fresh projector/region encoder) to ``out_dir``.

    Args:
        llm_dir: a ``LlamaForCausalLM`` saved with Hugging Face (config, weights, fast-loadable tokenizer).
        clip_dir: a CLIP directory (``openai/clip-vit-large-patch14`` layout, or a ``CLIPVisionModel``).
        out_dir: absent or empty.
        dtype: output dtype (one of :data:`artemis_model.convert.DTYPES`); ``None`` follows the LLM's weights.
        config_overrides: top-level ``ArtemisConfig`` fields to replace (``text_config`` / ``vision_config``
            dicts are merged), e.g. ``region_feature_layers`` for a CLIP with fewer layers.
        seed: seed of the projector and region encoder initialisation.

    Returns:
        ``out_dir``. Raises :class:`AssemblyError` (before anything is written) for unreadable sources and
        unmatched, missing or mis-shaped tensors.
    """
    llm_dir, clip_dir, out_dir = Path(llm_dir), Path(clip_dir), Path(out_dir)
    if dtype is not None and dtype not in DTYPES.values():
        raise ValueError(f"dtype {dtype} is not supported; allowed: {list(DTYPES.values())}")
    _check_out_dir(out_dir)
    llm_config = _read_json(llm_dir / "config.json")
    _check_model_type(llm_config)
    dtype = dtype or _source_dtype(llm_dir)
    if dtype not in DTYPES.values():
        raise AssemblyError(
            f"the LLM weights' dtype {dtype} is not supported; pass dtype= one of {list(DTYPES)}"
        )

    tokenizer = _load_tokenizer(llm_dir)
    base_tokens = len(tokenizer)
    token_ids = add_placeholder_tokens(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    base_rows = int(llm_config.get("vocab_size", 0))
    vocab_size = max(base_rows, len(tokenizer))
    reused = {t: i for t, i in token_ids.items() if i < base_rows}
    if reused:
        logger.warning(
            "placeholder tokens %s reuse existing embedding rows (LLM vocab %d)", reused, base_rows
        )
    try:
        vision_config = CLIPVisionConfig.from_pretrained(clip_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise AssemblyError(f"cannot read the CLIP config in {clip_dir}: {exc}") from exc
    config = build_assembled_config(
        llm_config, vision_config, vocab_size=vocab_size, token_ids=token_ids, overrides=config_overrides
    )

    with no_init_weights():  # every tensor is loaded or initialised below: skip the random init of 7B weights
        model = ArtemisForConditionalGeneration._from_config(config, dtype=dtype)
    model.tie_weights()  # no_init_weights also skips the tying of post_init
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    new_rows = vocab_size - base_rows
    grown = {EMBED_KEY: new_rows, LM_HEAD_KEY: new_rows}
    plan = _Plan()
    plan.add_source("LLM", llm_dir, map_llm_key, expected, grown)
    plan.add_source("CLIP", clip_dir, map_clip_key, expected, grown)
    tied = {LM_HEAD_KEY} if config.tie_word_embeddings else set()
    needed = {k for k in expected if k.startswith((LLM_PREFIX, "vision_tower."))} - tied
    plan.errors += [f"missing from the sources: {k}" for k in sorted(needed - plan.targets)]
    plan.raise_errors()

    params = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for path, moves in plan.moves.items():
            with TensorFile(path) as f:
                for name, target in moves.items():
                    tensor = f.get(name)
                    f.release(name)
                    if target in grown:
                        tensor = _append_mean_rows(tensor, grown[target])
                    params[target].copy_(tensor)
                    del tensor
            logger.info("loaded %d tensors from %s", len(moves), path)
        for name, state in _fresh_modules(model, config, seed).items():
            getattr(model, name).load_state_dict(state)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    image_processor = None
    if (clip_dir / "preprocessor_config.json").is_file():
        image_processor = CLIPImageProcessor.from_pretrained(clip_dir, local_files_only=True)
    processor = ArtemisProcessor.from_config(config, tokenizer, image_processor, resize_mode=RESIZE_MODE)
    processor.prompt_template = PROMPT_TEMPLATE
    processor.save_pretrained(out_dir)
    dtype_name = next(k for k, v in DTYPES.items() if v == dtype)
    provenance = {
        "sources": {"llm": str(llm_dir), "clip": str(clip_dir)},
        "dtype": dtype_name,
        "seed": seed,
        "base_vocab": {"tokenizer": base_tokens, "embedding_rows": base_rows},
        "vocab_size": vocab_size,
        "new_rows": new_rows,
        "placeholder_ids": token_ids,
        "config_overrides": dict(config_overrides or {}),
        "resize_mode": RESIZE_MODE,
        "prompt_template": PROMPT_TEMPLATE,
    }
    (out_dir / ASSEMBLY_FILE).write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    logger.info(
        "assembled %s (%s, vocab %d, %d new rows) into %s",
        llm_dir.name,
        dtype_name,
        vocab_size,
        new_rows,
        out_dir,
    )
    return out_dir
