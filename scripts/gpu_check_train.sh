#!/usr/bin/env bash
# GPU check of training (prepared; run on a GPU machine from the repository root):
#   a stage-3 run (LoRA + projector + region encoder) on a small Artemis, bf16, under DeepSpeed ZeRO-2 when
#   DeepSpeed is importable (plain HF Trainer on the GPU otherwise), 30 steps, then the held-out loss check.
# Needs torch, transformers>=5.17, peft (and deepspeed for ZeRO-2). Writes under ${OUT:-/tmp/gpu_check_train}.
# GPU_CHECK_DEVICE=cpu: a CPU dry run of the same code path (the tiny model, plain Trainer on the CPU, bf16,
# GPU_CHECK_STEPS steps, default 30) to catch bugs before device time is spent. GPU_CHECK_DEEPSPEED=0: the plain
# Trainer on the GPU (tells a DeepSpeed failure from a training one).
set -euo pipefail
OUT="${OUT:-/tmp/gpu_check_train}"
mkdir -p "$OUT"
PY="${PY:-python3}"
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv || true
"$PY" - "$OUT" "${GPU_CHECK_DEVICE:-cuda}" "${GPU_CHECK_STEPS:-30}" <<'PYEOF'
import json, os, sys, time
from pathlib import Path
import torch
from tests.training.datagen import videoref_records, write_json
from tests.training.conftest import _pretrain_language_model
from artemis_model.tiny import tiny_model_and_processor
from training.config import load_config
from training.train import run_training

out, device, steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cpu = device == "cpu"
write_json(out / "ref_train.json", videoref_records(out, 32 if cpu else 64, seed=3))
write_json(out / "ref_eval.json", videoref_records(out, 8 if cpu else 16, seed=4))
if cpu:  # the CPU dry run: the default tiny model
    model, processor = tiny_model_and_processor(seed=0)
else:  # a small model: CLIP width 256 x 6 layers at 112 px, Llama width 512 x 4 layers (frame lists: PIL only, no decord)
    model, processor = tiny_model_and_processor(
        seed=0,
        vision_config={"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 6, "num_attention_heads": 4,
                       "image_size": 112, "patch_size": 14},
        text_config={"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 4, "num_attention_heads": 8,
                     "num_key_value_heads": 8},
        fuse_shuffle_channels=64, fuse_groupnorm_groups=32,
    )
_pretrain_language_model(model, processor, steps=60 if cpu else 100)
model.save_pretrained(out / "init"); processor.save_pretrained(out / "init")
try:
    if cpu or os.environ.get("GPU_CHECK_DEEPSPEED") == "0":
        raise ImportError("the CPU dry run or GPU_CHECK_DEEPSPEED=0 asks for the plain Trainer")
    import deepspeed  # noqa: F401
    ds = "training/configs/ds/zero2.json"
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT="29533")
except ImportError as exc:
    print(f"no DeepSpeed ({exc}): plain Trainer")
    ds = "null"
eval_steps = max(1, steps // 2)
cfg = load_config("training/configs/stage3_referring.yaml", [
    f"model.path={out / 'init'}", "model.gradient_checkpointing=true",
    f"data.train=[{out / 'ref_train.json'}]", f"data.eval=[{out / 'ref_eval.json'}]", f"data.media_root={out}",
    f"data.feature_cache_dir={out / 'features'}", "data.num_workers=2",
    f"run.deepspeed={ds}", "run.precision=bf16", f"run.output_dir={out / 'run'}", "run.resume=null",
    "run.logging_steps=1", f"run.eval_steps={eval_steps}", f"run.save_steps={eval_steps}", "run.progress_bar=false",
    f"optim.max_steps={steps}", f"optim.per_device_batch_size={4 if cpu else 8}", "optim.gradient_accumulation_steps=2",
    "optim.learning_rate=1e-3", f"run.device={'cpu' if cpu else 'auto'}",
] + (["data.num_workers=0", "run.plot=false"] if cpu else []))
t0 = time.time()
r = run_training(cfg)
evals = [l for _, l in r.eval_losses]
report = {"deepspeed": ds, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
          "seconds": round(time.time() - t0, 1), "eval_losses": evals, "unigram": r.unigram_baseline,
          "max_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}
print(json.dumps(report, indent=2))
(out / "report.json").write_text(json.dumps(report, indent=2))
assert evals[-1] < evals[0] and evals[-1] < r.unigram_baseline, report
print("GPU TRAIN CHECK OK")
PYEOF
