"""One model worker: every model call runs on a single thread, fed by a bounded queue (one GPU).

``submit`` refuses a job when ``queue_size`` jobs already wait (503 with Retry-After); a job that waits
longer than ``queue_timeout_s`` to start is dropped (503). A running job gets a ``threading.Event`` that
is set when its client goes away; long jobs check it between steps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agent.api.errors import BusyError

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Job(Generic[T]):
    """A submitted model job. ``cancel`` is set when its client disconnects (checked by the job)."""

    name: str
    started: asyncio.Event
    future: asyncio.Future
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"  # queued -> running | abandoned
    submitted_at: float = field(default_factory=time.perf_counter)


class ModelWorker:
    def __init__(self, queue_size: int, queue_timeout_s: float) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.queue_size = queue_size
        self.queue_timeout_s = queue_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artemis-model")
        self._lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.completed = 0
        self.rejected = 0
        self._avg_job_s = 1.0

    def retry_after(self) -> str:
        """Seconds a client should wait before trying again (expected time to drain the queue)."""
        return str(max(1, math.ceil(self._avg_job_s * (self.waiting + self.running))))

    def _busy(self, why: str) -> BusyError:
        return BusyError(why, headers={"Retry-After": self.retry_after()})

    def submit(self, name: str, fn: Callable[[threading.Event], T]) -> Job[T]:
        """Queue ``fn(cancel_event)``; raises :class:`BusyError` (503) when the queue is full."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.waiting >= self.queue_size:
                self.rejected += 1
                raise self._busy(
                    f"the model worker is busy: {self.waiting} jobs are waiting (queue size "
                    f"{self.queue_size}); retry later"
                )
            self.waiting += 1
        job: Job[T] = Job(name=name, started=asyncio.Event(), future=loop.create_future())

        def run() -> T | None:
            with self._lock:
                if job.state != "queued":
                    return None
                job.state = "running"
                self.waiting -= 1
                self.running += 1
            loop.call_soon_threadsafe(job.started.set)
            start = time.perf_counter()
            try:
                return fn(job.cancel)
            finally:
                took = time.perf_counter() - start
                with self._lock:
                    self.running -= 1
                    self.completed += 1
                    self._avg_job_s = 0.8 * self._avg_job_s + 0.2 * took
                logger.debug("job %s took %.3f s", name, took)

        inner = self._executor.submit(run)
        chained = asyncio.wrap_future(inner, loop=loop)
        chained.add_done_callback(lambda f: _copy_result(f, job.future))
        return job

    async def wait_started(self, job: Job) -> None:
        """Wait until ``job`` runs; after ``queue_timeout_s`` drop it and raise :class:`BusyError`."""
        try:
            await asyncio.wait_for(asyncio.shield(job.started.wait()), self.queue_timeout_s)
            return
        except asyncio.TimeoutError:
            with self._lock:
                if job.state == "queued":
                    job.state = "abandoned"
                    self.waiting -= 1
                    self.rejected += 1
                    abandoned = True
                else:
                    abandoned = False
            if abandoned:
                raise self._busy(
                    f"the job waited {self.queue_timeout_s:g} s for the model worker without starting; "
                    "retry later"
                ) from None
            await job.started.wait()

    def abandon(self, job: Job) -> None:
        """The client is gone: skip the job if it has not started, else ask it to stop."""
        job.cancel.set()
        with self._lock:
            if job.state == "queued":
                job.state = "abandoned"
                self.waiting -= 1

    async def run(self, name: str, fn: Callable[[threading.Event], T]) -> T:
        """Submit, wait for the start (bounded) and return the result."""
        job = self.submit(name, fn)
        try:
            await self.wait_started(job)
            return await job.future
        except asyncio.CancelledError:
            self.abandon(job)
            raise

    def stats(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "running": self.running,
            "completed": self.completed,
            "rejected": self.rejected,
            "queue_size": self.queue_size,
        }

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _copy_result(src: asyncio.Future, dst: asyncio.Future) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif src.exception() is not None:
        dst.set_exception(src.exception())
    else:
        dst.set_result(src.result())
