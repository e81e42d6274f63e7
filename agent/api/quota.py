"""The disk quota, held across concurrent writers: what is on disk plus what writes in flight were promised.

Every writer under ``data_dir/videos`` and ``data_dir/uploads`` reserves before it writes: an upload grows
its reservation as chunks arrive (so six concurrent uploads cannot each see the same free space), a frame
for the cache reserves its JPEG's size, a turn reserves an estimate of its evidence frames (and its frames
are deleted after the turn if the quota is still exceeded).

Where the reservations live is the store's choice (:meth:`agent.api.storage.BaseStore.quota_reservations`):
in this process's memory (:class:`LocalReservations`: SQLite, one process per data_dir) or in the shared
database (PostgreSQL: every replica of one data_dir takes from the same room). :class:`DiskQuota` is the one
interface callers use either way.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Protocol

from agent.api.errors import QuotaExceededError

_STEP = 1 << 20
"""Reservations grow in steps of at least 1 MiB (one walk of the disk per step, not per chunk)."""


class ReservationBook(Protocol):
    """Where reservations are kept, and what makes taking one atomic against every other writer.

    ``take`` runs ``check(reserved)`` with the bytes every live reservation holds (this one's included) while
    no other ``take`` of the same room runs, and adds ``nbytes`` to ``reservation_id`` only if ``check``
    returned (it raises to refuse). ``check`` reads the disk *after* the reservations were summed, and a
    writer puts its file on disk *before* it releases, so a file landing meanwhile is counted at least once.
    """

    def take(self, reservation_id: str, nbytes: int, why: str, check: Callable[[int], None]) -> None: ...

    def release(self, reservation_id: str) -> None: ...

    def reserved(self, exclude: str | None = None) -> int: ...


class LocalReservations:
    """Reservations in this process's memory: enough when one process writes to the data_dir."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def take(self, reservation_id: str, nbytes: int, why: str, check: Callable[[int], None]) -> None:
        with self._lock:
            check(sum(self._held.values()))
            self._held[reservation_id] = self._held.get(reservation_id, 0) + nbytes

    def release(self, reservation_id: str) -> None:
        with self._lock:
            self._held.pop(reservation_id, None)

    def reserved(self, exclude: str | None = None) -> int:
        with self._lock:
            return sum(n for rid, n in self._held.items() if rid != exclude)


class DiskQuota:
    """``limit`` bytes for the files :func:`disk_used` counts (the store's videos and uploads) plus the
    reservations in ``book`` (this process's memory when None)."""

    def __init__(self, limit: int, disk_used: Callable[[], int], book: ReservationBook | None = None) -> None:
        if limit <= 0:
            raise ValueError(f"the disk quota must be > 0 bytes, got {limit}")
        self.limit = limit
        self._disk_used = disk_used
        self.book: ReservationBook = book if book is not None else LocalReservations()

    @property
    def reserved(self) -> int:
        """Bytes every live reservation holds (with a shared book: every replica's)."""
        return self.book.reserved()

    def used(self) -> int:
        """Bytes on disk plus bytes reserved by writes in flight."""
        reserved = self.book.reserved()  # before the disk: a file landing meanwhile counts at least once
        return self._disk_used() + reserved

    def left(self) -> int:
        return max(0, self.limit - self.used())

    def over(self, mine: Reservation | None = None) -> int:
        """Bytes over the limit now (<= 0 when within), not counting what ``mine`` reserved."""
        reserved = self.book.reserved(exclude=mine.id if mine is not None else None)
        return self._disk_used() + reserved - self.limit

    def reservation(self, why: str) -> Reservation:
        """An empty reservation for one write (``why`` names it in the 507 message); grow it, then release."""
        return Reservation(self, why)

    def _take(self, reservation_id: str, nbytes: int, why: str) -> None:
        def check(reserved: int) -> None:
            used = self._disk_used() + reserved
            if used + nbytes > self.limit:
                raise QuotaExceededError(
                    f"the disk quota is full: {why} needs {nbytes} more bytes but "
                    f"{max(0, self.limit - used)} of {self.limit} are left; delete videos first"
                )

        self.book.take(reservation_id, nbytes, why, check)

    def _give_back(self, reservation_id: str) -> None:
        self.book.release(reservation_id)


class Reservation:
    """Bytes promised to one write. ``ensure(total)`` grows it (507 past the quota); ``release()`` returns
    what is left once the written file is on disk (or deleted). A context manager that releases."""

    def __init__(self, quota: DiskQuota, why: str) -> None:
        self.quota = quota
        self.why = why
        self.id = uuid.uuid4().hex
        self.granted = 0

    def ensure(self, total: int) -> None:
        """At least ``total`` bytes reserved for this write (grows in 1 MiB steps while room is left)."""
        if total <= self.granted:
            return
        need = total - self.granted
        step = max(need, _STEP)
        try:
            self.quota._take(self.id, step, self.why)
        except QuotaExceededError:
            if step == need:
                raise
            self.quota._take(self.id, need, self.why)  # the exact amount may still fit
            step = need
        self.granted += step

    def release(self) -> None:
        if self.granted:
            self.granted = 0
            self.quota._give_back(self.id)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
