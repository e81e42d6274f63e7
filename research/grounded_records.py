"""Referring records on what the agent hands the describer: grounding's tracks, not the world's.

    python research/grounded_records.py --root data/world/train_big --clips 3000 --workers 2

The stage-3 records (``stage3_world/synth_ref.json`` of ``root``, written by ``training.world.data``) carry the
world's exact track and query box. At inference the agent describes a grounded target: the key box and the
per-frame boxes of the world grounding (:data:`tools.grounding.backends.WORLD_GROUNDING`) on the H.264 video,
which start late when the object is hidden at first, merge with a same-coloured neighbour for a while, and are a
pixel loose (the model described the world's true tracks of the agent benchmark's objects right 0.98 of the time,
grounding's 0.944: ``/tmp`` probe of stop 28). For each of the first ``clips`` videos this grounds every object
once and writes, per record whose object a track matches (mean IoU over the object's visible frames >= ``min_iou``),
a copy with that track (``[]`` where it has no box) and its key box; the caption stays the world's. Output:
``stage3_grounded/synth_ref.json`` (same root: the records' ``video`` paths stay valid).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from artemis_model.types import box_iou

logger = logging.getLogger(__name__)

SOURCE = "stage3_world"
OUT = "stage3_grounded"


def _box(value: Any) -> list[float] | None:
    return [float(v) for v in value] if value else None


def ground_records(root: Path, records: list[dict[str, Any]], min_iou: float) -> list[dict[str, Any]]:
    """The grounded copies of ``records`` (all of one video): see the module's docstring."""
    from tools.grounding.backends import WORLD_GROUNDING
    from tools.grounding.grounder import ground
    from tools.video import load_video

    video = load_video(root / records[0]["video"])
    targets = ground(video, "", settings=WORLD_GROUNDING)
    out = []
    for record in records:
        truth = [_box(b) for b in record["track_list"]]
        visible = [f for f, b in enumerate(truth) if b is not None]
        if not visible or not targets:
            continue
        scores = [
            float(
                np.mean([box_iou(t.boxes[f], truth[f]) if t.boxes[f] is not None else 0.0 for f in visible])
            )
            for t in targets
        ]
        best = int(np.argmax(scores))
        if scores[best] < min_iou:
            continue
        target = targets[best]
        key, key_box = target.key_box()
        copy = {k: v for k, v in record.items() if k not in ("frame_path", "frame_id", "key_frame_idx")}
        copy.update(
            id=f"{record['id']}_grounded",
            track_list=[[round(v, 2) for v in b] if b is not None else [] for b in target.boxes],
            key_frame_id=int(key),
            key_frame_box=[round(v, 2) for v in key_box],
        )
        out.append(copy)
    return out


def _one(args: tuple[str, list[dict[str, Any]], float]) -> list[dict[str, Any]]:
    root, records, min_iou = args
    return ground_records(Path(root), records, min_iou)


def write_grounded(root: Path, clips: int, *, workers: int = 1, min_iou: float = 0.5) -> Path:
    """Write ``root/stage3_grounded/synth_ref.json`` for the first ``clips`` videos; returns its path."""
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    source = root / SOURCE / "synth_ref.json"
    records = json.loads(source.read_text())
    by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if not r.get("video"):
            raise ValueError(f"{source}: record {r.get('id')!r} has no 'video' (the grounding reads the mp4)")
        by_video[r["video_name"]].append(r)
    names = sorted(by_video)[:clips]
    jobs = [(str(root), by_video[n], min_iou) for n in names]
    out: list[dict[str, Any]] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(_one, jobs, chunksize=16):
                out += part
    else:
        for job in jobs:
            out += _one(job)
    asked = sum(len(by_video[n]) for n in names)
    logger.info("%d of %d records of %d videos matched a grounded track", len(out), asked, len(names))
    path = root / OUT / "synth_ref.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--min-iou", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(write_grounded(args.root, args.clips, workers=args.workers, min_iou=args.min_iou))


if __name__ == "__main__":
    main()
