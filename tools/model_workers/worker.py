"""One model worker, without Ray: loads the describer once and describes a batch of requests together.

:class:`DescriberWorker` is what each Ray Serve replica (:mod:`tools.model_workers.serve`) holds. Its
:meth:`~DescriberWorker.describe_batch` takes requests of any conversations and any API replicas (Serve's
``@serve.batch`` gathers them) and, with an Artemis model, runs them as ONE batched generation: the targets of
each video are prepared together (:func:`artemis_model.pipeline.prepare_targets`: one feature pass per video),
then :func:`artemis_model.pipeline.generate_answers` answers all prepared targets of all videos at once. A
weight-free describer describes request by request. A request that is refused (a path outside the store, a bad
box) gets its own :class:`~tools.model_workers.wire.WorkerErrorOut`; the others of its batch are answered.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from artemis_model.errors import ArtemisInputError, FrameIndexError, InvalidBoxError, VideoDecodeError
from artemis_model.types import Box, Description, GenerationOptions, Track
from tools.describers import (
    DescriberKind,
    ModelDescriber,
    build_describer,
    choose_describer,
    describer_name,
)
from tools.model_workers.wire import (
    DescribeRequest,
    DescribeResponse,
    DescriptionOut,
    ErrorCode,
    WorkerErrorOut,
)
from tools.runtime import VideoStore
from tools.video import SubVideo, VideoLike, as_video_source

logger = logging.getLogger(__name__)

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class WorkerConfig(BaseModel):
    """What a model worker needs: the shared data store's root, and the describer by the rule of every entry
    point (:func:`tools.describers.choose_describer` on ``model_dir`` and ``describer``, on ``device`` in
    ``dtype``), with its limits. ``max_batch_targets``: targets per ``generate`` call of a batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_root: Path
    model_dir: Path | None = None
    describer: DescriberKind = "auto"
    device: str | None = None
    dtype: Dtype = "auto"
    max_new_tokens: int = Field(default=GenerationOptions().max_new_tokens, ge=1)
    max_batch_targets: int = Field(default=16, ge=1)
    feature_cache_bytes: int = Field(default=2 * 2**30, ge=0)
    max_open_videos: int = Field(default=8, ge=1)


def torch_dtype(name: Dtype) -> Any:
    """The torch dtype named ``name`` (``None`` for ``auto``: as saved)."""
    if name == "auto":
        return None
    import torch

    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"dtype {name!r} is unknown; allowed: auto, {', '.join(table)}")
    return table[name]


class RequestRefused(Exception):
    """A request the worker does not serve (``status``/``code``: its HTTP response)."""

    def __init__(self, status: int, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


_INPUT_CODES: list[tuple[type[Exception], ErrorCode]] = [
    (InvalidBoxError, "invalid_box"),
    (FrameIndexError, "frame_out_of_range"),
    (VideoDecodeError, "video_decode_error"),
    (ArtemisInputError, "invalid_input"),
]


def _refusal(exc: Exception) -> RequestRefused:
    if isinstance(exc, RequestRefused):
        return exc
    for cls, code in _INPUT_CODES:
        if isinstance(exc, cls):
            return RequestRefused(422, code, str(exc))
    raise exc


@dataclass
class _Job:
    """One request of a batch once its video is opened (``key``: its file and segment, the group it is prepared
    with), with the tracks it carries (``None``: the worker tracks its boxes)."""

    index: int
    request: DescribeRequest
    key: tuple[str, int, int]
    video: VideoLike
    boxes: list[Box]
    tracks: list[Track] | None


class DescriberWorker:
    """The describer of one worker process (loaded once) and the videos it has opened (by path, at most
    ``config.max_open_videos``), serving :meth:`describe_batch`."""

    def __init__(self, config: WorkerConfig, *, name: str | None = None) -> None:
        self.config = config
        self.root = config.data_root.resolve()
        if not self.root.is_dir():
            raise ValueError(
                f"data_root {config.data_root} is not a directory: mount the shared data store there"
            )
        choice = choose_describer(config.model_dir, config.describer)
        cache = None
        if choice.kind != "heuristic":
            from artemis_model.features import FeatureCache

            cache = FeatureCache(max_bytes=config.feature_cache_bytes)
        self.describer = build_describer(
            choice,
            device=config.device,
            dtype=torch_dtype(config.dtype),
            options=GenerationOptions(max_new_tokens=config.max_new_tokens),
            cache=cache,
        )
        self.videos = VideoStore(config.max_open_videos)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batches = 0
        logger.info("model worker %s describes with %s", self.name, describer_name(self.describer))

    def resolve(self, video: str) -> Path:
        """The file of ``video`` (a path relative to the store's root); :class:`RequestRefused` when it lies
        outside the store (``..``, an absolute path elsewhere, a link out of it) or does not exist."""
        path = (self.root / video).resolve()
        if not path.is_relative_to(self.root):
            raise RequestRefused(
                403,
                "outside_store",
                f"video {video!r} lies outside the worker's data store {self.root}: send a path relative to the "
                "store's root (the service's data_dir)",
            )
        if not path.exists():
            raise RequestRefused(
                404, "video_not_found", f"video {video!r} is not in the data store {self.root}"
            )
        return path

    def _job(
        self, index: int, request: DescribeRequest, opened: dict[tuple[str, int, int], VideoLike]
    ) -> _Job:
        path = self.resolve(request.video)
        whole = self.videos.open(path)
        end = request.end if request.end is not None else whole.num_frames
        key = (str(path), request.start, end)
        if key not in opened:  # one object per video of the batch: its targets are prepared together
            whole_video = (request.start, end) == (0, whole.num_frames)
            opened[key] = whole if whole_video else SubVideo(whole, request.start, end)
        video = opened[key]
        tracks = None
        if all(t.track is not None for t in request.targets):
            tracks = [t.to_track(video.width, video.height) for t in request.targets]
            for track in tracks:
                assert track is not None
                if track.num_frames != video.num_frames:
                    raise InvalidBoxError(
                        f"a track of {track.num_frames} frames for a video of {video.num_frames} frames"
                    )
        boxes = [tuple(t.box) for t in request.targets]
        return _Job(index, request, key, video, boxes, tracks)  # type: ignore[arg-type]

    def describe_batch(
        self, requests: Sequence[DescribeRequest], deadlines: Sequence[float | None] | None = None
    ) -> list[DescribeResponse | WorkerErrorOut]:
        """One result per request, in order: its descriptions, or why it was refused. ``deadlines``: per request
        the :func:`time.monotonic` time after which its caller no longer waits (from its ``budget_s`` when it
        arrived); a request past it is refused (408 ``deadline_passed``) and costs no generation."""
        self.batches += 1
        results: list[DescribeResponse | WorkerErrorOut | None] = [None] * len(requests)
        jobs: list[_Job] = []
        opened: dict[tuple[str, int, int], VideoLike] = {}
        now = time.monotonic()
        for i, request in enumerate(requests):
            deadline = deadlines[i] if deadlines is not None else None
            if deadline is not None and now > deadline:
                results[i] = self._error(
                    RequestRefused(
                        408,
                        "deadline_passed",
                        f"the request waited {now - deadline + (request.budget_s or 0):.1f} s, past its budget "
                        f"of {request.budget_s} s: its caller no longer waits, so it was not described",
                    )
                )
                continue
            try:
                jobs.append(self._job(i, request, opened))
            except (RequestRefused, ArtemisInputError) as exc:
                results[i] = self._error(_refusal(exc))
        batch_targets = sum(len(j.boxes) for j in jobs)
        described: dict[int, list[Description]] = {}
        if isinstance(self.describer, ModelDescriber):
            for index, outcome in self._generate_together(jobs).items():
                if isinstance(outcome, RequestRefused):
                    results[index] = self._error(outcome)
                else:
                    described[index] = outcome
        else:
            for job in jobs:
                try:
                    described[job.index] = self._describe_alone(job)
                except ArtemisInputError as exc:
                    results[job.index] = self._error(_refusal(exc))
        for index, descs in described.items():
            results[index] = DescribeResponse(
                descriptions=[DescriptionOut.from_description(d) for d in descs],
                worker=self.name,
                batch_requests=len(requests),
                batch_targets=batch_targets,
            )
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _error(self, refusal: RequestRefused) -> WorkerErrorOut:
        logger.info("model worker %s refused a request: %s", self.name, refusal.detail)
        return WorkerErrorOut(
            status=refusal.status, code=refusal.code, detail=refusal.detail, worker=self.name
        )

    def _describe_alone(self, job: _Job) -> list[Description]:
        """A describer without weights to batch: its ``describe_many`` (or one call per target)."""
        question = job.request.question
        frames = [t.frame_idx for t in job.request.targets]
        many = getattr(self.describer, "describe_many", None)
        if callable(many):
            return many(job.video, job.boxes, frame_idxs=frames, question=question, tracks=job.tracks)
        return [
            self.describer(job.video, b, frame_idx=f, question=question)
            for b, f in zip(job.boxes, frames, strict=True)
        ]

    def _generate_together(self, jobs: list[_Job]) -> dict[int, list[Description] | RequestRefused]:
        """Prepare the targets of each video together (one feature pass per video, whichever conversations
        asked), then answer every prepared target of every video in one
        :func:`~artemis_model.pipeline.generate_answers` call."""
        from artemis_model.pipeline import description_of, generate_answers

        assert isinstance(self.describer, ModelDescriber)
        pipe = self.describer.pipeline
        out: dict[int, list[Description] | RequestRefused] = {}
        by_video: dict[tuple[str, int, int], list[tuple[_Job, list[Any]]]] = {}
        for job in jobs:
            try:
                targets = self._targets(job)
            except ArtemisInputError as exc:
                out[job.index] = _refusal(exc)
                continue
            by_video.setdefault(job.key, []).append((job, targets))
        prepared: list[tuple[int, Any, dict[str, float]]] = []  # (request index, PreparedTarget, timings)
        for group in by_video.values():
            try:
                prepared += self._prepare(group)
            except ArtemisInputError:
                for job, targets in group:  # find the request at fault: prepare each alone
                    try:
                        prepared += self._prepare([(job, targets)])
                    except ArtemisInputError as exc:
                        out[job.index] = _refusal(exc)
        if not prepared:
            return out
        start = time.perf_counter()
        answers = generate_answers(
            pipe.model,
            pipe.processor,
            [p for _, p, _ in prepared],
            self.describer.options,
            batch_size=self.config.max_batch_targets,
            static_caches=pipe.static_caches,
        )
        took = time.perf_counter() - start
        for (index, target, timings), answer in zip(prepared, answers, strict=True):
            descs = out.setdefault(index, [])
            assert isinstance(descs, list)
            descs.append(description_of(target, answer, {**timings, "generate": took}))
        return out

    def _targets(self, job: _Job) -> list[Any]:
        """The :class:`~artemis_model.pipeline.TargetRequest` of each target of ``job``: checked and tracked
        (unless the request carries the tracks), as :func:`artemis_model.pipeline.describe_many` does."""
        from artemis_model.pipeline import TargetRequest
        from artemis_model.prompts import normalize_question
        from artemis_model.tracking import track_box
        from artemis_model.types import validate_box, validate_frame_idx

        source = as_video_source(job.video)
        frames = [t.frame_idx for t in job.request.targets]
        checked = []
        for box, f in zip(job.boxes, frames, strict=True):
            validate_frame_idx(f, source.num_frames)
            # kept unclipped: prepare_targets clips per processor; the tracker gets the clipped box
            checked.append(validate_box(box, source.width, source.height, clip=False))
        tracks = job.tracks
        if tracks is None:
            tracks = [
                track_box(source, validate_box(b, source.width, source.height), frame_idx=f)
                for b, f in zip(checked, frames, strict=True)
            ]
        question = normalize_question(job.request.question)
        return [
            TargetRequest(box=b, frame_idx=f, track=t, question=question)
            for b, f, t in zip(checked, frames, tracks, strict=True)
        ]

    def _prepare(self, group: list[tuple[_Job, list[Any]]]) -> list[tuple[int, Any, dict[str, float]]]:
        """Prepare the targets of ``group`` (requests on one video) in one
        :func:`~artemis_model.pipeline.prepare_targets` call."""
        from artemis_model.pipeline import prepare_targets

        assert isinstance(self.describer, ModelDescriber)
        pipe = self.describer.pipeline
        timings: dict[str, float] = {}
        source = as_video_source(group[0][0].video)
        requests = [t for _, targets in group for t in targets]
        prepared = prepare_targets(
            pipe.model, pipe.processor, source, requests, cache=pipe.cache, timings=timings
        )
        owners = [job.index for job, targets in group for _ in targets]
        return [(index, p, timings) for index, p in zip(owners, prepared, strict=True)]

    def close(self) -> None:
        self.videos.close()
