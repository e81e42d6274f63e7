"""How much of the first motion can a reader of the tracked boxes know? (the ceiling behind the region tokens)

    python research/world_motion_ceiling.py [--clips 250] [--seed 9999]

For each held-out query of ``evals.world`` (truth track), the tracked frames are chosen as the pipeline does at
inference (``choose_track_frames(..., mode="uniform")``) for several ``num_tracked_boxes``; a perfect reader that
knows the true boxes of tracked frames 0 and j calls the first motion from their centre displacement ("still" under
3 % of the frame). Its accuracy against ``primary_motion`` of the truth is printed per (n, j): the region tokens of
the tiny model cannot carry more first-motion information than their boxes do.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from artemis_model.selection import choose_track_frames
from evals.world import held_out_queries
from synth import motion_phrases
from synth.motion import direction_name
from synth.motion_truth import primary_motion


def first_motion_from_boxes(a: tuple, b: tuple, width: int, height: int, still: float = 0.03) -> str:
    """``move:<direction>`` of the centre displacement ``a -> b`` (image axes), or ``still``."""
    dx = ((b[0] + b[2]) - (a[0] + a[2])) / 2 / width
    dy = ((b[1] + b[3]) - (a[1] + a[3])) / 2 / height
    if math.hypot(dx, dy) < still:
        return "still"
    return f"move:{direction_name(np.array([dx, dy]))}"


def ceiling(num_clips: int, seed: int, counts: tuple[int, ...] = (4, 6, 8, 12)) -> dict[str, float]:
    queries = held_out_queries(seed, num_clips)
    out = {}
    for n in counts:
        for j in (1, 2):
            hits = 0
            for q in queries:
                boxes = q.obj.boxes
                frames = choose_track_frames([t for t, b in enumerate(boxes) if b is not None], n)
                truth = primary_motion(motion_phrases(q.obj, q.clip))
                guess = first_motion_from_boxes(
                    boxes[frames[0]], boxes[frames[j]], q.clip.width, q.clip.height
                )
                hits += guess == truth
            out[f"tracked {n}, frames 0->{j}"] = round(hits / len(queries), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=250)
    ap.add_argument("--seed", type=int, default=9999)
    args = ap.parse_args()
    print(json.dumps(ceiling(args.clips, args.seed), indent=2))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
