"""Benchmark (not a test): one stage-3 training step with cached global video features vs recomputed.

Shape (a scaled-down Artemis, CPU): CLIP ViT 112 px / patch 14 (8x8 grid), width 256, 6 layers; Llama width
256, 4 layers; the real 100 temporal tokens and 100-frame clips (global sample of 100 frames); region encoder
with maps 32/16/8/8, 2 fuse rounds, RoIAlign 7x7, 8 tracked boxes -> 4 region tokens; LoRA r=16 + projector +
region encoder training (the stage-3 recipe); batch 2, fp32.

"recompute": every step decodes the 100-frame global sample and runs CLIP on it (what training without the
feature cache costs); "cached": the global features come from the warm feature cache (the default).

    .venv/bin/python benchmarks/bench_train.py [--steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from artemis_model.tiny import tiny_model_and_processor
from training.config import LoraSection, TrainableSection
from training.data import ArtemisCollator
from training.media import GlobalFeatureProvider
from training.referring_data import ReferringDataset
from training.trainable import apply_trainable
from training.trainer import base_model

SHAPE = dict(
    vision_config={
        "hidden_size": 256,
        "intermediate_size": 1024,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "image_size": 112,
        "patch_size": 14,
    },
    text_config={
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 2048,
    },
    num_temporal_tokens=100,
    region_upsample_factors=(4, 2, 1, 1),
    fuse_rounds=2,
    fuse_shuffle_channels=64,
    fuse_groupnorm_groups=32,
    roi_output_size=7,
    num_tracked_boxes=8,
    num_region_tokens=4,
)


def make_data(root: Path, clips: int, frames: int) -> list[dict]:
    rng = np.random.default_rng(0)
    records = []
    for c in range(clips):
        folder = root / f"clip{c}"
        folder.mkdir(parents=True)
        tracks = []
        for t in range(frames):
            img = np.full((96, 128, 3), 30, np.uint8)
            x = 10 + t % 80
            img[30:60, x : x + 30] = rng.integers(0, 255, 3)
            Image.fromarray(img).save(folder / f"{t:05d}.png")
            tracks.append([float(x), 30.0, float(x + 30), 60.0] if t % 7 else [])
        records.append(
            {
                "frame_path": folder.name,
                "frame_id": [f"{t:05d}.png" for t in range(frames)],
                "track_list": tracks,
                "caption": "The square moves right across the frame.",
            }
        )
    return records


def time_steps(mode: str, model, processor, batch, steps: int) -> list[float]:
    provider = GlobalFeatureProvider(mode)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    inner = base_model(model)
    times = []
    for step in range(steps + 1):  # the first step warms the cache / allocator
        t0 = time.perf_counter()
        video = provider.features(inner, processor, batch["video_refs"])
        regions = inner.build_region_features(
            batch["region_pixel_values"], batch["region_frame_ids"], batch["region_boxes_norm"]
        ).tokens
        loss = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
            video_features=video,
            region_features=regions,
        ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, processor = tiny_model_and_processor(seed=0, **SHAPE)
    model = apply_trainable(
        model, TrainableSection(projector="full", language_model="lora", region_encoder="full"), LoraSection()
    )
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        records = make_data(Path(tmp), clips=2, frames=100)
        ds = ReferringDataset(records, processor, media_root=tmp, num_tracked=8, num_region_tokens=4)
        batch = ArtemisCollator(processor)([ds[0], ds[1]])
        results = {
            mode: time_steps(mode, model, processor, batch, args.steps) for mode in ("recompute", "cache")
        }
    med = {m: statistics.median(t) for m, t in results.items()}
    print(f"threads={torch.get_num_threads()} steps={args.steps} batch=2 frames/clip=100")
    for m, t in results.items():
        print(f"{m:>9}: median {med[m] * 1000:.0f} ms/step  ({', '.join(f'{x * 1000:.0f}' for x in t)})")
    print(f"speed-up cached vs recomputed: {med['recompute'] / med['cache']:.2f}x")


if __name__ == "__main__":
    main()
