"""The released-weights converter against a hand-built model (fixture written from the spec's key tables)."""

from __future__ import annotations

import json
import os
import weakref

import pytest
import torch

from artemis_model.convert import (
    ConversionError,
    ConvertOptions,
    checkpoint_io,
    convert_checkpoint,
    main,
    parse_size,
)
from artemis_model.convert.checkpoint_io import TensorFile
from artemis_model.convert.synthetic import (
    LORA_TARGETS,
    OriginalCheckpoint,
    clip_table,
    write_original_checkpoint,
)
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import EVAL_QUESTION, ArtemisProcessor, render_prompt
from artemis_model.tiny import tiny_config

P = "base_model.model.model."


def _cfg(**overrides):
    return tiny_config(fuse_rounds=5, **overrides)  # 5 fuse rounds as the original: 47 non-LoRA tensors


def _convert(ckpt: OriginalCheckpoint, out, **options):
    options.setdefault("dtype", torch.float32)
    options.setdefault("progress", False)
    return convert_checkpoint(
        ckpt.base, ckpt.lora, ckpt.clip, out, ConvertOptions(config_overrides=ckpt.overrides, **options)
    )


def _reference_model(ckpt: OriginalCheckpoint, config) -> ArtemisForConditionalGeneration:
    """Our model with every weight assigned by hand from the original tensors (merge done here)."""
    ref = ArtemisForConditionalGeneration(config).eval()
    s2, ad, nl = ckpt.stage2, ckpt.adapter, ckpt.non_lora
    scale = ckpt.lora_alpha / ckpt.lora_r
    lm = ref.language_model
    new_rows = config.text_config.vocab_size - ckpt.base_vocab
    with torch.no_grad():
        for ours, orig in (
            (lm.model.embed_tokens, "model.embed_tokens.weight"),
            (lm.lm_head, "lm_head.weight"),
        ):
            w = s2[orig].float()
            ours.weight.copy_(torch.cat([w, w.mean(0, keepdim=True).expand(new_rows, -1)]))
        for i, layer in enumerate(lm.model.layers):
            for proj in LORA_TARGETS:
                block = "mlp" if proj in ("gate_proj", "up_proj", "down_proj") else "self_attn"
                name = f"model.layers.{i}.{block}.{proj}"
                w = s2[f"{name}.weight"].float()
                a = ad[f"base_model.model.{name}.lora_A.weight"].float()
                b = ad[f"base_model.model.{name}.lora_B.weight"].float()
                getattr(getattr(layer, block), proj).weight.copy_(w + b @ a * scale)
            layer.input_layernorm.weight.copy_(s2[f"model.layers.{i}.input_layernorm.weight"].float())
            layer.post_attention_layernorm.weight.copy_(
                s2[f"model.layers.{i}.post_attention_layernorm.weight"].float()
            )
        lm.model.norm.weight.copy_(s2["model.norm.weight"].float())
        for ours, orig in (
            (ref.projector.linear_1, "mm_projector.0"),
            (ref.projector.linear_2, "mm_projector.2"),
        ):
            ours.weight.copy_(nl[f"{P}{orig}.weight"].float())
            ours.bias.copy_(nl[f"{P}{orig}.bias"].float())
        enc, spi = ref.region_encoder, f"{P}spi_model."
        pairs = []
        for i in range(4):
            pairs += [
                (enc.input_convs[i], f"mlvl_fuse.input_conv.{i}"),
                (enc.level_convs[i], f"roi_align.pconvs.{i}"),
            ]
        for i in range(config.fuse_rounds):
            pairs += [(enc.fuse_blocks[i].norm, f"mlvl_fuse.fuse_convs.{i}.gn")]
            enc.fuse_blocks[i].conv.weight.copy_(nl[f"{spi}mlvl_fuse.fuse_convs.{i}.conv.weight"].float())
        pairs += [
            (enc.box_mlp.linear_1, "roi_align.pos_embedd.0"),
            (enc.box_mlp.norm_1, "roi_align.pos_embedd.2"),
            (enc.box_mlp.linear_2, "roi_align.pos_embedd.3"),
            (enc.box_mlp.norm_2, "roi_align.pos_embedd.5"),
            (enc.flatten_linear, "roi_align.flatten_linear"),
            (enc.up_proj, "roi_align.updims"),
        ]
        for module, orig in pairs:
            module.weight.copy_(nl[f"{spi}{orig}.weight"].float())
            module.bias.copy_(nl[f"{spi}{orig}.bias"].float())
        ref.vision_tower.load_state_dict(ckpt.clip_vision, strict=True)
    return ref


def _logits(model: ArtemisForConditionalGeneration, processor: ArtemisProcessor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (4, 40, 48, 3), generator=gen, dtype=torch.uint8).numpy()
    with torch.no_grad():
        video = model.encode_video_frames(processor.preprocess_frames(frames, purpose="global"))
        boxes = processor.normalize_boxes([(4 + i, 3 + i, 30 + 2 * i, 28 + i) for i in range(9)], 48, 40)
        frame_ids = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 3, 3]])
        regions = model.build_region_features(
            processor.preprocess_frames(frames, purpose="region"), frame_ids, boxes[None]
        )
        inputs = processor(render_prompt(EVAL_QUESTION, template="eval_original"))
        return model(**inputs, video_features=video[None], region_features=regions.tokens).logits


@pytest.mark.parametrize("clip_layout", ["openai", "vision"])
def test_converted_model_equals_hand_built(tmp_path, clip_layout):
    cfg = _cfg()
    ckpt = write_original_checkpoint(tmp_path / "orig", cfg, clip_layout=clip_layout)
    assert len(ckpt.non_lora) == 47 and len(ckpt.adapter) == 2 * 7 * cfg.text_config.num_hidden_layers
    out = tmp_path / "out"
    report = _convert(ckpt, out, max_shard_bytes=150_000, verify_image_tower=True)

    # Output layout: several safetensors shards + index, config, processor, provenance.
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(report.shards) >= 3 and set(index["weight_map"].values()) == set(report.shards)
    assert report.lora_merged == 7 * cfg.text_config.num_hidden_layers and report.lora_scaling == 2.0
    assert (
        report.dropped[next(k for k in report.dropped if "inv_freq" in k)]
        == cfg.text_config.num_hidden_layers
    )
    assert report.dropped[next(k for k in report.dropped if "image_tower" in k)] == len(clip_table(cfg))
    assert report.dropped[next(k for k in report.dropped if "mm_projector" in k)] == 4
    assert report.added_tokens == {"<image>": 778, "<video>": 779, "<region>": 780}
    check = report.image_tower_check
    assert check.compared == len(clip_table(cfg)) and check.mismatched == () and check.max_abs_diff == 0.0
    provenance = json.loads((out / "artemis_conversion.json").read_text())
    assert provenance["prompt_template"] == "eval_original" and provenance["resize_mode"] == "original"
    assert ArtemisProcessor.from_pretrained(out).prompt_template == "eval_original"

    # (A missing or mis-loaded weight would differ from the hand-built model below.)
    model = ArtemisForConditionalGeneration.from_pretrained(out).eval()
    processor = ArtemisProcessor.from_pretrained(out)
    assert processor.resize_mode == "original"
    for name in ("image_token_id", "video_token_id", "region_token_id", "fuse_rounds", "roi_output_size"):
        assert getattr(model.config, name) == getattr(cfg, name), name
    for name in ("hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size"):
        assert getattr(model.config.text_config, name) == getattr(cfg.text_config, name), name

    ref = _reference_model(ckpt, model.config)
    got, want = model.state_dict(), ref.state_dict()
    assert set(got) == set(want)
    new_rows = slice(ckpt.base_vocab, None)
    for name in got:
        if name.endswith(("embed_tokens.weight", "lm_head.weight")):
            # The placeholder rows: the mean of the original rows (compared separately, float32 rounding).
            torch.testing.assert_close(got[name][new_rows], want[name][new_rows], rtol=1e-6, atol=1e-7)
            assert torch.equal(got[name][: ckpt.base_vocab], want[name][: ckpt.base_vocab]), name
        else:
            assert torch.equal(got[name], want[name]), name
    torch.testing.assert_close(_logits(model, processor), _logits(ref, processor), rtol=1e-5, atol=1e-5)


def _fails(tmp_path, mutate, *, expect: list[str]) -> str:
    ckpt = write_original_checkpoint(tmp_path / "orig", _cfg(), mutate=mutate)
    with pytest.raises(ConversionError) as err:
        _convert(ckpt, tmp_path / "out")
    message = str(err.value)
    for text in expect:
        assert text in message, message
    assert not (tmp_path / "out").exists()  # nothing is written before the plan passes
    return message


def test_missing_key_is_named(tmp_path):
    def drop(parts):
        del parts["non_lora"][f"{P}spi_model.roi_align.updims.bias"]
        del parts["stage2"]["model.layers.1.post_attention_layernorm.weight"]

    message = _fails(
        tmp_path,
        drop,
        expect=[
            "missing keys (2)",
            "region_encoder.up_proj.bias",
            "language_model.model.layers.1.post_attention_layernorm.weight",
        ],
    )
    assert "unmatched" not in message


def test_extra_key_is_named(tmp_path):
    def add(parts):
        parts["stage2"]["model.layers.0.self_attn.extra_proj.weight"] = torch.zeros(2, 2)
        parts["non_lora"][f"{P}spi_model.roi_align.extra.bias"] = torch.zeros(2)

    _fails(
        tmp_path,
        add,
        expect=[
            "unmatched keys (2)",
            "'model.layers.0.self_attn.extra_proj.weight'",
            "spi_model.roi_align.extra.bias",
        ],
    )


def test_mis_shaped_tensor_is_named(tmp_path):
    def reshape(parts):
        name = f"{P}spi_model.roi_align.flatten_linear.weight"
        parts["non_lora"][name] = parts["non_lora"][name][:, :-1].contiguous()
        parts["adapter"][f"{P}layers.0.mlp.down_proj.lora_A.weight"] = torch.zeros(
            3, 128, dtype=torch.float16
        )

    _fails(
        tmp_path,
        reshape,
        expect=[
            "mis-shaped tensors (2)",
            "spi_model.roi_align.flatten_linear.weight' is [32, 1567], expected [32, 1568]",
            "layers.0.mlp.down_proj.lora_A.weight' is [3, 128], expected [4, 128]",
        ],
    )


def test_incomplete_lora_pair_is_named(tmp_path):
    def drop(parts):
        del parts["adapter"][f"{P}layers.1.self_attn.v_proj.lora_B.weight"]

    _fails(tmp_path, drop, expect=["missing keys (1)", "layers.1.self_attn.v_proj.lora_B.weight"])


class _Payload:
    """Unpickling this runs a shell command: what an unsafe ``torch.load`` would execute."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_with_code_is_refused(tmp_path):
    ckpt = write_original_checkpoint(tmp_path / "orig", _cfg())
    marker = tmp_path / "pwned"
    torch.save({"x": torch.zeros(1), "payload": _Payload(marker)}, ckpt.lora / "non_lora_trainables.bin")
    with pytest.raises(
        ConversionError, match=r"refusing to load .*non_lora_trainables\.bin.*weights_only=True"
    ):
        _convert(ckpt, tmp_path / "out")
    assert not marker.exists()
    torch.save({"x": torch.zeros(1), "step": 3}, ckpt.lora / "non_lora_trainables.bin")  # allowed by torch
    with pytest.raises(ConversionError, match=r"non-tensor entries .*'step'"):
        _convert(ckpt, tmp_path / "out")


def test_streaming_holds_about_one_shard(tmp_path, monkeypatch):
    """Count the bytes of input tensors alive while converting: never the whole checkpoint."""
    cfg = _cfg(text_config={"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4})
    ckpt = write_original_checkpoint(
        tmp_path / "orig", cfg, num_shards=4, stage2_dtype=torch.float32, stage3_dtype=torch.float32
    )
    shard_bytes = [f.stat().st_size for f in ckpt.base.glob("pytorch_model-*.bin")]
    stage2_bytes = sum(t.numel() * t.element_size() for t in ckpt.stage2.values())
    alive: list[tuple[weakref.ref, int]] = []
    peak = {"bytes": 0}
    original_get = TensorFile.get

    def counting_get(self, name):
        tensor = original_get(self, name)
        alive[:] = [(ref, n) for ref, n in alive if ref() is not None]
        alive.append((weakref.ref(tensor), tensor.numel() * tensor.element_size()))
        peak["bytes"] = max(peak["bytes"], sum(n for _, n in alive))
        return tensor

    monkeypatch.setattr(checkpoint_io.TensorFile, "get", counting_get)
    max_shard = 400_000
    report = _convert(ckpt, tmp_path / "out", dtype=torch.float16, max_shard_bytes=max_shard)
    adapter_bytes = sum(t.numel() * t.element_size() for t in ckpt.adapter.values())
    # The adapter is held until merged; everything else is freed tensor by tensor.
    assert peak["bytes"] <= max(shard_bytes) + adapter_bytes, (peak, shard_bytes, adapter_bytes)
    assert peak["bytes"] < 0.5 * stage2_bytes
    assert report.total_bytes > 3 * max_shard and len(report.shards) >= 4
    largest = max(t.numel() * 2 for t in ckpt.stage2.values())  # fp16 output
    for shard in report.shards:
        assert (tmp_path / "out" / shard).stat().st_size <= max(max_shard, largest) + 20_000  # + header


def test_cli_convert_then_verify(tmp_path, capsys):
    ckpt = write_original_checkpoint(tmp_path / "orig", tiny_config())  # 2 fuse rounds: 38 non-LoRA tensors
    out = tmp_path / "out"
    overrides = ckpt.overrides
    argv = ["--base", str(ckpt.base), "--lora", str(ckpt.lora), "--clip", str(ckpt.clip), "--out", str(out)]
    # Without overrides the Artemis-7B region fields apply, which this 4-layer CLIP cannot satisfy.
    with pytest.raises(ConversionError, match="config is invalid: region_feature_layers"):
        main(argv)
    overrides_file = tmp_path / "overrides.json"
    overrides_file.write_text(json.dumps(overrides))
    argv += ["--dtype", "fp32", "--max-shard-size", "100KB", "--config-overrides", str(overrides_file)]
    assert main([*argv, "--verify", str(out)]) == 0
    printed = capsys.readouterr().out
    assert '"lora_merged": 14' in printed and "answer:" in printed and "tok/s" in printed


def test_parse_size():
    assert parse_size("4GB") == 4 * 10**9 and parse_size("2GiB") == 2 * 2**30 and parse_size("1234") == 1234
    with pytest.raises(ValueError, match="not understood"):
        parse_size("lots")


def test_artemis_convert_command_reports_errors(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    def drop(parts):
        del parts["stage2"]["model.norm.weight"]

    ckpt = write_original_checkpoint(tmp_path / "orig", _cfg(), mutate=drop)
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(ckpt.overrides))
    args = ["convert", "--base", str(ckpt.base), "--lora", str(ckpt.lora), "--clip", str(ckpt.clip)]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "out"), "--config-overrides", str(overrides)]
    )
    assert result.exit_code == 2 and "language_model.model.norm.weight" in result.output, result.output
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "--out" in result.output


def test_streaming_shard_writer_round_trip(tmp_path):
    from safetensors import safe_open

    from artemis_model.convert.checkpoint_io import OutputTensor, StreamingShardWriter, plan_shards

    gen = torch.Generator().manual_seed(0)
    tensors = {
        "a": torch.randn(3, 5, generator=gen).to(torch.bfloat16),
        "b": torch.tensor(2.5, dtype=torch.float16),
        "c": torch.randn(7, generator=gen),
        "d": torch.randn(2, 2, 2, generator=gen).to(torch.float16).transpose(0, 2),  # non-contiguous
    }
    planned = [OutputTensor(n, tuple(t.shape), t.dtype) for n, t in tensors.items()]
    shards = plan_shards(planned, max_shard_bytes=30)
    assert [[t.name for t in s] for s in shards] == [["a"], ["b", "c"], ["d"]]
    writer = StreamingShardWriter(tmp_path, shards)
    with pytest.raises(ConversionError, match="differs from the plan"):
        writer.write("b", tensors["b"])
    for name, tensor in tensors.items():
        writer.write(name, tensor)
    paths = writer.finalize()
    read = {}
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            read |= {k: f.get_tensor(k) for k in f.keys()}
    assert set(read) == set(tensors)
    for name, tensor in tensors.items():
        assert read[name].dtype == tensor.dtype and torch.equal(read[name], tensor), name
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert index["weight_map"]["c"] == "model-00002-of-00003.safetensors"
