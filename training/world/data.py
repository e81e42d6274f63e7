"""Training data of the tiny world model: remove held-out colour x shape x motion combinations.

    python -m training.world.data --root data/world/train

Reads ``stage1.json``, ``stage2.json``, ``stage3/synth_ref.json`` written by ``artemis data synth`` and writes
``stage1_world.json``, ``stage2_world.json``, ``stage3_world/synth_ref.json`` (same root, so record paths stay
valid) without every clip that holds an object of a :data:`~synth.held_out.HELD_OUT_COMBOS` combination: the
model never reads a caption of, nor sees, such an object in any stage. The evaluation reports accuracy on these
combinations separately (``artemis eval world``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

from synth import ParsedCaption, parse_caption
from synth.held_out import HELD_OUT_COMBOS
from synth.motion_truth import primary_motion

logger = logging.getLogger(__name__)


def combo(parsed: ParsedCaption) -> tuple[str, str, str] | None:
    motion = primary_motion(parsed.motions)
    if parsed.colour is None or motion is None:
        return None
    return (parsed.colour, parsed.shape, motion)


def scene_combos(scene_caption: str) -> set[tuple[str, str, str]]:
    """Combinations of every object of a stage-1 scene caption (head sentence, then one caption per object)."""
    out = set()
    for sentence in re.split(r"(?<=\.) (?=[A-Z])", scene_caption)[1:]:
        parsed = parse_caption(sentence)
        if parsed is None:
            raise ValueError(f"unparsable object caption in a scene caption: {sentence!r}")
        if (c := combo(parsed)) is not None:
            out.add(c)
    return out


def held_out_clips(stage1: list[dict]) -> set[str]:
    """Names of the clips with an object of a held-out combination."""
    bad = set()
    for rec in stage1:
        caption = rec["conversations"][-1]["value"]
        if scene_combos(caption) & HELD_OUT_COMBOS:
            bad.add(rec["id"])
    return bad


def filter_dataset(root: Path) -> dict[str, int]:
    """Write the ``*_world`` record files of data set ``root`` (held-out clips removed); returns the counts."""
    stage1 = json.loads((root / "stage1.json").read_text())
    stage2 = json.loads((root / "stage2.json").read_text())
    stage3 = json.loads((root / "stage3" / "synth_ref.json").read_text())
    bad = held_out_clips(stage1)
    out1 = [r for r in stage1 if r["id"] not in bad]
    out2 = [r for r in stage2 if r["id"] not in bad]
    out3 = [r for r in stage3 if r["video_name"] not in bad]
    for rec in out3:  # belt and braces: the referred object's own caption
        parsed = parse_caption(rec["caption"])
        if parsed is not None and combo(parsed) in HELD_OUT_COMBOS:
            raise ValueError(f"held-out combination left in {rec['id']}")
    (root / "stage1_world.json").write_text(json.dumps(out1))
    (root / "stage2_world.json").write_text(json.dumps(out2))
    (root / "stage3_world").mkdir(exist_ok=True)
    (root / "stage3_world" / "synth_ref.json").write_text(json.dumps(out3))
    counts = {
        "clips": len(stage1),
        "held_out_clips": len(bad),
        "stage1": len(out1),
        "stage2": len(out2),
        "stage3": len(out3),
    }
    (root / "world_filter.json").write_text(json.dumps(counts, indent=2))
    return counts


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True)
    args = ap.parse_args()
    print(json.dumps(filter_dataset(args.root), indent=2))


if __name__ == "__main__":
    main()
