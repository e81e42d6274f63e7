"""Benchmark (not a test): 4 targets vs 1 through the pipeline, batched generation vs prefix sharing, snapping.

Model: the real Artemis architecture scaled down, randomly initialised --
CLIP ViT at 224 px / patch 14 (16x16 grid, region maps 128/64/32/16 as the real model), hidden 256, 8 layers;
region encoder with 5 fuse rounds on 256 channels, RoI 14x14; 100 temporal + 256 spatial video tokens;
Llama hidden 512, 4 layers, 8 heads; the tiny BPE tokenizer. Video: 120 synthetic frames at 320x240.

    .venv/bin/python benchmarks/bench_pipeline.py [--device cpu] [--threads 2] [--new-tokens 32]

Tracks are the synthetic truth (tracking is timed separately by the tracker's own benchmark).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scaled import scaled_model as _scaled  # noqa: E402  (benchmarks/ is on sys.path)

from artemis_model.features import FeatureCache  # noqa: E402
from artemis_model.pipeline import describe, describe_many  # noqa: E402
from artemis_model.types import GenerationOptions, Track  # noqa: E402
from artemis_model.video.array import ArrayVideo


def scaled_model(device: str):
    """39 M parameters: the shared scaled architecture, 8 vision layers, 5 fuse rounds."""
    return _scaled(device, vision_layers=8, region_feature_layers=(-8, -6, -4, -2), fuse_rounds=5)


def make_video(num_frames: int = 120, width: int = 320, height: int = 240, targets: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=(height, width, 3), dtype=np.uint8)
    frames = np.repeat(base[None], num_frames, axis=0)
    side = 40
    start = rng.uniform([0, 0], [width - side, height - side], size=(targets, 2))
    end = rng.uniform([0, 0], [width - side, height - side], size=(targets, 2))
    boxes = [[] for _ in range(targets)]
    for t in range(num_frames):
        a = t / (num_frames - 1)
        for k in range(targets):
            x, y = np.round(start[k] * (1 - a) + end[k] * a).astype(int)
            frames[t, y : y + side, x : x + side] = rng.integers(0, 255, size=3)
            boxes[k].append((float(x), float(y), float(x + side), float(y + side)))
    return frames, [Track(boxes=tuple(b), width=width, height=height) for b in boxes]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, proc = scaled_model(args.device)
    frames, tracks = make_video()
    opts = GenerationOptions(max_new_tokens=args.new_tokens)
    key = 10
    boxes = [t.boxes[key] for t in tracks]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"device {args.device}, threads {args.threads}, model {params:.1f} M parameters, video {frames.shape}"
    )

    # warm-up (allocations, lazy inits)
    describe(
        model, proc, ArrayVideo(frames[:8]), boxes[0], frame_idx=0, track=_cut(tracks[0], 8), options=opts
    )

    cache1 = FeatureCache()
    _, t_one = timed(
        lambda: describe(
            model,
            proc,
            ArrayVideo(frames),
            boxes[0],
            frame_idx=key,
            track=tracks[0],
            cache=cache1,
            options=opts,
        )
    )
    cache4 = FeatureCache()
    many, t_four = timed(
        lambda: describe_many(
            model, proc, ArrayVideo(frames), boxes, frame_idx=key, tracks=tracks, cache=cache4, options=opts
        )
    )
    print("\n== A. 4 targets boxed on the same frame, visible throughout (cold cache) ==")
    print(
        f"1 target : {t_one:6.2f} s  vision frames {cache1.stats.vision_frames}, region frames {cache1.stats.region_frames}"
    )
    print(
        f"4 targets: {t_four:6.2f} s  vision frames {cache4.stats.vision_frames}, region frames {cache4.stats.region_frames}"
    )
    print(
        f"ratio 4/1: {t_four / t_one:.2f}x  (goal <= 1.5x); stage timings of the 4-target call: "
        f"{ {k: round(v, 2) for k, v in many[0].timings.items()} }"
    )

    # B: different key frames and visibility spans -> different RoI frames; snapping.
    spans = [(0, 120), (15, 120), (30, 100), (45, 120)]
    cut = [
        Track(
            boxes=tuple(b if lo <= f < hi else None for f, b in enumerate(t.boxes)),
            width=t.width,
            height=t.height,
        )
        for t, (lo, hi) in zip(tracks, spans, strict=True)
    ]
    keys = [lo + 5 for lo, _ in spans]
    kboxes = [t.boxes[f] for t, f in zip(cut, keys, strict=True)]
    print("\n== B. 4 targets, different key frames and visibility spans (cold cache) ==")
    results = {}
    for snap in (False, True):
        cache = FeatureCache()
        out, t = timed(
            lambda snap=snap, cache=cache: describe_many(
                model,
                proc,
                ArrayVideo(frames),
                kboxes,
                frame_idx=keys,
                tracks=cut,
                cache=cache,
                options=opts,
                snap=snap,
            )
        )
        results[snap] = out
        print(
            f"snap={snap!s:5}: {t:6.2f} s  vision frames {cache.stats.vision_frames}, region frames "
            f"{cache.stats.region_frames}"
        )
    same = sum(a.answer == b.answer for a, b in zip(results[False], results[True], strict=True))
    moved = sum(
        a.selected_frames != b.selected_frames for a, b in zip(results[False], results[True], strict=True)
    )
    print(
        f"snapping: {same}/4 answers identical (random weights: a changed RoI frame changes the tokens), "
        f"{moved}/4 targets fed other frames"
    )
    _, t_b1 = timed(
        lambda: describe(
            model, proc, ArrayVideo(frames), kboxes[3], frame_idx=keys[3], track=cut[3], options=opts
        )
    )
    print(f"1 target of B alone: {t_b1:.2f} s")

    print(f"\n== C. generation only (warm cache), 4 targets, {args.new_tokens} new tokens ==")
    for strategy in ("batched", "prefix", "batched", "prefix"):
        out, t = timed(
            lambda strategy=strategy: describe_many(
                model,
                proc,
                ArrayVideo(frames),
                boxes,
                frame_idx=key,
                tracks=tracks,
                cache=cache4,
                options=opts,
                strategy=strategy,
            )
        )
        print(f"{strategy:8}: total {t:5.2f} s, generate {out[0].timings['generate']:5.2f} s")
    agree = [
        a.answer
        for a in describe_many(
            model,
            proc,
            ArrayVideo(frames),
            boxes,
            frame_idx=key,
            tracks=tracks,
            cache=cache4,
            options=opts,
            strategy="prefix",
        )
    ] == [d.answer for d in many]
    print(f"prefix answers == batched answers: {agree}")


def _cut(track: Track, n: int) -> Track:
    return Track(boxes=track.boxes[:n], width=track.width, height=track.height)


if __name__ == "__main__":
    main()
