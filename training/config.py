"""Typed training configuration: one schema for the three stages, loaded from YAML with ``key=value`` overrides.

A stage is only a YAML file (``training/configs/stage*.yaml``); what trains is the ``trainable`` section. Dotted
overrides reach any field, e.g. ``optim.learning_rate=3e-3 run.output_dir=/tmp/x trainable.language_model=full``;
values are parsed as YAML scalars/lists (``data.train=[a.json,b.json]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

LLAMA_LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Strict):
    """Where the initial weights come from: an Artemis checkpoint directory (``save_pretrained`` layout, the
    processor saved beside it), or ``tiny`` for a random tiny model (tests, CPU experiments)."""

    path: str | None = None
    tiny: bool = False
    tiny_seed: int = 0
    tiny_overrides: dict[str, Any] = Field(default_factory=dict)
    attn_implementation: str | None = None
    gradient_checkpointing: bool = False
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    """``ArtemisConfig`` fields set when loading ``path`` (e.g. ``{region_motion_embedding: true}`` adds that module,
    initialised as its config says, to a checkpoint saved without it)."""
    region_blind: bool = False
    """Ablation: every ``<region>`` token is the zero vector (the region encoder's ``up_proj`` is zeroed and the
    region encoder frozen), saved that way, so the result is the region-blind baseline of the same run."""


class TrainableSection(_Strict):
    """What trains. The vision tower is frozen in every stage (not configurable)."""

    projector: Literal["full", "frozen"] = "full"
    language_model: Literal["frozen", "full", "lora"] = "frozen"
    region_encoder: Literal["frozen", "full"] = "frozen"
    region_motion: Literal["frozen", "full"] | None = None
    """The region encoder's motion MLP (``config.region_motion_embedding``); ``None`` follows ``region_encoder``."""


class LoraSection(_Strict):
    """LoRA of the language model (used when ``trainable.language_model == 'lora'``)."""

    r: int = Field(16, ge=1)
    alpha: float = 16.0
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(LLAMA_LINEAR_NAMES))
    save_merged: bool = True

    @model_validator(mode="after")
    def _targets_known(self) -> LoraSection:
        bad = [t for t in self.target_modules if t not in LLAMA_LINEAR_NAMES]
        if bad or not self.target_modules:
            raise ValueError(
                f"lora.target_modules {self.target_modules} invalid; allowed: {list(LLAMA_LINEAR_NAMES)}"
            )
        return self


class DataSection(_Strict):
    """Data sets. ``format``: ``llava`` (stages 1-2 conversations) or ``videoref`` (stage 3 referring).

    ``train`` / ``eval``: JSON files or folders of ``*.json``. Without ``eval``, ``eval_fraction`` of the
    training records (chosen by ``seed``) is held out. ``global_features``: ``cache`` (the feature cache,
    recomputed from frames on a miss), ``recompute`` (CLIP on the sampled frames at every step), ``pickle``
    (opt-in: the official 356xC ``clip_path`` / ``video_clip`` pickles, numpy arrays only)."""

    format: Literal["llava", "videoref"] = "llava"
    train: list[str] = Field(default_factory=list)
    eval: list[str] = Field(default_factory=list)
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    media_root: str = "."
    global_features: Literal["cache", "recompute", "pickle"] = "cache"
    feature_cache_dir: str | None = None
    max_length: int = Field(2048, ge=16)
    template: str = "train"
    num_workers: int = Field(0, ge=0)
    seed: int = 0
    track_sampling: Literal["average", "uniform", "front"] = "average"
    """Stage 3's choice of the tracked frames: ``average`` (the paper: random start + jitter, redrawn every epoch),
    ``uniform`` (the paper's inference choice: evenly spaced from the first tracked frame) or ``front`` (not in
    the paper: the first two tracked frames close together; train a model with ``config_overrides:
    {track_frame_mode: front}`` so that its inference chooses the same)."""
    video_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Training only: each video's global features are replaced by zeros with this probability (drawn
    from ``seed`` and the optimizer step, so a resumed run draws the same), so the LM cannot answer what the
    region tokens carry (the referred object's motion) from the scene alone. 0 (default) = off, as the paper."""


class OptimSection(_Strict):
    learning_rate: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    scheduler: Literal["cosine", "constant", "constant_with_warmup", "linear"] = "cosine"
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_batch_size: int = Field(16, ge=1)
    eval_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = 1.0
    optimizer: str = "adamw_torch"


class RunSection(_Strict):
    output_dir: str = "checkpoints/artemis"
    seed: int = 42
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    tf32: bool = False
    deepspeed: str | None = None
    device: Literal["auto", "cpu"] = "auto"
    logging_steps: int = Field(1, ge=1)
    eval_steps: int | None = None
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = 2
    resume: str | None = None
    plot: bool = True
    progress_bar: bool = True


class TrainConfig(_Strict):
    """The whole recipe. ``stage`` is a label for logs and the output; behaviour comes from the sections."""

    stage: str = "custom"
    model: ModelSection = Field(default_factory=ModelSection)
    trainable: TrainableSection = Field(default_factory=TrainableSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection = Field(default_factory=DataSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    run: RunSection = Field(default_factory=RunSection)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.model.path is None and not self.model.tiny:
            raise ValueError(
                "model.path is required (an Artemis checkpoint directory) unless model.tiny=true"
            )
        if self.model.region_blind:
            # The ablation needs zero tokens for the whole run: no part of the region encoder trains.
            if self.trainable.region_encoder != "frozen":
                self.trainable.region_encoder = "frozen"
            if self.trainable.region_motion not in (None, "frozen"):
                self.trainable.region_motion = "frozen"
        return self


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (values parsed as YAML). Returns a new dict."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ValueError(f"override {item!r} has an empty key")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return out


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a stage YAML (or start from defaults when ``path`` is None) and apply dotted overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} not found")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path} must hold a mapping of sections, got {type(raw).__name__}")
    return TrainConfig.model_validate(apply_overrides(raw, overrides))
