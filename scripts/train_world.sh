#!/usr/bin/env bash
# Train the tiny Artemis of the synthetic world end to end and ship it to models/artemis-tiny-world/.
#
#   bash scripts/train_world.sh            # everything (data, vision pre-training, stages 1-3, baseline, eval)
#   STEP=eval bash scripts/train_world.sh  # one step: data | vision | init | stage1 | stage2 | stage3 | blind | eval | ship
#
# Working files go to data/world/ and runs/world/ (both git-ignored). Single process, CPU, one thread per
# process. Steps vision..stage3 took 39.5 min on the 2-core machine (stops 15-16) and reproduced the shipped
# models/artemis-tiny-world/model.safetensors bit for bit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEP=${STEP:-all}
TRAIN_SEED=${TRAIN_SEED:-1}
EVAL_SEED=${EVAL_SEED:-9999}
NUM_VIDEOS=${NUM_VIDEOS:-2000}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=models/artemis-tiny-world

run() { [[ "$STEP" == all || "$STEP" == "$1" ]]; }

if run data; then
  # Training clips (seed 1) and the held-out evaluation clips (seed 9999, never trained on).
  $PY -m cli.main data synth --out data/world/train --num-videos "$NUM_VIDEOS" --seed "$TRAIN_SEED" --num-long-videos 0
  $PY -m cli.main data synth --out data/world/eval --num-videos 250 --seed "$EVAL_SEED" --num-long-videos 0
  # Remove every clip holding an object of a held-out colour x shape x motion combination.
  $PY scripts/world_data.py --root data/world/train
fi
if run vision; then
  # A random tower's region features carry colour but not shape, and a random region encoder buries what they
  # carry: pre-train the tiny CLIP tower AND the region encoder together on the world's box labels (colour, shape,
  # size, box, displacement direction), through the model's own region path.
  $PY scripts/world_init.py --data data/world/train --out runs/world/init_random --no-center
  $PY scripts/world_probe.py --model runs/world/init_random --clips 200 | tee runs/world/probe_random.json
  $PY scripts/world_region_pretrain.py --model runs/world/init_random --out runs/world/region/region.safetensors \
    --clips 2000 --val-clips 100 --epochs 12 --lr 3e-3
fi
if run init; then
  $PY scripts/world_init.py --data data/world/train --out runs/world/init \
    --vision-from runs/world/region/region.safetensors --feature-cache runs/world/feature_cache
fi
if run stage1; then
  $PY -m training.train training/configs/world/stage1_pretrain.yaml
fi
if run stage2; then
  $PY -m training.train training/configs/world/stage2_finetune.yaml
fi
if run stage3; then
  $PY scripts/world_init.py --recenter runs/world/stage2/final --region-pretrained --data data/world/train \
    --feature-cache runs/world/feature_cache --out runs/world/stage2/final_centred
  $PY -m training.train training/configs/world/stage3_referring.yaml
fi
if run blind; then
  # Region-blind baseline: the same stage 3 command with one flag (every <region> token zero for the whole run).
  $PY -m training.train training/configs/world/stage3_referring.yaml model.region_blind=true \
    run.output_dir=runs/world/stage3_blind run.save_steps=500
fi
if run eval; then
  $PY scripts/world_eval.py --model runs/world/stage3/final --seed "$EVAL_SEED" --clips 250 --combo-queries 30 \
    --out runs/world/eval_model.json
  $PY scripts/world_eval.py --model runs/world/stage3_blind/final --seed "$EVAL_SEED" --clips 250 --combo-queries 30 \
    --out runs/world/eval_blind.json
fi
if run ship; then
  mkdir -p "$OUT"
  cp runs/world/stage3/final/{config.json,model.safetensors,generation_config.json} "$OUT"/ 2>/dev/null || \
    cp runs/world/stage3/final/{config.json,model.safetensors} "$OUT"/
  cp runs/world/stage3/final/{tokenizer.json,tokenizer_config.json,preprocessor_config.json,artemis_processor.json} "$OUT"/
  cp runs/world/stage3/final/special_tokens_map.json "$OUT"/ 2>/dev/null || true
fi
