"""The one cache type: least recently used first out, bounded by count or by weight, eviction callbacks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from artemis_model.lru import LRUCache


def test_count_bound_and_recency():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" becomes the most recent
    cache.put("c", 3)  # drops "b"
    assert cache.keys() == ["a", "c"] and cache.get("b") is None
    assert cache.stats.hits == 1 and cache.stats.misses == 1 and cache.stats.evictions == 1


def test_weight_bound_skips_what_cannot_fit_and_reports_evictions():
    dropped: list[tuple[str, bytes]] = []
    cache: LRUCache[str, bytes] = LRUCache(10, weigh=len, on_evict=lambda k, v: dropped.append((k, v)))
    cache.put("a", b"1234")
    cache.put("b", b"123456")
    assert cache.weight == 10 and not dropped
    cache.put("c", b"12")  # 12 > 10: "a" goes
    assert dropped == [("a", b"1234")] and cache.weight == 8
    cache.put("huge", b"x" * 11)  # heavier than the bound: not kept, nothing else dropped
    assert "huge" not in cache and len(cache) == 2
    cache.put("b", b"1")  # replacing an entry re-weighs it
    assert cache.weight == 3


def test_zero_bound_keeps_nothing_and_negative_is_refused():
    cache: LRUCache[str, int] = LRUCache(0)
    assert cache.get_or_compute("a", lambda: 1) == 1 and len(cache) == 0
    with pytest.raises(ValueError, match="max_weight must be >= 0"):
        LRUCache(-1)


def test_get_or_compute_pop_and_pop_where():
    cache: LRUCache[tuple[str, int], str] = LRUCache(8)
    calls = []
    for key in [("v1", 0), ("v1", 1), ("v2", 0)]:
        cache.get_or_compute(key, lambda key=key: calls.append(key) or f"{key}")
    cache.get_or_compute(("v1", 0), lambda: calls.append("again") or "no")
    assert len(calls) == 3 and cache.stats.hits == 1 and cache.stats.misses == 3
    removed = cache.pop_where(lambda key, _value: key[0] == "v1")
    assert sorted(k for k, _ in removed) == [("v1", 0), ("v1", 1)] and cache.keys() == [("v2", 0)]
    assert cache.pop(("v2", 0)) == "('v2', 0)" and cache.pop(("v2", 0), "gone") == "gone"
    cache.put(("x", 1), "y")
    cache.clear()
    assert len(cache) == 0 and cache.weight == 0 and cache.stats.hits == 0


def test_a_missing_key_is_computed_once_while_other_keys_compute_in_parallel():
    cache: LRUCache[str, int] = LRUCache(4)
    calls: list[str] = []
    running = threading.Semaphore(0)

    def compute(key: str) -> int:
        calls.append(key)
        running.release()
        time.sleep(0.2)
        return len(calls)

    with ThreadPoolExecutor(8) as pool:
        start = time.perf_counter()
        values = list(pool.map(lambda k: cache.get_or_compute(k, lambda: compute(k)), ["a"] * 6 + ["b", "b"]))
        took = time.perf_counter() - start
    assert sorted(calls) == ["a", "b"]
    assert len(set(values[:6])) == 1 and len(set(values[6:])) == 1
    assert took < 0.39, f"'a' and 'b' computed one after the other ({took:.2f} s)"
    assert cache.get_or_compute("a", lambda: -1) == values[0]  # a hit afterwards
