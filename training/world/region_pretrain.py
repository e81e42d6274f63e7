"""Pre-train the tiny vision tower AND the region encoder on the synthetic world's box labels.

    python -m training.world.region_pretrain --model runs/world/init_random --out runs/world/region/region.safetensors

No pretrained CLIP exists offline, and a random region encoder on top of the tower hands the LM tokens in which the
object's attributes are buried (see MODEL_CARD.md). Here the tower and the region encoder are trained together,
through the model's own region path (``encode_region_frames`` -> ``region_tokens``, the LM-width tokens the LM
reads), with small supervised heads on each RMS-normalised region token:

- colour, shape, size (cross-entropy);
- the normalised box ``(cx, cy, w, h)`` (squared error), so that positions are linearly readable;
- for the same object in two frames of one clip, the direction of its displacement (9 classes: still + 8
  compass directions) from the two tokens by one linear layer — a linear readout of a *difference* of positions,
  which is what the LM has to do to say where the object goes.

Frames come from ``synth.generate_clip`` with seeds drawn from ``--seed`` (disjoint from the evaluation seed's
clips, which are generated from seed 9999's stream); clips holding an object of a held-out colour x shape x motion
combination (``synth.held_out.HELD_OUT_COMBOS``) are skipped. The heads are thrown away; the tower and the region
encoder are saved as one safetensors file (keys ``vision_tower.*`` and ``region_encoder.*``) that
``python -m training.world.init --vision-from`` loads. Held-out head accuracies on fresh clips are logged and written next to it as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torchvision.ops import roi_align

from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import ArtemisProcessor
from synth import COLOURS, SHAPES, SIZES, generate_clip, motion_phrases
from synth.held_out import HELD_OUT_COMBOS
from synth.motion import direction_name
from synth.motion_truth import primary_motion

logger = logging.getLogger(__name__)
FRAMES_PER_CLIP = 4
CLIPS_PER_BATCH = 8
STILL_THRESHOLD = 0.04  # normalised centre displacement below which a pair counts as "still"
HIDDEN_LAYERS = (1, 2, 3)  # tower hidden states with a direct head (besides the embeddings)
DIRECTIONS = ("still", "right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


def direction_class(dx: float, dy: float) -> int:
    """Index into :data:`DIRECTIONS` of a displacement (image axes: +y is down)."""
    if math.hypot(dx, dy) < STILL_THRESHOLD:
        return 0
    return DIRECTIONS.index(direction_name(np.array([dx, dy])))


@dataclass
class Examples:
    pixels: torch.Tensor  # [F, 3, S, S]
    clip_of_frame: list[int]
    labels: list[
        tuple[int, list[float], int, int, int, int]
    ]  # (frame, box_norm, colour, shape, size, object key)
    pairs: list[tuple[int, int, int]]  # (label index a, label index b, direction class)


def make_examples(processor: ArtemisProcessor, num_clips: int, seed: int) -> Examples:
    rng = np.random.default_rng(seed)
    pixels: list[torch.Tensor] = []
    clip_of_frame: list[int] = []
    labels: list[tuple[int, list[float], int, int, int, int]] = []
    pairs: list[tuple[int, int, int]] = []
    for c in range(num_clips):
        clip = generate_clip(int(rng.integers(0, 2**31 - 1)))
        combos = {(o.colour, o.shape, primary_motion(motion_phrases(o, clip))) for o in clip.objects}
        if combos & HELD_OUT_COMBOS:  # never show a held-out colour x shape x motion object
            continue
        frames = sorted(
            rng.choice(clip.num_frames, size=min(FRAMES_PER_CLIP, clip.num_frames), replace=False).tolist()
        )
        last_seen: dict[int, tuple[int, torch.Tensor]] = {}
        for t in frames:
            idx = len(pixels)
            pixels.append(processor.preprocess_frames(clip.frames[t : t + 1], purpose="region")[0])
            clip_of_frame.append(c)
            for k, o in enumerate(clip.objects):
                if o.boxes[t] is None or o.visible[t] < 0.6:
                    continue
                box = processor.normalize_boxes([o.boxes[t]], clip.width, clip.height)[0]
                key = c * 64 + k
                labels.append(
                    (
                        idx,
                        box.tolist(),
                        COLOURS.index(o.colour),
                        SHAPES.index(o.shape),
                        SIZES.index(o.size),
                        key,
                    )
                )
                centre = (box[:2] + box[2:]) / 2
                if k in last_seen:
                    prev_label, prev_centre = last_seen[k]
                    d = centre - prev_centre
                    pairs.append((prev_label, len(labels) - 1, direction_class(float(d[0]), float(d[1]))))
                last_seen[k] = (len(labels) - 1, centre)
    return Examples(torch.stack(pixels), clip_of_frame, labels, pairs)


class Heads(nn.Module):
    def __init__(self, dim: int, channels: int) -> None:
        super().__init__()
        # straight on the tower's hidden states (2x2 RoIAlign of HIDDEN_LAYERS): a short path that trains the tower
        tower_dim = channels * 4 * len(HIDDEN_LAYERS)
        self.tower_norm = nn.LayerNorm(tower_dim)
        self.tower_colour = nn.Linear(tower_dim, len(COLOURS))
        self.tower_shape = nn.Linear(tower_dim, len(SHAPES))
        self.colour = nn.Linear(dim, len(COLOURS))
        self.shape = nn.Linear(dim, len(SHAPES))
        self.size = nn.Linear(dim, len(SIZES))
        self.box = nn.Linear(dim, 4)
        self.direction = nn.Linear(2 * dim, len(DIRECTIONS))


def rms_normalise(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def batch_loss(
    model: ArtemisForConditionalGeneration,
    heads: Heads,
    ex: Examples,
    frames: list[int],
    label_ids: list[int],
    pair_ids: list[int],
) -> tuple[torch.Tensor, dict[str, float]]:
    remap = {f: k for k, f in enumerate(frames)}
    pos = {lab: k for k, lab in enumerate(label_ids)}
    labs = [ex.labels[i] for i in label_ids]
    states = model.vision_tower(pixel_values=ex.pixels[frames], output_hidden_states=True).hidden_states
    fused = model.region_encoder.encode_frames(states)
    frame_ids = torch.tensor([remap[lab[0]] for lab in labs], dtype=torch.long)
    boxes = torch.tensor([lab[1] for lab in labs], dtype=torch.float32)  # [N, 4]
    tokens = rms_normalise(model.region_tokens(fused, frame_ids, boxes))  # [N, D]
    targets = torch.tensor([lab[2:5] for lab in labs])  # [N, 3]
    logits = [heads.colour(tokens), heads.shape(tokens), heads.size(tokens)]
    loss = sum(F.cross_entropy(lg, targets[:, k]) for k, lg in enumerate(logits))
    grid, size = model.config.patch_grid, model.config.vision_config.image_size
    rois = torch.cat([frame_ids[:, None].float(), boxes * size], dim=1)  # [N, 5] in tower pixels
    pooled = []
    for layer in HIDDEN_LAYERS:
        grid_map = (
            states[layer][:, 1:].reshape(len(frames), grid, grid, -1).permute(0, 3, 1, 2)
        )  # [F, C, g, g]
        pooled.append(
            roi_align(grid_map, rois, 2, spatial_scale=grid / size, sampling_ratio=2, aligned=True).flatten(1)
        )  # [N, C, 2, 2] -> [N, 4C]
    direct = heads.tower_norm(torch.cat(pooled, dim=1))
    loss = loss + F.cross_entropy(heads.tower_colour(direct), targets[:, 0])
    loss = loss + F.cross_entropy(heads.tower_shape(direct), targets[:, 1])
    target_box = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], dim=1)  # [N, 4]
    box_err = F.mse_loss(heads.box(tokens), target_box)
    loss = loss + 10.0 * box_err
    stats = {
        f"{name}_acc": float((lg.argmax(-1) == targets[:, k]).float().mean())
        for k, (name, lg) in enumerate(zip(("colour", "shape", "size"), logits, strict=True))
    }
    stats["box_rmse"] = float(box_err.detach().sqrt())
    stats["tower_shape_acc"] = float((heads.tower_shape(direct).argmax(-1) == targets[:, 1]).float().mean())
    if pair_ids:
        a = torch.tensor([pos[ex.pairs[p][0]] for p in pair_ids])
        b = torch.tensor([pos[ex.pairs[p][1]] for p in pair_ids])
        dir_target = torch.tensor([ex.pairs[p][2] for p in pair_ids])
        dir_logits = heads.direction(torch.cat([tokens[a], tokens[b]], dim=1))  # [P, 9]
        loss = loss + F.cross_entropy(dir_logits, dir_target)
        stats["direction_acc"] = float((dir_logits.argmax(-1) == dir_target).float().mean())
    return loss, stats


def clip_batches(ex: Examples, order: np.ndarray):
    """(frames, label ids, pair ids) of :data:`CLIPS_PER_BATCH` clips at a time, in ``order``."""
    frames_of: dict[int, list[int]] = {}
    for f, c in enumerate(ex.clip_of_frame):
        frames_of.setdefault(c, []).append(f)
    labels_of: dict[int, list[int]] = {}
    for i, lab in enumerate(ex.labels):
        labels_of.setdefault(lab[0], []).append(i)
    pairs_of: dict[int, list[int]] = {}
    for p, (a, _, _) in enumerate(ex.pairs):
        pairs_of.setdefault(ex.clip_of_frame[ex.labels[a][0]], []).append(p)
    for i in range(0, len(order), CLIPS_PER_BATCH):
        clips = [int(c) for c in order[i : i + CLIPS_PER_BATCH]]
        frames = [f for c in clips for f in frames_of.get(c, [])]
        label_ids = [lab for f in frames for lab in labels_of.get(f, [])]
        if label_ids:
            yield frames, label_ids, [p for c in clips for p in pairs_of.get(c, [])]


def evaluate(model: ArtemisForConditionalGeneration, heads: Heads, ex: Examples) -> dict[str, float]:
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for frames, label_ids, pair_ids in clip_batches(ex, np.arange(max(ex.clip_of_frame) + 1)):
            _, stats = batch_loss(model, heads, ex, frames, label_ids, pair_ids)
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            count += 1
    return {f"val_{k}": round(v / count, 4) for k, v in totals.items()}


def run(model_dir: Path, out: Path, *, clips: int, val_clips: int, epochs: int, seed: int, lr: float) -> dict:
    torch.manual_seed(seed)
    model = ArtemisForConditionalGeneration.from_pretrained(model_dir)
    processor = ArtemisProcessor.from_pretrained(model_dir)
    trained = [model.vision_tower, model.region_encoder]
    for module in trained:
        module.requires_grad_(True)
    heads = Heads(model.config.text_config.hidden_size, model.config.vision_config.hidden_size)
    t0 = time.time()
    ex = make_examples(processor, clips, seed)
    val = make_examples(processor, val_clips, seed + 1)
    logger.info(
        "%d frames / %d objects / %d pairs (val %d / %d / %d) in %.0f s",
        len(ex.pixels),
        len(ex.labels),
        len(ex.pairs),
        len(val.pixels),
        len(val.labels),
        len(val.pairs),
        time.time() - t0,
    )
    params = [p for m in trained for p in m.parameters()] + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    per_epoch = (clips + CLIPS_PER_BATCH - 1) // CLIPS_PER_BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch, pct_start=0.1)
    rng = np.random.default_rng(seed)
    step = 0
    for epoch in range(epochs):
        model.train()
        for frames, label_ids, pair_ids in clip_batches(ex, rng.permutation(clips)):
            loss, stats = batch_loss(model, heads, ex, frames, label_ids, pair_ids)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if step < epochs * per_epoch - 1:
                sched.step()
            step += 1
            if step % 50 == 0:
                logger.info(
                    "epoch %d step %d loss %.3f %s (%.0f s)",
                    epoch,
                    step,
                    loss.item(),
                    {k: round(v, 3) for k, v in stats.items()},
                    time.time() - t0,
                )
        logger.info("epoch %d: %s", epoch, evaluate(model, heads, val))
    result = {
        "train_frames": len(ex.pixels),
        "train_objects": len(ex.labels),
        "train_pairs": len(ex.pairs),
        "val_objects": len(val.labels),
        **evaluate(model, heads, val),
        "steps": step,
        "seconds": round(time.time() - t0, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {f"vision_tower.{k}": v for k, v in model.vision_tower.state_dict().items()}
    state.update({f"region_encoder.{k}": v for k, v in model.region_encoder.state_dict().items()})
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    logger.info("%s", result)
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", type=Path, required=True, help="the initial checkpoint (python -m training.world.init)"
    )
    ap.add_argument(
        "--out", type=Path, required=True, help="safetensors of the trained tower + region encoder"
    )
    ap.add_argument("--clips", type=int, default=1500)
    ap.add_argument("--val-clips", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=10)
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
