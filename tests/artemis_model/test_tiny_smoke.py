"""Smoke test of the tiny model others build on: build, forward, generate, save/load."""

from __future__ import annotations

import torch

from artemis_model.processing_artemis import EVAL_QUESTION, render_prompt
from artemis_model.tiny import tiny_config, tiny_model_and_processor


def _inputs(model, processor, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (6, 30, 40, 3), generator=gen, dtype=torch.uint8)
    pixels = processor.preprocess_frames(frames)
    video = model.encode_video_frames(pixels)[None]  # [1, T_max + P, Cv]
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.6]]).repeat(9, 1) + torch.linspace(0, 0.4, 9)[:, None]
    frame_ids = torch.tensor([[0, 0, 1, 1, 2, 3, 4, 5, 5]])
    regions = model.build_region_features(pixels, frame_ids, boxes.clamp(max=1.0)[None])
    enc = processor(render_prompt(EVAL_QUESTION, template="eval_original"))
    return enc, video, regions


def test_tiny_forward_generate_and_roundtrip(tmp_path):
    model, processor = tiny_model_and_processor(seed=0)
    cfg = model.config
    enc, video, regions = _inputs(model, processor)
    assert video.shape == (1, cfg.num_temporal_tokens + cfg.num_patches, cfg.vision_config.hidden_size)
    assert regions.tokens.shape == (1, 1 + cfg.num_region_tokens, cfg.text_config.hidden_size)
    n_video = int((enc["input_ids"] == cfg.video_token_id).sum())
    assert n_video == cfg.num_video_tokens
    with torch.no_grad():
        out = model(**enc, video_features=video, region_features=regions.tokens)
    assert out.logits.shape == (1, enc["input_ids"].shape[1], cfg.text_config.vocab_size)
    gen = model.generate(**enc, video_features=video, region_features=regions.tokens, max_new_tokens=5)
    assert gen.shape[1] > enc["input_ids"].shape[1]

    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    reloaded = type(model).from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        again = reloaded(**enc, video_features=video, region_features=regions.tokens)
    torch.testing.assert_close(again.logits, out.logits, rtol=0, atol=0)


def test_tiny_config_overrides():
    cfg = tiny_config(num_temporal_tokens=8, text_config={"num_hidden_layers": 1})
    assert cfg.num_temporal_tokens == 8 and cfg.text_config.num_hidden_layers == 1
    assert cfg.text_config.hidden_size == 64
