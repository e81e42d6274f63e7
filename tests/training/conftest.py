"""Shared fixtures: generated data sets, a tiny "pretrained" initial checkpoint, and stage configs."""

from __future__ import annotations

import itertools
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
