"""Linear probe: do a (frozen) vision tower's region features carry colour and shape of synthetic objects?

    python -m training.world.probe --model runs/world/init_random [--clips 200] [--seed 4242] [--out FILE]

For each object of ``--clips`` synthetic clips, one frame where it is >= 90 % visible goes through the vision
tower; the hidden states the region encoder reads are RoI-aligned on the object's box (2x2 bins per level) and
concatenated; a logistic regression (5-fold split by clip) predicts colour and shape. Prints accuracies and
chance levels as JSON (and writes them to ``--out``). The recipe's vision step runs it on the random initial
checkpoint: a random tower carries colour but not shape, the reason for the region pre-training.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from torchvision.ops import roi_align

from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import ArtemisProcessor
from synth import generate_clip

logger = logging.getLogger(__name__)


@torch.no_grad()
def probe_features(
    model: ArtemisForConditionalGeneration, processor: ArtemisProcessor, clips: int, seed: int
) -> tuple[np.ndarray, list[str], list[str], list[int]]:
    """(features [N, D], colours, shapes, clip index) of one well-visible frame per object."""
    cfg = model.config
    grid = cfg.patch_grid
    size = cfg.vision_config.image_size
    feats, colours, shapes, groups = [], [], [], []
    rng = np.random.default_rng(seed)
    for c in range(clips):
        clip = generate_clip(int(rng.integers(0, 2**31 - 1)))
        for obj in clip.objects:
            good = [t for t in obj.visible_frames if obj.visible[t] >= 0.9]
            if not good:
                continue
            t = good[len(good) // 2]
            pixels = processor.preprocess_frames(clip.frames[t : t + 1], purpose="region")  # [1, 3, S, S]
            states = model._vision_hidden_states(pixels)
            box = processor.normalize_boxes([obj.boxes[t]], clip.width, clip.height) * size  # [1, 4]
            rois = torch.cat([torch.zeros(1, 1), box], dim=1)  # [1, 5]
            row = []
            for layer in cfg.region_feature_layers:
                grid_map = states[layer][:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)  # [1, C, g, g]
                pooled = roi_align(
                    grid_map, rois, 2, spatial_scale=grid / size, sampling_ratio=2, aligned=True
                )
                row.append(pooled.flatten())
            feats.append(torch.cat(row).numpy())
            colours.append(obj.colour)
            shapes.append(obj.shape)
            groups.append(c)
    return np.stack(feats), colours, shapes, groups


def probe_accuracy(x: np.ndarray, y: list[str], groups: list[int]) -> float:
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    correct = 0
    for tr, te in GroupKFold(n_splits=5).split(x, y, groups):
        clf = LogisticRegression(max_iter=2000, C=1.0)
        clf.fit(x[tr], np.asarray(y)[tr])
        correct += int((clf.predict(x[te]) == np.asarray(y)[te]).sum())
    return correct / len(y)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = ArtemisForConditionalGeneration.from_pretrained(args.model).eval()
    processor = ArtemisProcessor.from_pretrained(args.model)
    x, colours, shapes, groups = probe_features(model, processor, args.clips, args.seed)
    result = {
        "objects": len(colours),
        "colour_acc": probe_accuracy(x, colours, groups),
        "shape_acc": probe_accuracy(x, shapes, groups),
        "colour_chance": max(colours.count(c) for c in set(colours)) / len(colours),
        "shape_chance": max(shapes.count(s) for s in set(shapes)) / len(shapes),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
