"""DeepSpeed ZeRO-2 on CPU for 2 stage-3 steps (slow: the first run JIT-compiles DeepSpeed's CPU comm op)."""

from __future__ import annotations

import socket

import pytest

from tests.training.conftest import stage_config
from training.train import run_training

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_zero2_two_steps_on_cpu(data_root, init_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("deepspeed")
    for key, value in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
    }.items():
        monkeypatch.setenv(key, value)
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
