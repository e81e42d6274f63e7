"""Peak memory of the converter on a multi-shard original-layout checkpoint (a command, not a test).

    .venv/bin/python benchmarks/bench_convert.py [--layers 8] [--shards 4] [--work-dir /tmp/artemis_bench_convert]

Writes an original-layout checkpoint (artemis_model/convert/synthetic.py) with a LLaMA of width 1024 and
``--layers`` layers in bf16, split into ``--shards`` ``.bin`` shards (~50 MB each at the defaults), then in
fresh child processes measures resident memory (psutil, sampled every 5 ms) above the post-import baseline:

(a) ``convert_checkpoint`` to fp16 with 50 MB output shards (streaming);
(b) for scale, a naive load of every stage-2 shard into one dict (``torch.load`` without mmap).

(a') = (a) with ``MALLOC_MMAP_THRESHOLD_=65536``, so glibc returns freed temporaries at once.

There is no output buffer (shards are planned and written tensor by tensor), so (a') is about one input shard
(its memory-mapped pages) + the LoRA adapter + the fp32 merge temporaries of one weight, whatever the model size.
Goal: (a) < (b); compare runs with different ``--shards`` to see the growth follow the shard size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, sys, threading, time
import psutil, torch
from artemis_model.convert import ConvertOptions, convert_checkpoint
proc = psutil.Process()
baseline = proc.memory_info().rss
peak = [baseline]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.005)
thread = threading.Thread(target=sample, daemon=True)
thread.start()
start = time.perf_counter()
mode = {mode!r}
if mode == "convert":
    options = ConvertOptions(dtype=torch.float16, max_shard_bytes=50 * 10**6, progress=False,
                             config_overrides=json.loads({overrides!r}))
    convert_checkpoint({base!r}, {lora!r}, {clip!r}, {out!r}, options)
else:
    from pathlib import Path
    state = {{}}
    for f in sorted(Path({base!r}).glob("pytorch_model-*.bin")):
        state.update(torch.load(f, map_location="cpu", weights_only=True))
seconds = time.perf_counter() - start
done.set(); thread.join()
print(json.dumps({{"growth_mb": (peak[0] - baseline) / 1e6, "baseline_mb": baseline / 1e6, "seconds": seconds}}))
"""


def _child(mode: str, ckpt, out: Path, env: dict | None = None) -> dict:
    code = _CHILD.format(
        mode=mode,
        overrides=json.dumps(ckpt.overrides),
        base=str(ckpt.base),
        lora=str(ckpt.lora),
        clip=str(ckpt.clip),
        out=str(out),
    )
    import os
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=full_env
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/artemis_bench_convert"))
    args = parser.parse_args()

    import shutil

    import torch

    from artemis_model.convert.synthetic import write_original_checkpoint
    from artemis_model.tiny import tiny_config

    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    text = {
        "hidden_size": 1024,
        "intermediate_size": 2816,
        "num_hidden_layers": args.layers,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
    }
    cfg = tiny_config(fuse_rounds=5, text_config=text)
    ckpt = write_original_checkpoint(
        args.work_dir / "orig", cfg, num_shards=args.shards, lora_r=16, lora_alpha=16
    )
    shard_mb = [f.stat().st_size / 1e6 for f in sorted(ckpt.base.glob("pytorch_model-*.bin"))]
    adapter_mb = (ckpt.lora / "adapter_model.bin").stat().st_size / 1e6
    total_mb = sum(shard_mb)
    del ckpt.stage2, ckpt.adapter, ckpt.non_lora
    torch.set_num_threads(1)
    streaming = _child("convert", ckpt, args.work_dir / "out")
    # glibc keeps freed heap chunks of up to 32 MB (dynamic mmap threshold); a fixed threshold returns them.
    trimmed = _child("convert", ckpt, args.work_dir / "out", {"MALLOC_MMAP_THRESHOLD_": "65536"})
    naive = _child("naive", ckpt, args.work_dir / "unused")
    print(
        f"stage-2 checkpoint: {total_mb:.0f} MB in shards of {', '.join(f'{s:.0f}' for s in shard_mb)} MB (bf16)"
    )
    print(f"LoRA adapter: {adapter_mb:.1f} MB; output: fp16, 50 MB shards")
    print(
        f"(a) convert_checkpoint: peak RSS growth {streaming['growth_mb']:.0f} MB "
        f"(baseline {streaming['baseline_mb']:.0f} MB) in {streaming['seconds']:.1f} s"
    )
    print(
        f"(a') the same with MALLOC_MMAP_THRESHOLD_=65536: peak RSS growth {trimmed['growth_mb']:.0f} MB "
        f"in {trimmed['seconds']:.1f} s"
    )
    print(
        f"(b) naive load of all shards: peak RSS growth {naive['growth_mb']:.0f} MB in {naive['seconds']:.1f} s"
    )
    extra = trimmed["growth_mb"] - max(shard_mb)
    print(
        f"(a') minus the largest input shard: {extra:.0f} MB (adapter {adapter_mb:.0f} MB, fp32 LoRA-merge "
        f"temporaries of one {text['intermediate_size']}x{text['hidden_size']} weight ~"
        f"{3 * 4 * text['hidden_size'] * text['intermediate_size'] / 1e6:.0f} MB, tokenizer and plan metadata)"
    )
    print(f"goal (a) < (b): {'OK' if streaming['growth_mb'] < naive['growth_mb'] else 'FAILED'}")


if __name__ == "__main__":
    main()
