"""The one bounded cache type of the project: a thread-safe least-recently-used map.

Every cache that lives longer than a call is an instance of :class:`LRUCache` held by the object that owns that
state (the feature cache, the static KV-cache pool, the runtime's opened videos and grounding tracks, the
training data's opened clips); no module holds one. The bound is on the total *weight* of the entries: their
count by default, their bytes with ``weigh=``. ``on_evict`` is told of each entry dropped to make room (e.g. to
close an opened video).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class LRUStats:
    """Lookups answered from the cache (``hits``), missed (``misses``), entries held (``size``), their total
    weight (``weight``) and entries dropped to make room (``evictions``)."""

    hits: int
    misses: int
    size: int
    weight: int
    evictions: int


def _one(_value: object) -> int:
    return 1


class LRUCache(Generic[K, V]):
    """``key -> value``, at most ``max_weight`` in total (``weigh(value)`` per entry, default 1: a count).

    A value heavier than ``max_weight`` is not kept (``max_weight=0`` keeps nothing). :meth:`get_or_compute`
    computes a missing key once: a thread missing a key another thread is computing waits for that value (turns
    running at once on one video open it once and ground it once); ``compute`` runs outside the cache's lock, so
    other keys are looked up and computed meanwhile.
    """

    def __init__(
        self,
        max_weight: int,
        *,
        weigh: Callable[[V], int] = _one,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        if max_weight < 0:
            raise ValueError(f"max_weight must be >= 0, got {max_weight}")
        self.max_weight = int(max_weight)
        self._weigh = weigh
        self._on_evict = on_evict
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.RLock()
        self._hits = self._misses = self._evictions = 0
        self._computing: dict[K, threading.RLock] = {}  # a lock per missing key being computed

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value of ``key`` (now the most recently used), else ``default``; counted as a hit or a miss."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self._misses += 1
                return default
            self._data.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` as the most recently used, dropping the least recently used entries
        beyond ``max_weight`` (a value heavier than ``max_weight`` is not stored)."""
        weight = int(self._weigh(value))
        evicted: list[tuple[K, V]] = []
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            if weight > self.max_weight:
                return
            self._data[key] = (value, weight)
            self._weight += weight
            while self._weight > self.max_weight:
                k, (v, w) = self._data.popitem(last=False)
                self._weight -= w
                self._evictions += 1
                evicted.append((k, v))
        if self._on_evict is not None:
            for k, v in evicted:
                self._on_evict(k, v)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The value of ``key``, else ``compute()`` stored under it (computed once when threads miss it at once:
        the others wait and take its value; if it raises, the next waiter computes)."""
        with self._lock:
            entry = self._lookup(key)
            if entry is not None:
                return entry[0]
            key_lock = self._computing.setdefault(key, threading.RLock())
        try:
            with key_lock:
                with self._lock:
                    entry = self._lookup(key)  # computed by the thread this one waited for
                    if entry is not None:
                        return entry[0]
                    self._misses += 1
                value = compute()
                self.put(key, value)
                return value
        finally:
            with self._lock:  # later callers find the value (threads already waiting hold this lock)
                if self._computing.get(key) is key_lock:
                    del self._computing[key]

    def _lookup(self, key: K) -> tuple[V, int] | None:
        """The entry of ``key`` as a hit (now the most recently used), else None; under ``self._lock``."""
        entry = self._data.get(key)
        if entry is not None:
            self._data.move_to_end(key)
            self._hits += 1
        return entry

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove ``key`` and return its value (``default`` when absent); ``on_evict`` is not called."""
        with self._lock:
            entry = self._data.pop(key, None)
            if entry is None:
                return default
            self._weight -= entry[1]
            return entry[0]

    def pop_where(self, select: Callable[[K, V], bool]) -> list[tuple[K, V]]:
        """Remove and return the entries for which ``select(key, value)`` is true (``on_evict`` is not called):
        ``pop_where(lambda k, v: k[1] == content_hash)`` forgets one video."""
        with self._lock:
            chosen = [(k, v) for k, (v, _) in self._data.items() if select(k, v)]
            for k, _ in chosen:
                self._weight -= self._data.pop(k)[1]
        return chosen

    def keys(self) -> list[K]:
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            return list(self._data)

    def values(self) -> list[V]:
        """The values, least recently used first (a snapshot)."""
        with self._lock:
            return [v for v, _ in self._data.values()]

    def clear(self) -> None:
        """Drop every entry (``on_evict`` is not called) and reset the counters."""
        with self._lock:
            self._data.clear()
            self._weight = 0
            self._hits = self._misses = self._evictions = 0

    @property
    def weight(self) -> int:
        """The total weight of the entries held."""
        return self._weight

    @property
    def stats(self) -> LRUStats:
        with self._lock:
            return LRUStats(self._hits, self._misses, len(self._data), self._weight, self._evictions)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
