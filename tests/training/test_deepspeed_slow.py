"""DeepSpeed ZeRO-2 on CPU for 2 stage-3 steps (slow: the first run JIT-compiles DeepSpeed's CPU comm op)."""

from __future__ import annotations

import pytest

from tests.training.conftest import stage_config
from training.train import run_training

pytestmark = pytest.mark.slow


def test_zero2_two_steps_on_cpu(data_root, init_checkpoint, tmp_path, one_process_launch):
    pytest.importorskip("deepspeed")
    cfg = stage_config(
        "stage3_referring",
        data_root,
        tmp_path / "ds",
        init_checkpoint,
        "run.deepspeed=training/configs/ds/zero2.json",
        "optim.max_steps=2",
        "run.eval_steps=2",
        "run.save_steps=2",
    )
    result = run_training(cfg)
    assert result.global_step == 2 and len(result.train_losses) == 2
    assert all(loss == loss and loss < 20 for _, loss in result.train_losses)  # finite, sane
    assert (result.output_dir / "checkpoint-2").is_dir() and result.final_dir is not None
