""":class:`RemoteDescriber`: the :class:`~tools.describers.Describer` of an API replica whose model runs on the
model workers (``ARTEMIS_MODEL_WORKERS``): HTTP to Ray Serve's proxy, so the replica needs no Ray and no model.

The video travels as its path inside the shared data store (relative to ``data_root``; a segment as
``start``/``end``): the replica finds the file of an opened video with ``locate`` (the runtime's
:meth:`tools.runtime.VideoStore.path_of`). Answers of the workers' errors: a bad box or frame raises the same
:mod:`artemis_model.errors` type a local describer raises; a full queue or unreachable workers raise what
``unavailable(message, retry_after_s)`` makes (default :class:`WorkersUnavailableError`; the service makes its
503 with ``Retry-After``); anything else :class:`ModelWorkerError`. Thread-safe: one ``httpx.Client`` (its
connection pool) serves every turn of the replica.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from artemis_model.errors import ArtemisInputError, FrameIndexError, InvalidBoxError, VideoDecodeError
from artemis_model.types import Box, Description, Track
from tools.model_workers.wire import DescribeRequest, DescribeResponse, TargetIn, WorkerErrorOut
from tools.video import SubVideo, VideoLike

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_S = 2.0
"""Retry-After of a 503 whose response names none, and of unreachable workers."""


class WorkersUnavailableError(RuntimeError):
    """The model workers' queue is full, or they cannot be reached: try again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelWorkerError(RuntimeError):
    """The model workers refused a request for a reason that is not the user's (e.g. a video path outside the
    workers' data store: the replicas and the workers mount different stores) or failed."""


class DeadlinePassedError(TimeoutError):
    """The caller's deadline (its turn's wall-time budget) passed before the workers answered; they drop a
    request whose budget is spent instead of describing it."""


_INPUT_ERRORS: dict[str, type[ArtemisInputError]] = {
    "invalid_box": InvalidBoxError,
    "frame_out_of_range": FrameIndexError,
    "video_decode_error": VideoDecodeError,
    "invalid_input": ArtemisInputError,
}


class RemoteDescriber:
    """Describes on the model workers at ``url`` (``http://head:8000/describe``).

    ``data_root``: this replica's mount of the shared data store (the service's ``data_dir``); ``locate``: the
    file of an opened video (``None`` when unknown); ``timeout_s``: how long one request may take (queue wait
    included); ``connections``: the pool (the replica's concurrent turns)."""

    def __init__(
        self,
        url: str,
        *,
        data_root: Path,
        locate: Callable[[VideoLike], Path | None],
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        connections: int = 8,
        unavailable: Callable[[str, float], Exception] = WorkersUnavailableError,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"model workers URL {url!r} must start with http:// or https://")
        self.url = url
        self.name = f"remote {url}"
        self.data_root = data_root.resolve()
        self.locate = locate
        self.unavailable = unavailable
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self.served_by: dict[str, int] = {}
        """Requests answered per worker (this replica's view)."""
        self.batch_sizes: dict[int, int] = {}
        """Requests answered per size (in requests) of the batch they ran in."""
        self._count_lock = threading.Lock()

    def where(self, video: VideoLike) -> tuple[str, int, int | None]:
        """``(path relative to the store, start, end)`` of ``video`` (a segment: its frames in the file)."""
        start, end = 0, None
        while isinstance(video, SubVideo):
            start, end = video.start + start, video.start + (end if end is not None else video.num_frames)
            video = video.video
        path = self.locate(video)
        if path is None:
            raise ModelWorkerError(
                f"the video {getattr(video, 'name', type(video).__name__)!r} was not opened from a file of the "
                "data store: the model workers read videos from the shared store only"
            )
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.data_root):
            raise ModelWorkerError(
                f"video {resolved} lies outside the shared data store {self.data_root}: the model workers "
                "read videos from the store only"
            )
        return resolved.relative_to(self.data_root).as_posix(), start, end

    def __call__(
        self,
        video: VideoLike,
        box: Box,
        *,
        frame_idx: int,
        question: str | None,
        deadline: float | None = None,
    ) -> Description:
        return self.describe_many(video, [box], frame_idxs=[frame_idx], question=question, deadline=deadline)[
            0
        ]

    def describe_many(
        self,
        video: VideoLike,
        boxes: list[Box],
        *,
        frame_idxs: list[int],
        question: str | None,
        tracks: list[Track] | None = None,
        deadline: float | None = None,
    ) -> list[Description]:
        """Several targets of one video in one request (the workers batch it with other conversations').

        ``deadline``: the :func:`time.monotonic` time after which the caller (a turn's wall-time budget) no longer
        waits: the request carries the seconds left (``budget_s``), the workers drop it unanswered once they are
        spent, and this call waits no longer than that (:class:`DeadlinePassedError` either way)."""
        if len(frame_idxs) != len(boxes) or (tracks is not None and len(tracks) != len(boxes)):
            raise ArtemisInputError(
                f"{len(boxes)} boxes, {len(frame_idxs)} frames and "
                f"{'no' if tracks is None else len(tracks)} tracks: need one each"
            )
        path, start, end = self.where(video)
        budget_s = None
        if deadline is not None:
            budget_s = deadline - time.monotonic()
            if budget_s <= 0:
                raise DeadlinePassedError("the turn's wall-time budget is spent: nothing sent to the workers")
        request = DescribeRequest(
            budget_s=budget_s,
            video=path,
            start=start,
            end=end,
            question=question,
            targets=[
                TargetIn(
                    box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                    frame_idx=int(f),
                    track=None if tracks is None else tracks[i].to_track_list(),
                )
                for i, (box, f) in enumerate(zip(boxes, frame_idxs, strict=True))
            ],
        )
        response = self._post(request, timeout_s=budget_s)
        with self._count_lock:
            self.served_by[response.worker] = self.served_by.get(response.worker, 0) + 1
            self.batch_sizes[response.batch_requests] = self.batch_sizes.get(response.batch_requests, 0) + 1
        return [d.to_description() for d in response.descriptions]

    def _post(self, request: DescribeRequest, timeout_s: float | None = None) -> DescribeResponse:
        extra: dict[str, Any] = {}
        if timeout_s is not None:  # never wait past the caller's deadline (plus the answer's way back)
            extra["timeout"] = httpx.Timeout(
                min(self.timeout_s, timeout_s + 1.0), connect=self.connect_timeout_s
            )
        try:
            r = self.client.post(self.url, content=request.model_dump_json(), headers=_JSON, **extra)
        except httpx.TimeoutException as exc:
            if timeout_s is not None and timeout_s + 1.0 < self.timeout_s:
                raise DeadlinePassedError(
                    f"the model workers did not answer within the turn's {timeout_s:.1f} s left"
                ) from exc
            raise self.unavailable(
                f"the model workers at {self.url} did not answer in time ({type(exc).__name__}); retry later",
                DEFAULT_RETRY_AFTER_S,
            ) from exc
        except httpx.TransportError as exc:
            raise self.unavailable(
                f"the model workers at {self.url} cannot be reached ({exc}); retry later",
                DEFAULT_RETRY_AFTER_S,
            ) from exc
        if r.status_code == 200:
            return DescribeResponse.model_validate_json(r.content)
        if r.status_code in (429, 503):  # Serve's backpressure, or no replica up
            raise self.unavailable(
                f"the model workers are busy ({r.status_code}: {r.text[:200]}); retry later", _retry_after(r)
            )
        try:
            error = WorkerErrorOut.model_validate_json(r.content)
        except ValidationError:
            raise ModelWorkerError(
                f"the model workers at {self.url} answered {r.status_code}: {r.text[:500]}"
            ) from None
        if error.code == "deadline_passed":
            raise DeadlinePassedError(error.detail)
        if error.code in _INPUT_ERRORS:
            raise _INPUT_ERRORS[error.code](error.detail)
        raise ModelWorkerError(
            f"model worker {error.worker} refused the request ({error.code}): {error.detail}"
        )

    def stats(self) -> dict[str, Any]:
        """What this describer's requests saw: answered requests per worker and per batch size."""
        with self._count_lock:
            return {
                "url": self.url,
                "requests": sum(self.served_by.values()),
                "by_worker": dict(sorted(self.served_by.items())),
                "batch_requests": dict(sorted(self.batch_sizes.items())),
            }

    def close(self) -> None:
        self.client.close()


_JSON = {"content-type": "application/json"}


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
    return seconds if math.isfinite(seconds) and seconds >= 0 else DEFAULT_RETRY_AFTER_S
