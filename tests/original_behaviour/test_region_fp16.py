"""Issue #18, point 5: an fp16 region encoder upsamples the levels and builds the coordinates in float32.

original_checkpoint.md §5.5, the dtype flow of the official fp16 inference: CLIP states cast to float32, the
levels upsampled in float32, the ``[x, y]`` coordinate channels (``linspace``) built and concatenated in float32,
then ``.half()``; the rest of the fuse (1x1 convs, shuffle resizes, conv3x3-GroupNorm-ReLU rounds) in fp16.

The reference below is written from the spec with plain torch ops (only the modules' weights are borrowed); an
fp16 encoder must equal it bit for bit, and must differ from the same reference with those two steps in fp16
(the behaviour before the fix), which shows the comparison can fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from artemis_model.region_encoder import ArtemisRegionEncoder, compute_dtype
from artemis_model.tiny import tiny_config


def _bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """``align_corners=True`` bilinear resize to ``size`` x ``size`` (nothing to do at the same size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)


def reference_fused_maps(
    enc: ArtemisRegionEncoder, hidden: list[torch.Tensor], *, steps_dtype: torch.dtype
) -> list[torch.Tensor]:
    """§5.2-5.3 for an fp16 ``enc``: upsample + coordinates in ``steps_dtype`` (the original: float32)."""
    cfg = enc.config
    grid, channels = cfg.patch_grid, cfg.vision_config.hidden_size
    half = enc.input_convs[0].weight.dtype
    maps = []
    for layer, size, conv in zip(
        cfg.region_feature_layers, cfg.region_map_sizes, enc.input_convs, strict=True
    ):
        tokens = hidden[layer][:, 1:].to(steps_dtype)  # [F, g*g, C], token t at (t // g, t % g)
        frames = tokens.shape[0]
        level = _bilinear(tokens.reshape(frames, grid, grid, channels).permute(0, 3, 1, 2), size)
        xs = torch.linspace(-1.0, 1.0, size, dtype=steps_dtype)  # varies along the width
        ys = torch.linspace(-1.0, 1.0, size, dtype=steps_dtype)  # varies along the height
        coords = torch.stack([xs[None, :].expand(size, size), ys[:, None].expand(size, size)])
        stacked = torch.cat([level, coords[None].expand(frames, -1, -1, -1)], dim=1).to(half)  # [x, y] last
        maps.append(conv(stacked))
    shuffle = cfg.fuse_shuffle_channels
    remain = channels - 2 * shuffle
    last = len(maps) - 1
    for block in enc.fuse_blocks:  # simultaneous update of all levels
        new = []
        for target, own in enumerate(maps):
            top, down = maps[min(target + 1, last)], maps[max(target - 1, 0)]
            size = own.shape[-1]
            mixed = torch.cat(
                [
                    own[:, :remain],
                    _bilinear(top[:, remain + shuffle :], size),
                    _bilinear(down[:, remain : remain + shuffle], size),
                ],
                dim=1,
            )
            new.append(block.act(block.norm(block.conv(mixed))))  # conv -> GroupNorm -> ReLU, fp16
        maps = new
    return maps


@pytest.fixture(scope="module")
def encoders():
    cfg = tiny_config()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        enc32 = ArtemisRegionEncoder(cfg).eval()
    enc16 = ArtemisRegionEncoder(cfg).half().eval()
    enc16.load_state_dict(enc32.state_dict())
    gen = torch.Generator().manual_seed(1)
    states = cfg.vision_config.num_hidden_layers + 1
    hidden16 = [
        (2 * torch.randn(3, 1 + cfg.num_patches, cfg.vision_config.hidden_size, generator=gen)).half()
        for _ in range(states)
    ]  # fp16 CLIP states, as an fp16 CLIP gives them
    return enc32, enc16, hidden16


def test_fp16_fused_maps_equal_the_float32_step_reference_bitwise(encoders):
    _, enc16, hidden16 = encoders
    with torch.no_grad():
        ours = enc16.encode_frames(hidden16)
        ref = reference_fused_maps(enc16, hidden16, steps_dtype=torch.float32)
        old = reference_fused_maps(enc16, hidden16, steps_dtype=torch.float16)
    assert [m.dtype for m in ours] == [torch.float16] * 4
    for level, (a, b) in enumerate(zip(ours, ref, strict=True)):
        assert torch.equal(a, b), f"level {level} differs from the spec's fp32-then-half reference"
    # The steps in fp16 (the behaviour before the fix) give other bits: the comparison above can fail.
    assert not all(torch.equal(a, b) for a, b in zip(ours, old, strict=True))


def test_fp16_region_tokens_close_to_float32(encoders):
    enc32, enc16, hidden16 = encoders
    frame_ids = torch.tensor([0, 1, 2, 2])
    boxes = torch.tensor(
        [[0.1, 0.2, 0.6, 0.7], [0.0, 0.0, 1.0, 1.0], [0.3, 0.05, 0.34, 0.9], [-0.1, 0.6, 0.5, 1.1]]
    )
    with torch.no_grad():
        ours = enc16.region_tokens(enc16.encode_frames(hidden16), frame_ids, boxes)
        ref_maps = reference_fused_maps(enc16, hidden16, steps_dtype=torch.float32)
        from_ref = enc16.region_tokens(ref_maps, frame_ids, boxes)
        full32 = enc32.region_tokens(enc32.encode_frames([h.float() for h in hidden16]), frame_ids, boxes)
    assert ours.dtype == torch.float16
    assert torch.equal(ours, from_ref)
    torch.testing.assert_close(ours.float(), full32, rtol=2e-2, atol=2e-2)


def test_dtype_flow(encoders):
    _, enc16, hidden16 = encoders
    seen: list[torch.Tensor] = []
    handle = enc16.input_convs[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            levels = enc16.prepare_levels(hidden16)
            enc16.fuse(levels)
    finally:
        handle.remove()
    assert [lv.dtype for lv in levels] == [torch.float32] * 4  # upsampled in float32
    level0 = hidden16[enc16.config.region_feature_layers[0]][:, 1:].float()
    grid, size = enc16.config.patch_grid, enc16.config.region_map_sizes[0]
    grid_map = level0.reshape(3, grid, grid, -1).permute(0, 3, 1, 2)
    assert torch.equal(levels[0], _bilinear(grid_map, size))
    (inputs,) = seen
    assert inputs.dtype == torch.float16 and inputs.shape[1] == enc16.channels + 2
    x32 = torch.linspace(-1.0, 1.0, size)  # float32 linspace, then cast: the original's bits
    assert torch.equal(inputs[0, -2, 0], x32.half()) and torch.equal(inputs[0, -1, :, 0], x32.half())
    assert not torch.equal(torch.linspace(-1.0, 1.0, size, dtype=torch.float16), x32.half())  # they differ
    assert torch.equal(inputs[:, :-2], levels[0].half())


@pytest.mark.parametrize(
    "weights, work",
    [
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.float32),
        (torch.float64, torch.float64),
    ],
)
def test_compute_dtype_is_at_least_float32(weights, work):
    assert compute_dtype(weights) == work
