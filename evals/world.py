"""Evaluate a world model on held-out synthetic clips through the product path (``artemis_model.pipeline``).

    artemis eval world --model DIR [--seed 9999] [--clips 250] [--combo-queries 30] [--out runs/world/eval_model.json]

Clips are ``synth.generate_clip`` of the per-clip seeds of data set ``--seed`` (the seed of
``artemis data synth --seed 9999``, never used in training). Per clip, one query: the first object visible on
at least 8 frames; its key frame is the middle frame where it is >= 50 % visible; the track is the truth
(the tracker is not evaluated here). The answer is generated greedily by :func:`artemis_model.pipeline.describe`
with the default question and prompt, then parsed with ``synth.parse_caption`` and scored against the truth:

- ``colour_shape``: the parsed subject names the object's colour and shape;
- ``motion``: the first basic motion statement (``move:<direction>``, ``still``, ``enter:<side>``) equals the
  truth's (``synth.motion_truth.primary_motion``);
- ``other_motion`` (a diagnostic): the stated first motion is wrong for the query object but is the first motion
  of another object of the clip (visible on >= 8 frames): the model describes the scene's motion, not the
  referred object's. Both rates come with their chance level (``motion_chance``, ``other_motion_chance``): the
  rate a model would get by stating first motions with the same overall frequencies, independently of the clip;
- caption metrics (``evals.metrics.score_captions``) against 5 true captions sampled from the grammar.

``--combo-queries N`` adds N queries on objects of the held-out combinations (``synth.held_out.HELD_OUT_COMBOS``,
found further along the same seed stream) and reports them separately.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from artemis_model.features import FeatureCache
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.pipeline import describe
from artemis_model.processing_artemis import ArtemisProcessor
from artemis_model.types import GenerationOptions, Track
from artemis_model.video.array import ArrayVideo
from evals.metrics import score_captions
from synth import Clip, ObjectTruth, caption_for, generate_clip, motion_phrases, parse_caption
from synth.build import clip_seeds
from synth.held_out import HELD_OUT_COMBOS
from synth.motion_truth import primary_motion

logger = logging.getLogger(__name__)
MIN_VISIBLE = 8
NUM_REFERENCES = 5


@dataclass(frozen=True)
class Query:
    name: str
    clip: Clip
    obj: ObjectTruth
    key: int

    @property
    def combo(self) -> tuple[str, str, str | None]:
        return (self.obj.colour, self.obj.shape, primary_motion(motion_phrases(self.obj, self.clip)))


def query_of(name: str, clip: Clip) -> Query | None:
    """The clip's query: first object visible on >= 8 frames, key frame in the middle of its good frames."""
    for obj in clip.objects:
        if len(obj.visible_frames) < MIN_VISIBLE:
            continue
        good = [t for t in obj.visible_frames if obj.visible[t] >= 0.5] or obj.visible_frames
        return Query(name, clip, obj, good[len(good) // 2])
    return None


def held_out_queries(seed: int, num_clips: int) -> list[Query]:
    out = []
    for i, cs in enumerate(clip_seeds(seed, num_clips)):
        q = query_of(f"clip_{i:05d}", generate_clip(cs))
        if q is not None:
            out.append(q)
    return out


def combo_queries(seed: int, start: int, count: int, max_clips: int = 20000) -> list[Query]:
    """Queries on objects of :data:`HELD_OUT_COMBOS` from clips ``start..`` of the same seed stream."""
    out = []
    for i, cs in enumerate(clip_seeds(seed, max_clips)):
        if i < start or len(out) >= count:
            continue
        clip = generate_clip(cs)
        for obj in clip.objects:
            if len(obj.visible_frames) < MIN_VISIBLE:
                continue
            motion = primary_motion(motion_phrases(obj, clip))
            if (obj.colour, obj.shape, motion) in HELD_OUT_COMBOS:
                good = [t for t in obj.visible_frames if obj.visible[t] >= 0.5] or obj.visible_frames
                out.append(Query(f"combo_{i:05d}_obj{obj.id}", clip, obj, good[len(good) // 2]))
                break
    return out


def answer(
    model: ArtemisForConditionalGeneration,
    processor: ArtemisProcessor,
    q: Query,
    cache: FeatureCache | None = None,
    max_new_tokens: int = 60,
) -> str:
    """The model's greedy description of the query's object (default question, truth track)."""
    track = Track(boxes=tuple(q.obj.boxes), width=q.clip.width, height=q.clip.height)
    desc = describe(
        model,
        processor,
        ArrayVideo(q.clip.frames, fps=q.clip.fps, name=q.name),
        q.obj.boxes[q.key],
        frame_idx=q.key,
        track=track,
        cache=cache,
        options=GenerationOptions(max_new_tokens=max_new_tokens),
    )
    return desc.answer


def judge(q: Query, text: str) -> dict:
    """The parser-based scores of one description of ``q`` (see the module docstring)."""
    parsed = parse_caption(text)
    truth_motion = primary_motion(motion_phrases(q.obj, q.clip))
    said = primary_motion(parsed.motions) if parsed else None
    others = {  # first motions of the clip's other objects that differ from the query's
        primary_motion(motion_phrases(o, q.clip))
        for o in q.clip.objects
        if o.id != q.obj.id and len(o.visible_frames) >= MIN_VISIBLE
    } - {truth_motion, None}
    return {
        "parsed": parsed is not None,
        "colour_shape": bool(parsed and parsed.colour == q.obj.colour and parsed.shape == q.obj.shape),
        "colour": bool(parsed and parsed.colour == q.obj.colour),
        "shape": bool(parsed and parsed.shape == q.obj.shape),
        "motion": bool(parsed and said == truth_motion),
        "other_motion": said in others,
        "said_motion": said,
        "other_motions": sorted(others),
        "truth_motion": truth_motion,
    }


def motion_chance(rows: list[dict]) -> tuple[float, float]:
    """Expected (``motion``, ``other_motion``) rates of a clip-blind guesser with the rows' said-motion frequencies."""
    said = Counter(r["said_motion"] for r in rows if r["said_motion"] is not None)
    total = sum(said.values())
    if not rows or not total:
        return 0.0, 0.0
    own = sum(said[r["truth_motion"]] for r in rows) / total / len(rows)
    other = sum(sum(said[m] for m in r["other_motions"]) for r in rows) / total / len(rows)
    return own, other


def references(q: Query, n: int = NUM_REFERENCES) -> list[str]:
    """``n`` true captions of the query's object sampled from the world's grammar (deterministic per query)."""
    rng = np.random.default_rng([zlib.crc32(q.name.encode()), q.obj.id])
    return [caption_for(q.obj, rng, q.clip).text for _ in range(n)]


def evaluate(
    model_dir: Path, seed: int, num_clips: int, combo_count: int, with_captions: bool = True
) -> dict:
    """Scores of the model at ``model_dir`` on ``num_clips`` held-out clips of data-set seed ``seed`` plus
    ``combo_count`` held-out-combination queries; ``rows`` / ``combo_rows`` hold every answer. One CPU thread."""
    torch.set_num_threads(1)
    model = ArtemisForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = ArtemisProcessor.from_pretrained(model_dir)
    t0 = time.time()
    queries = held_out_queries(seed, num_clips)
    combos = combo_queries(seed, num_clips, combo_count) if combo_count else []
    rows, combo_rows = [], []
    for q in queries + combos:
        text = answer(model, processor, q)
        row = {"video_name": q.name, "pred": text, "groundtruth": references(q), **judge(q, text)}
        row["combo"] = list(q.combo)
        (combo_rows if q.name.startswith("combo_") else rows).append(row)
    gen_s = time.time() - t0

    def rate(rs: list[dict], key: str) -> float:
        return sum(r[key] for r in rs) / max(1, len(rs))

    result = {
        "model": str(model_dir),
        "seed": seed,
        "queries": len(rows),
        "colour_shape_acc": rate(rows, "colour_shape"),
        "colour_acc": rate(rows, "colour"),
        "shape_acc": rate(rows, "shape"),
        "motion_acc": rate(rows, "motion"),
        "other_object_motion_rate": rate(rows, "other_motion"),
        **dict(zip(("motion_chance", "other_motion_chance"), motion_chance(rows), strict=True)),
        "parsed_rate": rate(rows, "parsed"),
        "combo_queries": len(combo_rows),
        "combo_colour_shape_acc": rate(combo_rows, "colour_shape"),
        "combo_motion_acc": rate(combo_rows, "motion"),
        "seconds_generation": round(gen_s, 1),
    }
    if with_captions:
        metrics = score_captions(rows)
        result["caption_metrics"] = metrics.scores
        result["caption_unavailable"] = metrics.unavailable
    result["rows"] = rows
    result["combo_rows"] = combo_rows
    return result


def summary(result: dict) -> dict:
    """The result without its per-query rows (what ``artemis eval world`` prints)."""
    return {k: v for k, v in result.items() if k not in ("rows", "combo_rows")}


def write_result(result: dict, out: Path) -> Path:
    """The whole result, rows included, as JSON at ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return out
