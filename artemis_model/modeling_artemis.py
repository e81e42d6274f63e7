"""``ArtemisForConditionalGeneration``: CLIP vision tower + projector + region encoder + Llama, by composition.

Inputs to the LLM are one token sequence in which placeholder ids are replaced (``masked_scatter``) by features:

- ``<image>`` (``image_token_id``): ``num_patches`` tokens per image, ``projector(CLIP patch features)``;
- ``<video>`` (``video_token_id``): ``num_temporal_tokens + num_patches`` tokens per video, from the
  pre-projector global features (:meth:`encode_video_frames`, what the feature cache stores) + projector;
- ``<region>`` (``region_token_id``): one token per box, already in LLM space (:meth:`build_region_features`).

The processor (:class:`~artemis_model.processing_artemis.ArtemisProcessor`) expands each placeholder into that
exact number of tokens; a mismatch raises ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    CLIPVisionModel,
    GenerationMixin,
    PreTrainedModel,
)
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import is_flash_attn_2_available

try:  # load-aware init functions (skip loaded tensors); plain torch init on releases without them
    from transformers import initialization as init
except ImportError:  # pragma: no cover - older transformers
    from torch.nn import init

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.region_encoder import ArtemisRegionEncoder, box_motion
from artemis_model.selection import select_tokens


def resolve_attn_implementation(requested: str | None = None) -> str:
    """``flash_attention_2`` only when the package is importable, ``sdpa`` otherwise (or what was asked)."""
    if requested is None:
        return "flash_attention_2" if is_flash_attn_2_available() else "sdpa"
    if requested == "flash_attention_2" and not is_flash_attn_2_available():
        raise ImportError(
            "attn_implementation 'flash_attention_2' needs flash-attn: pip install 'artemis-agent[gpu]', "
            "or use 'sdpa' / 'eager'"
        )
    return requested


class ArtemisProjector(nn.Module):
    """``mlp2x_gelu``: Linear(Cv -> D), GELU (erf), Linear(D -> D); or one Linear for ``linear``."""

    def __init__(self, config: ArtemisConfig) -> None:
        super().__init__()
        in_dim, out_dim = config.vision_config.hidden_size, config.text_config.hidden_size
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.act = nn.GELU() if config.projector_type == "mlp2x_gelu" else None
        self.linear_2 = nn.Linear(out_dim, out_dim) if config.projector_type == "mlp2x_gelu" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear_1(x)
        if self.linear_2 is not None:
            x = self.linear_2(self.act(x))
        return x


@dataclass
class RegionFeatures:
    """Region tokens of a batch of queries.

    ``tokens``: ``[B, 1 + K, D]``, the key-frame token then the K selected tracked tokens (in frame order);
    ``selected``: ``[B, K]`` indices into each query's tracked boxes (0-based, excluding the key box).
    ``tokens.flatten(0, 1)`` is what :meth:`ArtemisForConditionalGeneration.forward` takes as ``region_features``.
    """

    tokens: torch.Tensor
    selected: torch.Tensor


def _default_init_(module: nn.Module) -> None:
    """PyTorch's default init of a Linear / Conv2d, through the load-aware ``transformers.initialization``."""
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        fan_in = module.weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(module.bias, -bound, bound)


class ArtemisPreTrainedModel(PreTrainedModel):
    config_class = ArtemisConfig
    config: ArtemisConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CLIPEncoderLayer", "LlamaDecoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        """Region encoder as the original: fuse convs Kaiming (fan_out, ReLU), level convs N(0, 0.01), norms
        (1, 0); our other Linear / Conv2d layers keep PyTorch's default init. Leaf modules only (transformers
        calls this per module holding parameters); the region encoder tags its convs with ``init_rule``."""
        rule = getattr(module, "init_rule", None)
        if rule == "kaiming_fan_out_relu":
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif rule == "normal_0.01":
            init.normal_(module.weight, mean=0.0, std=0.01)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            _default_init_(module)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class ArtemisForConditionalGeneration(ArtemisPreTrainedModel, GenerationMixin):
    """The Artemis model. The vision tower is frozen by default (``config.freeze_vision_tower``)."""

    def __init__(self, config: ArtemisConfig) -> None:
        super().__init__(config)
        self.vision_tower = CLIPVisionModel(config.vision_config)
        self.projector = ArtemisProjector(config)
        self.region_encoder = ArtemisRegionEncoder(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()
        if config.freeze_vision_tower:
            self.vision_tower.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> ArtemisForConditionalGeneration:
        """``PreTrainedModel.from_pretrained``, then re-freezes the vision tower (loading resets requires_grad)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True gives a tuple
        if model.config.freeze_vision_tower:
            model.vision_tower.requires_grad_(False)
        return loaded

    # ---- embeddings plumbing ------------------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    # ---- vision -------------------------------------------------------------------------------------------
    def _vision_hidden_states(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must be [N, 3, S, S], got shape {tuple(pixel_values.shape)}")
        size = self.config.vision_config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(f"pixel_values must be {size}x{size}, got {tuple(pixel_values.shape[-2:])}")
        ref = next(self.vision_tower.parameters())
        trainable = any(p.requires_grad for p in self.vision_tower.parameters())
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            out = self.vision_tower(
                pixel_values=pixel_values.to(device=ref.device, dtype=ref.dtype), output_hidden_states=True
            )
        return out.hidden_states

    def vision_patch_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLIP ``hidden_states[vision_feature_layer]`` without CLS: ``[N, P, Cv]`` (pre-projector)."""
        return self._vision_hidden_states(pixel_values)[self.config.vision_feature_layer][:, 1:]

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images ``[n, 3, S, S]`` -> LLM tokens ``[n, num_patches, D]``."""
        return self.projector(self.vision_patch_features(pixel_values))

    def encode_video_frames(self, pixel_values: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
        """Frames ``[T, 3, S, S]`` (T <= num_temporal_tokens) -> global video features ``[T_max + P, Cv]``.

        Pre-projector, as the feature cache stores them: per-frame means over the patches, zero-padded to
        ``num_temporal_tokens`` rows, followed by the per-patch means over time.
        """
        num_frames = pixel_values.shape[0]
        max_frames = self.config.num_temporal_tokens
        if not 1 <= num_frames <= max_frames:
            raise ValueError(f"video has {num_frames} frames; allowed 1..{max_frames} (num_temporal_tokens)")
        feats = torch.cat(
            [self.vision_patch_features(chunk) for chunk in pixel_values.split(batch_size)]
        )  # [T, P, Cv]
        temporal = feats.mean(dim=1)  # [T, P, Cv] -> [T, Cv]
        temporal = torch.cat([temporal, temporal.new_zeros(max_frames - num_frames, temporal.shape[-1])])
        spatial = feats.mean(dim=0)  # [T, P, Cv] -> [P, Cv]
        return torch.cat([temporal, spatial])  # [T_max + P, Cv]

    # ---- regions ------------------------------------------------------------------------------------------
    def encode_region_frames(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Frames ``[F, 3, S, S]`` -> the 4 fused maps ``[F, C, h_l, w_l]`` (box independent, cacheable)."""
        return self.region_encoder.encode_frames(self._vision_hidden_states(pixel_values))

    def region_tokens(
        self,
        fused_maps: list[torch.Tensor],
        frame_ids: torch.Tensor,
        boxes_norm: torch.Tensor,
        motion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One LLM token per box ``[N, D]``; ``frame_ids[N]`` index the frames of ``fused_maps``; ``motion[N, 4]``
        only with ``config.region_motion_embedding`` (see :func:`~artemis_model.region_encoder.box_motion`)."""
        return self.region_encoder.region_tokens(fused_maps, frame_ids, boxes_norm, motion)

    def select_region_tokens(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K-means choice of ``num_region_tokens`` among tracked tokens ``[B, n, D]`` -> (``[B, K, D]``, ``[B, K]``)."""
        cfg = self.config
        return select_tokens(
            tokens,
            cfg.num_region_tokens,
            iters=cfg.kmeans_iters,
            restarts=cfg.kmeans_restarts,
            seed=cfg.kmeans_seed,
            init=cfg.kmeans_init,
        )

    def build_region_features(
        self,
        pixel_values: torch.Tensor | None,
        frame_ids: torch.Tensor,
        boxes_norm: torch.Tensor,
        *,
        fused_maps: list[torch.Tensor] | None = None,
    ) -> RegionFeatures:
        """Region tokens for ``B`` queries: key box + tracked boxes -> key token + K selected tokens.

        Args:
            pixel_values: the RoI frames ``[F, 3, S, S]`` (ignored when ``fused_maps`` is given).
            frame_ids: ``LongTensor[B, 1 + n]``, for each query the frame (index into the F frames) of the key box
                then of the ``n`` tracked boxes.
            boxes_norm: ``[B, 1 + n, 4]`` normalised ``xyxy`` boxes in the same order.
            fused_maps: precomputed :meth:`encode_region_frames` output for the F frames (a cache hit).

        With ``config.region_motion_embedding`` each tracked token also embeds its box's displacement from the
        previous tracked box (:func:`~artemis_model.region_encoder.box_motion`), before the K-means choice.
        """
        if boxes_norm.ndim != 3 or boxes_norm.shape[1] < 2 or boxes_norm.shape[-1] != 4:
            raise ValueError(f"boxes_norm must be [B, 1 + n, 4] with n >= 1, got {tuple(boxes_norm.shape)}")
        if tuple(frame_ids.shape) != tuple(boxes_norm.shape[:2]):
            raise ValueError(
                f"frame_ids shape {tuple(frame_ids.shape)} != boxes {tuple(boxes_norm.shape[:2])}"
            )
        if fused_maps is None:
            if pixel_values is None:
                raise ValueError("give pixel_values or fused_maps")
            fused_maps = self.encode_region_frames(pixel_values)
        batch, count = frame_ids.shape
        motion = box_motion(boxes_norm).reshape(-1, 4) if self.config.region_motion_embedding else None
        tokens = self.region_tokens(
            fused_maps, frame_ids.reshape(-1), boxes_norm.reshape(-1, 4), motion
        )  # [B*(1+n), D]
        tokens = tokens.view(batch, count, -1)  # [B*(1+n), D] -> [B, 1+n, D]
        chosen, selected = self.select_region_tokens(tokens[:, 1:])  # [B, K, D], [B, K]
        return RegionFeatures(tokens=torch.cat([tokens[:, :1], chosen], dim=1), selected=selected)

    # ---- sequence assembly --------------------------------------------------------------------------------
    def _scatter(
        self,
        input_ids: torch.Tensor,
        embeds: torch.Tensor,
        token_id: int,
        features: torch.Tensor | None,
        name: str,
    ) -> torch.Tensor:
        mask = input_ids == token_id
        n_tok = int(mask.sum())
        n_feat = 0 if features is None else features.shape[0]
        if n_feat != n_tok:
            raise ValueError(f"{name} features ({n_feat}) and <{name}> tokens ({n_tok}) do not match")
        if n_tok == 0:
            return embeds
        return embeds.masked_scatter(mask[..., None].expand_as(embeds), features.to(embeds.dtype))

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
        region_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings ``[B, L, D]`` with the image / video / region features scattered in."""
        cfg = self.config
        embeds = self.get_input_embeddings()(input_ids)  # [B, L, D]
        image_tokens = None
        if pixel_values is not None:
            per_sample = (input_ids == cfg.image_token_id).sum(-1) // cfg.num_patches
            if int(per_sample.max()) > cfg.max_images:
                raise ValueError(f"{int(per_sample.max())} images in one sample; at most {cfg.max_images}")
            image_tokens = self.encode_images(pixel_values).flatten(0, 1)  # [n, P, D] -> [n*P, D]
        embeds = self._scatter(input_ids, embeds, cfg.image_token_id, image_tokens, "image")
        video_tokens = None
        if video_features is not None:
            if video_features.ndim == 2:
                video_features = video_features[None]
            if video_features.shape[1] != cfg.num_video_tokens:
                raise ValueError(
                    f"video_features must be [n, {cfg.num_video_tokens}, Cv], got {tuple(video_features.shape)}"
                )
            proj_dtype = self.projector.linear_1.weight.dtype
            video_tokens = self.projector(video_features.to(embeds.device, proj_dtype)).flatten(0, 1)
        embeds = self._scatter(input_ids, embeds, cfg.video_token_id, video_tokens, "video")
        if region_features is not None and region_features.ndim == 3:
            region_features = region_features.flatten(0, 1)  # [B, 1+K, D] -> [B*(1+K), D]
        return self._scatter(input_ids, embeds, cfg.region_token_id, region_features, "region")

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
        region_features: torch.Tensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Causal LM forward. ``labels`` use -100 for unsupervised positions (the LM shifts them)."""
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("give input_ids or inputs_embeds")
            inputs_embeds = self.embed_inputs(input_ids, pixel_values, video_features, region_features)
        if past_key_values is not None:
            kwargs["past_key_values"] = past_key_values
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            labels=labels,
            use_cache=use_cache,
            **kwargs,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
        region_features: torch.Tensor | None = None,
        *,
        seed: int | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Generate after the multimodal prompt. Greedy unless ``do_sample=True`` (then pass ``seed``).

        Returns ``[B, L + new]`` like every HF decoder: the prompt ids then the new tokens (slice off
        ``input_ids.shape[1]`` to get the answer). Batches must be left padded. The KV cache is on by default.
        The placeholder ids (``<image>``, ``<video>``, ``<region>``) are added to ``suppress_tokens``: they are
        never generated.
        """
        if input_ids is None:
            raise ValueError("generate needs input_ids (the processor's output)")
        embeds = self.embed_inputs(input_ids, pixel_values, video_features, region_features)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs.setdefault("do_sample", False)
        kwargs.setdefault("use_cache", True)
        cfg = self.config
        suppressed = {int(i) for i in kwargs.get("suppress_tokens") or []}
        suppressed |= {cfg.image_token_id, cfg.video_token_id, cfg.region_token_id}
        kwargs["suppress_tokens"] = sorted(suppressed)
        gen_cfg = self.language_model.generation_config
        if kwargs.get("pad_token_id") is None and gen_cfg.pad_token_id is None:
            kwargs["pad_token_id"] = self.config.text_config.pad_token_id
        if not kwargs["do_sample"]:
            for key in ("temperature", "top_p", "top_k"):
                kwargs.setdefault(key, None)
        call = dict(input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)
        if seed is None:
            return self.language_model.generate(**call)
        devices = [embeds.device] if embeds.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self.language_model.generate(**call)


AutoModelForImageTextToText.register(ArtemisConfig, ArtemisForConditionalGeneration, exist_ok=True)
