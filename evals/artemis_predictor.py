"""The real Artemis model behind the :class:`~evals.protocol.Predictor` protocol (via ``artemis_model.pipeline``).

Each record's ground-truth track (the data set's ``track_list``, or the boxes derived from VideoRefer masks) is
given to the pipeline, so no tracker runs: as in the original protocol, which read precomputed tracks. Each video is
decoded and encoded once. ``batching="across_videos"`` (the default) prepares each video's records with
``artemis_model.pipeline.prepare_targets`` and generates up to ``generation_batch_size`` records of any videos in
one call (``generate_prepared``); ``"per_video"`` calls ``describe_many`` once per video (the targets of one video
batched together, different videos one after another).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from artemis_model.errors import ArtemisInputError
from artemis_model.types import Box, GenerationOptions, Track, validate_box
from evals.protocol import EvalRecord

logger = logging.getLogger(__name__)

Batching = Literal["across_videos", "per_video"]
BATCHING: tuple[str, ...] = ("across_videos", "per_video")


def _source_key(record: EvalRecord) -> Path:
    if record.frame_paths is not None:
        return record.frame_paths[0].parent if record.frame_paths else Path()
    assert record.video_path is not None  # guaranteed by EvalRecord
    return record.video_path


def record_track(record: EvalRecord, num_frames: int, width: int, height: int) -> Track:
    """The record's sparse track as a dense :class:`Track` over the opened video.

    Boxes are validated but not clipped: the pipeline clips them unless the processor keeps the original's
    behaviour (``clip_boxes`` False), which normalised a box partly outside the frame as it was."""
    boxes: list[Box | None] = [None] * num_frames
    for frame_idx, box in record.track:
        if frame_idx >= num_frames:
            raise ArtemisInputError(
                f"record {record.record_id!r}: track frame {frame_idx} is beyond the video's {num_frames} frames"
            )
        boxes[frame_idx] = validate_box(box, width, height, clip=False)
    return Track(boxes=tuple(boxes), width=width, height=height)


class ArtemisPredictor:
    """Describes each record's boxed target with an :class:`~artemis_model.pipeline.ArtemisPipeline`."""

    def __init__(
        self,
        pipeline: Any,
        *,
        options: GenerationOptions = GenerationOptions(),
        template: str | None = None,
        batching: Batching = "across_videos",
        generation_batch_size: int = 8,
    ) -> None:
        if batching not in BATCHING:
            raise ValueError(f"batching={batching!r}; allowed: {BATCHING}")
        if generation_batch_size < 1:
            raise ValueError(f"generation_batch_size={generation_batch_size} must be >= 1")
        self.pipeline = pipeline
        self.options = options
        self.template = template
        self.batching = batching
        self.generation_batch_size = generation_batch_size

    @classmethod
    def from_pretrained(
        cls,
        model_dir: Path,
        *,
        options: GenerationOptions = GenerationOptions(),
        device: str | None = None,
        template: str | None = None,
        **kwargs: Any,
    ) -> ArtemisPredictor:
        from artemis_model.pipeline import ArtemisPipeline

        pipeline = ArtemisPipeline.from_pretrained(model_dir, device=device)
        return cls(pipeline, options=options, template=template, **kwargs)

    def _open(self, record: EvalRecord) -> Any:
        from artemis_model.video import open_video

        source = open_video(_source_key(record))
        if record.frame_paths is not None:
            files = [Path(p).name for p in getattr(source, "files", [])]
            wanted = [p.name for p in record.frame_paths]
            if files != wanted:
                raise ArtemisInputError(
                    f"record {record.record_id!r}: its frame list ({len(wanted)} files) is not the whole folder "
                    f"{_source_key(record)} in order ({len(files)} files); frame subsets are not supported"
                )
        return source

    def _groups(self, records: list[EvalRecord]) -> dict[Path, list[EvalRecord]]:
        groups: dict[Path, list[EvalRecord]] = {}
        for rec in records:
            groups.setdefault(_source_key(rec), []).append(rec)
        return groups

    def predict(self, records: list[EvalRecord]) -> list[str]:
        return [text for text, _ in self.predict_with_limits(records)]

    def predict_with_limits(self, records: list[EvalRecord]) -> list[tuple[str, bool]]:
        """Each record's answer and whether it hit ``max_new_tokens`` before ``</s>`` (it may be cut short)."""
        if self.batching == "across_videos":
            return self._predict_across_videos(records)
        answers: dict[str, tuple[str, bool]] = {}
        for key, group in self._groups(records).items():
            source = self._open(group[0])
            tracks = [record_track(r, source.num_frames, source.width, source.height) for r in group]
            descriptions = self.pipeline.describe_many(
                source,
                [r.key_box for r in group],
                frame_idx=[r.key_frame_idx for r in group],
                questions=[r.question for r in group],
                options=self.options,
                tracks=tracks,
                template=self.template,
            )
            logger.debug("described %d targets of %s", len(group), key)
            for rec, desc in zip(group, descriptions, strict=True):
                answers[rec.record_id] = (desc.answer, desc.hit_token_limit)
        return [answers[r.record_id] for r in records]

    def _predict_across_videos(self, records: list[EvalRecord]) -> list[tuple[str, bool]]:
        from artemis_model.pipeline import TargetRequest, generate_answers, prepare_targets

        pipe = self.pipeline
        prepared = {}
        groups: dict[Path, list[tuple[int, EvalRecord]]] = {}
        for pos, rec in enumerate(records):
            groups.setdefault(_source_key(rec), []).append((pos, rec))
        for key, group in groups.items():
            source = self._open(group[0][1])
            requests = [
                TargetRequest(
                    box=r.key_box,
                    frame_idx=r.key_frame_idx,
                    track=record_track(r, source.num_frames, source.width, source.height),
                    question=r.question,
                )
                for _, r in group
            ]
            targets = prepare_targets(
                pipe.model, pipe.processor, source, requests, cache=pipe.cache, template=self.template
            )
            for (pos, _), target in zip(group, targets, strict=True):
                prepared[pos] = target
            logger.debug("prepared %d targets of %s", len(group), key)
        ordered = [prepared[pos] for pos in range(len(records))]
        answers = generate_answers(
            pipe.model,
            pipe.processor,
            ordered,
            self.options,
            batch_size=self.generation_batch_size,
            static_caches=pipe.static_caches,
        )
        return [(a.text, a.hit_limit) for a in answers]
