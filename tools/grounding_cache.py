"""A small LRU of grounding tracks per video, so several queries on one video detect and link only once.

Keys name the video by its ``content_hash`` when it has one (any ``VideoSource``: a file, an
``ArrayVideo``, a ``SubVideo``), else by identity; the backend always by identity (its weights and
thresholds live on the object). Objects named by identity are pinned in the entry (kept alive, so an id
is never reused while its entry exists) and compared with ``is`` on a hit.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from artemis_model.video import VideoSource

logger = logging.getLogger(__name__)

V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    """Lookups answered from the cache (``hits``), computed (``misses``) and entries held (``size``)."""

    hits: int
    misses: int
    size: int


@dataclass(frozen=True)
class _Entry(Generic[V]):
    pins: tuple[object, ...]
    value: V


def video_key(video: object) -> tuple[Hashable, tuple[object, ...]]:
    """A cache key part for ``video`` and the objects it names by identity (to pin)."""
    if isinstance(video, VideoSource):
        return ("hash", video.content_hash), ()
    return ("id", id(video)), (video,)


class LRUCache(Generic[V]):
    """Thread-safe least-recently-used map ``key -> value`` with identity pins (see the module docstring).

    ``get_or_compute`` runs ``compute`` outside the lock: two threads missing the same key at once both
    compute it (the values are equal; the second one stored wins), which keeps a slow computation from
    blocking every other lookup.
    """

    def __init__(self, maxsize: int = 16) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get_or_compute(self, key: Hashable, pins: tuple[object, ...], compute: Callable[[], V]) -> V:
        """The value stored under ``key`` (when its pins are the same objects), else ``compute()`` stored."""
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and len(entry.pins) == len(pins):
                if all(a is b for a, b in zip(entry.pins, pins, strict=True)):
                    self._data.move_to_end(key)
                    self._hits += 1
                    return entry.value
            self._misses += 1
        value = compute()
        with self._lock:
            self._data[key] = _Entry(pins, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(hits=self._hits, misses=self._misses, size=len(self._data))

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
