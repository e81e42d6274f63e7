"""Benchmark (not a test): evaluation generation at batch 8 vs batch 1 (HC-STVG-like: one target per video).

Model: the real Artemis architecture scaled down, randomly initialised --
CLIP ViT at 224 px / patch 14 (16x16 grid), hidden 256, 4 layers; region encoder on 256 channels (RoI 14x14);
up to 100 temporal + 256 spatial video tokens; Llama hidden 512, 4 layers, 8 heads; the tiny BPE tokenizer.
Data: ``--records`` synthetic videos (``--frames`` frames of 160x120 each, one boxed moving target with its
ground-truth track), the default question, greedy, exactly ``--new-tokens`` new tokens per answer
(``min_new_tokens`` = ``max_new_tokens``, so batch 1 and batch 8 generate the same number of tokens).

    .venv/bin/python benchmarks/bench_eval_batch.py [--device cpu] [--threads 2] [--records 16] [--new-tokens 32]

CPU time is printed beside wall time: on a shared machine it is the steadier of the two (use ``--threads 1``).
On a GPU (``--device cuda``) the clocks are read after ``torch.cuda.synchronize()``; wall time is the measure there.
Timed: the preparation (decode, vision tower, region tokens; the same work at any batch size) once, then
generation of every record at batch 1 and at batch 8 (best of ``--repeats``), through
:func:`artemis_model.pipeline.generate_prepared` -- the code ``ArtemisPredictor`` runs; then the prefill alone (one new
token) at both batch sizes, to split the speed-up into its prefill and decode phases (the prefill does the same
work at any batch size, so on a CPU it bounds the gain; on a GPU it runs in parallel).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scaled import scaled_model as _scaled  # noqa: E402  (benchmarks/ is on sys.path)

from artemis_model.features import FeatureCache  # noqa: E402
from artemis_model.pipeline import TargetRequest, generate_prepared, prepare_targets  # noqa: E402
from artemis_model.types import GenerationOptions, Track  # noqa: E402
from artemis_model.video import open_video  # noqa: E402

W, H = 160, 120


def scaled_model(device: str):
    """34 M parameters: the shared scaled architecture with a 4-layer vision tower."""
    return _scaled(device, vision_layers=4, region_feature_layers=(-5, -4, -3, -2))


def synchronize(device: str) -> None:
    """Wait for the queued GPU work of ``device`` (no-op on the CPU) before a clock is read."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def make_videos(root: Path, count: int, frames: int) -> list[tuple[Path, Track, int]]:
    """``count`` frame folders, each with one moving square; returns (folder, track, key frame)."""
    rng = np.random.default_rng(0)
    out = []
    side = 30
    for v in range(count):
        folder = root / f"v{v:03d}"
        folder.mkdir(parents=True)
        base = rng.integers(40, 200, size=(H, W, 3), dtype=np.uint8)
        colour = rng.integers(0, 255, size=3)
        start, end = rng.uniform([0, 0], [W - side, H - side], size=(2, 2))
        boxes = []
        for t in range(frames):
            a = t / max(1, frames - 1)
            x, y = np.round(start * (1 - a) + end * a).astype(int)
            img = base.copy()
            img[y : y + side, x : x + side] = colour
            Image.fromarray(img).save(folder / f"{t:05d}.jpg", quality=95)
            boxes.append((float(x), float(y), float(x + side), float(y + side)))
        out.append((folder, Track(boxes=tuple(boxes), width=W, height=H), frames // 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, proc = scaled_model(args.device)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    opts = GenerationOptions(max_new_tokens=args.new_tokens)

    with tempfile.TemporaryDirectory() as tmp:
        videos = make_videos(Path(tmp), args.records, args.frames)
        cache = FeatureCache()
        synchronize(args.device)
        start = time.perf_counter()
        prepared = []
        for folder, track, key in videos:
            source = open_video(folder)
            req = TargetRequest(box=track.boxes[key], frame_idx=key, track=track)
            prepared += prepare_targets(model, proc, source, [req], cache=cache, template="train")
        synchronize(args.device)
        t_prepare = time.perf_counter() - start
    prompt_len = proc([prepared[0].prompt])["input_ids"].shape[1]
    print(
        f"device {args.device}, threads {args.threads}, model {params:.1f} M parameters; {args.records} records "
        f"(one per video, {args.frames} frames {W}x{H}); prompt {prompt_len} tokens; {args.new_tokens} new tokens"
    )
    generate_prepared(model, proc, prepared[:2], opts, batch_size=2)  # warm-up

    def gen(batch_size: int, new_tokens: int = args.new_tokens) -> tuple[list[str], float, float]:
        best, best_cpu, answers = float("inf"), float("inf"), []
        step_opts = GenerationOptions(max_new_tokens=new_tokens)
        for _ in range(args.repeats):
            synchronize(args.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            answers = generate_prepared(
                model,
                proc,
                prepared,
                step_opts,
                batch_size=batch_size,
                extra_generate_kwargs={"min_new_tokens": new_tokens},
            )
            synchronize(args.device)
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
        return answers, best, best_cpu

    one, t_one, cpu_one = gen(1)
    many, t_many, cpu_many = gen(args.batch_size)
    tokens = args.records * args.new_tokens
    same = sum(a == b for a, b in zip(one, many, strict=True))
    print(f"preparation (decode + vision + region tokens, any batch size): {t_prepare:6.2f} s")
    print(
        f"generation batch 1 : {t_one:6.2f} s wall, {cpu_one:6.2f} s CPU ({tokens / t_one:6.1f} new tokens/s)"
    )
    print(
        f"generation batch {args.batch_size} : {t_many:6.2f} s wall, {cpu_many:6.2f} s CPU "
        f"({tokens / t_many:6.1f} new tokens/s)"
    )
    print(
        f"speed-up batch {args.batch_size} vs 1, generation: {t_one / t_many:.2f}x wall, "
        f"{cpu_one / cpu_many:.2f}x CPU time (goal >= 3x)"
    )
    print(
        f"speed-up batch {args.batch_size} vs 1, end to end (preparation + generation): "
        f"{(t_prepare + t_one) / (t_prepare + t_many):.2f}x"
    )
    _, p_one, pcpu_one = gen(1, 1)
    _, p_many, pcpu_many = gen(args.batch_size, 1)
    print(
        f"prefill (+1 token) batch 1: {pcpu_one:.2f} s CPU, batch {args.batch_size}: {pcpu_many:.2f} s CPU; "
        f"decode phase ({args.new_tokens - 1} tokens) speed-up: {(cpu_one - pcpu_one) / (cpu_many - pcpu_many):.2f}x "
        f"CPU, {(t_one - p_one) / (t_many - p_many):.2f}x wall"
    )
    print(f"float32 greedy answers equal at both batch sizes: {same}/{args.records}")


if __name__ == "__main__":
    main()
