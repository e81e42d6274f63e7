"""VideoRefer-Bench-D/-Q annotation loaders: COCO-RLE masks -> box tracks, frames from a local root.

Facts followed (spec ``videorefer_bench.md``): each record's ``annotation`` holds one dict per referred object,
keyed by 0-based frame index strings (sorted numerically here, never by JSON order); segmentations are compressed
COCO RLE (uncompressed RLE and polygons accepted), possibly ``null`` or empty: then the object has **no box** on
that frame. The box of a mask is the tight xyxy pixel box with exclusive end. The i-th ``<region>`` of a Bench-Q
question is ``annotation[i]``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from artemis_model.errors import ArtemisInputError, FrameIndexError, VideoDecodeError
from artemis_model.types import Box
from evals.protocol import EvalRecord
from evals.referring import read_records_file

logger = logging.getLogger(__name__)

Mode = Literal["single", "multi"]
MODES: tuple[str, ...] = ("single", "multi")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
REGION = "<region>"
_OPTION_FORMAT = re.compile(r"^\([A-Z]\) ")


def decode_segmentation(seg: Any, size_hw: tuple[int, int] | None = None) -> np.ndarray | None:
    """An ``H x W`` uint8 {0,1} mask, or ``None`` for a ``null`` segmentation.

    Accepts compressed RLE (``counts`` a string), uncompressed RLE (``counts`` a list) and polygons (a list of
    coordinate lists; needs ``size_hw``).
    """
    from pycocotools import mask as mask_utils

    if seg is None:
        return None
    if isinstance(seg, dict):
        if "size" not in seg or "counts" not in seg:
            raise ArtemisInputError(f"RLE {str(seg)[:80]!r} needs 'size' and 'counts'")
        h, w = (int(v) for v in seg["size"])
        if isinstance(seg["counts"], list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            counts = seg["counts"]
            rle = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        return np.asarray(mask_utils.decode(rle), dtype=np.uint8)
    if isinstance(seg, list):
        if not seg:
            return None
        if size_hw is None:
            raise ArtemisInputError("a polygon segmentation needs the frame size to be decoded")
        rles = mask_utils.frPyObjects(seg, size_hw[0], size_hw[1])
        return np.asarray(mask_utils.decode(mask_utils.merge(rles)), dtype=np.uint8)
    raise ArtemisInputError(
        f"segmentation of type {type(seg).__name__} is not RLE (dict), polygon (list) or null"
    )


def mask_to_box(mask: np.ndarray | None) -> Box | None:
    """Tight xyxy pixel box with exclusive end, ``None`` for a missing or empty mask (never ``[0,0,0,0]``)."""
    if mask is None:
        return None
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


@dataclass(frozen=True)
class ObjectTrack:
    """One referred object: its keyed frames (sorted) with the mask box, or ``None`` when null/empty there."""

    keyed: tuple[tuple[int, Box | None], ...]
    size_hw: tuple[int, int] | None
    null_masks: int = 0
    empty_masks: int = 0

    @property
    def keys(self) -> tuple[int, ...]:
        return tuple(k for k, _ in self.keyed)

    def box_at(self, frame_idx: int) -> Box | None:
        return dict(self.keyed).get(frame_idx)

    def boxes(self, mode: str, frame_idx: int) -> tuple[tuple[int, Box], ...]:
        """Benchmark input boxes: the ``frame_idx`` box (``single``) or every non-empty keyed box (``multi``)."""
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; allowed: {MODES}")
        if mode == "single":
            box = self.box_at(frame_idx)
            return () if box is None else ((frame_idx, box),)
        return tuple((k, b) for k, b in self.keyed if b is not None)


def parse_object(annotation: Any, where: str) -> ObjectTrack:
    """One ``annotation[i]`` dict -> :class:`ObjectTrack` (keys sorted numerically)."""
    if not isinstance(annotation, dict):
        raise ArtemisInputError(
            f"{where}: an annotation entry must be a dict of frame keys, got {type(annotation)}"
        )
    bad = [k for k in annotation if not str(k).isdigit()]
    if bad:
        raise ArtemisInputError(f"{where}: frame keys must be decimal strings, got {bad[:5]}")
    keyed: list[tuple[int, Box | None]] = []
    size: tuple[int, int] | None = None
    nulls = empties = 0
    for key in sorted(annotation, key=int):
        entry = annotation[key]
        seg = entry.get("segmentation") if isinstance(entry, dict) else None
        if isinstance(seg, dict) and "size" in seg:
            this = (int(seg["size"][0]), int(seg["size"][1]))
            if size is not None and this != size:
                raise ArtemisInputError(
                    f"{where}: mask sizes differ across frames ({size} vs {this} at key {key})"
                )
            size = this
        mask = decode_segmentation(seg, size)
        box = mask_to_box(mask)
        if mask is None:
            nulls += 1
        elif box is None:
            empties += 1
        keyed.append((int(key), box))
    return ObjectTrack(keyed=tuple(keyed), size_hw=size, null_masks=nulls, empty_masks=empties)


@dataclass(frozen=True)
class BenchQRecord:
    id: int
    video: str
    question: str
    type: str
    options: tuple[str, ...]
    answer: str
    frame_idx: int
    objects: tuple[ObjectTrack, ...]
    """``objects[i]`` is the i-th ``<region>`` of ``question``."""


@dataclass(frozen=True)
class BenchDRecord:
    id: int
    video: str
    caption: str
    frame_idx: int
    object: ObjectTrack


@dataclass
class LoadReport:
    """Counts the papers do not give, and soft problems (logged, not fatal)."""

    records: int = 0
    distinct_videos: int = 0
    per_type: dict[str, int] = field(default_factory=dict)
    objects_per_record: dict[int, int] = field(default_factory=dict)
    null_masks: int = 0
    empty_masks: int = 0
    max_keys_per_object: int = 0
    issues: list[str] = field(default_factory=list)


def _require(raw: dict[str, Any], fields: dict[str, type | tuple[type, ...]], where: str) -> None:
    for name, typ in fields.items():
        if name not in raw:
            raise ArtemisInputError(f"{where}: missing field {name!r}; fields are {sorted(raw)}")
        if not isinstance(raw[name], typ):
            raise ArtemisInputError(f"{where}: field {name!r} is {type(raw[name]).__name__}, expected {typ}")


def _check_key_frame(obj: ObjectTrack, frame_idx: int, where: str, report: LoadReport) -> None:
    if frame_idx not in obj.keys:
        report.issues.append(f"{where}: frame_idx {frame_idx} is not a key of the object")
    elif obj.box_at(frame_idx) is None:
        report.issues.append(f"{where}: the mask at frame_idx {frame_idx} is null or empty")
    if len(obj.keys) > 32:
        report.issues.append(f"{where}: {len(obj.keys)} keys (> 32)")


def _finish(report: LoadReport, videos: Sequence[str], objects: Sequence[ObjectTrack]) -> None:
    report.distinct_videos = len(set(videos))
    report.null_masks = sum(o.null_masks for o in objects)
    report.empty_masks = sum(o.empty_masks for o in objects)
    report.max_keys_per_object = max((len(o.keys) for o in objects), default=0)
    for issue in report.issues[:20]:
        logger.warning("%s", issue)
    logger.info(
        "loaded %d records, %d videos, %d null and %d empty masks, %d issues",
        report.records,
        report.distinct_videos,
        report.null_masks,
        report.empty_masks,
        len(report.issues),
    )


def load_bench_q(path: Path) -> tuple[list[BenchQRecord], LoadReport]:
    """Load ``VideoRefer-Bench-Q.json``. Structural errors raise; soft problems go to the report."""
    raws = read_records_file(Path(path))
    report = LoadReport(records=len(raws))
    out: list[BenchQRecord] = []
    for n, raw in enumerate(raws):
        where = f"Bench-Q record {raw.get('id', n) if isinstance(raw, dict) else n}"
        if not isinstance(raw, dict):
            raise ArtemisInputError(f"{where}: expected an object")
        _require(
            raw,
            {"id": int, "video": str, "Question": str, "type": str, "options": list, "Answer": str}
            | {"frame_idx": (str, int), "annotation": list},
            where,
        )
        n_regions = raw["Question"].count(REGION)
        if n_regions != len(raw["annotation"]):
            raise ArtemisInputError(
                f"{where}: the question has {n_regions} {REGION} but annotation has {len(raw['annotation'])} objects"
            )
        if raw["Answer"] not in raw["options"]:
            report.issues.append(f"{where}: Answer {raw['Answer']!r} is not one of the options")
        bad_opts = [o for o in raw["options"] if not _OPTION_FORMAT.match(str(o))]
        if bad_opts:
            report.issues.append(f"{where}: options not written '(X) text': {bad_opts}")
        objects = tuple(parse_object(a, f"{where} object {i}") for i, a in enumerate(raw["annotation"]))
        frame_idx = int(raw["frame_idx"])
        for i, obj in enumerate(objects):
            _check_key_frame(obj, frame_idx, f"{where} object {i}", report)
        report.per_type[raw["type"]] = report.per_type.get(raw["type"], 0) + 1
        out.append(
            BenchQRecord(
                id=raw["id"],
                video=raw["video"],
                question=raw["Question"],
                type=raw["type"],
                options=tuple(str(o) for o in raw["options"]),
                answer=raw["Answer"],
                frame_idx=frame_idx,
                objects=objects,
            )
        )
    report.objects_per_record = dict(Counter(len(r.objects) for r in out))
    if len(out) == 1000 and len(report.per_type) != 5:
        report.issues.append(f"expected 5 question types, found {sorted(report.per_type)}")
    _finish(report, [r.video for r in out], [o for r in out for o in r.objects])
    return out, report


def load_bench_d(path: Path) -> tuple[list[BenchDRecord], LoadReport]:
    """Load ``VideoRefer-Bench-D.json`` (exactly one object per record)."""
    raws = read_records_file(Path(path))
    report = LoadReport(records=len(raws))
    out: list[BenchDRecord] = []
    for n, raw in enumerate(raws):
        where = f"Bench-D record {raw.get('id', n) if isinstance(raw, dict) else n}"
        if not isinstance(raw, dict):
            raise ArtemisInputError(f"{where}: expected an object")
        _require(
            raw, {"id": int, "video": str, "caption": str, "frame_idx": (str, int), "annotation": list}, where
        )
        if len(raw["annotation"]) != 1:
            raise ArtemisInputError(
                f"{where}: expected exactly 1 annotated object, got {len(raw['annotation'])}"
            )
        obj = parse_object(raw["annotation"][0], where)
        frame_idx = int(raw["frame_idx"])
        _check_key_frame(obj, frame_idx, where, report)
        out.append(BenchDRecord(raw["id"], raw["video"], raw["caption"], frame_idx, obj))
    report.objects_per_record = {1: len(out)} if out else {}
    _finish(report, [r.video for r in out], [r.object for r in out])
    return out, report


def list_frames(frames_root: Path, video: str) -> tuple[Path, ...]:
    """Bench-Q frame files of ``video`` under ``frames_root``, sorted by name (key k = k-th file)."""
    folder = Path(frames_root) / video
    if not folder.is_dir():
        raise VideoDecodeError(
            f"frame folder {folder} is missing (video {video!r} under --frames {frames_root}); Bench-Q frames come "
            "from DAVIS 2017 480p and MeViS valid_u and must be downloaded separately"
        )
    frames = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES))
    if not frames:
        raise VideoDecodeError(f"frame folder {folder} holds no {FRAME_SUFFIXES} files")
    return frames


def check_frames_match(objects: Sequence[ObjectTrack], frames: Sequence[Path], where: str) -> None:
    """Every mask key indexes an existing frame and every RLE size equals the frame size (no silent resize)."""
    from PIL import Image

    with Image.open(frames[0]) as im:
        width, height = im.size
    for i, obj in enumerate(objects):
        if obj.keys and obj.keys[-1] >= len(frames):
            raise FrameIndexError(
                f"{where} object {i}: mask key {obj.keys[-1]} is beyond the {len(frames)} frames of {frames[0].parent}"
            )
        if obj.size_hw is not None and obj.size_hw != (height, width):
            raise ArtemisInputError(
                f"{where} object {i}: mask size (H, W)={obj.size_hw} differs from the frame size {(height, width)} "
                f"of {frames[0]}"
            )


def _object_record(
    record_id: str,
    video_name: str,
    groundtruth: str,
    obj: ObjectTrack,
    frame_idx: int,
    mode: str,
    *,
    frame_paths: tuple[Path, ...] | None = None,
    video_path: Path | None = None,
    question: str | None = None,
) -> EvalRecord:
    track = obj.boxes(mode, frame_idx)
    if frame_paths is not None and track and track[-1][0] >= len(frame_paths):
        raise FrameIndexError(
            f"{record_id}: mask key {track[-1][0]} is beyond the {len(frame_paths)} frames of {video_name}"
        )
    key_box = obj.box_at(frame_idx)
    key_idx = frame_idx
    if key_box is None:
        if not track:
            raise ArtemisInputError(
                f"{record_id}: the object has no non-empty mask to refer to ({mode} mode)"
            )
        key_idx, key_box = obj.boxes("multi", frame_idx)[0]
        logger.warning("%s: no mask at frame_idx %d; using keyed frame %d", record_id, frame_idx, key_idx)
        track = track or ((key_idx, key_box),)
    return EvalRecord(
        record_id=record_id,
        video_name=video_name,
        groundtruth=groundtruth,
        key_frame_idx=key_idx,
        key_box=key_box,
        track=track,
        frame_paths=frame_paths,
        video_path=video_path,
        question=question,
    )


def bench_q_object_records(
    rec: BenchQRecord, frames_root: Path, mode: str = "single", *, question: str | None = None
) -> list[EvalRecord]:
    """One referring record per referred object, in ``<region>`` order (ids ``<id>/obj<i>``)."""
    frames = list_frames(frames_root, rec.video)
    check_frames_match(rec.objects, frames, f"Bench-Q record {rec.id}")
    return [
        _object_record(
            f"{rec.id}/obj{i}", rec.video, "", obj, rec.frame_idx, mode, frame_paths=frames, question=question
        )
        for i, obj in enumerate(rec.objects)
    ]


def bench_d_record(
    rec: BenchDRecord, video_root: Path, mode: str = "multi", *, question: str | None = None
) -> EvalRecord:
    """The referring record of a Bench-D entry; the clip is ``video_root/<video>`` (an .mp4)."""
    path = Path(video_root) / rec.video
    if not path.exists():
        raise VideoDecodeError(
            f"video {path} is missing (record {rec.id}, under --videos {video_root}); unzip Panda-70M-part.zip there"
        )
    return _object_record(
        str(rec.id),
        rec.video,
        rec.caption,
        rec.object,
        rec.frame_idx,
        mode,
        video_path=path,
        question=question,
    )
