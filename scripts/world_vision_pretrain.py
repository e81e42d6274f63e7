"""Pre-train the tiny CLIP vision tower on the synthetic world (no pretrained CLIP exists offline).

    python scripts/world_vision_pretrain.py --model checkpoints/world/init0 --out runs/world/vision.safetensors

A frozen *random* tower keeps colour but not shape (linear probe: shape at chance, see MODEL_CARD.md), so the
tower is first trained with supervision from the world's truth: for every object that is >= 60 % visible in a
frame, the hidden states the region encoder reads are RoI-aligned on its box (2x2 bins) and linear heads predict
its colour, shape and size (cross-entropy). Frames come from ``synth.generate_clip`` with seeds drawn from
``--seed`` (disjoint from the evaluation seed's clips). The held-out accuracy of the linear heads on fresh clips
is logged and written next to the weights as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torchvision.ops import roi_align

from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import ArtemisProcessor
from synth import COLOURS, SHAPES, SIZES, generate_clip

logger = logging.getLogger("world_vision_pretrain")
FRAMES_PER_CLIP = 4
HEAD_LAYERS = (1, 2, 3)  # hidden-state indices read by the region encoder (besides the embeddings)


def make_examples(
    processor: ArtemisProcessor, num_clips: int, seed: int
) -> tuple[torch.Tensor, list[tuple[int, list[float], int, int, int]]]:
    """Pixels ``[F, 3, S, S]`` of a few frames per clip and ``(frame, box_norm*S, colour, shape, size)`` labels."""
    rng = np.random.default_rng(seed)
    size = processor.image_size
    pixels, labels = [], []
    for _ in range(num_clips):
        clip = generate_clip(int(rng.integers(0, 2**31 - 1)))
        frames = sorted(
            rng.choice(clip.num_frames, size=min(FRAMES_PER_CLIP, clip.num_frames), replace=False)
        )
        for t in frames:
            objs = [o for o in clip.objects if o.boxes[t] is not None and o.visible[t] >= 0.6]
            if not objs:
                continue
            idx = len(pixels)
            pixels.append(processor.preprocess_frames(clip.frames[t : t + 1], purpose="region")[0])
            for o in objs:
                box = (processor.normalize_boxes([o.boxes[t]], clip.width, clip.height)[0] * size).tolist()
                labels.append((idx, box, COLOURS.index(o.colour), SHAPES.index(o.shape), SIZES.index(o.size)))
    return torch.stack(pixels), labels


class Heads(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        dim = channels * 4 * len(HEAD_LAYERS)
        self.norm = nn.LayerNorm(dim)
        self.colour = nn.Linear(dim, len(COLOURS))
        self.shape = nn.Linear(dim, len(SHAPES))
        self.size = nn.Linear(dim, len(SIZES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.norm(x)
        return self.colour(x), self.shape(x), self.size(x)


def roi_features(
    model: ArtemisForConditionalGeneration, pixels: torch.Tensor, rois: torch.Tensor
) -> torch.Tensor:
    """``[N, C*4*L]``: 2x2 RoIAlign of the hidden states ``HEAD_LAYERS`` on ``rois`` ``[N, 5]``."""
    cfg = model.config
    grid, size = cfg.patch_grid, cfg.vision_config.image_size
    states = model.vision_tower(pixel_values=pixels, output_hidden_states=True).hidden_states
    out = []
    for layer in HEAD_LAYERS:
        tokens = states[layer][:, 1:]  # [F, 1 + g*g, C] -> [F, g*g, C]
        grid_map = tokens.reshape(tokens.shape[0], grid, grid, -1).permute(0, 3, 1, 2)  # [F, C, g, g]
        pooled = roi_align(grid_map, rois, 2, spatial_scale=grid / size, sampling_ratio=2, aligned=True)
        out.append(pooled.flatten(1))  # [N, C, 2, 2] -> [N, 4C]
    return torch.cat(out, dim=1)


def batches(labels: list, batch_frames: int, rng: np.random.Generator, num_frames: int):
    order = rng.permutation(num_frames)
    by_frame: dict[int, list] = {}
    for lab in labels:
        by_frame.setdefault(lab[0], []).append(lab)
    for i in range(0, num_frames, batch_frames):
        chosen = [int(f) for f in order[i : i + batch_frames]]
        yield chosen, [lab for f in chosen for lab in by_frame.get(f, [])]


def run(model_dir: Path, out: Path, *, clips: int, val_clips: int, epochs: int, seed: int, lr: float) -> dict:
    torch.manual_seed(seed)
    model = ArtemisForConditionalGeneration.from_pretrained(model_dir)
    processor = ArtemisProcessor.from_pretrained(model_dir)
    tower = model.vision_tower
    tower.requires_grad_(True)
    tower.train()
    heads = Heads(model.config.vision_config.hidden_size)
    t0 = time.time()
    pixels, labels = make_examples(processor, clips, seed)
    val_pixels, val_labels = make_examples(processor, val_clips, seed + 1)
    logger.info(
        "%d frames / %d objects (val %d / %d) in %.0f s",
        len(pixels),
        len(labels),
        len(val_pixels),
        len(val_labels),
        time.time() - t0,
    )
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(pixels) + 31) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    step = 0
    for epoch in range(epochs):
        for frames, labs in batches(labels, 32, rng, len(pixels)):
            if not labs:
                continue
            remap = {f: k for k, f in enumerate(frames)}
            rois = torch.tensor([[remap[lab[0]], *lab[1]] for lab in labs], dtype=torch.float32)  # [N, 5]
            targets = torch.tensor([lab[2:] for lab in labs])  # [N, 3]
            logits = heads(roi_features(model, pixels[frames], rois))
            loss = sum(F.cross_entropy(lg, targets[:, k]) for k, lg in enumerate(logits))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                logger.info(
                    "epoch %d step %d/%d loss %.3f (%.0f s)",
                    epoch,
                    step,
                    steps,
                    loss.item(),
                    time.time() - t0,
                )
    tower.eval()
    with torch.no_grad():
        rois = torch.tensor([[lab[0], *lab[1]] for lab in val_labels], dtype=torch.float32)
        targets = torch.tensor([lab[2:] for lab in val_labels])
        logits = heads(roi_features(model, val_pixels, rois))
        acc = [float((lg.argmax(-1) == targets[:, k]).float().mean()) for k, lg in enumerate(logits)]
    result = {
        "train_frames": len(pixels),
        "train_objects": len(labels),
        "val_objects": len(val_labels),
        "val_colour_acc": acc[0],
        "val_shape_acc": acc[1],
        "val_size_acc": acc[2],
        "steps": step,
        "seconds": round(time.time() - t0, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tower.state_dict().items()}, str(out))
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    logger.info("%s", result)
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="the random initial checkpoint (world_init.py)")
    ap.add_argument("--out", type=Path, required=True, help="safetensors of the trained vision tower")
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--val-clips", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=777)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run(
        args.model,
        args.out,
        clips=args.clips,
        val_clips=args.val_clips,
        epochs=args.epochs,
        seed=args.seed,
        lr=args.lr,
    )


if __name__ == "__main__":
    main()
