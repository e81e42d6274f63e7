"""The Artemis model package: config, model, processor, region encoder, selection and shared types.

Heavy modules load lazily on first attribute access; ``import artemis_model`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ArtemisConfig": "artemis_model.configuration_artemis",
    "ArtemisForConditionalGeneration": "artemis_model.modeling_artemis",
    "ArtemisPreTrainedModel": "artemis_model.modeling_artemis",
    "ArtemisProjector": "artemis_model.modeling_artemis",
    "RegionFeatures": "artemis_model.modeling_artemis",
    "resolve_attn_implementation": "artemis_model.modeling_artemis",
    "ArtemisRegionEncoder": "artemis_model.region_encoder",
    "ArtemisProcessor": "artemis_model.processing_artemis",
    "EncodedConversation": "artemis_model.processing_artemis",
    "EVAL_QUESTION": "artemis_model.processing_artemis",
    "TEMPLATES": "artemis_model.processing_artemis",
    "add_placeholder_tokens": "artemis_model.processing_artemis",
    "render_prompt": "artemis_model.processing_artemis",
    "choose_track_frames": "artemis_model.selection",
    "kmeans": "artemis_model.selection",
    "select_tokens": "artemis_model.selection",
    "Box": "artemis_model.types",
    "Description": "artemis_model.types",
    "GenerationOptions": "artemis_model.types",
    "Track": "artemis_model.types",
    "box_iou": "artemis_model.types",
    "validate_box": "artemis_model.types",
    "validate_frame_idx": "artemis_model.types",
    "ArtemisInputError": "artemis_model.errors",
    "FrameIndexError": "artemis_model.errors",
    "InvalidBoxError": "artemis_model.errors",
    "NotAnArtemisModelError": "artemis_model.errors",
    "VideoDecodeError": "artemis_model.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'artemis_model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
