"""The three stages on a tiny model on CPU: held-out loss falls below its start and a unigram baseline, the
right parameters (and only those) train, LoRA merges into a loadable checkpoint, and resume is exact."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback, set_seed

from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import ArtemisProcessor
from tests.training.conftest import stage_config
from training.data import ArtemisCollator
from training.referring_data import ReferringDataset
from training.train import build_model_and_processor, run_training
from training.trainable import lora_target_regex

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _state(path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def _expected_names(model: torch.nn.Module, parts: set[str], lora: bool) -> set[str]:
    names = {n for n, _ in model.named_parameters() if n.split(".")[0] in parts}
    if lora:
        import re

        pattern = re.compile(lora_target_regex(LORA_TARGETS))
        for name, module in model.named_modules():
            if pattern.fullmatch(name):
                assert isinstance(module, torch.nn.Linear)
                names |= {f"{name}.lora_A.weight", f"{name}.lora_B.weight"}
    return names


def _stage3(data_root, init_checkpoint, out, *extra: str):
    """The stage-3 YAML scaled down to the tiny model, from the shared initial checkpoint."""
    return stage_config("stage3_referring", data_root, out, init_checkpoint, *extra)


def _check_learning(result) -> None:
    evals = [loss for _, loss in result.eval_losses]
    assert result.global_step == 20 and len(result.train_losses) == 20
    assert evals[-1] < evals[0], f"held-out loss did not fall: {evals}"
    assert evals[-1] < result.unigram_baseline, (
        f"held-out {evals[-1]:.3f} >= unigram {result.unigram_baseline:.3f}"
    )
    assert (result.output_dir / "loss_curves.png").stat().st_size > 1000
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 20


def test_stage1_trains_only_the_projector(data_root, init_checkpoint, tmp_path):
    cfg = stage_config(
        "stage1_pretrain", data_root, tmp_path / "s1", init_checkpoint, "optim.learning_rate=3e-3"
    )
    assert cfg.trainable.language_model == "frozen" and cfg.optim.scheduler == "cosine"
    result = run_training(cfg)
    _check_learning(result)
    base = ArtemisForConditionalGeneration.from_pretrained(init_checkpoint)
    assert set(result.trainable_names) == _expected_names(base, {"projector"}, lora=False)
    before, after = _state(init_checkpoint), _state(result.final_dir)
    assert before.keys() == after.keys()
    for key in before:
        if key.startswith("projector."):
            assert not torch.equal(before[key], after[key]), f"{key} did not train"
        else:
            assert torch.equal(before[key], after[key]), f"{key} changed in stage 1"


def test_stage2_trains_llm_and_projector_from_scratch(data_root, tmp_path):
    cfg = stage_config("stage2_finetune", data_root, tmp_path / "s2", None, "optim.learning_rate=3e-3")
    result = run_training(cfg)
    _check_learning(result)
    model = ArtemisForConditionalGeneration.from_pretrained(result.final_dir)
    assert set(result.trainable_names) == _expected_names(model, {"projector", "language_model"}, lora=False)


class _CountSteps(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


class _Interrupt(Exception):
    pass


class _StopAfterSave(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise _Interrupt(f"simulated interruption after the checkpoint of step {self.step}")


@pytest.fixture(scope="module")
def stage3_run(data_root, init_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("s3") / "full"
    cfg = stage_config("stage3_referring", data_root, out, init_checkpoint, "optim.learning_rate=1e-3")
    return cfg, run_training(cfg)


def test_stage3_lora_region_encoder_and_merge(stage3_run, data_root, init_checkpoint):
    cfg, result = stage3_run
    assert cfg.lora.r == 16 and cfg.lora.alpha == 16 and cfg.lora.dropout == 0.05
    _check_learning(result)
    base = ArtemisForConditionalGeneration.from_pretrained(init_checkpoint)
    expected = _expected_names(base, {"projector", "region_encoder"}, lora=True)
    assert set(result.trainable_names) == expected
    assert not any(n.startswith(("vision_tower.", "language_model.lm_head")) for n in result.trainable_names)

    # Adapter (LoRA + modules_to_save) on the base == the merged checkpoint reloaded with from_pretrained.
    from peft import PeftModel

    processor = ArtemisProcessor.from_pretrained(result.final_dir)
    ds = ReferringDataset(
        json.loads((data_root / "ref_eval.json").read_text()),
        processor,
        media_root=data_root,
        num_tracked=base.config.num_tracked_boxes,
        num_region_tokens=base.config.num_region_tokens,
    )
    batch = ArtemisCollator(processor)([ds[0], ds[1]])
    adapted = PeftModel.from_pretrained(base, result.output_dir / "adapter").eval()
    merged = ArtemisForConditionalGeneration.from_pretrained(result.final_dir).eval()
    before = _state(init_checkpoint)
    merged_state = merged.state_dict()
    assert not torch.equal(
        before["region_encoder.up_proj.weight"], merged_state["region_encoder.up_proj.weight"]
    )
    vision = [k for k in before if k.startswith("vision_tower.")]
    assert vision and all(torch.equal(before[k], merged_state[k]) for k in vision)
    from training.media import GlobalFeatureProvider

    video = GlobalFeatureProvider("recompute").features(merged, processor, batch["video_refs"])
    logits = []
    with torch.no_grad():
        for model in (adapted, merged):
            inner = model.get_base_model() if hasattr(model, "get_base_model") else model
            regions = inner.build_region_features(
                batch["region_pixel_values"], batch["region_frame_ids"], batch["region_boxes_norm"]
            ).tokens
            logits.append(
                model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    video_features=video,
                    region_features=regions,
                ).logits
            )
    torch.testing.assert_close(logits[0], logits[1], rtol=1e-4, atol=1e-4)


def test_resume_reproduces_the_uninterrupted_run(stage3_run, data_root, init_checkpoint, tmp_path):
    _, full = stage3_run
    out = tmp_path / "interrupted"
    cfg = stage_config("stage3_referring", data_root, out, init_checkpoint, "optim.learning_rate=1e-3")
    with pytest.raises(_Interrupt):
        run_training(cfg, callbacks=[_StopAfterSave(10)])
    assert (out / "checkpoint-10").is_dir()
    first = json.loads((out / "checkpoint-10" / "trainer_state.json").read_text())["log_history"]
    first_losses = [(e["step"], e["loss"]) for e in first if "loss" in e]
    counter = _CountSteps()
    resumed = run_training(
        cfg.model_copy(update={"run": cfg.run.model_copy(update={"resume": "auto"})}), callbacks=[counter]
    )
    assert counter.steps == list(range(11, 21))  # only the missing steps ran
    # the resumed state carries the first 10 steps' log; steps 11-20 were computed after the restart
    assert resumed.train_losses[:10] == first_losses
    assert [s for s, _ in resumed.train_losses] == list(range(1, 21))
    assert resumed.train_losses == full.train_losses
    a, b = _state(full.final_dir), _state(resumed.final_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_entry_point_runs_a_stage(data_root, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    out = tmp_path / "cli"
    overrides = [
        "model.path=null",
        "model.tiny=true",
        f"data.train=[{data_root / 'llava_train.json'}]",
        f"data.media_root={data_root}",
        "data.eval=[]",
        "data.eval_fraction=0.25",
        "data.feature_cache_dir=null",
        "data.num_workers=0",
        "run.deepspeed=null",
        "run.device=cpu",
        "run.precision=fp32",
        f"run.output_dir={out}",
        "run.resume=null",
        "run.progress_bar=false",
        "optim.max_steps=2",
        "optim.per_device_batch_size=2",
    ]
    res = CliRunner().invoke(app, ["train", "training/configs/stage2_finetune.yaml", *overrides])
    assert res.exit_code == 0, res.output
    assert "done: 2 steps" in res.output
    assert (out / "final" / "config.json").is_file() and (out / "final" / "artemis_processor.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["unigram_baseline"] > 0


def test_stage1_survives_text_only_batches(data_root, init_checkpoint, tmp_path):
    """Stage 1 trains only the projector; a batch of text-only samples must not crash (no grad graph)."""
    records = json.loads((data_root / "llava_train.json").read_text())
    text_only = [r for r in records if "image" not in r and "video" not in r]
    assert text_only
    (data_root / "text_only.json").write_text(json.dumps(text_only * 4))
    cfg = stage_config(
        "stage1_pretrain",
        data_root,
        tmp_path / "s1_text",
        init_checkpoint,
        f"data.train=[{data_root / 'text_only.json'}]",
        "optim.max_steps=2",
    )
    result = run_training(cfg)
    before, after = _state(init_checkpoint), _state(result.final_dir)
    for key in before:  # zero gradient and no weight decay: nothing moves
        assert torch.equal(before[key], after[key]), f"{key} changed on text-only data"


def test_region_blind_is_one_flag(data_root, init_checkpoint, tmp_path):
    """``model.region_blind=true``: same stage-3 run, every <region> token zero, saved that way."""
    cfg = _stage3(
        data_root, init_checkpoint, tmp_path / "blind", "model.region_blind=true", "optim.max_steps=2"
    )
    assert cfg.trainable.region_encoder == "frozen"  # implied by the flag
    motion = _stage3(
        data_root,
        init_checkpoint,
        tmp_path / "blind_motion",
        "trainable.region_motion=full",
        "model.region_blind=true",
    )
    assert motion.trainable.region_motion == "frozen"  # also the motion MLP
    result = run_training(cfg)
    assert not any(n.startswith("region_encoder.") or ".region_encoder." in n for n in result.trainable_names)
    model = ArtemisForConditionalGeneration.from_pretrained(result.final_dir).eval()
    cfg_m = model.config
    frames = torch.rand(3, 3, cfg_m.vision_config.image_size, cfg_m.vision_config.image_size)
    n = cfg_m.num_tracked_boxes
    frame_ids = torch.tensor([[0] + [1 + (i % 2) for i in range(n)]])
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.5]] + [[0.2 + 0.01 * i, 0.2, 0.6, 0.7] for i in range(n)]])
    with torch.no_grad():
        tokens = model.build_region_features(frames, frame_ids, boxes).tokens
    assert torch.count_nonzero(tokens) == 0


def test_region_motion_module_added_and_trained_alone(data_root, init_checkpoint, tmp_path):
    """``model.config_overrides`` adds the motion MLP (freshly initialised) to a checkpoint saved without it, and
    ``trainable.region_motion=full`` trains it (through LoRA's modules_to_save) while the rest of the region
    encoder stays frozen; the merged checkpoint keeps the module and its config flag."""
    cfg = _stage3(
        data_root,
        init_checkpoint,
        tmp_path / "motion",
        "model.config_overrides={region_motion_embedding: true}",
        "trainable.region_encoder=frozen",
        "trainable.region_motion=full",
        "optim.max_steps=3",
        "optim.learning_rate=1e-2",
    )
    result = run_training(cfg)
    region = {n for n in result.trainable_names if "region_encoder." in n}
    assert region and all("region_encoder.motion_mlp." in n for n in region), region
    merged = ArtemisForConditionalGeneration.from_pretrained(result.final_dir)
    assert merged.config.region_motion_embedding is True
    state, before = merged.state_dict(), _state(init_checkpoint)
    set_seed(cfg.run.seed)  # the run's fresh init of the new module, rebuilt the way run_training builds it
    initial = build_model_and_processor(cfg)[0].state_dict()
    motion = [k for k in state if k.startswith("region_encoder.motion_mlp.")]
    assert motion and all(k not in before for k in motion)
    assert not all(torch.equal(initial[k], state[k]) for k in motion), "the motion MLP did not train"
    frozen = [k for k in before if k.startswith("region_encoder.")]
    assert frozen and all(torch.equal(before[k], state[k]) for k in frozen)


def test_unknown_config_override_is_named(data_root, init_checkpoint, tmp_path):
    cfg = _stage3(
        data_root, init_checkpoint, tmp_path / "bad", "model.config_overrides={region_motion: true}"
    )
    with pytest.raises(ValueError, match=r"\['region_motion'\] are not ArtemisConfig fields"):
        run_training(cfg)
