"""``data.video_dropout``: whole samples' global video features are zeroed, reproducibly per step, only in training."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainingArguments

from artemis_model.tiny import tiny_model_and_processor
from training.config import TrainConfig
from training.media import GlobalFeatureProvider
from training.trainer import ArtemisTrainer


def _trainer(tmp_path, p: float, seed: int = 0) -> ArtemisTrainer:
    model, processor = tiny_model_and_processor(seed=0)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    return ArtemisTrainer(
        model=model,
        args=args,
        artemis_processor=processor,
        features=GlobalFeatureProvider("recompute"),
        video_dropout=p,
        dropout_seed=seed,
    )


def test_drops_whole_samples_at_the_configured_rate(tmp_path):
    trainer = _trainer(tmp_path, 0.5)
    feats = torch.randn(400, 6, 8) + 3.0  # no row is zero by chance
    out = trainer.drop_video(feats)
    dropped = (out == 0).all(dim=(1, 2))
    kept = (out == feats).all(dim=(1, 2))
    assert bool((dropped | kept).all()), "a sample was partly zeroed"
    assert 0.4 < dropped.float().mean().item() < 0.6


def test_same_step_same_draw_other_step_other_draw(tmp_path):
    feats = torch.ones(64, 2, 3)
    a = _trainer(tmp_path / "a", 0.5, seed=7)
    b = _trainer(tmp_path / "b", 0.5, seed=7)
    assert torch.equal(a.drop_video(feats), b.drop_video(feats))  # a resumed run draws the same
    b.state.global_step = 1
    assert not torch.equal(a.drop_video(feats), b.drop_video(feats))


def test_evaluation_sees_every_video(tmp_path):
    """In eval mode the loss with dropout 0.9 equals the loss without dropout (nothing dropped)."""
    losses = []
    for p in (0.0, 0.9):
        trainer = _trainer(tmp_path / str(p), p)
        model = trainer.model.eval()
        cfg = model.config
        ids = torch.tensor([[1] + [cfg.video_token_id] * cfg.num_video_tokens + [5, 6, 7]])
        feats = torch.randn(
            1, cfg.num_video_tokens, cfg.vision_config.hidden_size, generator=torch.Generator().manual_seed(0)
        )
        inputs = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": ids,
            "video_features": feats,
        }
        with torch.no_grad():
            losses.append(trainer.compute_loss(model, inputs).item())
        model.train()
        with torch.no_grad():
            trained = trainer.compute_loss(model, inputs).item()
        if p > 0:
            assert trained != pytest.approx(losses[-1]), (
                "training mode with p=0.9 should have dropped the video"
            )
    assert losses[0] == pytest.approx(losses[1])


def test_config_rejects_a_probability_of_one():
    with pytest.raises(ValueError, match="video_dropout"):
        TrainConfig.model_validate({"model": {"tiny": True}, "data": {"video_dropout": 1.0}})
