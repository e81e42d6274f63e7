"""HC-STVG / VideoRef45K video referring evaluation: load the eval JSON, predict (sharded, resumable), score.

Two record formats are read (one JSON list, or JSONL):

* **frame folders** (the original's eval JSON): ``video_name``, ``caption``, ``frame_path`` (folder relative to
  the video root), ``frame_id`` (file names, in order), ``track_list`` (aligned with ``frame_id``: an xyxy pixel
  box or ``[]``), optional ``key_frame_id`` (a file name of ``frame_id`` or a 0-based position) and
  ``key_frame_box``, optional ``question``.
* **raw video + box**: ``video`` (file relative to the video root), ``box`` (xyxy pixels), optional ``frame_idx``
  (default 0), ``caption``, optional ``video_name`` (default: the file stem), ``question``, ``track_list``.

When no key frame is given, the first tracked frame is the key frame (the original drew a random one).
Output: ``predictions.jsonl`` rows ``{id, video_name, groundtruth, pred}``, ``metrics.json`` and ``metrics.md``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artemis_model.errors import ArtemisInputError, VideoDecodeError
from artemis_model.types import Box
from evals.metrics import CaptionMetrics, CaptionScorer, LengthFilter, metrics_markdown, score_captions
from evals.protocol import EvalRecord, LimitReportingPredictor, Predictor
from evals.runner import RunSummary, Shard, merge_shards, read_jsonl, run_resumable, shard_output_path

if TYPE_CHECKING:
    from evals.tasks import ScoreOptions

logger = logging.getLogger(__name__)

PREDICTIONS_STEM = "predictions"


def read_records_file(path: Path) -> list[dict[str, Any]]:
    """A JSON list, a JSON object holding one list, or JSONL."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"eval file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise ArtemisInputError(
                f"{path}: expected a JSON list of records, got an object with keys {list(data)}"
            )
        data = lists[0]
    if not isinstance(data, list):
        raise ArtemisInputError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def _parse_box(value: Any, where: str) -> Box:
    try:
        vals = [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ArtemisInputError(f"{where}: box {value!r} must be 4 numbers x1,y1,x2,y2") from exc
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise ArtemisInputError(f"{where}: box {value!r} must be 4 finite numbers x1,y1,x2,y2")
    if vals[2] <= vals[0] or vals[3] <= vals[1]:
        raise ArtemisInputError(f"{where}: box {value!r} is inverted or empty (need x1 < x2 and y1 < y2)")
    return (vals[0], vals[1], vals[2], vals[3])


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and len(value) == 0)


def _sparse_track(track_list: Sequence[Any], where: str) -> tuple[tuple[int, Box], ...]:
    return tuple(
        (i, _parse_box(entry, f"{where} track_list[{i}]"))
        for i, entry in enumerate(track_list)
        if not _is_empty(entry)
    )


def _key_frame_position(key: Any, frame_ids: Sequence[str], where: str) -> int:
    names = [str(f) for f in frame_ids]
    if isinstance(key, str) and key in names:
        return names.index(key)
    if (
        isinstance(key, int | str)
        and not isinstance(key, bool)
        and str(key).isdigit()
        and int(key) < len(names)
    ):
        return int(key)
    raise ArtemisInputError(
        f"{where}: key_frame_id {key!r} is neither a file name of frame_id nor a position in [0, {len(names)})"
    )


def _unique_ids(names: Sequence[str]) -> list[str]:
    counts: dict[str, int] = {}
    ids = []
    for name in names:
        k = counts.get(name, 0)
        counts[name] = k + 1
        ids.append(name if k == 0 else f"{name}#{k}")
    return ids


def parse_referring_record(raw: dict[str, Any], video_root: Path, record_id: str) -> EvalRecord:
    """One eval JSON record -> :class:`EvalRecord` (see the module docstring for the formats)."""
    where = f"record {record_id!r}"
    caption = raw.get("caption", raw.get("groundtruth"))
    if caption is None:
        raise ArtemisInputError(f"{where}: no 'caption' field; fields are {sorted(raw)}")
    question = raw.get("question") or None
    if "frame_path" in raw:
        frame_ids = raw.get("frame_id")
        track_list = raw.get("track_list")
        if not isinstance(frame_ids, list) or not isinstance(track_list, list):
            raise ArtemisInputError(
                f"{where}: frame-folder records need the lists 'frame_id' and 'track_list'"
            )
        if len(frame_ids) != len(track_list):
            raise ArtemisInputError(
                f"{where}: track_list has {len(track_list)} entries but frame_id has {len(frame_ids)}"
            )
        folder = Path(video_root) / str(raw["frame_path"])
        frame_paths = tuple(folder / str(f) for f in frame_ids)
        track = _sparse_track(track_list, where)
        if not _is_empty(raw.get("key_frame_id")) and not _is_empty(raw.get("key_frame_box")):
            key_idx = _key_frame_position(raw["key_frame_id"], frame_ids, where)
            key_box = _parse_box(raw["key_frame_box"], f"{where} key_frame_box")
        elif track:
            key_idx, key_box = track[0]
        else:
            raise ArtemisInputError(f"{where}: no key frame box and every track_list entry is empty")
        video_name = str(raw.get("video_name") or raw["frame_path"])
        return EvalRecord(
            record_id=record_id,
            video_name=video_name,
            groundtruth=str(caption),
            key_frame_idx=key_idx,
            key_box=key_box,
            track=track,
            frame_paths=frame_paths,
            question=question,
        )
    if "video" in raw:
        if _is_empty(raw.get("box")):
            raise ArtemisInputError(
                f"{where}: raw-video records need 'box' (xyxy pixels on frame 'frame_idx')"
            )
        key_idx = int(raw.get("frame_idx", 0))
        key_box = _parse_box(raw["box"], f"{where} box")
        track = _sparse_track(raw.get("track_list") or [], where)
        if key_idx not in {f for f, _ in track}:
            track = tuple(sorted((*track, (key_idx, key_box))))
        video_path = Path(video_root) / str(raw["video"])
        return EvalRecord(
            record_id=record_id,
            video_name=str(raw.get("video_name") or video_path.stem),
            groundtruth=str(caption),
            key_frame_idx=key_idx,
            key_box=key_box,
            track=track,
            video_path=video_path,
            question=question,
        )
    raise ArtemisInputError(
        f"{where}: unknown format; need 'frame_path' (+frame_id, track_list) or 'video' (+box). Fields: {sorted(raw)}"
    )


def check_media(records: Sequence[EvalRecord], *, max_listed: int = 5) -> None:
    """Raise :class:`VideoDecodeError` naming the missing frames/videos (checks files exist, decodes nothing)."""
    missing: list[str] = []
    for rec in records:
        paths = rec.frame_paths if rec.frame_paths is not None else (rec.video_path,)
        for p in paths:
            if p is not None and not p.exists():
                missing.append(f"{rec.record_id}: {p}")
    if missing:
        raise VideoDecodeError(
            f"{len(missing)} frame/video files are missing, e.g. {missing[:max_listed]}; check --video-root"
        )


def load_referring_eval(path: Path, video_root: Path, *, check_files: bool = True) -> list[EvalRecord]:
    """Load an HC-STVG / VideoRef45K eval file. Ids are ``video_name`` (``video_name#k`` for repeats)."""
    raws = read_records_file(path)
    names = []
    for n, raw in enumerate(raws):
        if not isinstance(raw, dict):
            raise ArtemisInputError(f"{path}: record {n} is a {type(raw).__name__}, expected an object")
        names.append(
            str(raw.get("video_name") or raw.get("frame_path") or Path(str(raw.get("video", n))).stem)
        )
    ids = _unique_ids(names)
    records = [parse_referring_record(raw, Path(video_root), rid) for raw, rid in zip(raws, ids, strict=True)]
    if len(set(names)) != len(names):
        logger.warning("%s: %d records repeat a video_name", path, len(names) - len(set(names)))
    if check_files:
        check_media(records)
    logger.info("loaded %d referring records from %s", len(records), path)
    return records


def predict_rows(predictor: Predictor, records: list[EvalRecord]) -> list[dict[str, Any]]:
    """One batch through the predictor -> ``{video_name, groundtruth, pred}`` rows (+ ``hit_token_limit`` when
    the predictor reports it: the answer reached the length limit before ``</s>``)."""
    if isinstance(predictor, LimitReportingPredictor):
        answers = predictor.predict_with_limits(records)
    else:
        answers = [(p, None) for p in predictor.predict(records)]
    if len(answers) != len(records):
        raise ValueError(f"predictor returned {len(answers)} answers for {len(records)} records")
    rows = []
    for r, (pred, hit) in zip(records, answers, strict=True):
        row = {"video_name": r.video_name, "groundtruth": r.groundtruth, "pred": str(pred)}
        if hit is not None:
            row["hit_token_limit"] = bool(hit)
        rows.append(row)
    return rows


def count_hit_limit(rows: Sequence[dict[str, Any]]) -> int | None:
    """How many prediction rows hit the answer length limit (``None`` when the predictor did not report it)."""
    flags = [row["hit_token_limit"] for row in rows if "hit_token_limit" in row]
    return sum(bool(f) for f in flags) if flags else None


def run_referring(
    records: Sequence[EvalRecord],
    predictor: Predictor,
    out_dir: Path,
    *,
    shard: Shard = Shard(),
    batch_size: int = 4,
) -> RunSummary:
    """Predict this shard's records into ``out_dir`` (resumes: finished ids are not predicted again)."""
    return run_resumable(
        shard.select(records),
        item_id=lambda r: r.record_id,
        predict_batch=lambda batch: predict_rows(predictor, batch),
        output=shard_output_path(Path(out_dir), PREDICTIONS_STEM, shard),
        batch_size=batch_size,
    )


def merge_referring(out_dir: Path, num_shards: int, records: Sequence[EvalRecord] | None = None) -> Path:
    """Merge shard predictions into ``out_dir/predictions.jsonl`` (in data order when ``records`` are given)."""
    order = [r.record_id for r in records] if records is not None else None
    return merge_shards(Path(out_dir), PREDICTIONS_STEM, num_shards, order=order).output


def score_referring(
    out_dir: Path,
    *,
    scorer: CaptionScorer | None = None,
    length_filter: LengthFilter | None = None,
    title: str = "Video referring (HC-STVG protocol)",
) -> CaptionMetrics:
    """Score ``out_dir/predictions.jsonl``; write ``metrics.json`` and ``metrics.md`` beside it."""
    out_dir = Path(out_dir)
    pred_path = out_dir / f"{PREDICTIONS_STEM}.jsonl"
    rows = read_jsonl(pred_path)
    if not rows:
        raise FileNotFoundError(f"no predictions in {pred_path}; run (and merge) first")
    metrics = score_captions(rows, scorer=scorer, length_filter=length_filter)
    hits = count_hit_limit(rows)
    if hits:
        logger.warning("%d of %d predictions hit the answer length limit (may be cut short)", hits, len(rows))
    payload = {
        "task": "referring",
        "predictions": str(pred_path),
        "hit_token_limit": hits,
        **metrics.to_dict(),
    }
    (out_dir / "metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    (out_dir / "metrics.md").write_text(metrics_markdown(metrics, title=title), encoding="utf-8")
    return metrics


def score_summary(out_dir: Path, options: ScoreOptions) -> dict[str, Any]:
    """The task registry's scorer (:mod:`evals.tasks`): :func:`score_referring` of ``out_dir``, summarised."""
    m = score_referring(out_dir, length_filter=LengthFilter() if options.length_filter else None)
    return {"scores": m.scores, "unavailable": m.unavailable, "counts": asdict(m.counts)}


def record_ids(data: Path, video_root: Path | None = None) -> list[str]:
    """Record ids of the evaluation file ``data`` in its order (media files are not checked)."""
    return [r.record_id for r in load_referring_eval(data, video_root or Path("."), check_files=False)]
