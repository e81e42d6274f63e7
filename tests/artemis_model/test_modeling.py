"""The composed model: sequence assembly, errors, generation determinism, save/load, box sensitivity."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText

import artemis_model  # noqa: F401  (registers the auto classes)
from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.errors import FrameIndexError
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import EVAL_QUESTION, render_prompt
from artemis_model.tiny import tiny_config, tiny_model_and_processor


@pytest.fixture(scope="module")
def tiny():
    model, processor = tiny_model_and_processor(seed=0)
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (6, 32, 48, 3), generator=gen, dtype=torch.uint8)
    pixels = processor.preprocess_frames(frames)
    with torch.no_grad():
        video = model.encode_video_frames(pixels)[None]
        fused = model.encode_region_frames(pixels)
    return model, processor, pixels, video, fused


def _regions(model, fused, shift: float = 0.0) -> torch.Tensor:
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.5]]).repeat(9, 1) + torch.linspace(0, 0.3, 9)[:, None]
    boxes[0] += shift
    frame_ids = torch.tensor([[0, 0, 1, 1, 2, 3, 4, 5, 5]])
    with torch.no_grad():
        return model.build_region_features(
            None, frame_ids, boxes.clamp(max=1.0)[None], fused_maps=fused
        ).tokens


def _prompt(processor, question: str = EVAL_QUESTION):
    return processor(render_prompt(question, template="eval_original"))


def test_video_features_are_temporal_then_spatial_means(tiny):
    model, _, pixels, video, _ = tiny
    cfg = model.config
    with torch.no_grad():
        feats = model.vision_patch_features(pixels)  # [T, P, Cv]
    t = pixels.shape[0]
    torch.testing.assert_close(video[0, :t], feats.mean(1))
    assert torch.count_nonzero(video[0, t : cfg.num_temporal_tokens]) == 0  # zero padded, not masked
    torch.testing.assert_close(video[0, cfg.num_temporal_tokens :], feats.mean(0))
    too_many = pixels[:1].expand(cfg.num_temporal_tokens + 1, -1, -1, -1)
    with pytest.raises(ValueError, match="frames"):
        model.encode_video_frames(too_many)


@pytest.mark.parametrize("kind", ["region", "video", "image"])
def test_feature_token_count_mismatch_raises(tiny, kind):
    model, processor, pixels, video, fused = tiny
    regions = _regions(model, fused)
    enc = _prompt(processor)
    kwargs = {"video_features": video, "region_features": regions}
    if kind == "region":
        kwargs["region_features"] = regions[:, :4]
        n_feat, n_tok = 4, 5
    elif kind == "video":
        kwargs["video_features"] = torch.cat([video, video])
        n_feat, n_tok = 2 * model.config.num_video_tokens, model.config.num_video_tokens
    else:
        kwargs["pixel_values"] = pixels[:1]
        n_feat, n_tok = model.config.num_patches, 0
    with pytest.raises(
        ValueError, match=rf"{kind} features \({n_feat}\) and <{kind}> tokens \({n_tok}\) do not match"
    ):
        model(**enc, **kwargs)


def test_image_placeholders(tiny):
    model, processor, pixels, _, _ = tiny
    enc = processor(render_prompt("<image>\n<image>\nWhat changed?", template="train"))
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == 2 * model.config.num_patches
    with torch.no_grad():
        a = model(**enc, pixel_values=pixels[:2]).logits
        b = model(**enc, pixel_values=pixels[[0, 3]]).logits
    assert not torch.allclose(a[0, -1], b[0, -1])


def test_moving_the_box_changes_logits(tiny):
    model, processor, _, video, fused = tiny
    enc = _prompt(processor)
    with torch.no_grad():
        a = model(**enc, video_features=video, region_features=_regions(model, fused)).logits[0, -1]
        b = model(**enc, video_features=video, region_features=_regions(model, fused, shift=0.2)).logits[
            0, -1
        ]
    assert (a - b).abs().max() > 1e-4


def _greedy(model, processor, video, regions, **kw) -> list[str]:
    enc = _prompt(processor)
    out = model.generate(**enc, video_features=video, region_features=regions, max_new_tokens=12, **kw)
    return processor.batch_decode(out[:, enc["input_ids"].shape[1] :])


def test_greedy_generation_ignores_global_rng(tiny):
    model, processor, _, video, fused = tiny
    regions = _regions(model, fused)
    texts = []
    for seed in (0, 1, 999):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        texts.append(_greedy(model, processor, video, regions))
    assert texts[0] == texts[1] == texts[2] and texts[0][0]
    assert _greedy(model, processor, video, regions, use_cache=False) == texts[0]  # KV cache is exact


def test_sampling_is_reproducible_with_seed(tiny):
    model, processor, _, video, fused = tiny
    regions = _regions(model, fused)
    a = _greedy(model, processor, video, regions, do_sample=True, temperature=1.0, seed=3)
    b = _greedy(model, processor, video, regions, do_sample=True, temperature=1.0, seed=3)
    assert a == b


def test_batched_left_padded_generation_matches_single(tiny):
    model, processor, _, video, fused = tiny
    regions = _regions(model, fused)
    short = render_prompt("<video>\nWhat is the <region> doing?", template="train")
    long = render_prompt(EVAL_QUESTION, template="eval_original")
    batch = processor([short, long])
    assert batch["attention_mask"][0, 0] == 0  # left padded
    both_regions = torch.cat([regions[0, :1], regions[0]])  # 1 + 5 region tokens in placeholder order
    out = model.generate(
        **batch, video_features=torch.cat([video, video]), region_features=both_regions, max_new_tokens=8
    )
    single = processor(short)
    one = model.generate(**single, video_features=video, region_features=regions[0, :1], max_new_tokens=8)
    assert out[0, batch["input_ids"].shape[1] :].tolist() == one[0, single["input_ids"].shape[1] :].tolist()


def test_save_load_roundtrip_and_auto_classes(tiny, tmp_path):
    model, processor, _, video, fused = tiny
    regions = _regions(model, fused)
    enc = _prompt(processor)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), ArtemisConfig)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, ArtemisForConditionalGeneration)
    with torch.no_grad():
        a = model(**enc, video_features=video, region_features=regions).logits
        b = loaded(**enc, video_features=video, region_features=regions).logits
    assert torch.equal(a, b)
    assert not any(p.requires_grad for p in loaded.vision_tower.parameters())


def test_training_loss_and_gradients(tiny):
    model, processor, pixels, video, _ = tiny
    model.train()
    try:
        sample = processor.encode_conversation(
            [("<video>\nWhat is the <region> doing?", "The red circle moves left.")]
        )
        ids = torch.tensor([sample.input_ids])
        labels = torch.tensor([sample.labels])
        frame_ids = torch.tensor([[0, 1, 2, 3, 4, 5]])
        boxes = torch.tensor([[[0.1, 0.1, 0.6, 0.6]] * 6])
        regions = model.build_region_features(pixels, frame_ids, boxes)
        out = model(input_ids=ids, labels=labels, video_features=video, region_features=regions.tokens[:, :1])
        out.loss.backward()
        assert torch.isfinite(out.loss)
        assert model.region_encoder.flatten_linear.weight.grad.abs().sum() > 0
        assert model.projector.linear_1.weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in model.vision_tower.parameters())
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_frame_index_out_of_range(tiny):
    model, _, _, _, fused = tiny
    with pytest.raises(FrameIndexError):
        model.region_tokens(fused, torch.tensor([6]), torch.tensor([[0.1, 0.1, 0.5, 0.5]]))


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"region_feature_layers": (-4, -3, -2)}, "region_feature_layers"),
        ({"num_tracked_boxes": 3}, "num_tracked_boxes 3"),
        ({"projector_type": "mlp3x"}, "mlp3x"),
        ({"region_feature_layers": (-9, -4, -3, -2)}, "-9"),
        ({"fuse_groupnorm_groups": 5}, "fuse_groupnorm_groups 5"),
        ({"fuse_shuffle_channels": 16}, "fuse_shuffle_channels 16"),
    ],
)
def test_invalid_config_values_raise(overrides, needle):
    with pytest.raises(ValueError, match=needle):
        tiny_config(**overrides)


def test_region_encoder_init_follows_the_original():
    model, _ = tiny_model_and_processor(seed=1)
    enc = model.region_encoder
    level_std = torch.cat([c.weight.flatten() for c in enc.level_convs]).std().item()
    assert abs(level_std - 0.01) < 0.001
    assert all(torch.count_nonzero(c.bias) == 0 for c in enc.level_convs)
    fan_out = enc.fuse_blocks[0].conv.weight[0].numel()  # C * 3 * 3
    fuse_std = torch.cat([b.conv.weight.flatten() for b in enc.fuse_blocks]).std().item()
    assert abs(fuse_std - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5


def test_from_pretrained_with_loading_info_keeps_tower_frozen(tmp_path):
    from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
    from artemis_model.tiny import tiny_model_and_processor

    model, _ = tiny_model_and_processor(seed=0)
    model.save_pretrained(tmp_path)
    loaded, info = ArtemisForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not any(p.requires_grad for p in loaded.vision_tower.parameters())
