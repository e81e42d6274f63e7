"""Artemis-7B shapes on the meta device against the original checkpoint tables (original_checkpoint.md §1.3, §2.2)."""

from __future__ import annotations

import re

import pytest
import torch

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration


def _original_non_lora_table() -> dict[str, tuple[int, ...]]:
    """The 47 keys of ``non_lora_trainables.bin`` after stripping ``base_model.model.`` (spec §2.2)."""
    table: dict[str, tuple[int, ...]] = {
        "model.mm_projector.0.weight": (4096, 1024),
        "model.mm_projector.0.bias": (4096,),
        "model.mm_projector.2.weight": (4096, 4096),
        "model.mm_projector.2.bias": (4096,),
    }
    spi = "model.spi_model."
    for i in range(4):
        table[f"{spi}mlvl_fuse.input_conv.{i}.weight"] = (1024, 1026, 1, 1)
        table[f"{spi}mlvl_fuse.input_conv.{i}.bias"] = (1024,)
        table[f"{spi}roi_align.pconvs.{i}.weight"] = (1024, 1024, 3, 3)
        table[f"{spi}roi_align.pconvs.{i}.bias"] = (1024,)
    for i in range(5):
        table[f"{spi}mlvl_fuse.fuse_convs.{i}.conv.weight"] = (1024, 1024, 3, 3)
        table[f"{spi}mlvl_fuse.fuse_convs.{i}.gn.weight"] = (1024,)
        table[f"{spi}mlvl_fuse.fuse_convs.{i}.gn.bias"] = (1024,)
    table.update(
        {
            f"{spi}roi_align.pos_embedd.0.weight": (256, 4),
            f"{spi}roi_align.pos_embedd.0.bias": (256,),
            f"{spi}roi_align.pos_embedd.2.weight": (256,),
            f"{spi}roi_align.pos_embedd.2.bias": (256,),
            f"{spi}roi_align.pos_embedd.3.weight": (1024, 256),
            f"{spi}roi_align.pos_embedd.3.bias": (1024,),
            f"{spi}roi_align.pos_embedd.5.weight": (1024,),
            f"{spi}roi_align.pos_embedd.5.bias": (1024,),
            f"{spi}roi_align.updims.weight": (4096, 1024),
            f"{spi}roi_align.updims.bias": (4096,),
            f"{spi}roi_align.flatten_linear.weight": (1024, 200704),
            f"{spi}roi_align.flatten_linear.bias": (1024,),
        }
    )
    return table


# Original name (after the strip) -> our name. The converter maps the same way.
_RENAMES = [
    (r"^model\.mm_projector\.0\.", "projector.linear_1."),
    (r"^model\.mm_projector\.2\.", "projector.linear_2."),
    (r"^model\.spi_model\.mlvl_fuse\.input_conv\.(\d)\.", r"region_encoder.input_convs.\1."),
    (r"^model\.spi_model\.mlvl_fuse\.fuse_convs\.(\d)\.conv\.", r"region_encoder.fuse_blocks.\1.conv."),
    (r"^model\.spi_model\.mlvl_fuse\.fuse_convs\.(\d)\.gn\.", r"region_encoder.fuse_blocks.\1.norm."),
    (r"^model\.spi_model\.roi_align\.pconvs\.(\d)\.", r"region_encoder.level_convs.\1."),
    (r"^model\.spi_model\.roi_align\.pos_embedd\.0\.", "region_encoder.box_mlp.linear_1."),
    (r"^model\.spi_model\.roi_align\.pos_embedd\.2\.", "region_encoder.box_mlp.norm_1."),
    (r"^model\.spi_model\.roi_align\.pos_embedd\.3\.", "region_encoder.box_mlp.linear_2."),
    (r"^model\.spi_model\.roi_align\.pos_embedd\.5\.", "region_encoder.box_mlp.norm_2."),
    (r"^model\.spi_model\.roi_align\.updims\.", "region_encoder.up_proj."),
    (r"^model\.spi_model\.roi_align\.flatten_linear\.", "region_encoder.flatten_linear."),
]


def _rename(name: str) -> str:
    hits = [re.sub(pat, rep, name) for pat, rep in _RENAMES if re.match(pat, name)]
    assert len(hits) == 1, f"{name} matched {len(hits)} rules"
    return hits[0]


@pytest.fixture(scope="module")
def meta_model() -> ArtemisForConditionalGeneration:
    with torch.device("meta"):
        return ArtemisForConditionalGeneration(ArtemisConfig())


def test_parameter_counts(meta_model):
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(meta_model.region_encoder) == 299_142_912
    assert count(meta_model.projector) == 20_979_712
    assert count(meta_model.vision_tower) == 303_179_776  # spec §1.4
    # Vicuna-7B (6,738,415,616) + 3 placeholder rows in embed_tokens and lm_head.
    assert count(meta_model.language_model) == 6_738_415_616 + 2 * 3 * 4096
    assert meta_model.region_encoder.flatten_linear.weight.numel() == 205_520_896


def test_name_shape_table_matches_original(meta_model):
    original = _original_non_lora_table()
    assert len(original) == 47 and sum(torch.Size(s).numel() for s in original.values()) == 320_122_624
    ours = {
        name: tuple(p.shape)
        for name, p in meta_model.named_parameters()
        if name.startswith(("region_encoder.", "projector."))
    }
    mapped = {_rename(name): shape for name, shape in original.items()}
    assert len(mapped) == len(original)  # the mapping is injective
    assert set(mapped) == set(ours), sorted(set(mapped) ^ set(ours))
    for name, shape in mapped.items():
        assert ours[name] == shape, name
