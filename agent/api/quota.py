"""The disk quota, held across concurrent writers: what is on disk plus what writes in flight were promised.

Every writer under ``data_dir/videos`` and ``data_dir/uploads`` reserves before it writes: an upload grows
its reservation as chunks arrive (so six concurrent uploads cannot each see the same free space), a frame
for the cache reserves its JPEG's size, a turn reserves an estimate of its evidence frames (and its frames
are deleted after the turn if the quota is still exceeded).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.api.errors import QuotaExceededError

_STEP = 1 << 20
"""Reservations grow in steps of at least 1 MiB (one walk of the disk per step, not per chunk)."""


class DiskQuota:
    """``limit`` bytes for the files :func:`disk_used` counts (the store's videos and uploads)."""

    def __init__(self, limit: int, disk_used: Callable[[], int]) -> None:
        if limit <= 0:
            raise ValueError(f"the disk quota must be > 0 bytes, got {limit}")
        self.limit = limit
        self._disk_used = disk_used
        self._lock = threading.Lock()
        self._reserved = 0

    @property
    def reserved(self) -> int:
        return self._reserved

    def used(self) -> int:
        """Bytes on disk plus bytes reserved by writes in flight."""
        with self._lock:
            return self._disk_used() + self._reserved

    def left(self) -> int:
        return max(0, self.limit - self.used())

    def over(self, mine: Reservation | None = None) -> int:
        """Bytes over the limit now (<= 0 when within), not counting what ``mine`` reserved."""
        with self._lock:
            return self._disk_used() + self._reserved - (mine.granted if mine is not None else 0) - self.limit

    def reservation(self, why: str) -> Reservation:
        """An empty reservation for one write (``why`` names it in the 507 message); grow it, then release."""
        return Reservation(self, why)

    def _take(self, nbytes: int, why: str) -> None:
        with self._lock:
            used = self._disk_used() + self._reserved
            if used + nbytes > self.limit:
                raise QuotaExceededError(
                    f"the disk quota is full: {why} needs {nbytes} more bytes but "
                    f"{max(0, self.limit - used)} of {self.limit} are left; delete videos first"
                )
            self._reserved += nbytes

    def _give_back(self, nbytes: int) -> None:
        with self._lock:
            self._reserved -= nbytes


class Reservation:
    """Bytes promised to one write. ``ensure(total)`` grows it (507 past the quota); ``release()`` returns
    what is left once the written file is on disk (or deleted). A context manager that releases."""

    def __init__(self, quota: DiskQuota, why: str) -> None:
        self.quota = quota
        self.why = why
        self.granted = 0

    def ensure(self, total: int) -> None:
        """At least ``total`` bytes reserved for this write (grows in 1 MiB steps while room is left)."""
        if total <= self.granted:
            return
        need = total - self.granted
        try:
            self.quota._take(max(need, _STEP), self.why)
            self.granted += max(need, _STEP)
        except QuotaExceededError:
            self.quota._take(need, self.why)  # the exact amount may still fit
            self.granted += need

    def release(self) -> None:
        if self.granted:
            self.quota._give_back(self.granted)
            self.granted = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
