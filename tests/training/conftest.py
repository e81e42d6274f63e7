"""Shared fixtures: generated data sets, a tiny "pretrained" initial checkpoint, and stage configs."""

from __future__ import annotations

import itertools
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

from artemis_model.processing_artemis import render_prompt
from artemis_model.tiny import tiny_model_and_processor
from tests.training.datagen import COLOURS, MOTIONS, llava_records, videoref_records, write_json
from training.config import TrainConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
# Cheaper region path for CPU tests: 8x8 / 4x4 maps, 4 tracked boxes -> 2 region tokens.
TINY_OVERRIDES = (
    "{region_upsample_factors: [2, 1, 1, 1], roi_output_size: 4, fuse_rounds: 1,"
    " num_tracked_boxes: 4, num_region_tokens: 2}"
)


def _pretrain_language_model(model, processor, *, steps: int = 60, seed: int = 0) -> None:
    """Stand-in for Vicuna: teach the tiny LM the chat format and the caption grammar (text only)."""
    texts = [
        render_prompt(q, answer=f"The {c} square {m}.")
        for q, c, m in itertools.product(
            ["Describe the video.", "What is the region doing in this video?"], COLOURS, MOTIONS
        )
    ] + [render_prompt("What is a square?", answer="A square is a shape.")]
    texts += [render_prompt("What is in the image?", answer=f"A {c} square.") for c in COLOURS]
    ids = [processor.encode(t) for t in texts]
    batch = processor.pad(ids, labels=ids, padding_side="right")
    input_ids = torch.tensor(batch["input_ids"])
    mask = torch.tensor(batch["attention_mask"])
    labels = torch.tensor(batch["labels"])
    lm = model.language_model
    lm.train()
    opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randperm(len(ids), generator=gen)[:16]
        loss = lm(input_ids=input_ids[pick], attention_mask=mask[pick], labels=labels[pick]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads; on a shared 2-core machine they only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _release_distributed_state() -> None:
    """Drop what a DeepSpeed run leaves in the process: the process group (through DeepSpeed's comm layer when it
    made it, which also drops DeepSpeed's references to its groups) and DeepSpeed's backend, accelerate's shared
    state, transformers' reference to the DeepSpeed config."""
    ds_comm = sys.modules.get("deepspeed.comm.comm")
    if ds_comm is not None and ds_comm.cdb is not None:
        if ds_comm.is_initialized():
            ds_comm.destroy_process_group()
        ds_comm.cdb = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    accelerate_state = sys.modules.get("accelerate.state")
    if accelerate_state is not None:
        accelerate_state.AcceleratorState._reset_state(reset_partial_state=True)
        accelerate_state.GradientState._reset_state()
    hf_deepspeed = sys.modules.get("transformers.integrations.deepspeed")
    if hf_deepspeed is not None:
        hf_deepspeed.unset_hf_deepspeed_config()


@pytest.fixture
def one_process_launch():
    """The environment of a one-process ``torchrun``/``deepspeed`` launch, and afterwards none of it.

    A DeepSpeed run leaves process-wide state: the process group, DeepSpeed's and accelerate's globals, and
    ``ACCELERATE_USE_DEEPSPEED=true``, which accelerate exports and never unsets. Left behind, they make every later
    Trainer in the process a DeepSpeed one, which fails once the launch variables are gone (DeepSpeed asserts
    LOCAL_RANK). So the teardown releases that state and restores the environment and the thread count as they
    were (every variable, not only those set here)."""
    environ, threads = dict(os.environ), torch.get_num_threads()
    os.environ.update(
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        LOCAL_WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
    )
    try:
        yield
    finally:
        _release_distributed_state()
        for key in set(os.environ) - set(environ):
            del os.environ[key]
        os.environ.update(environ)
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("artemis_train_data")
    write_json(root / "llava_train.json", llava_records(root, 32, seed=1))
    write_json(root / "llava_eval.json", llava_records(root, 8, seed=2))
    write_json(root / "ref_train.json", videoref_records(root, 16, seed=3))
    write_json(root / "ref_eval.json", videoref_records(root, 6, seed=4))
    return root


@pytest.fixture(scope="session")
def init_checkpoint(tmp_path_factory) -> Path:
    """A tiny Artemis whose LM knows the chat format (like stage 1 starting from Vicuna), saved to disk."""
    path = tmp_path_factory.mktemp("artemis_init") / "init"
    overrides = load_config(None, ["model.tiny=true", f"model.tiny_overrides={TINY_OVERRIDES}"]).model
    model, processor = tiny_model_and_processor(seed=0, **overrides.tiny_overrides)
    _pretrain_language_model(model, processor)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def stage_config(stage: str, data_root: Path, out: Path, init: Path | None, *extra: str) -> TrainConfig:
    """A stage YAML scaled down to the tiny model on CPU (only run-size and tiny-model fields change)."""
    fmt = "ref" if stage == "stage3_referring" else "llava"
    model = (
        [f"model.path={init}"]
        if init is not None
        else ["model.path=null", "model.tiny=true", f"model.tiny_overrides={TINY_OVERRIDES}"]
    )
    return load_config(
        CONFIGS / f"{stage}.yaml",
        [
            *model,
            "model.gradient_checkpointing=false",
            f"data.train=[{data_root / f'{fmt}_train.json'}]",
            f"data.eval=[{data_root / f'{fmt}_eval.json'}]",
            f"data.media_root={data_root}",
            "data.feature_cache_dir=null",
            "data.num_workers=0",
            "run.deepspeed=null",
            "run.device=cpu",
            "run.precision=fp32",
            f"run.output_dir={out}",
            "run.resume=null",
            "run.logging_steps=1",
            "run.eval_steps=10",
            "run.save_steps=10",
            "run.progress_bar=false",
            "optim.max_steps=20",
            "optim.per_device_batch_size=4",
            "optim.eval_batch_size=8",
            "optim.gradient_accumulation_steps=1",
            *extra,
        ],
    )
