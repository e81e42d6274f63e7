"""``ArtemisConfig``: one config for the whole model. The defaults describe Artemis-7B.

Artemis-7B = CLIP ViT-L/14 at 224 px (frozen) + a 2-layer GELU projector + a multi-level region encoder
(GPT4RoI style, one token per box) + Vicuna-7B-v1.5. See ``/work/shared/spec/original_checkpoint.md``.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, CLIPVisionConfig, LlamaConfig, PretrainedConfig

from artemis_model.selection import KMEANS_INITS

PROJECTOR_TYPES = ("mlp2x_gelu", "linear")
NUM_REGION_LEVELS = 4

_CLIP_VIT_L14_224: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
}

# Vicuna-7B-v1.5 (= LLaMA-2-7B shapes); 32000 words + our 3 placeholder tokens.
_VICUNA_7B: dict[str, Any] = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "vocab_size": 32003,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "tie_word_embeddings": False,
}


class ArtemisConfig(PretrainedConfig):
    """Configuration of :class:`~artemis_model.modeling_artemis.ArtemisForConditionalGeneration`.

    Args:
        vision_config: the CLIP vision tower (``CLIPVisionConfig`` or its dict); default CLIP ViT-L/14-224.
        text_config: the language model (``LlamaConfig`` or its dict); default Vicuna-7B + 3 placeholder rows.
        vision_feature_layer: hidden state used for image/video tokens (CLS dropped); -2 = penultimate layer.
        region_feature_layers: the 4 hidden states (shallow -> deep) feeding the region encoder's levels.
        region_upsample_factors: per level, the factor applied to the patch grid (16 -> 128, 64, 32, 16).
        fuse_rounds: rounds of the shared conv3x3-GroupNorm-ReLU fuse block.
        fuse_shuffle_channels: channels exchanged with each neighbour level per round.
        fuse_groupnorm_groups: groups of the fuse blocks' GroupNorm.
        roi_output_size / roi_sampling_ratio: RoIAlign grid (14x14) and samples per bin side (2).
        box_mlp_hidden: hidden width of the box position MLP (4 -> 256 -> C).
        num_tracked_boxes: tracked boxes per query before selection (8).
        num_region_tokens: tracked region tokens kept by K-means (4); ``== num_tracked_boxes`` turns selection off.
        kmeans_iters / kmeans_restarts / kmeans_seed: the deterministic K-means of :mod:`artemis_model.selection`.
        kmeans_init: its initialisation, ``"k-means++"`` (default; our trained models) or ``"random"`` (the
            original's torch_kmeans ``'rnd'`` draw; written by the converter for the original weights).
        region_motion_embedding: **not in the paper** (off in the released checkpoints): each tracked region token
            also embeds its box's displacement from the previous tracked box (centre shift in units of the previous
            box's size, log size ratios; zero for the key box and the first tracked box), through an MLP of the
            box position MLP's form, added like it. Lets a small language model read the direction of motion from one
            token instead of comparing the positions of two (the tiny world model; see its model card).
        track_frame_mode: how the ``num_tracked_boxes`` frames are chosen at inference
            (:func:`artemis_model.selection.choose_track_frames`): ``"uniform"`` (the paper's, default) or
            ``"front"`` (**not in the paper**: the first two tracked frames :data:`~artemis_model.selection.FRONT_STEP`
            apart, so the first motion shows even when the target turns soon; the tiny world model's).
        num_temporal_tokens: rows of temporal (per-frame mean) video tokens, zero padded (100).
        projector_type: ``"mlp2x_gelu"`` (Linear, GELU, Linear) or ``"linear"``.
        max_images: images per sample at most (16).
        image_token_id / video_token_id / region_token_id: ids of the ``<image>``, ``<video>``, ``<region>`` tokens.
        freeze_vision_tower: keep CLIP frozen (``requires_grad=False``) after construction and loading.
    """

    model_type = "artemis"
    sub_configs = {"vision_config": CLIPVisionConfig, "text_config": LlamaConfig}

    def __init__(
        self,
        vision_config: CLIPVisionConfig | dict[str, Any] | None = None,
        text_config: LlamaConfig | dict[str, Any] | None = None,
        vision_feature_layer: int = -2,
        region_feature_layers: tuple[int, ...] | list[int] = (-11, -8, -5, -2),
        region_upsample_factors: tuple[int, ...] | list[int] = (8, 4, 2, 1),
        fuse_rounds: int = 5,
        fuse_shuffle_channels: int = 256,
        fuse_groupnorm_groups: int = 64,
        roi_output_size: int = 14,
        roi_sampling_ratio: int = 2,
        box_mlp_hidden: int = 256,
        num_tracked_boxes: int = 8,
        num_region_tokens: int = 4,
        kmeans_iters: int = 3,
        kmeans_restarts: int = 8,
        kmeans_seed: int = 123,
        kmeans_init: str = "k-means++",
        region_motion_embedding: bool = False,
        track_frame_mode: str = "uniform",
        num_temporal_tokens: int = 100,
        projector_type: str = "mlp2x_gelu",
        max_images: int = 16,
        image_token_id: int = 32000,
        video_token_id: int = 32001,
        region_token_id: int = 32002,
        freeze_vision_tower: bool = True,
        **kwargs: Any,
    ) -> None:
        if vision_config is None:
            vision_config = CLIPVisionConfig(**_CLIP_VIT_L14_224)
        elif isinstance(vision_config, dict):
            vision_config = CLIPVisionConfig(**{**_CLIP_VIT_L14_224, **_without_model_type(vision_config)})
        if text_config is None:
            text_config = LlamaConfig(**_VICUNA_7B)
        elif isinstance(text_config, dict):
            text_config = LlamaConfig(**{**_VICUNA_7B, **_without_model_type(text_config)})
        self.vision_config = vision_config
        self.text_config = text_config
        self.vision_feature_layer = int(vision_feature_layer)
        self.region_feature_layers = [int(v) for v in region_feature_layers]
        self.region_upsample_factors = [int(v) for v in region_upsample_factors]
        self.fuse_rounds = int(fuse_rounds)
        self.fuse_shuffle_channels = int(fuse_shuffle_channels)
        self.fuse_groupnorm_groups = int(fuse_groupnorm_groups)
        self.roi_output_size = int(roi_output_size)
        self.roi_sampling_ratio = int(roi_sampling_ratio)
        self.box_mlp_hidden = int(box_mlp_hidden)
        self.num_tracked_boxes = int(num_tracked_boxes)
        self.num_region_tokens = int(num_region_tokens)
        self.kmeans_iters = int(kmeans_iters)
        self.kmeans_restarts = int(kmeans_restarts)
        self.kmeans_seed = int(kmeans_seed)
        self.kmeans_init = kmeans_init
        self.region_motion_embedding = bool(region_motion_embedding)
        self.track_frame_mode = track_frame_mode
        self.num_temporal_tokens = int(num_temporal_tokens)
        self.projector_type = projector_type
        self.max_images = int(max_images)
        self.image_token_id = int(image_token_id)
        self.video_token_id = int(video_token_id)
        self.region_token_id = int(region_token_id)
        self.freeze_vision_tower = bool(freeze_vision_tower)
        kwargs.setdefault("tie_word_embeddings", bool(getattr(text_config, "tie_word_embeddings", False)))
        super().__init__(**kwargs)
        self._validate()

    # ---- derived sizes ------------------------------------------------------------------------------------
    @property
    def patch_grid(self) -> int:
        """Patches per image side (224 / 14 = 16)."""
        return self.vision_config.image_size // self.vision_config.patch_size

    @property
    def num_patches(self) -> int:
        """Patch tokens per image (256)."""
        return self.patch_grid**2

    @property
    def num_video_tokens(self) -> int:
        """Tokens of one ``<video>``: temporal + spatial (100 + 256 = 356)."""
        return self.num_temporal_tokens + self.num_patches

    @property
    def region_map_sizes(self) -> list[int]:
        """Side of each level's feature map (128, 64, 32, 16)."""
        return [self.patch_grid * f for f in self.region_upsample_factors]

    @property
    def region_strides(self) -> list[float]:
        """Pixels of the CLIP input per map cell, per level (1.75, 3.5, 7, 14)."""
        return [self.vision_config.image_size / s for s in self.region_map_sizes]

    def get_text_config(self, *args: Any, **kwargs: Any) -> PretrainedConfig:
        return self.text_config

    # ---- validation -----------------------------------------------------------------------------------------
    def _validate(self) -> None:
        vc, tc = self.vision_config, self.text_config
        if vc.image_size % vc.patch_size != 0:
            raise ValueError(
                f"vision image_size {vc.image_size} must be a multiple of patch_size {vc.patch_size}"
            )
        num_states = vc.num_hidden_layers + 1  # hidden_states: embeddings + one per layer
        allowed = f"[{-num_states}, {num_states - 1}]"
        if not -num_states <= self.vision_feature_layer < num_states:
            raise ValueError(f"vision_feature_layer {self.vision_feature_layer} is outside {allowed}")
        if len(self.region_feature_layers) != NUM_REGION_LEVELS:
            raise ValueError(
                f"region_feature_layers {self.region_feature_layers} must have {NUM_REGION_LEVELS} entries"
            )
        for layer in self.region_feature_layers:
            if not -num_states <= layer < num_states:
                raise ValueError(f"region_feature_layers entry {layer} is outside {allowed}")
        if len(self.region_upsample_factors) != NUM_REGION_LEVELS or any(
            f < 1 for f in self.region_upsample_factors
        ):
            raise ValueError(
                f"region_upsample_factors {self.region_upsample_factors} must be {NUM_REGION_LEVELS} ints >= 1"
            )
        channels = vc.hidden_size
        if self.fuse_shuffle_channels < 1 or 2 * self.fuse_shuffle_channels >= channels:
            raise ValueError(
                f"fuse_shuffle_channels {self.fuse_shuffle_channels} must be in [1, {(channels - 1) // 2}] "
                f"for {channels} vision channels"
            )
        if self.fuse_groupnorm_groups < 1 or channels % self.fuse_groupnorm_groups != 0:
            raise ValueError(
                f"fuse_groupnorm_groups {self.fuse_groupnorm_groups} must divide the {channels} vision channels"
            )
        for name in ("fuse_rounds", "roi_output_size", "roi_sampling_ratio", "box_mlp_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)} must be >= 1")
        if self.num_region_tokens < 1:
            raise ValueError(f"num_region_tokens {self.num_region_tokens} must be >= 1")
        if self.num_tracked_boxes < self.num_region_tokens:
            raise ValueError(
                f"num_tracked_boxes {self.num_tracked_boxes} must be >= num_region_tokens "
                f"{self.num_region_tokens} (K-means picks {self.num_region_tokens} of them)"
            )
        if self.kmeans_iters < 1 or self.kmeans_restarts < 1:
            raise ValueError(
                f"kmeans_iters {self.kmeans_iters} and kmeans_restarts {self.kmeans_restarts} must be >= 1"
            )
        if self.kmeans_init not in KMEANS_INITS:
            raise ValueError(f"kmeans_init {self.kmeans_init!r} is unknown; allowed: {KMEANS_INITS}")
        if self.track_frame_mode not in ("uniform", "front"):
            raise ValueError(
                f"track_frame_mode {self.track_frame_mode!r} is unknown; allowed: 'uniform', 'front' (inference "
                "modes of artemis_model.selection.choose_track_frames)"
            )
        if self.num_temporal_tokens < 1:
            raise ValueError(f"num_temporal_tokens {self.num_temporal_tokens} must be >= 1")
        if self.projector_type not in PROJECTOR_TYPES:
            raise ValueError(f"projector_type {self.projector_type!r} is unknown; allowed: {PROJECTOR_TYPES}")
        if self.max_images < 1:
            raise ValueError(f"max_images {self.max_images} must be >= 1")
        ids = {
            "image_token_id": self.image_token_id,
            "video_token_id": self.video_token_id,
            "region_token_id": self.region_token_id,
        }
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"placeholder token ids must differ, got {ids}")
        for name, value in ids.items():
            if not 0 <= value < tc.vocab_size:
                raise ValueError(f"{name} {value} is outside the vocabulary [0, {tc.vocab_size})")


def _without_model_type(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "model_type"}


AutoConfig.register("artemis", ArtemisConfig, exist_ok=True)
