"""The replica's model worker: model calls run on ``threads`` threads (default 1: one GPU, one call at a time;
more when the model runs on remote workers, ``ARTEMIS_TURN_THREADS``), fed by a bounded queue.

``submit`` refuses a job when ``queue_size`` jobs already wait (503 with Retry-After: the jobs ahead times
their measured mean time, :meth:`ModelWorker.retry_after`); a job that waits longer than ``queue_timeout_s``
to start is dropped (503). A running job gets a ``threading.Event`` that is set when its client goes away;
long jobs check it between steps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter, deque
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


MEASURED_JOBS = 20
"""The mean job time is measured over the last this many jobs of each kind ("turn", a tool's name)."""
UNMEASURED_JOB_S = 1.0
"""What a job is expected to take before any job was measured."""


class ModelWorker:
    def __init__(
        self,
        queue_size: int,
        queue_timeout_s: float,
        threads: int = 1,
        *,
        remote_stats: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.queue_size = queue_size
        self.queue_timeout_s = queue_timeout_s
        self.threads = threads
        self.remote_stats = remote_stats
        """What the remote model workers answered this replica (:meth:`stats`' ``model_workers``), if any."""
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="artemis-model")
        self._lock = threading.RLock()  # re-entered: submit builds its 503 (Retry-After) under it
        self.waiting = 0
        self.running = 0
        self.completed = 0
        self.rejected = 0
        self._took: dict[str, deque[float]] = {}
        self._ahead: Counter[str] = Counter()  # kind -> jobs queued or running

    def mean_job_s(self, name: str) -> float:
        """Measured mean time of the last jobs of kind ``name`` (of any kind when none of it ran yet)."""
        with self._lock:
            return self._mean(name)

    def _mean(self, name: str) -> float:
        took = self._took.get(name) or [t for d in self._took.values() for t in d]
        return sum(took) / len(took) if took else UNMEASURED_JOB_S

    def expected_wait_s(self) -> float:
        """Seconds until the jobs ahead (queued and running) are done: each kind's count times its measured
        mean time, shared by the worker's threads."""
        with self._lock:
            return sum(n * self._mean(name) for name, n in self._ahead.items() if n > 0) / self.threads

    def retry_after(self) -> str:
        """Seconds a client should wait before trying again (:meth:`expected_wait_s`, at least 1)."""
        return str(max(1, math.ceil(self.expected_wait_s())))

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
            self._ahead[name] += 1
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
                    self._ahead[name] -= 1
                    self._took.setdefault(name, deque(maxlen=MEASURED_JOBS)).append(took)
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
                    self._ahead[job.name] -= 1
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

    def abandon(self, job: Job) -> bool:
        """The client is gone: skip the job if it has not started (True: it never runs), else ask it to stop."""
        job.cancel.set()
        with self._lock:
            if job.state == "queued":
                job.state = "abandoned"
                self.waiting -= 1
                self._ahead[job.name] -= 1
                return True
            return False

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
        remote = {"model_workers": self.remote_stats()} if self.remote_stats is not None else {}
        return {
            **remote,
            "waiting": self.waiting,
            "running": self.running,
            "completed": self.completed,
            "rejected": self.rejected,
            "queue_size": self.queue_size,
            "threads": self.threads,
            "mean_job_s": {name: round(self.mean_job_s(name), 3) for name in sorted(self._took)},
            "expected_wait_s": round(self.expected_wait_s(), 3),
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
