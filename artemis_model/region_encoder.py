"""The multi-level region encoder: one LLM token per (frame, box).

Numerics follow ``original_checkpoint.md`` §5.2-5.4 (GPT4RoI's multi-level RoI module as used by Artemis):

1. 4 CLIP hidden states (CLS dropped) -> grids ``[F, C, g, g]`` -> bilinear upsample (``align_corners=True``)
   to ``g * factor`` (128, 64, 32, 16 at real size), computed in at least float32 (§5.5).
2. Fuse: append ``[x, y]`` coordinate channels (``linspace`` in at least float32, concatenated to the float32
   levels, then cast to the weights' dtype, §5.5: an fp16 model gets the original's bits), a 1x1 conv per
   level, then ``fuse_rounds`` rounds of ONE shared conv3x3 -> GroupNorm -> ReLU per round over
   channel-exchanged inputs ``[own[:r] | top[r+s:] | down[r:r+s]]`` (r = C - 2s), all levels updated
   simultaneously (in the weights' dtype).
3. Per box: RoIAlign (``aligned=True``) on every level, a 3x3 conv per level, sum, ReLU, flatten (C, H, W),
   ``flatten_linear`` -> C, plus the box position MLP on the normalised box, then ``up_proj`` -> LLM width.

The split ``encode_frames`` (box independent, expensive) / ``region_tokens`` (cheap, per box) lets a cache keep
the fused maps of a frame and reuse them for many boxes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.errors import InvalidBoxError
from artemis_model.types import validate_frame_idx


class FuseBlock(nn.Module):
    """conv3x3 (no bias) -> GroupNorm -> ReLU, shared by all levels within one fuse round."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.conv.init_rule = "kaiming_fan_out_relu"  # mmcv ConvModule's init (read by _init_weights)
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class BoxPositionMLP(nn.Module):
    """Normalised box ``[N, 4]`` -> ``[N, C]``: Linear, ReLU, LayerNorm, Linear, ReLU, LayerNorm."""

    def __init__(self, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(4, hidden)
        self.norm_1 = nn.LayerNorm(hidden)
        self.linear_2 = nn.Linear(hidden, out_dim)
        self.norm_2 = nn.LayerNorm(out_dim)

    def forward(self, boxes_norm: torch.Tensor) -> torch.Tensor:
        x = self.norm_1(F.relu(self.linear_1(boxes_norm)))
        return self.norm_2(F.relu(self.linear_2(x)))


def box_motion(boxes_norm: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Displacement of each tracked box from the previous one, ``[B, 1 + n, 4]`` -> ``[B, 1 + n, 4]``.

    ``boxes_norm`` holds per query the key box then the ``n`` tracked boxes in time order. Per tracked box ``k >= 2``:
    ``(dx / w, dy / h, log(w' / w), log(h' / h))`` with ``(dx, dy)`` the shift of the box centre and ``w, h`` the
    previous box's size (the box-regression deltas of Faster R-CNN); zero for the key box and the first tracked box.
    Sizes are clamped to ``eps`` (normalised units)."""
    if boxes_norm.ndim != 3 or boxes_norm.shape[-1] != 4:
        raise ValueError(f"boxes_norm must be [B, 1 + n, 4], got {tuple(boxes_norm.shape)}")
    out = torch.zeros_like(boxes_norm)
    prev, cur = boxes_norm[:, 1:-1], boxes_norm[:, 2:]
    size_prev = (prev[..., 2:] - prev[..., :2]).clamp(min=eps)  # [B, n - 1, 2] = (w, h)
    size_cur = (cur[..., 2:] - cur[..., :2]).clamp(min=eps)
    shift = (cur[..., :2] + cur[..., 2:] - prev[..., :2] - prev[..., 2:]) / 2  # centre shift (dx, dy)
    out[:, 2:, :2] = shift / size_prev
    out[:, 2:, 2:] = torch.log(size_cur / size_prev)
    return out


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the upsampling and the coordinate channels for weights of ``dtype``: at least float32
    (float16 / bfloat16 -> float32, float32 / float64 unchanged), as the original (§5.5)."""
    return torch.promote_types(dtype, torch.float32)


def coordinate_channels(height: int, width: int, *, like: torch.Tensor) -> torch.Tensor:
    """``[1, 2, H, W]``: channel 0 = x in [-1, 1] along the width, channel 1 = y in [-1, 1] along the height,
    in ``like``'s dtype and device (the encoder passes its float32 levels)."""
    x = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    y = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    yy, xx = torch.meshgrid(y, x, indexing="ij")  # [H, W] each
    return torch.stack([xx, yy])[None]  # [1, 2, H, W]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _check_region_inputs(frame_ids: torch.Tensor, boxes_norm: torch.Tensor, num_frames: int) -> None:
    """Typed errors for bad boxes (:class:`InvalidBoxError`) and frame ids (:class:`FrameIndexError`)."""
    if boxes_norm.ndim != 2 or boxes_norm.shape[-1] != 4:
        raise InvalidBoxError(f"boxes_norm must be [N, 4], got shape {tuple(boxes_norm.shape)}")
    if tuple(frame_ids.shape) != tuple(boxes_norm.shape[:1]):
        raise ValueError(
            f"frame_ids shape {tuple(frame_ids.shape)} does not match {boxes_norm.shape[0]} boxes"
        )
    bad = ~torch.isfinite(boxes_norm).all(-1)
    bad |= (boxes_norm[:, 2] <= boxes_norm[:, 0]) | (boxes_norm[:, 3] <= boxes_norm[:, 1])
    bad |= (
        (boxes_norm[:, 2] <= 0) | (boxes_norm[:, 3] <= 0) | (boxes_norm[:, 0] >= 1) | (boxes_norm[:, 1] >= 1)
    )
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise InvalidBoxError(
            f"normalised box {boxes_norm[row].tolist()} (row {row}) is NaN/inf, inverted, of zero area "
            "or outside the frame [0, 1]"
        )
    for frame_idx in frame_ids.tolist():
        validate_frame_idx(int(frame_idx), num_frames)


class ArtemisRegionEncoder(nn.Module):
    """Multi-level region encoder (the original ``spi_model``). 299,142,912 parameters at Artemis-7B size."""

    def __init__(self, config: ArtemisConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.vision_config.hidden_size
        out_dim = config.text_config.hidden_size
        levels = len(config.region_feature_layers)
        self.channels = channels
        self.input_convs = nn.ModuleList(
            nn.Conv2d(channels + 2, channels, kernel_size=1) for _ in range(levels)
        )
        self.fuse_blocks = nn.ModuleList(
            FuseBlock(channels, config.fuse_groupnorm_groups) for _ in range(config.fuse_rounds)
        )
        self.level_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1) for _ in range(levels)
        )
        for conv in self.level_convs:
            conv.init_rule = "normal_0.01"  # the original's pconvs init (read by _init_weights)
        self.box_mlp = BoxPositionMLP(config.box_mlp_hidden, channels)
        # Not in the paper (config.region_motion_embedding): the same MLP form on the box's displacement.
        self.motion_mlp = (
            BoxPositionMLP(config.box_mlp_hidden, channels) if config.region_motion_embedding else None
        )
        self.flatten_linear = nn.Linear(channels * config.roi_output_size**2, channels)
        self.up_proj = nn.Linear(channels, out_dim)

    # ---- box-independent part -----------------------------------------------------------------------------
    def prepare_levels(
        self, hidden_states: tuple[torch.Tensor, ...] | list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """CLIP hidden states (each ``[F, 1 + g*g, C]``) -> the 4 upsampled levels ``[F, C, g*f, g*f]``.

        The levels come out in :func:`compute_dtype` of the weights (float32 for an fp16 / bf16 encoder): the
        original cast the CLIP states to float32 before upsampling (§5.5)."""
        grid = self.config.patch_grid
        work = compute_dtype(self.input_convs[0].weight.dtype)
        levels = []
        for layer, size in zip(self.config.region_feature_layers, self.config.region_map_sizes, strict=True):
            tokens = hidden_states[layer][:, 1:].to(work)  # [F, 1 + g*g, C] -> [F, g*g, C]
            frames = tokens.shape[0]
            grid_map = tokens.reshape(frames, grid, grid, self.channels).permute(0, 3, 1, 2)  # [F, C, g, g]
            levels.append(_resize(grid_map.contiguous(), (size, size)))  # [F, C, g*f, g*f]
        return levels

    def fuse(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Coordinate channels, per-level 1x1 conv, then the channel-exchanging fuse rounds.

        The coordinates are built and concatenated in :func:`compute_dtype` (float32 for fp16 / bf16 weights),
        then the ``C + 2`` channels are cast to the weights' dtype (§5.5); the rest runs in that dtype."""
        dtype = self.input_convs[0].weight.dtype
        work = compute_dtype(dtype)
        maps = []
        for conv, level in zip(self.input_convs, levels, strict=True):
            level = level.to(work)
            coords = coordinate_channels(level.shape[-2], level.shape[-1], like=level)
            coords = coords.expand(level.shape[0], -1, -1, -1)  # [F, 2, H, W]
            inputs = torch.cat([level, coords], dim=1).to(dtype)  # [F, C + 2, H, W]
            maps.append(conv(inputs))  # [F, C + 2, H, W] -> [F, C, H, W]
        last = len(maps) - 1
        shuffle = self.config.fuse_shuffle_channels
        remain = self.channels - 2 * shuffle
        for block in self.fuse_blocks:
            new_maps = []
            for level, own in enumerate(maps):
                size = (own.shape[-2], own.shape[-1])
                top = maps[min(level + 1, last)]  # next deeper (coarser) level
                down = maps[max(level - 1, 0)]  # next shallower (finer) level
                mixed = torch.cat(
                    [
                        own[:, :remain],
                        _resize(top[:, remain + shuffle :], size),
                        _resize(down[:, remain : remain + shuffle], size),
                    ],
                    dim=1,
                )  # [F, C, H, W]
                new_maps.append(block(mixed))
            maps = new_maps
        return maps

    def encode_frames(
        self, hidden_states: tuple[torch.Tensor, ...] | list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """CLIP hidden states of ``F`` frames -> 4 fused maps ``[F, C, h_l, w_l]`` (reusable across boxes)."""
        return self.fuse(self.prepare_levels(hidden_states))

    # ---- per-box part -------------------------------------------------------------------------------------
    def region_tokens(
        self,
        fused_maps: list[torch.Tensor],
        frame_ids: torch.Tensor,
        boxes_norm: torch.Tensor,
        motion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One LLM-width token per box: ``[N, D]``.

        Args:
            fused_maps: the output of :meth:`encode_frames` for ``F`` frames.
            frame_ids: ``LongTensor[N]``, which of the ``F`` frames each box lies on.
            boxes_norm: ``[N, 4]`` ``xyxy`` boxes normalised to [0, 1] by the frame's width and height.
            motion: ``[N, 4]`` :func:`box_motion` of each box (only with ``config.region_motion_embedding``; zero
                when omitted, i.e. boxes seen alone).
        """
        num_frames = fused_maps[0].shape[0]
        _check_region_inputs(frame_ids, boxes_norm, num_frames)
        dtype = self.flatten_linear.weight.dtype
        device = fused_maps[0].device
        image_size = float(self.config.vision_config.image_size)
        # RoIAlign has no CPU bfloat16 kernel: run it in float32 for bf16 weights.
        roi_dtype = torch.float32 if dtype == torch.bfloat16 else dtype
        rois = torch.cat(
            [
                frame_ids.to(device=device, dtype=roi_dtype)[:, None],
                boxes_norm.to(device, roi_dtype) * image_size,
            ],
            dim=1,
        )  # [N, 5] = (frame, x1, y1, x2, y2) in CLIP input pixels
        summed = None
        for conv, fmap, stride in zip(self.level_convs, fused_maps, self.config.region_strides, strict=True):
            pooled = roi_align(
                fmap.to(roi_dtype),
                rois,
                output_size=self.config.roi_output_size,
                spatial_scale=1.0 / stride,
                sampling_ratio=self.config.roi_sampling_ratio,
                aligned=True,
            ).to(dtype)  # [N, C, R, R]
            level_out = conv(pooled)
            summed = level_out if summed is None else summed + level_out
        flat = F.relu(summed).flatten(1)  # [N, C, R, R] -> [N, C*R*R], index c*R*R + y*R + x
        tokens = self.flatten_linear(flat) + self.box_mlp(boxes_norm.to(device, dtype))  # [N, C]
        if self.motion_mlp is not None:
            if motion is None:
                motion = torch.zeros_like(boxes_norm)
            if tuple(motion.shape) != tuple(boxes_norm.shape):
                raise ValueError(f"motion shape {tuple(motion.shape)} != boxes {tuple(boxes_norm.shape)}")
            tokens = tokens + self.motion_mlp(motion.to(device, dtype))
        elif motion is not None:
            raise ValueError("motion given but config.region_motion_embedding is False")
        return self.up_proj(tokens)  # [N, D]
