"""The one training entry point. The three Artemis stages differ only in their YAML (``training/configs``).

    artemis train training/configs/stage3_referring.yaml run.output_dir=out optim.learning_rate=4e-5
    python -m training.train training/configs/stage1_pretrain.yaml [key=value ...]
    deepspeed --num_gpus 8 --module training.train training/configs/stage2_finetune.yaml

Outputs under ``run.output_dir``: ``checkpoint-*`` (resumable: ``run.resume=auto`` or a path), ``final/`` (a
plain Artemis checkpoint + processor, LoRA merged), ``adapter/`` (LoRA runs: PEFT adapter + modules_to_save),
``metrics.json`` and ``loss_curves.png``.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import ArtemisProcessor
from training.config import TrainConfig, load_config
from training.data import ArtemisCollator, ConversationDataset, read_records, split_records, unigram_baseline
from training.media import GlobalFeatureProvider
from training.referring_data import ReferringDataset
from training.trainable import apply_trainable, count_parameters, save_merged, trainable_parameter_names
from training.trainer import ArtemisTrainer, EpochSeedCallback, loss_series, plot_losses

logger = logging.getLogger(__name__)

BASELINE_MAX_SAMPLES = 5000


@dataclass
class TrainResult:
    """What a run produced: loss series, the held-out losses, the unigram baseline and the output paths."""

    output_dir: Path
    final_dir: Path | None
    train_losses: list[tuple[int, float]]
    eval_losses: list[tuple[int, float]]
    unigram_baseline: float | None
    trainable_names: list[str]
    global_step: int
    plot_path: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def _checked_config_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``model.config_overrides`` whose keys are ``ArtemisConfig`` fields (else a ValueError naming them)."""
    allowed = set(inspect.signature(ArtemisConfig.__init__).parameters) - {"self", "kwargs"}
    bad = sorted(set(overrides) - allowed)
    if bad:
        raise ValueError(
            f"model.config_overrides keys {bad} are not ArtemisConfig fields; allowed: {sorted(allowed)}"
        )
    return overrides


def build_model_and_processor(cfg: TrainConfig) -> tuple[ArtemisForConditionalGeneration, ArtemisProcessor]:
    """The initial model: a saved Artemis checkpoint (``model.path``, processor beside it) or a tiny one."""
    if cfg.model.tiny and cfg.model.path is None:
        from artemis_model.tiny import tiny_model_and_processor

        model, processor = tiny_model_and_processor(seed=cfg.model.tiny_seed, **cfg.model.tiny_overrides)
    else:
        path = Path(cfg.model.path or "")
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model.path {path} is not an Artemis checkpoint (no config.json)")
        kwargs: dict[str, Any] = dict(_checked_config_overrides(cfg.model.config_overrides))
        if cfg.model.attn_implementation:
            kwargs["attn_implementation"] = cfg.model.attn_implementation
        model = ArtemisForConditionalGeneration.from_pretrained(path, **kwargs)
        processor = ArtemisProcessor.from_pretrained(path)
    model.vision_tower.requires_grad_(False)
    if cfg.model.region_blind:
        with torch.no_grad():
            model.region_encoder.up_proj.weight.zero_()
            model.region_encoder.up_proj.bias.zero_()
    return model, processor


def build_datasets(cfg: TrainConfig, processor: ArtemisProcessor, model_config: Any) -> tuple[Any, Any]:
    """(train, held-out or None) data sets of ``data.format``."""
    data = cfg.data
    if not data.train:
        raise ValueError("data.train is empty: give JSON files or folders of training records")
    train_records = read_records(data.train)
    eval_records = read_records(data.eval) if data.eval else []
    if not eval_records and data.eval_fraction > 0:
        train_records, eval_records = split_records(train_records, data.eval_fraction, data.seed)
    mode = "pickle" if data.global_features == "pickle" else "refs"

    def make(records: list[dict[str, Any]], seed_offset: int) -> Any:
        if data.format == "videoref":
            return ReferringDataset(
                records,
                processor,
                media_root=data.media_root,
                global_features="pickle" if mode == "pickle" else "cache",
                num_tracked=model_config.num_tracked_boxes,
                num_region_tokens=model_config.num_region_tokens,
                track_sampling=data.track_sampling,
                max_length=data.max_length,
                template=data.template,
                seed=data.seed + seed_offset,
            )
        return ConversationDataset(
            records,
            processor,
            media_root=data.media_root,
            global_features="pickle" if mode == "pickle" else "cache",
            max_length=data.max_length,
            template=data.template,
        )

    return make(train_records, 0), (make(eval_records, 1) if eval_records else None)


def compute_unigram_baseline(train_set: Any, eval_set: Any, vocab_size: int) -> float | None:
    """Unigram cross-entropy of the held-out answers under the train answers' token frequencies."""
    if eval_set is None:
        return None
    n_train = min(len(train_set), BASELINE_MAX_SAMPLES)
    n_eval = min(len(eval_set), BASELINE_MAX_SAMPLES)
    train_labels = [train_set.encode_text(i)[1] for i in range(n_train)]
    eval_labels = [eval_set.encode_text(i)[1] for i in range(n_eval)]
    return unigram_baseline(train_labels, eval_labels, vocab_size)


def training_arguments(cfg: TrainConfig, has_eval: bool) -> TrainingArguments:
    run, opt = cfg.run, cfg.optim
    if run.deepspeed is not None:
        try:
            import deepspeed  # noqa: F401
        except ImportError as exc:
            raise ImportError("run.deepspeed needs DeepSpeed: pip install 'artemis-agent[train]'") from exc
    extra: dict[str, Any] = {}
    if cfg.model.gradient_checkpointing:
        extra["gradient_checkpointing"] = True
    return TrainingArguments(
        **extra,
        output_dir=run.output_dir,
        seed=run.seed,
        data_seed=cfg.data.seed,
        num_train_epochs=opt.epochs,
        max_steps=opt.max_steps,
        per_device_train_batch_size=opt.per_device_batch_size,
        per_device_eval_batch_size=opt.eval_batch_size,
        gradient_accumulation_steps=opt.gradient_accumulation_steps,
        learning_rate=opt.learning_rate,
        weight_decay=opt.weight_decay,
        warmup_steps=opt.warmup_ratio,
        lr_scheduler_type=opt.scheduler,
        max_grad_norm=opt.max_grad_norm,
        optim=opt.optimizer,
        bf16=run.precision == "bf16",
        fp16=run.precision == "fp16",
        tf32=True if run.tf32 and torch.cuda.is_available() else None,  # TF32 exists on CUDA only
        use_cpu=run.device == "cpu",
        deepspeed=run.deepspeed,
        logging_steps=run.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=run.eval_steps if has_eval else None,
        eval_on_start=has_eval,
        save_strategy="steps",
        save_steps=run.save_steps,
        save_total_limit=run.save_total_limit,
        report_to="none",
        disable_tqdm=not run.progress_bar,
        remove_unused_columns=False,
        label_names=["labels"],
        prediction_loss_only=True,  # held-out loss only: never gather [B, L, vocab] logits
        dataloader_num_workers=cfg.data.num_workers,
        ddp_find_unused_parameters=cfg.data.format == "llava" or None,
    )


def _resume_path(cfg: TrainConfig) -> str | None:
    resume = cfg.run.resume
    if resume is None:
        return None
    if resume == "auto":
        out = Path(cfg.run.output_dir)
        return get_last_checkpoint(str(out)) if out.is_dir() else None
    if not Path(resume).is_dir():
        raise FileNotFoundError(f"run.resume {resume} is not a checkpoint directory")
    return resume


def run_training(cfg: TrainConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train one stage as configured; returns the losses and where the results went."""
    out = Path(cfg.run.output_dir)
    set_seed(cfg.run.seed)  # fresh weights (LoRA A, new modules) must not depend on what ran before
    model, processor = build_model_and_processor(cfg)
    train_set, eval_set = build_datasets(cfg, processor, model.config)
    baseline = compute_unigram_baseline(train_set, eval_set, model.config.text_config.vocab_size)
    model = apply_trainable(model, cfg.trainable, cfg.lora)
    if cfg.model.gradient_checkpointing and cfg.trainable.language_model != "full":
        model.enable_input_require_grads()
    names = sorted(trainable_parameter_names(model))
    features = GlobalFeatureProvider(
        "recompute" if cfg.data.global_features == "recompute" else "cache",
        disk_dir=cfg.data.feature_cache_dir,
    )
    trainer = ArtemisTrainer(
        model=model,
        args=training_arguments(cfg, eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=ArtemisCollator(processor),
        callbacks=[EpochSeedCallback(train_set), *callbacks],  # held-out samples stay fixed (epoch 0)
        artemis_processor=processor,
        features=features,
        video_dropout=cfg.data.video_dropout,
        dropout_seed=cfg.data.seed,
    )
    trainable, total = count_parameters(model)
    logger.info(
        "stage %s: %d train / %s held-out samples, %d of %d parameters train",
        cfg.stage,
        len(train_set),
        len(eval_set) if eval_set else 0,
        trainable,
        total,
    )
    trainer.train(resume_from_checkpoint=_resume_path(cfg))
    if eval_set is not None:
        trainer.evaluate()
    series = loss_series(trainer.state.log_history)
    result = TrainResult(
        output_dir=out,
        final_dir=None,
        train_losses=series["train"],
        eval_losses=series["eval"],
        unigram_baseline=baseline,
        trainable_names=names,
        global_step=trainer.state.global_step,
    )
    if trainer.is_world_process_zero():
        result.final_dir = _save_final(cfg, trainer, processor)
        if cfg.run.plot:
            result.plot_path = plot_losses(
                trainer.state.log_history,
                out / "loss_curves.png",
                baseline=baseline,
                title=f"Artemis {cfg.stage}",
            )
        result.metrics = {
            "stage": cfg.stage,
            "global_step": result.global_step,
            "train_losses": result.train_losses,
            "eval_losses": result.eval_losses,
            "unigram_baseline": baseline,
            "trainable_parameters": trainable,
            "total_parameters": total,
        }
        (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2))
    return result


def _save_final(cfg: TrainConfig, trainer: ArtemisTrainer, processor: ArtemisProcessor) -> Path:
    out = Path(cfg.run.output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if cfg.trainable.language_model == "lora":
        model.save_pretrained(out / "adapter")
        if not cfg.lora.save_merged:
            processor.save_pretrained(out / "adapter")
            return out / "adapter"
    final = out / "final"
    save_merged(model, final)
    processor.save_pretrained(final)
    return final


def parse_argv(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """``CONFIG.yaml [key=value ...]``; ignores ``--local_rank=N`` / ``--local_rank N`` from launchers."""
    args = list(argv)
    cleaned: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a.startswith("--local_rank") or a.startswith("--local-rank"):
            skip = "=" not in a and i + 1 < len(args)
            continue
        cleaned.append(a)
    config = cleaned[0] if cleaned and "=" not in cleaned[0] else None
    overrides = cleaned[1:] if config is not None else cleaned
    return config, overrides


def main(argv: Sequence[str] | None = None) -> TrainResult:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_path, overrides = parse_argv(sys.argv[1:] if argv is None else argv)
    return run_training(load_config(config_path, overrides))


if __name__ == "__main__":
    main()
