"""Stage 3 data: VideoRef45K-style referring records -> prompt with region tokens + RoI frames and boxes.

Record fields (paths relative to ``media_root``):

- the clip: ``video`` (a video file or frame folder; ``track_list[i]`` is frame ``i``) or ``frame_path`` +
  ``frame_id`` (file names, ``track_list`` aligned with them); ``clip_path``: the official 356xC feature pickle
  (read only with ``global_features=pickle``);
- ``track_list``: per frame a pixel ``xyxy`` box or ``[]`` (target absent / untracked);
- ``key_frame_id`` (a ``frame_id`` entry or a frame index) and ``key_frame_box``: the query; when missing or
  empty, a tracked frame is chosen by the sample's seeded generator;
- ``caption``: the answer; ``question``: optional, must contain exactly one ``<bbox>`` (else a template).

Prompt: ``"<video>\\n" + question + " " + note + "<region>" * K + "."`` with K = ``num_region_tokens``; the
tracked frames are chosen by :func:`artemis_model.selection.choose_track_frames` in the jittered ``average``
mode (``track_sampling="uniform"``: the inference choice). Boxes are normalised by the key frame's size (the
first frame loaded), as the original.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from artemis_model.processing_artemis import (
    BBOX_ALIAS,
    IMAGE_TOKEN,
    REGION_TOKEN,
    VIDEO_TOKEN,
    ArtemisProcessor,
)
from artemis_model.prompts import QUESTION_TEMPLATES, TRACKING_NOTES, referring_prompt
from artemis_model.selection import TRACK_FRAME_MODES, choose_track_frames
from training.data import Sample, sample_generator, truncate
from training.media import VideoRef, load_feature_pickle

logger = logging.getLogger(__name__)


def _box(value: Any) -> list[float] | None:
    """A non-empty 4-number box or ``None`` for ``[]`` / ``None``."""
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError(f"box {value!r} must be [x1, y1, x2, y2] or []")
    return [float(v) for v in value]


class ReferringDataset(Dataset):
    """VideoRef45K-style records -> :class:`~training.data.Sample` with region frames and boxes."""

    def __init__(
        self,
        records: list[dict[str, Any]],
        processor: ArtemisProcessor,
        *,
        media_root: str | Path = ".",
        global_features: str = "cache",
        num_tracked: int = 8,
        num_region_tokens: int = 4,
        track_sampling: str = "average",
        max_length: int = 2048,
        template: str = "train",
        seed: int = 0,
    ) -> None:
        self.records = records
        self.processor = processor
        self.media_root = Path(media_root)
        self.global_features = global_features
        self.num_tracked = num_tracked
        self.num_region_tokens = num_region_tokens
        if track_sampling not in TRACK_FRAME_MODES:
            raise ValueError(
                f"track_sampling {track_sampling!r} is unknown; allowed: {', '.join(map(repr, TRACK_FRAME_MODES))}"
            )
        self.track_sampling = track_sampling
        self.max_length = max_length
        self.template = template
        self.seed = seed
        self.epoch = 0
        for i, record in enumerate(records):
            self._check(i, record)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    @staticmethod
    def _check(index: int, record: dict[str, Any]) -> None:
        where = f"referring record {index} ({record.get('video_name') or record.get('video') or record.get('frame_path')!r})"
        if not record.get("caption"):
            raise ValueError(f"{where} has no caption")
        tracks = record.get("track_list")
        if not isinstance(tracks, list) or not any(_box(b) for b in tracks):
            raise ValueError(f"{where}: track_list must be a list with at least one non-empty box")
        if not record.get("video") and not (record.get("frame_path") is not None and record.get("frame_id")):
            raise ValueError(f"{where} needs 'video' or 'frame_path' + 'frame_id'")
        if record.get("frame_id") and len(record["frame_id"]) != len(tracks):
            raise ValueError(
                f"{where}: frame_id has {len(record['frame_id'])} entries, track_list {len(tracks)}"
            )
        question = record.get("question")
        if question and (question.count(BBOX_ALIAS) + question.count(REGION_TOKEN)) != 1:
            raise ValueError(f"{where}: question must contain exactly one <bbox>, got {question!r}")

    # ---- choices ------------------------------------------------------------------------------------------
    def _key_frame(
        self, record: dict[str, Any], candidates: list[int], gen: torch.Generator
    ) -> tuple[int, list[float]]:
        box = _box(record.get("key_frame_box"))
        key = record.get("key_frame_id")
        if box is not None and key not in (None, "", []):
            frame_ids = record.get("frame_id") or []
            if key in frame_ids:
                return frame_ids.index(key), box
            if isinstance(key, int) and 0 <= key < len(record["track_list"]):
                return key, box
            raise ValueError(f"key_frame_id {key!r} is neither a frame_id entry nor a frame index")
        pick = candidates[int(torch.randint(len(candidates), (1,), generator=gen))]
        return pick, _box(record["track_list"][pick])  # type: ignore[return-value]

    def prompt(self, record: dict[str, Any], gen: torch.Generator) -> str:
        question = (
            record.get("question")
            or QUESTION_TEMPLATES[int(torch.randint(len(QUESTION_TEMPLATES), (1,), generator=gen))]
        )
        question = question.replace(BBOX_ALIAS, REGION_TOKEN)
        note = int(torch.randint(len(TRACKING_NOTES), (1,), generator=gen))
        return referring_prompt(question, self.num_region_tokens, template="train", note=note)

    def choose(self, index: int) -> tuple[str, int, list[float], list[int]]:
        """(prompt, key frame, key box, tracked frames) of sample ``index`` at the current epoch."""
        record = self.records[index]
        gen = sample_generator(self.seed, index, self.epoch)
        candidates = [i for i, b in enumerate(record["track_list"]) if _box(b) is not None]
        tracked = choose_track_frames(candidates, self.num_tracked, mode=self.track_sampling, generator=gen)
        key, key_box = self._key_frame(record, candidates, gen)
        return self.prompt(record, gen), key, key_box, tracked

    # ---- encoding -----------------------------------------------------------------------------------------
    def _clip(self, record: dict[str, Any]) -> VideoRef:
        if record.get("video"):
            return VideoRef(path=str(self.media_root / record["video"]))
        folder = self.media_root / record["frame_path"]
        return VideoRef(frame_files=tuple(str(folder / str(name)) for name in record["frame_id"]))

    def encode_text(self, index: int) -> tuple[list[int], list[int]]:
        prompt, *_ = self.choose(index)
        enc = self.processor.encode_conversation(
            [(prompt, str(self.records[index]["caption"]))], template=self.template
        )
        return enc.input_ids, enc.labels

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        prompt, key, key_box, tracked = self.choose(index)
        enc = self.processor.encode_conversation([(prompt, str(record["caption"]))], template=self.template)
        order = [key] + tracked
        unique = sorted(set(order))
        source = self._clip(record).open()
        frames = source.get_frames(unique)  # [F, H, W, 3]
        height, width = frames[unique.index(key)].shape[:2]
        boxes = [key_box] + [_box(record["track_list"][f]) for f in tracked]
        sample = Sample(input_ids=enc.input_ids, labels=enc.labels)
        sample.region_pixels = self.processor.preprocess_frames(frames, purpose="region")  # [F, 3, S, S]
        sample.region_frame_ids = torch.tensor([unique.index(f) for f in order], dtype=torch.long)  # [1 + n]
        sample.region_boxes_norm = self.processor.normalize_boxes(boxes, width, height)  # [1 + n, 4]
        if self.global_features == "pickle":
            if not record.get("clip_path"):
                raise ValueError(f"record {index} has no 'clip_path' for global_features=pickle")
            feats = load_feature_pickle(
                self.media_root / record["clip_path"], expected_rows=self.processor.num_video_tokens
            )
            sample.video_features = feats[None]  # [rows, Cv] -> [1, rows, Cv]
        else:
            sample.video_refs = [self._clip(record)]
        media = {self.processor.token_ids[t] for t in (IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN)}
        sample.input_ids, sample.labels = truncate(sample.input_ids, sample.labels, self.max_length, media)
        return sample
