"""Running a turn for an HTTP route: the steps ``POST /conversations/{id}/messages`` and the OpenAI-compatible
``POST /v1/chat/completions`` share.

:func:`conversation_video` + :func:`checked_box` check the request against the conversation's video;
:func:`begin_turn` stores the user message and queues the turn on the model worker (:func:`start_turn`: 503
when busy, no job when the client left while waiting); the route then streams ``turn.events`` or waits for
the result with :func:`finish_turn` (a failed turn raises its :class:`ServiceError`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from agent.api.errors import ConflictError, NotFoundError, QuotaExceededError, ServiceError
from agent.api.quota import Reservation
from agent.api.runtime import ServiceRuntime
from agent.api.storage import ConversationRecord, VideoRecord
from agent.api.turns import TurnRequest, TurnResult, run_turn
from agent.api.worker import Job
from artemis_model.types import Box, validate_box, validate_frame_idx

logger = logging.getLogger(__name__)
EVIDENCE_FRAMES_ESTIMATE = 12
"""Evidence frames one turn is expected to write (key frames of a few targets), for its disk reservation."""


@dataclass
class StartedTurn:
    """A stored user message and its queued turn: ``job`` is ``None`` when the client left before it started."""

    message_id: int
    events: asyncio.Queue
    job: Job | None


def conversation_video(rt: ServiceRuntime, conv: ConversationRecord) -> VideoRecord:
    """The conversation's video; :class:`ConflictError` (409) when it was deleted."""
    try:
        return rt.store.get_video(conv.video_id)
    except NotFoundError as exc:
        raise ConflictError(f"the video {conv.video_id} of this conversation was deleted") from exc


def checked_box(video: VideoRecord, box: Sequence[float] | None, frame_idx: int) -> Box | None:
    """``box`` validated (and clipped) on frame ``frame_idx`` of ``video``; ``None`` when no box is given."""
    if box is None:
        return None
    validate_frame_idx(frame_idx, video.num_frames)
    return validate_box(box, video.width, video.height)


async def begin_turn(
    rt: ServiceRuntime,
    request: Request,
    conv: ConversationRecord,
    video: VideoRecord,
    *,
    text: str,
    stored_text: str,
    box: Box | None,
    frame_idx: int,
    choice: int | None = None,
) -> StartedTurn:
    """Store the user message (``stored_text``) and queue the turn asking ``text`` (see :func:`start_turn`)."""
    message_id = rt.store.add_message(
        conv.id, text=stored_text, box=list(box) if box else None, frame_idx=frame_idx, choice=choice
    )
    reservation = rt.quota.reservation("this turn's evidence frames")
    annotate = rt.settings.annotate_evidence
    if annotate:
        try:
            reservation.ensure(evidence_bytes_estimate(video))
        except QuotaExceededError:
            logger.warning("disk quota full: message %d gets no evidence frames", message_id)
            annotate = False
    req = TurnRequest(
        thread_id=conv.id,
        text=text,
        video_path=rt.store.video_path(video.id),
        box=box,
        frame_idx=frame_idx,
        annotate_dir=rt.store.evidence_dir(video.id, conv.id, message_id) if annotate else None,
        evidence_url=lambda f: f"/conversations/{conv.id}/messages/{message_id}/evidence/{f}",
    )
    events, job = await start_turn(rt, req, request, message_id=message_id, reservation=reservation)
    return StartedTurn(message_id=message_id, events=events, job=job)


def evidence_bytes_estimate(video: VideoRecord) -> int:
    """Bytes one turn's annotated JPEG frames of ``video`` are expected to take (~1 byte per pixel each)."""
    return EVIDENCE_FRAMES_ESTIMATE * video.width * video.height


def settle_evidence(
    rt: ServiceRuntime, req: TurnRequest, result: TurnResult, reservation: Reservation
) -> None:
    """After the turn: if its evidence frames put the disk over the quota, delete them (the answer stays;
    ``evidence.frames`` is emptied and ``evidence.frames_dropped`` says why); its reservation is released."""
    try:
        if req.annotate_dir is None or not req.annotate_dir.exists():
            return
        over = rt.quota.over(mine=reservation)
        if over > 0:
            shutil.rmtree(req.annotate_dir, ignore_errors=True)
            logger.warning(
                "disk quota: evidence frames of %s deleted (%d bytes over)", req.annotate_dir.name, over
            )
            if result.evidence is not None:
                result.evidence["frames"] = []
                result.evidence["frames_dropped"] = "the disk quota is full: evidence frames were not kept"
    finally:
        reservation.release()


async def finish_turn(turn: StartedTurn) -> tuple[TurnResult, list[dict[str, Any]]]:
    """Wait for a started turn: its result and every event up to ``done``; raises the turn's error."""
    assert turn.job is not None  # the caller answered 499 when the client left
    collected = []
    while True:
        event, data = await turn.events.get()
        collected.append({"event": event, "data": data})
        if event == "done":
            break
    result: TurnResult = await turn.job.future
    if result.error is not None:
        raise as_service_error(result.error)
    return result, collected


async def start_turn(
    rt: ServiceRuntime,
    req: TurnRequest,
    request: Request,
    *,
    message_id: int | None = None,
    reservation: Reservation | None = None,
) -> tuple[asyncio.Queue, Job | None]:
    """Queue a turn on the model worker and wait until it starts (503 when busy; None if the client left).
    ``reservation`` (the disk for its evidence frames) is settled when the turn ends, released if it never
    runs."""
    reservation = reservation or rt.quota.reservation("this turn's evidence frames")
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emit(event: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, (event, data))

    def job_fn(cancel):
        held: list[dict[str, Any]] = []

        def emit_stored_first(event: str, data: dict[str, Any]) -> None:
            if event == "done":  # sent once the message row says how the turn ended
                held.append(data)
            else:
                emit(event, data)

        try:
            try:
                # turns of one conversation run one at a time, whichever replica takes them
                with rt.store.turn_lock(req.thread_id):
                    result = run_turn(rt, req, emit_stored_first, cancel)
            finally:
                reservation.release()  # its frames are on disk now: the quota counts them there
            settle_evidence(rt, req, result, reservation)
            if message_id is not None:
                rt.store.finish_message(
                    message_id,
                    status=result.status,
                    turn=result.turn,
                    answer=result.answer,
                    clarification=result.clarification,
                    evidence=result.evidence,
                    tracks=result.tracks or None,
                )
        finally:
            for data in held:
                emit("done", data)
        return result

    try:
        job = rt.worker.submit("turn", job_fn)
        waiter = asyncio.ensure_future(rt.worker.wait_started(job))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=0.5)
            if not waiter.done() and await request.is_disconnected():
                waiter.cancel()
                if rt.worker.abandon(job):
                    reservation.release()
                _mark(rt, message_id, "cancelled")
                return events, None
        waiter.result()
    except Exception:
        reservation.release()
        _mark(rt, message_id, "rejected")
        raise
    return events, job


def _mark(rt: ServiceRuntime, message_id: int | None, status: str) -> None:
    if message_id is not None:
        rt.store.finish_message(message_id, status=status, turn=0)


def as_service_error(error: dict[str, Any]) -> ServiceError:
    """The :class:`ServiceError` of a failed turn's ``error`` (status, code, detail; its ``Retry-After``)."""
    retry_after = error.get("retry_after")
    exc = ServiceError(error["detail"], headers={"Retry-After": str(retry_after)} if retry_after else None)
    exc.status, exc.code = int(error["status"]), str(error["code"])
    return exc
