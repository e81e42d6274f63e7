"""Training data: LLaVA-style conversations (stages 1-2), the collator, and shared helpers.

Stage 3 (VideoRef45K referring records) lives in :mod:`training.referring_data`; :func:`build_dataset`
picks the reader from ``data.format``.

LLaVA records: ``{"id", "image": path | [paths], "video": path, "video_clip": pickle path,
"conversations": [{"from": "human" | "gpt", "value": ...}, ...]}``. Images become ``<image>`` tokens, a
video one ``<video>`` (a video record written with ``<image>`` is read as ``<video>``, as the original did);
a record with media but no placeholder gets them prepended to the first question; a text-only record has no
placeholder and no features. Only the assistant answers (and their ``</s>``) are supervised.

Randomness per sample (templates, frame jitter, a missing key frame) comes from a generator seeded by
``(seed, index, epoch)``, never the global RNG, so a resumed run sees the same samples.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from artemis_model.processing_artemis import (
    BBOX_ALIAS,
    IGNORE_INDEX,
    IMAGE_TOKEN,
    REGION_TOKEN,
    VIDEO_TOKEN,
    ArtemisProcessor,
)
from training.media import VideoRef, load_feature_pickle, load_images

logger = logging.getLogger(__name__)

HUMAN_ROLES = ("human", "user")
ASSISTANT_ROLES = ("gpt", "assistant")


@dataclass
class Sample:
    """One encoded sample. Media fields are ``None`` when absent.

    ``images``: ``[n, 3, S, S]``; ``video_features``: ``[m, T_max + P, Cv]`` (pickles) or ``video_refs`` (clips
    resolved in the main process); region fields (stage 3): ``region_pixels`` ``[F, 3, S, S]``,
    ``region_frame_ids`` ``[1 + n]`` (into those F frames), ``region_boxes_norm`` ``[1 + n, 4]``.
    """

    input_ids: list[int]
    labels: list[int]
    images: torch.Tensor | None = None
    video_features: torch.Tensor | None = None
    video_refs: list[VideoRef] = field(default_factory=list)
    region_pixels: torch.Tensor | None = None
    region_frame_ids: torch.Tensor | None = None
    region_boxes_norm: torch.Tensor | None = None


def sample_generator(seed: int, index: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded by ``(seed, index, epoch)`` (independent streams per sample and epoch)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), int(epoch)]).generate_state(2)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) << 32 | int(state[1]))


def read_records(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Records of JSON files (a list each) or folders of ``*.json`` (sorted), concatenated in order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.json"))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"data path {p} does not exist")
    records: list[dict[str, Any]] = []
    for f in files:
        data = json.loads(f.read_text())
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{f} must hold a JSON list of records (objects)")
        records += data
    return records


def split_records(
    records: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out): ``ceil(fraction * n)`` records chosen by ``seed`` are held out (order kept)."""
    if fraction <= 0:
        return records, []
    n_eval = max(1, math.ceil(fraction * len(records)))
    if n_eval >= len(records):
        raise ValueError(f"eval_fraction {fraction} leaves no training records out of {len(records)}")
    perm = np.random.default_rng(seed).permutation(len(records))
    held = set(perm[:n_eval].tolist())
    return (
        [r for i, r in enumerate(records) if i not in held],
        [r for i, r in enumerate(records) if i in held],
    )


def conversation_turns(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(question, answer) pairs of a LLaVA ``conversations`` list (human then gpt, alternating)."""
    conv = record.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise ValueError(f"record {record.get('id')!r} has no 'conversations' list")
    if conv[0].get("from") not in HUMAN_ROLES:
        conv = conv[1:]  # a leading assistant message has no question: LLaVA drops it too
    if len(conv) < 2 or len(conv) % 2:
        raise ValueError(
            f"record {record.get('id')!r}: conversations must alternate human/gpt, got {len(conv)}"
        )
    turns = []
    for q, a in zip(conv[::2], conv[1::2], strict=True):
        if q.get("from") not in HUMAN_ROLES or a.get("from") not in ASSISTANT_ROLES:
            raise ValueError(
                f"record {record.get('id')!r}: roles must alternate {HUMAN_ROLES} then {ASSISTANT_ROLES}, "
                f"got {q.get('from')!r}, {a.get('from')!r}"
            )
        turns.append((str(q.get("value", "")), str(a.get("value", ""))))
    return turns


def truncate(
    input_ids: list[int], labels: list[int], max_length: int, media_ids: set[int]
) -> tuple[list, list]:
    """Cut to ``max_length`` tokens; refuses to cut through media placeholders (their features must fit)."""
    if len(input_ids) <= max_length:
        return input_ids, labels
    if any(t in media_ids for t in input_ids[max_length:]):
        raise ValueError(
            f"sample of {len(input_ids)} tokens exceeds max_length {max_length} inside its media tokens"
        )
    return input_ids[:max_length], labels[:max_length]


class ConversationDataset(Dataset):
    """LLaVA-format records (stages 1-2): images, videos (global features) and text-only conversations."""

    def __init__(
        self,
        records: list[dict[str, Any]],
        processor: ArtemisProcessor,
        *,
        media_root: str | Path = ".",
        global_features: str = "cache",
        max_length: int = 2048,
        template: str = "train",
        video_tokens: int | None = None,
    ) -> None:
        self.records = records
        self.processor = processor
        self.media_root = Path(media_root)
        self.global_features = global_features
        self.max_length = max_length
        self.template = template
        self.video_tokens = video_tokens or processor.num_video_tokens
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def _turns(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        turns = conversation_turns(record)
        images = record.get("image")
        n_images = 0 if images is None else (len(images) if isinstance(images, list) else 1)
        has_video = bool(record.get("video") or record.get("video_clip"))
        text = "".join(q for q, _ in turns)
        if has_video:
            turns = [(q.replace(IMAGE_TOKEN, VIDEO_TOKEN), a) for q, a in turns]
            if VIDEO_TOKEN not in text and IMAGE_TOKEN not in text:
                turns[0] = (f"{VIDEO_TOKEN}\n{turns[0][0]}", turns[0][1])
        elif n_images and IMAGE_TOKEN not in text:
            turns[0] = (f"{IMAGE_TOKEN}\n" * n_images + turns[0][0], turns[0][1])
        for _q, a in turns:
            if any(t in a for t in (IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN, BBOX_ALIAS)):
                raise ValueError(f"record {record.get('id')!r}: an answer contains a media placeholder")
        return turns

    def encode_text(self, index: int) -> tuple[list[int], list[int]]:
        """``input_ids``, ``labels`` of a record without loading media (for baselines and checks)."""
        enc = self.processor.encode_conversation(self._turns(self.records[index]), template=self.template)
        return enc.input_ids, enc.labels

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        turns = self._turns(record)
        text = "".join(q for q, _ in turns)
        enc = self.processor.encode_conversation(turns, template=self.template)
        sample = Sample(input_ids=enc.input_ids, labels=enc.labels)
        if record.get("image") is not None:
            paths = record["image"] if isinstance(record["image"], list) else [record["image"]]
            if text.count(IMAGE_TOKEN) != len(paths):
                raise ValueError(
                    f"record {record.get('id')!r}: {len(paths)} images but {text.count(IMAGE_TOKEN)} <image>"
                )
            frames = load_images([self.media_root / p for p in paths])
            sample.images = torch.cat(
                [self.processor.preprocess_frames([f], purpose="region") for f in frames]
            )  # n x [1, 3, S, S] -> [n, 3, S, S]
        if VIDEO_TOKEN in text:
            if text.count(VIDEO_TOKEN) != 1:
                raise ValueError(
                    f"record {record.get('id')!r}: one <video> per record, got {text.count(VIDEO_TOKEN)}"
                )
            if self.global_features == "pickle":
                if not record.get("video_clip"):
                    raise ValueError(
                        f"record {record.get('id')!r} has no 'video_clip' for global_features=pickle"
                    )
                feats = load_feature_pickle(
                    self.media_root / record["video_clip"], expected_rows=self.video_tokens
                )
                sample.video_features = feats[None]  # [rows, Cv] -> [1, rows, Cv]
            else:
                if not record.get("video"):
                    raise ValueError(f"record {record.get('id')!r} has no 'video' to compute features from")
                sample.video_refs = [VideoRef(path=str(self.media_root / record["video"]))]
        media = {self.processor.token_ids[t] for t in (IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN)}
        sample.input_ids, sample.labels = truncate(sample.input_ids, sample.labels, self.max_length, media)
        return sample


class ArtemisCollator:
    """Right-padded batch (labels padded with -100) plus the media of every sample, in sample order."""

    def __init__(self, processor: ArtemisProcessor) -> None:
        self.processor = processor

    def __call__(self, samples: Sequence[Sample]) -> dict[str, Any]:
        padded = self.processor.pad(
            [s.input_ids for s in samples], labels=[s.labels for s in samples], padding_side="right"
        )
        batch: dict[str, Any] = {k: torch.tensor(v, dtype=torch.long) for k, v in padded.items()}
        images = [s.images for s in samples if s.images is not None]
        batch["pixel_values"] = torch.cat(images) if images else None
        pickled = [s.video_features for s in samples if s.video_features is not None]
        refs = [r for s in samples for r in s.video_refs]
        if pickled and refs:
            raise ValueError(
                "a batch mixes pickled video features and video files; use one global_features mode"
            )
        batch["video_features"] = torch.cat(pickled) if pickled else None
        batch["video_refs"] = refs
        with_regions = [s for s in samples if s.region_pixels is not None]
        if with_regions:
            offsets = np.cumsum([0] + [s.region_pixels.shape[0] for s in with_regions])
            batch["region_pixel_values"] = torch.cat(
                [s.region_pixels for s in with_regions]
            )  # [sum F, 3, S, S]
            batch["region_frame_ids"] = torch.stack(
                [s.region_frame_ids + int(off) for s, off in zip(with_regions, offsets, strict=False)]
            )  # [B_r, 1 + n]
            batch["region_boxes_norm"] = torch.stack(
                [s.region_boxes_norm for s in with_regions]
            )  # [B_r, 1+n, 4]
        return batch


def unigram_baseline(
    train_labels: Sequence[Sequence[int]], eval_labels: Sequence[Sequence[int]], vocab_size: int
) -> float:
    """Cross-entropy (nats per supervised token) on ``eval_labels`` of the add-one smoothed token frequencies
    of ``train_labels`` (-100 entries ignored): what a model knowing only answer-token frequencies achieves."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for labels in train_labels:
        ids = np.asarray([t for t in labels if t != IGNORE_INDEX], dtype=np.int64)
        np.add.at(counts, ids, 1.0)
    logp = np.log(counts / counts.sum())
    eval_ids = np.asarray([t for labels in eval_labels for t in labels if t != IGNORE_INDEX], dtype=np.int64)
    if eval_ids.size == 0:
        raise ValueError("eval labels hold no supervised token")
    return float(-logp[eval_ids].mean())
