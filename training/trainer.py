"""The HF ``Trainer`` glue: a multimodal ``compute_loss``, per-epoch data seeding, and the loss-curve plot.

``compute_loss`` turns a collated batch into model inputs: global video features from the
:class:`~training.media.GlobalFeatureProvider` (or pickled features from the batch), and region tokens from
the RoI frames through the (trainable) region encoder + K-means selection, then the causal-LM loss.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from training.media import GlobalFeatureProvider

logger = logging.getLogger(__name__)


def base_model(model: nn.Module) -> nn.Module:
    """The ArtemisForConditionalGeneration under DeepSpeed / DDP / PEFT wrappers (same parameters)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class ArtemisTrainer(Trainer):
    """``Trainer`` whose loss assembles video and region features; everything else is stock HF."""

    def __init__(
        self,
        *args: Any,
        artemis_processor: Any,
        features: GlobalFeatureProvider,
        video_dropout: float = 0.0,
        dropout_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0.0 <= video_dropout < 1.0:
            raise ValueError(f"video_dropout {video_dropout} must be in [0, 1)")
        self.artemis_processor = artemis_processor
        self.features = features
        self.video_dropout = video_dropout
        self.dropout_seed = dropout_seed

    def drop_video(self, video_features: torch.Tensor) -> torch.Tensor:
        """Zero each video's ``[n, rows, Cv]`` features with probability ``video_dropout``.

        The draw depends on ``dropout_seed`` and the optimizer step only, so a resumed run draws the same; the
        micro-batches of one step (gradient accumulation) share one pattern of kept rows.
        """
        gen = torch.Generator().manual_seed(self.dropout_seed * 1_000_003 + int(self.state.global_step))
        keep = torch.rand(video_features.shape[0], generator=gen) >= self.video_dropout  # [n]
        return video_features * keep.to(video_features)[:, None, None]

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        inner = base_model(model)
        video_features = inputs.get("video_features")
        refs = inputs.get("video_refs") or []
        if refs:
            video_features = self.features.features(inner, self.artemis_processor, refs)  # [n, T_max + P, Cv]
        if video_features is not None and self.video_dropout > 0 and model.training:
            video_features = self.drop_video(video_features)
        region_features = None
        if inputs.get("region_pixel_values") is not None:
            region_features = inner.build_region_features(
                inputs["region_pixel_values"], inputs["region_frame_ids"], inputs["region_boxes_norm"]
            ).tokens.flatten(0, 1)  # [B, 1 + K, D] -> [B * (1 + K), D]
        kwargs: dict[str, Any] = {}
        if num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = num_items_in_batch
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            labels=inputs["labels"],
            pixel_values=inputs.get("pixel_values"),
            video_features=video_features,
            region_features=region_features,
            use_cache=False,
            **kwargs,
        )
        loss = outputs.loss
        if video_features is None and inputs.get("pixel_values") is None:
            # A text-only batch leaves the projector out of the graph: with only the projector trainable
            # (stage 1) there would be nothing to differentiate, and ZeRO expects a gradient for every
            # trainable parameter. A zero-weighted pass keeps it in the graph (zero gradient, no effect).
            cv = inner.config.vision_config.hidden_size
            probe = loss.new_zeros(1, cv, dtype=inner.projector.linear_1.weight.dtype)
            loss = loss + 0.0 * inner.projector(probe).sum().to(loss.dtype)
        if (
            self.args.average_tokens_across_devices
            and num_items_in_batch is not None
            and self.accelerator.num_processes > 1
        ):
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss


class EpochSeedCallback(TrainerCallback):
    """Tells the data sets the epoch before each one starts (their per-sample generators depend on it)."""

    def __init__(self, *datasets: Any) -> None:
        self.datasets = [d for d in datasets if d is not None]

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        epoch = int(math.floor((state.epoch or 0.0) + 1e-6))
        for dataset in self.datasets:
            dataset.set_epoch(epoch)


def loss_series(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``{"train": [(step, loss)], "eval": [(step, eval_loss)]}`` from ``trainer.state.log_history``."""
    train = [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e]
    evals = [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e]
    return {"train": train, "eval": evals}


def plot_losses(
    log_history: list[dict[str, Any]], path: str | Path, *, baseline: float | None = None, title: str = ""
) -> Path:
    """Write a PNG of the train / held-out loss curves (and the unigram baseline) with matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = loss_series(log_history)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if series["train"]:
        ax.plot(*zip(*series["train"], strict=True), label="train loss", lw=1.2)
    if series["eval"]:
        ax.plot(*zip(*series["eval"], strict=True), "o-", label="held-out loss", lw=1.5)
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="gray", label=f"unigram baseline ({baseline:.2f})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
