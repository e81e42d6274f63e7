"""``assemble_model`` / ``artemis init-model``: tiny LlamaForCausalLM + tiny CLIP -> the stage-1 initial checkpoint.

Oracles: the source tensors themselves (copied exactly, old vocabulary rows included), the mean of the source
embedding rows (the new placeholder rows), the source LLM's logits on placeholder-free text, and a 2-step stage-1
run through ``training.train.run_training``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from artemis_model.convert.assemble import ASSEMBLY_FILE, AssemblyError, assemble_model
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import PLACEHOLDER_TOKENS, ArtemisProcessor, render_prompt
from artemis_model.tiny import TINY_IMAGE_SIZE, TINY_PATCH_SIZE, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[3]
VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "image_size": TINY_IMAGE_SIZE,
    "patch_size": TINY_PATCH_SIZE,
    "projection_dim": 32,
}
# The Artemis knobs of artemis_model.tiny.tiny_config, made cheaper (8x8 / 4x4 region maps).
OVERRIDES = {
    "region_feature_layers": [-5, -4, -3, -2],
    "region_upsample_factors": [2, 1, 1, 1],
    "fuse_rounds": 1,
    "fuse_shuffle_channels": 8,
    "fuse_groupnorm_groups": 8,
    "roi_output_size": 4,
    "box_mlp_hidden": 16,
    "num_temporal_tokens": 16,
    "num_tracked_boxes": 4,
    "num_region_tokens": 2,
}
FRESH = ("projector.", "region_encoder.")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _llm(seed: int = 0) -> tuple[LlamaForCausalLM, object]:
    tokenizer = tiny_tokenizer(placeholders=False)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        vocab_size=len(tokenizer),
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        rope_theta=5000.0,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval(), tokenizer


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """An LLM saved as safetensors and as a .bin, a CLIPVisionModel and a full (openai layout) CLIPModel."""
    root = tmp_path_factory.mktemp("assemble_sources")
    llm, tokenizer = _llm()
    llm.save_pretrained(root / "llm")
    tokenizer.save_pretrained(root / "llm")
    bin_dir = root / "llm_bin"
    llm.config.save_pretrained(bin_dir)
    tokenizer.save_pretrained(bin_dir)
    torch.save({k: v.clone() for k, v in llm.state_dict().items()}, bin_dir / "pytorch_model.bin")
    torch.manual_seed(1)
    CLIPVisionModel(CLIPVisionConfig(**VISION)).save_pretrained(root / "clip_vision")
    torch.manual_seed(2)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    full = CLIPModel(
        CLIPConfig(vision_config=VISION, text_config={**text, "vocab_size": 100}, projection_dim=32)
    )
    full.save_pretrained(root / "clip_full")
    return {
        "llm": root / "llm",
        "llm_bin": bin_dir,
        "clip_vision": root / "clip_vision",
        "clip_full": root / "clip_full",
    }


@pytest.fixture(scope="module")
def assembled(sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assembled") / "init"
    return assemble_model(sources["llm"], sources["clip_vision"], out, config_overrides=OVERRIDES, seed=0)


def _state(path: Path, **kwargs) -> dict[str, torch.Tensor]:
    model = ArtemisForConditionalGeneration.from_pretrained(path, **kwargs)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_llm_and_clip_weights_are_copied_exactly(sources, assembled):
    model = ArtemisForConditionalGeneration.from_pretrained(assembled)
    llm = LlamaForCausalLM.from_pretrained(sources["llm"])
    clip = CLIPVisionModel.from_pretrained(sources["clip_vision"])
    ours = model.state_dict()
    base = llm.config.vocab_size
    for name, tensor in llm.state_dict().items():
        mine = ours[f"language_model.{name}"]
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert mine.shape == (base + len(PLACEHOLDER_TOKENS), tensor.shape[1])
            assert torch.equal(mine[:base], tensor), name  # old rows untouched
            mean = tensor.mean(dim=0, dtype=torch.float32)
            for row in mine[base:]:
                torch.testing.assert_close(row, mean, rtol=0, atol=1e-7)
        else:
            assert torch.equal(mine, tensor), name
    for name, tensor in clip.state_dict().items():
        assert torch.equal(ours[f"vision_tower.{name}"], tensor), name
    assert model.config.text_config.rope_parameters["rope_theta"] == 5000.0  # LLM config fields kept
    assert all(not p.requires_grad for p in model.vision_tower.parameters())


def test_tokenizer_processor_and_provenance(sources, assembled):
    processor = ArtemisProcessor.from_pretrained(assembled)
    config = ArtemisForConditionalGeneration.config_class.from_pretrained(assembled)
    base = len(tiny_tokenizer(placeholders=False))
    ids = [processor.token_ids[t] for t in PLACEHOLDER_TOKENS]
    assert ids == list(range(base, base + 3))
    assert ids == [config.image_token_id, config.video_token_id, config.region_token_id]
    assert config.text_config.vocab_size == base + 3 == len(processor.tokenizer)
    assert (processor.resize_mode, processor.prompt_template) == ("consistent", "train")
    assert processor.image_size == TINY_IMAGE_SIZE
    assert config.region_feature_layers == OVERRIDES["region_feature_layers"]
    assert sorted(p.suffix for p in assembled.glob("model*.safetensors")) == [".safetensors"]
    provenance = json.loads((assembled / ASSEMBLY_FILE).read_text())
    assert provenance["new_rows"] == 3 and provenance["dtype"] == "fp32" and provenance["seed"] == 0


def test_text_logits_equal_the_source_llm(sources, assembled):
    model = ArtemisForConditionalGeneration.from_pretrained(assembled).eval()
    processor = ArtemisProcessor.from_pretrained(assembled)
    llm = LlamaForCausalLM.from_pretrained(sources["llm"]).eval()
    ids = torch.tensor([processor.encode(render_prompt("What is the red square doing?"))])
    assert ids.max() < llm.config.vocab_size  # placeholder-free
    with torch.no_grad():
        ours = model(input_ids=ids).logits
        theirs = llm(input_ids=ids).logits
    assert ours.shape[-1] == theirs.shape[-1] + 3
    torch.testing.assert_close(ours[..., : theirs.shape[-1]], theirs, rtol=1e-5, atol=1e-5)


def test_fresh_modules_depend_only_on_the_seed(sources, assembled, tmp_path):
    first = _state(assembled)
    same = _state(
        assemble_model(sources["llm"], sources["clip_vision"], tmp_path / "same", config_overrides=OVERRIDES)
    )
    other = _state(
        assemble_model(
            sources["llm"], sources["clip_vision"], tmp_path / "s1", config_overrides=OVERRIDES, seed=1
        )
    )
    bf16 = _state(
        assemble_model(
            sources["llm"],
            sources["clip_vision"],
            tmp_path / "bf16",
            config_overrides=OVERRIDES,
            dtype=torch.bfloat16,
        ),
        dtype=torch.bfloat16,
    )
    fresh = [k for k in first if k.startswith(FRESH)]
    assert any(k.startswith("projector.") for k in fresh) and any(
        k.startswith("region_encoder.") for k in fresh
    )
    assert all(torch.equal(first[k], same[k]) for k in fresh)
    assert (
        sum(not torch.equal(first[k], other[k]) for k in fresh) >= len(fresh) // 2
    )  # weights differ; norms (1, 0) do not
    for k in fresh:  # the same seed gives the same weights whatever the output dtype
        assert bf16[k].dtype == torch.bfloat16
        assert torch.equal(bf16[k], first[k].to(torch.bfloat16)), k
    level_conv = first["region_encoder.level_convs.0.weight"]
    assert 0.005 < float(level_conv.std()) < 0.02  # the original's N(0, 0.01) init, applied by _init_weights


def test_cli_openai_clip_layout_and_bin_llm(sources, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(OVERRIDES))
    out = tmp_path / "init"
    args = [
        "init-model",
        "--llm",
        str(sources["llm_bin"]),
        "--clip",
        str(sources["clip_full"]),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, [*args, "--dtype", "fp32", "--config-overrides", str(overrides)])
    assert result.exit_code == 0, result.output
    ours = _state(out)
    full = CLIPModel.from_pretrained(sources["clip_full"])
    vision = {
        k[len("vision_model.") :]: v for k, v in full.state_dict().items() if k.startswith("vision_model.")
    }
    assert vision and all(torch.equal(ours[f"vision_tower.{k}"], v) for k, v in vision.items())
    assert not any("text_model" in k or "projection" in k.split(".")[0] for k in ours)
    llm = LlamaForCausalLM.from_pretrained(sources["llm"])
    assert torch.equal(
        ours["language_model.model.layers.1.mlp.down_proj.weight"], llm.model.layers[1].mlp.down_proj.weight
    )

    again = CliRunner().invoke(app, [*args, "--config-overrides", str(overrides)])
    assert again.exit_code == 2 and "not an empty directory" in again.output


def test_bad_sources_are_reported_before_writing(sources, tmp_path):
    with pytest.raises(
        AssemblyError, match="region_feature_layers entry -11"
    ):  # defaults need a 24-layer CLIP
        assemble_model(sources["llm"], sources["clip_vision"], tmp_path / "a")
    shallow = {**OVERRIDES, "vision_config": {"hidden_size": 48}}
    with pytest.raises(AssemblyError, match=r"vision_tower\.embeddings\.patch_embedding\.weight"):
        assemble_model(sources["llm"], sources["clip_vision"], tmp_path / "b", config_overrides=shallow)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(AssemblyError, match="model_type 'clip_vision_model' is not supported"):
        assemble_model(
            sources["clip_vision"], sources["clip_vision"], tmp_path / "c", config_overrides=OVERRIDES
        )


def test_cli_import_loads_no_torch():
    code = "import sys, cli.init_model; print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_stage1_training_runs_on_the_assembled_model(assembled, tmp_path):
    from tests.training.datagen import llava_records, write_json
    from training.config import load_config
    from training.train import run_training

    # Stage-1 data are captions of images and videos (no text-only turns, whose batches give no projector grads).
    records = [r for r in llava_records(tmp_path, 8, seed=1) if "image" in r or "video" in r]
    write_json(tmp_path / "train.json", records)
    cfg = load_config(
        ROOT / "training" / "configs" / "stage1_pretrain.yaml",
        [
            f"model.path={assembled}",
            "model.gradient_checkpointing=false",
            f"data.train=[{tmp_path / 'train.json'}]",
            "data.eval_fraction=0.0",
            f"data.media_root={tmp_path}",
            "data.feature_cache_dir=null",
            "data.num_workers=0",
            "run.deepspeed=null",
            "run.device=cpu",
            "run.precision=fp32",
            f"run.output_dir={tmp_path / 'run'}",
            "run.resume=null",
            "run.logging_steps=1",
            "run.eval_steps=null",
            "run.save_steps=100",
            "run.plot=false",
            "run.progress_bar=false",
            "optim.max_steps=2",
            "optim.per_device_batch_size=2",
        ],
    )
    result = run_training(cfg)
    assert result.global_step == 2 and len(result.train_losses) == 2
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in result.train_losses)
    assert result.trainable_names and all(n.startswith("projector.") for n in result.trainable_names)
    before, after = _state(assembled), _state(result.final_dir)
    assert not torch.equal(before["projector.linear_1.weight"], after["projector.linear_1.weight"])
    frozen = [k for k in before if not k.startswith("projector.")]
    assert all(torch.equal(before[k], after[k]) for k in frozen)
