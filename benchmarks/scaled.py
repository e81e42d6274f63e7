"""The scaled-down real Artemis architecture the benchmarks share (random weights, CPU-sized).

CLIP 224 px / patch 14 / width 256, Llama width 512 / 4 layers, 100 temporal + 256 spatial video tokens, RoI 14,
the full region-encoder structure with 256 channels. ``vision_layers`` / ``region_feature_layers`` /
``fuse_rounds`` are what the benchmarks vary.
"""

from __future__ import annotations

from typing import Any

from artemis_model.tiny import tiny_model_and_processor


def scaled_model(
    device: str,
    *,
    vision_layers: int = 8,
    region_feature_layers: tuple[int, int, int, int] = (-8, -6, -4, -2),
    **overrides: Any,
):
    """``(model, processor)`` of the scaled-down architecture on ``device``."""
    model, proc = tiny_model_and_processor(
        seed=0,
        vision_config={
            "hidden_size": 256,
            "intermediate_size": 1024,
            "num_hidden_layers": vision_layers,
            "num_attention_heads": 8,
            "image_size": 224,
            "patch_size": 14,
            "projection_dim": 256,
        },
        text_config={
            "hidden_size": 512,
            "intermediate_size": 1376,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "num_key_value_heads": 8,
            "max_position_embeddings": 2048,
        },
        region_feature_layers=region_feature_layers,
        fuse_shuffle_channels=32,
        fuse_groupnorm_groups=32,
        roi_output_size=14,
        box_mlp_hidden=64,
        num_temporal_tokens=100,
        **overrides,
    )
    return model.to(device), proc
