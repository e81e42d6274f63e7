"""``config.region_motion_embedding`` (not in the paper): tracked region tokens also embed their box's displacement.

Oracles: hand-computed box-regression deltas, the module's additive contribution when added to a checkpoint saved
without it, the per-query plumbing of ``build_region_features`` against single-box calls, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.region_encoder import ArtemisRegionEncoder, box_motion
from artemis_model.tiny import tiny_config


def test_box_motion_is_the_centre_shift_in_box_units_and_log_size_ratio():
    boxes = torch.tensor(
        [
            [
                [0.5, 0.5, 0.9, 0.9],  # key box: no displacement
                [0.1, 0.2, 0.3, 0.6],  # first tracked box: nothing before it
                [0.2, 0.2, 0.4, 0.6],  # centre +0.1 in x = half a width (0.2); same size
                [0.2, 0.0, 0.6, 0.4],  # centre (0.3, 0.4) -> (0.4, 0.2): +0.1 / 0.2, -0.2 / 0.4; w x2
            ]
        ]
    )
    expected = torch.tensor(
        [[[0, 0, 0, 0], [0, 0, 0, 0], [0.5, 0, 0, 0], [0.5, -0.5, math.log(2), 0]]], dtype=torch.float32
    )
    torch.testing.assert_close(box_motion(boxes), expected, rtol=1e-5, atol=1e-6)
    degenerate = torch.tensor([[[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], [0.6, 0.5, 0.6, 0.5]]])
    assert torch.isfinite(box_motion(degenerate)).all()  # zero-size boxes are clamped, not divided by
    with pytest.raises(ValueError, match=r"\[B, 1 \+ n, 4\]"):
        box_motion(torch.zeros(3, 4))


def _frames_and_boxes(cfg, n: int):
    gen = torch.Generator().manual_seed(3)
    frames = torch.rand(1 + n, 3, cfg.vision_config.image_size, cfg.vision_config.image_size, generator=gen)
    frame_ids = torch.arange(1 + n)[None]
    boxes = torch.tensor(
        [[[0.4, 0.4, 0.6, 0.6]] + [[0.1 + 0.08 * i, 0.3, 0.3 + 0.08 * i, 0.5] for i in range(n)]]
    )
    return frames, frame_ids, boxes


def test_motion_module_added_to_a_checkpoint_saved_without_it(tmp_path):
    """Every saved weight loads; the new MLP's output is *added* before ``up_proj`` (a linear layer), so the tokens
    are the old ones plus ``up_proj.weight @ motion_mlp(box_motion)``."""
    torch.manual_seed(0)
    plain = ArtemisForConditionalGeneration(tiny_config()).eval()
    plain.save_pretrained(tmp_path / "plain")
    loaded = ArtemisForConditionalGeneration.from_pretrained(
        tmp_path / "plain", region_motion_embedding=True
    ).eval()
    assert plain.region_encoder.motion_mlp is None and loaded.config.region_motion_embedding
    saved = plain.state_dict()
    state = loaded.state_dict()
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    assert {k for k in state if k not in saved} == {
        f"region_encoder.motion_mlp.{n}" for n, _ in loaded.region_encoder.motion_mlp.named_parameters()
    }
    cfg = plain.config
    frames, frame_ids, boxes = _frames_and_boxes(cfg, cfg.num_tracked_boxes)
    with torch.no_grad():
        old = plain.region_tokens(plain.encode_region_frames(frames), frame_ids[0], boxes[0])  # [1 + n, D]
        new = loaded.build_region_features(frames, frame_ids, boxes)
        motion = box_motion(boxes)[0]  # [1 + n, 4]
        added = loaded.region_encoder.motion_mlp(motion) @ loaded.region_encoder.up_proj.weight.T
    chosen = torch.cat([torch.zeros(1, dtype=torch.long), 1 + new.selected[0]])
    torch.testing.assert_close(new.tokens[0], (old + added)[chosen], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(new.tokens[0], old[chosen], atol=1e-3)


def test_each_tracked_token_gets_its_own_displacement():
    torch.manual_seed(0)
    cfg = tiny_config(region_motion_embedding=True, num_tracked_boxes=4, num_region_tokens=4)
    model = ArtemisForConditionalGeneration(cfg).eval()
    frames, frame_ids, boxes = _frames_and_boxes(cfg, 4)
    with torch.no_grad():
        tokens = model.build_region_features(frames, frame_ids, boxes).tokens[0]  # [1 + 4, D]
        maps = model.encode_region_frames(frames)
        motion = box_motion(boxes)[0]
        for k in range(5):  # the same box alone, with its displacement given explicitly
            alone = model.region_tokens(maps, torch.tensor([k]), boxes[0, k : k + 1], motion[k : k + 1])
            torch.testing.assert_close(tokens[k], alone[0], rtol=1e-5, atol=1e-5)
        # key and first tracked box: zero displacement == omitted
        still = model.region_tokens(maps, torch.tensor([0, 1]), boxes[0, :2])
        torch.testing.assert_close(tokens[:2], still, rtol=1e-5, atol=1e-5)
        # the same boxes moving the other way give different tracked tokens 2.., the same first two
        reverse = boxes.clone()
        reverse[0, 1:] = boxes[0, 1:].flip(0)
        back = model.build_region_features(frames, frame_ids, reverse).tokens[0]
        moved = model.region_tokens(maps, torch.arange(5), reverse[0])  # no displacement
    assert not torch.allclose(back[2:], moved[2:], atol=1e-3)


def test_motion_errors_name_the_problem():
    torch.manual_seed(0)
    cfg = tiny_config()
    enc = ArtemisRegionEncoder(cfg).eval()
    hidden = [
        torch.randn(1, 1 + cfg.num_patches, cfg.vision_config.hidden_size)
        for _ in range(cfg.vision_config.num_hidden_layers + 1)
    ]
    maps = enc.encode_frames(hidden)
    box = torch.tensor([[0.1, 0.1, 0.5, 0.5]])
    with pytest.raises(ValueError, match="region_motion_embedding is False"):
        enc.region_tokens(maps, torch.tensor([0]), box, torch.zeros(1, 4))
    with_motion = ArtemisRegionEncoder(tiny_config(region_motion_embedding=True)).eval()
    maps = with_motion.encode_frames(hidden)
    with pytest.raises(ValueError, match=r"motion shape \(2, 4\) != boxes \(1, 4\)"):
        with_motion.region_tokens(maps, torch.tensor([0]), box, torch.zeros(2, 4))
