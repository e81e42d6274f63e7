"""Where do the agent's describe answers lose accuracy: the describer, or what grounding hands it?

    python research/describe_inputs.py [--clips 120] [--seed 777] [--model models/artemis-tiny-world]

For every held-out ``describe`` question of a generated agent benchmark (``evals.agent_bench.generated_bench``),
the describer is run on four inputs of the same object and its caption scored as the benchmark scores it
(colour + shape, and the primary motion of :func:`synth.motion_truth.primary_motion`):

* ``truth``: the world's box on the object's first visible frame and its true per-frame track;
* ``truth at key``: the world's box on the grounded target's key frame, the true track;
* ``grounded box``: the grounded target's key box, the true track;
* ``grounded``: the grounded target's key box and track (what the agent sends).

The grounded target is the track of the world's flat-shapes grounding for "the <colour> <shape>" that overlaps
the object best (mean IoU over its visible frames). A gap between ``truth`` and ``grounded`` is grounding's; what
``truth`` misses is the describer's. Also printed: the truth -> said confusions of ``grounded`` motion.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from artemis_model.types import Box, Track, box_iou
from evals.agent_bench import _primary, generated_bench
from synth.grammar import parse_caption
from synth.motion_truth import primary_motion
from tools.describers import EMBEDDED_MODEL_DIR, ModelDescriber
from tools.grounding.backends import WORLD_GROUNDING, make_backend
from tools.grounding.grounder import ground
from tools.schemas import Target

INPUTS = ("truth", "truth at key", "grounded box", "grounded")


def _said(text: str) -> tuple[str | None, str | None, str | None]:
    parsed = parse_caption(text)
    return (parsed.colour, parsed.shape, primary_motion(parsed.motions)) if parsed else (None, None, None)


def _best(targets: list[Target], boxes: tuple[Box | None, ...]) -> tuple[Target | None, float]:
    visible = [f for f, b in enumerate(boxes) if b is not None]
    best, score = None, 0.0
    for t in targets:
        s = float(np.mean([box_iou(t.boxes[f], boxes[f]) if t.boxes[f] else 0.0 for f in visible]))
        if s > score:
            best, score = t, s
    return best, score


def measure(num_clips: int, seed: int, model_dir: Path) -> dict:
    data = generated_bench(num_clips, seed, kinds=("describe",))
    describer = ModelDescriber.from_pretrained(model_dir)
    backend = make_backend(WORLD_GROUNDING)
    right: Counter[tuple[str, str]] = Counter()
    asked: Counter[str] = Counter()
    confusions: Counter[str] = Counter()
    unmatched = 0
    for record in data.sets["heldout"]:
        for turn in record["turns"]:
            truth = turn["truth"]
            if truth["type"] != "describe":
                continue
            bench_video = data.videos[record["video_name"]]
            video = bench_video.open()
            obj = bench_video.objects[truth["object_id"]]
            motion = _primary(truth["motions"])
            true_track = Track(boxes=obj.boxes, width=video.width, height=video.height)
            first = next(f for f, b in enumerate(obj.boxes) if b is not None)
            target, overlap = _best(
                ground(video, f"the {obj.colour} {obj.shape}", backend=backend, settings=WORLD_GROUNDING),
                obj.boxes,
            )
            inputs: dict[str, tuple[Box, int, Track]] = {"truth": (obj.boxes[first], first, true_track)}
            if target is None or overlap < 0.5:
                unmatched += 1
            if target is not None:
                key, box = target.key_box()
                inputs["truth at key"] = (obj.boxes[key] or box, key, true_track)
                inputs["grounded box"] = (box, key, true_track)
                inputs["grounded"] = (box, key, target.track())
            for name, (box, frame, trk) in inputs.items():
                text = describer.describe_many(video, [box], frame_idxs=[frame], question=None, tracks=[trk])
                colour, shape, said = _said(text[0].answer)
                asked[name] += 1
                right[name, "colour+shape"] += (colour, shape) == (obj.colour, obj.shape)
                right[name, "motion"] += said == motion
                right[name, "both"] += (colour, shape, said) == (obj.colour, obj.shape, motion)
                if name == "grounded" and said != motion:
                    confusions[f"{motion} -> {said}"] += 1
    return {
        "questions": asked["truth"],
        "grounding below IoU 0.5": unmatched,
        "accuracy": {
            name: {
                k: round(right[name, k] / max(asked[name], 1), 3) for k in ("colour+shape", "motion", "both")
            }
            for name in INPUTS
        },
        "grounded motion confusions": dict(confusions.most_common(12)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--model", type=Path, default=EMBEDDED_MODEL_DIR)
    args = parser.parse_args()
    print(json.dumps(measure(args.clips, args.seed, args.model), indent=2))


if __name__ == "__main__":
    main()
