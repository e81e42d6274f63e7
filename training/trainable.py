"""What trains is configuration: freeze / unfreeze the parts of an Artemis model and wire LoRA (PEFT).

- ``projector``: ``full`` | ``frozen``; ``region_encoder``: ``full`` | ``frozen``; ``region_motion`` (the optional
  motion MLP of the region encoder): ``full`` | ``frozen`` | unset (follows ``region_encoder``);
- ``language_model``: ``frozen`` | ``full`` | ``lora`` (PEFT LoRA on the Llama linears q/k/v/o/gate/up/down of
  the language model only: never ``lm_head``, the projector, the region encoder or the vision tower);
- the vision tower is frozen in every stage.

With LoRA the model is wrapped in a ``PeftModel``; fully trained parts (projector, region encoder) become PEFT
``modules_to_save`` so that adapter checkpoints hold everything that trains (resume is exact) and
``merge_and_unload`` gives back a plain :class:`ArtemisForConditionalGeneration`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from torch import nn

from training.config import LoraSection, TrainableSection

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"
_PEFT_PREFIX = "base_model.model."


def lora_target_regex(targets: list[str] | tuple[str, ...]) -> str:
    """Full-match regex of the language model's Llama linears named in ``targets`` (never ``lm_head``)."""
    names = "|".join(re.escape(t) for t in targets)
    return rf"language_model\.model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"


def apply_trainable(model: nn.Module, trainable: TrainableSection, lora: LoraSection) -> nn.Module:
    """Set ``requires_grad`` per part and, for ``language_model: lora``, wrap with PEFT. Returns the model to train."""
    for name in ("vision_tower", "projector", "region_encoder", "language_model"):
        if not hasattr(model, name):
            raise TypeError(f"{type(model).__name__} has no {name!r}: not an ArtemisForConditionalGeneration")
    model.requires_grad_(False)
    model.projector.requires_grad_(trainable.projector == "full")
    model.region_encoder.requires_grad_(trainable.region_encoder == "full")
    motion_mlp = getattr(model.region_encoder, "motion_mlp", None)
    motion = trainable.region_motion or trainable.region_encoder
    if motion_mlp is not None:
        motion_mlp.requires_grad_(motion == "full")
    if trainable.language_model == "full":
        model.language_model.requires_grad_(True)
    if trainable.language_model != "lora":
        _log_counts(model)
        return model

    from peft import LoraConfig, get_peft_model

    modules_to_save = [part for part in ("projector", "region_encoder") if getattr(trainable, part) == "full"]
    if motion_mlp is not None and motion == "full" and trainable.region_encoder != "full":
        modules_to_save.append("region_encoder.motion_mlp")
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        bias="none",
        target_modules=lora_target_regex(lora.target_modules),
        modules_to_save=modules_to_save or None,
    )
    peft_model = get_peft_model(model, config, adapter_name=ADAPTER_NAME)
    _log_counts(peft_model)
    return peft_model


def canonical_name(name: str) -> str:
    """Parameter name without PEFT's wrapping: ``base_model.model.x.modules_to_save.default.y`` -> ``x.y``,
    ``...q_proj.lora_A.default.weight`` -> ``...q_proj.lora_A.weight``."""
    if name.startswith(_PEFT_PREFIX):
        name = name[len(_PEFT_PREFIX) :]
    name = name.replace(f".modules_to_save.{ADAPTER_NAME}.", ".")
    return re.sub(rf"\.(lora_[AB]|lora_embedding_[AB])\.{ADAPTER_NAME}\b", r".\1", name)


def trainable_parameter_names(model: nn.Module) -> set[str]:
    """Canonical names (see :func:`canonical_name`) of every parameter with ``requires_grad``."""
    return {canonical_name(n) for n, p in model.named_parameters() if p.requires_grad}


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def _log_counts(model: nn.Module) -> None:
    trainable, total = count_parameters(model)
    logger.info(
        "trainable parameters: %d of %d (%.3f%%)", trainable, total, 100.0 * trainable / max(total, 1)
    )


def unwrap_peft(model: nn.Module) -> nn.Module:
    """Merge LoRA into the weights when ``model`` is a ``PeftModel`` (returns the plain model), else ``model``."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    return model


def save_merged(model: nn.Module, directory: str | Path) -> Path:
    """Merge LoRA (if any) and ``save_pretrained`` a plain Artemis checkpoint loadable with
    ``ArtemisForConditionalGeneration.from_pretrained``."""
    directory = Path(directory)
    merged = unwrap_peft(model)
    merged.save_pretrained(directory)
    logger.info("saved merged model to %s", directory)
    return directory
