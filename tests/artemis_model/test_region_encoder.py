"""The region path against a float64 reference written from the spec (original_checkpoint.md §5.2-5.4).

The reference re-implements bilinear resizing (align_corners=True), the fuse rounds, RoIAlign with
``aligned=True`` semantics (mmcv / torchvision rules, sampling_ratio 2), the level sum, flatten and the box MLP,
with numpy loops and no torchvision.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artemis_model.errors import FrameIndexError, InvalidBoxError
from artemis_model.region_encoder import ArtemisRegionEncoder
from artemis_model.tiny import tiny_config


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        w = src - lo
        m[i, lo] += 1 - w
        m[i, hi] += w
    return m


def _resize(x: np.ndarray, size: int) -> np.ndarray:  # [N, C, H, W] -> [N, C, size, size]
    mh, mw = _resize_matrix(x.shape[2], size), _resize_matrix(x.shape[3], size)
    return np.einsum("oh,nchw,pw->ncop", mh, x, mw)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    k = w.shape[-1]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, wd = x.shape[2], x.shape[3]
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("oc,nchw->nohw", w[:, :, dy, dx], xp[:, :, dy : dy + h, dx : dx + wd])
    return out + (b[None, :, None, None] if b is not None else 0)


def _group_norm(x: np.ndarray, groups: int, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    g = x.reshape(n, groups, -1)
    g = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)
    return g.reshape(n, c, h, w) * weight[None, :, None, None] + bias[None, :, None, None]


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * weight + bias


def _bilinear(f: np.ndarray, y: float, x: float) -> np.ndarray:  # f [C, H, W]
    _, h, w = f.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(f.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_low = y_high = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_low = x_high = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (
        hy * hx * f[:, y_low, x_low]
        + hy * lx * f[:, y_low, x_high]
        + ly * hx * f[:, y_high, x_low]
        + ly * lx * f[:, y_high, x_high]
    )


def _roi_align(f: np.ndarray, box: np.ndarray, scale: float, out: int, ratio: int) -> np.ndarray:
    x1, y1, x2, y2 = box * scale - 0.5  # aligned=True: no minimum size
    bin_h, bin_w = (y2 - y1) / out, (x2 - x1) / out
    res = np.zeros((f.shape[0], out, out))
    for ph in range(out):
        for pw in range(out):
            acc = np.zeros(f.shape[0])
            for iy in range(ratio):
                for ix in range(ratio):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / ratio
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / ratio
                    acc += _bilinear(f, y, x)
            res[:, ph, pw] = acc / ratio**2
    return res


def reference_region_tokens(
    enc: ArtemisRegionEncoder, hidden_states: list[np.ndarray], frame_ids: np.ndarray, boxes_norm: np.ndarray
) -> np.ndarray:
    cfg = enc.config
    p = {k: v.detach().double().numpy() for k, v in enc.state_dict().items()}
    grid, c = cfg.patch_grid, cfg.vision_config.hidden_size
    levels = []
    for layer, size in zip(cfg.region_feature_layers, cfg.region_map_sizes, strict=True):
        tokens = hidden_states[layer][:, 1:]  # drop CLS
        grid_map = tokens.reshape(-1, grid, grid, c).transpose(0, 3, 1, 2)
        levels.append(_resize(grid_map, size))
    maps = []
    for i, lv in enumerate(levels):
        n, _, h, w = lv.shape
        xs = np.broadcast_to(np.linspace(-1, 1, w)[None, :], (h, w))
        ys = np.broadcast_to(np.linspace(-1, 1, h)[:, None], (h, w))
        coords = np.broadcast_to(np.stack([xs, ys])[None], (n, 2, h, w))
        maps.append(
            _conv(np.concatenate([lv, coords], 1), p[f"input_convs.{i}.weight"], p[f"input_convs.{i}.bias"])
        )
    s = cfg.fuse_shuffle_channels
    r = c - 2 * s
    last = len(maps) - 1
    for k in range(cfg.fuse_rounds):
        new = []
        for i, own in enumerate(maps):
            size = own.shape[-1]
            top, down = maps[min(i + 1, last)], maps[max(i - 1, 0)]
            x = np.concatenate(
                [own[:, :r], _resize(top[:, r + s :], size), _resize(down[:, r : r + s], size)], 1
            )
            x = _conv(x, p[f"fuse_blocks.{k}.conv.weight"], None)
            x = _group_norm(
                x,
                cfg.fuse_groupnorm_groups,
                p[f"fuse_blocks.{k}.norm.weight"],
                p[f"fuse_blocks.{k}.norm.bias"],
            )
            new.append(np.maximum(x, 0))
        maps = new
    out = []
    size_px = cfg.vision_config.image_size
    for fid, box in zip(frame_ids, boxes_norm, strict=True):
        total = 0
        for i, (fmap, stride) in enumerate(zip(maps, cfg.region_strides, strict=True)):
            pooled = _roi_align(
                fmap[fid], box * size_px, 1 / stride, cfg.roi_output_size, cfg.roi_sampling_ratio
            )
            total = total + _conv(pooled[None], p[f"level_convs.{i}.weight"], p[f"level_convs.{i}.bias"])[0]
        flat = np.maximum(total, 0).reshape(-1)  # C, H, W order
        tok = p["flatten_linear.weight"] @ flat + p["flatten_linear.bias"]
        pos = np.maximum(p["box_mlp.linear_1.weight"] @ box + p["box_mlp.linear_1.bias"], 0)
        pos = _layer_norm(pos, p["box_mlp.norm_1.weight"], p["box_mlp.norm_1.bias"])
        pos = np.maximum(p["box_mlp.linear_2.weight"] @ pos + p["box_mlp.linear_2.bias"], 0)
        pos = _layer_norm(pos, p["box_mlp.norm_2.weight"], p["box_mlp.norm_2.bias"])
        out.append(p["up_proj.weight"] @ (tok + pos) + p["up_proj.bias"])
    return np.stack(out)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    cfg = tiny_config()
    enc = ArtemisRegionEncoder(cfg).eval()
    with torch.no_grad():  # non-trivial norms and biases
        for name, p in enc.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    gen = torch.Generator().manual_seed(1)
    n_states = cfg.vision_config.num_hidden_layers + 1
    hidden = [
        torch.randn(2, 1 + cfg.num_patches, cfg.vision_config.hidden_size, generator=gen)
        for _ in range(n_states)
    ]
    frame_ids = torch.tensor([0, 1, 1, 0])
    # inside, touching the border, a thin box, and a box partly outside the normalised frame
    boxes = torch.tensor(
        [[0.1, 0.2, 0.6, 0.7], [0.0, 0.0, 1.0, 1.0], [0.3, 0.05, 0.34, 0.9], [0.7, 0.6, 1.2, 1.1]]
    )
    return enc, hidden, frame_ids, boxes


def test_region_tokens_match_float64_reference(setup):
    enc, hidden, frame_ids, boxes = setup
    enc64 = ArtemisRegionEncoder(enc.config).double()
    enc64.load_state_dict(enc.state_dict())
    with torch.no_grad():
        fused = enc64.encode_frames([h.double() for h in hidden])
        ours = enc64.region_tokens(fused, frame_ids, boxes.double()).numpy()
    ref = reference_region_tokens(
        enc, [h.double().numpy() for h in hidden], frame_ids.numpy(), boxes.double().numpy()
    )
    assert ours.shape == (4, enc.config.text_config.hidden_size)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    with torch.no_grad():  # float32 path within float32 tolerance
        ours32 = enc.region_tokens(enc.encode_frames(hidden), frame_ids, boxes).double().numpy()
    np.testing.assert_allclose(ours32, ref, rtol=1e-4, atol=1e-4)


def test_fused_maps_are_reused_per_frame(setup):
    enc, hidden, frame_ids, boxes = setup
    with torch.no_grad():
        fused = enc.encode_frames(hidden)
        both = enc.region_tokens(fused, frame_ids, boxes)
        one_frame = [m[1:2] for m in fused]  # the cache holds frame 1 alone
        alone = enc.region_tokens(one_frame, torch.tensor([0, 0]), boxes[1:3])
    assert [tuple(m.shape[-2:]) for m in fused] == [(s, s) for s in enc.config.region_map_sizes]
    torch.testing.assert_close(alone, both[1:3])


def test_bfloat16_runs_on_cpu(setup):
    enc, hidden, frame_ids, boxes = setup
    enc16 = ArtemisRegionEncoder(enc.config).to(torch.bfloat16)
    enc16.load_state_dict(enc.state_dict())
    with torch.no_grad():
        out = enc16.region_tokens(enc16.encode_frames([h.bfloat16() for h in hidden]), frame_ids, boxes)
        ref = enc.region_tokens(enc.encode_frames(hidden), frame_ids, boxes)
    assert out.dtype == torch.bfloat16
    assert torch.nn.functional.cosine_similarity(out.float(), ref, dim=-1).min() > 0.98


@pytest.mark.parametrize(
    "box, frame, error",
    [
        ([0.5, 0.5, 0.2, 0.9], 0, InvalidBoxError),  # inverted
        ([float("nan"), 0.1, 0.5, 0.5], 0, InvalidBoxError),
        ([0.2, 0.2, 0.2, 0.6], 0, InvalidBoxError),  # zero area
        ([1.2, 1.1, 1.5, 1.4], 0, InvalidBoxError),  # outside the frame
        ([0.1, 0.1, 0.5, 0.5], 2, FrameIndexError),  # only frames 0..1 encoded
    ],
)
def test_bad_region_inputs_raise_typed_errors(setup, box, frame, error):
    enc, hidden, _, _ = setup
    with torch.no_grad():
        fused = enc.encode_frames(hidden)
    with pytest.raises(error):
        enc.region_tokens(fused, torch.tensor([frame]), torch.tensor([box]))
