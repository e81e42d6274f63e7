"""The per-video track cache (a :data:`TrackCache` the caller owns, e.g. the runtime's): several queries segment
each frame once; keys follow content and backend."""

from __future__ import annotations

import numpy as np
import pytest

from artemis_model.lru import LRUCache
from tests.clipgen import Obj, make_clip
from tools.grounding import Detection, TrackCache, ground, new_track_cache, sample_indices
from tools.grounding.backends import WORLD_GROUNDING
from tools.grounding.offline import OfflineBackend
from tools.grounding.query import ParsedQuery
from tools.video import ArrayVideo

QUERIES = ("the red circle", "the blue star", "the red objects")


@pytest.fixture
def cache() -> TrackCache:
    return new_track_cache()


@pytest.fixture(scope="module")
def clip():
    return make_clip(
        [
            Obj("red", "circle", (25, 25), (130, 30), radius=12),
            Obj("red", "square", (130, 95), (30, 90), radius=11),
            Obj("blue", "star", (80, 30), (80, 95), radius=14),
        ],
        num_frames=12,
    )


class CountingOffline(OfflineBackend):
    """The offline backend, counting the frames it segments."""

    def __init__(self) -> None:
        super().__init__()
        self.frames_segmented = 0

    def _shapes(self, frame, frame_idx, background):
        self.frames_segmented += 1
        return super()._shapes(frame, frame_idx, background)


class PlainVideo:
    """A VideoLike that is not a VideoSource (no content hash): cached by identity."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.num_frames, self.height, self.width = frames.shape[:3]
        self.fps = 10.0

    def get_frames(self, indices):
        return self.frames[list(indices)]


def _summary(targets):
    return [(t.label, t.boxes, round(t.score, 6)) for t in targets]


def test_three_queries_segment_each_frame_once(clip, cache):
    backend = CountingOffline()
    video = ArrayVideo(clip.frames)
    cached = [ground(video, q, backend=backend, cache=cache) for q in QUERIES]
    n = len(sample_indices(video.num_frames, 48))
    assert backend.frames_segmented == n
    assert cache.stats.misses == 1 and cache.stats.hits == 2
    fresh = [ground(video, q, backend=backend) for q in QUERIES]  # no cache: computed each time
    assert backend.frames_segmented == 4 * n
    assert [_summary(a) for a in cached] == [_summary(b) for b in fresh]
    assert [len(a) for a in cached] == [1, 1, 2]


def test_same_content_hits_other_content_misses(clip, cache):
    backend = CountingOffline()
    ground(ArrayVideo(clip.frames), "the red circle", backend=backend, cache=cache)
    ground(
        ArrayVideo(clip.frames.copy()), "the blue star", backend=backend, cache=cache
    )  # same content, new object
    assert cache.stats.hits == 1
    ground(ArrayVideo(clip.frames[::-1].copy()), "the red circle", backend=backend, cache=cache)
    assert cache.stats.misses == 2
    ground(
        ArrayVideo(clip.frames), "the red circle", backend=CountingOffline(), cache=cache
    )  # another backend
    assert cache.stats.misses == 3


def test_video_without_content_hash_is_keyed_by_identity(clip, cache):
    backend = CountingOffline()
    video = PlainVideo(clip.frames)
    a = ground(video, "the red circle", backend=backend, cache=cache)
    b = ground(video, "the red square", backend=backend, cache=cache)
    assert cache.stats.hits == 1 and len(a) == len(b) == 1
    ground(PlainVideo(clip.frames), "the red circle", backend=backend, cache=cache)
    assert cache.stats.misses == 2


def test_file_path_hits_across_calls(clip, tmp_path, cache):
    from tests.clipgen import write_mp4

    path = write_mp4(clip.frames, tmp_path / "c.mp4")
    backend = CountingOffline()
    first = ground(path, "the red circle", backend=backend, cache=cache)
    second = ground(str(path), "the red circle", backend=backend, cache=cache)
    assert cache.stats.hits == 1 and _summary(first) == _summary(second)


def test_people_query_is_a_separate_entry(clip, cache):
    backend = CountingOffline()
    video = ArrayVideo(clip.frames)
    ground(video, "the red circle", backend=backend, cache=cache)
    ground(video, "the person", backend=backend, cache=cache)
    assert cache.stats.misses == 2 and len(cache) == 2


def test_backend_without_query_key_caches_per_query(clip, cache):
    class Scripted:
        """Detections depend on the query's colour: one box per frame, left for red, right for blue."""

        name = "scripted"

        def __init__(self) -> None:
            self.calls = 0

        def detect(self, frames, frame_indices, query: ParsedQuery):
            self.calls += 1
            colour = query.colours[0]
            x = 10.0 if colour == "red" else 100.0
            return [
                [Detection(i, (x, 10.0, x + 20, 30.0), "thing", 0.9, colour=colour)] for i in frame_indices
            ]

    backend = Scripted()
    video = ArrayVideo(clip.frames)
    red = ground(video, "the red thing", backend=backend, cache=cache)
    blue = ground(video, "the blue thing", backend=backend, cache=cache)
    again = ground(video, "the red thing", backend=backend, cache=cache)
    assert backend.calls == 2
    assert red[0].boxes[0][0] == 10.0 and blue[0].boxes[0][0] == 100.0 and _summary(again) == _summary(red)


def test_editing_a_result_leaves_the_cache_intact(clip, cache):
    video = ArrayVideo(clip.frames)
    first = ground(video, "the red circle", cache=cache, settings=WORLD_GROUNDING)
    before = list(first[0].boxes)
    first[0].boxes[0] = None
    assert ground(video, "the red circle", cache=cache, settings=WORLD_GROUNDING)[0].boxes == before


def test_no_cache_keeps_nothing(clip):
    backend = CountingOffline()
    video = ArrayVideo(clip.frames)
    ground(video, "the red circle", backend=backend)
    ground(video, "the red circle", backend=backend)
    assert backend.frames_segmented == 2 * len(sample_indices(video.num_frames, 48))


def test_lru_evicts_the_least_recently_used():
    cache: LRUCache[str, int] = LRUCache(2)
    calls: list[str] = []

    def make(name: str, value: int):
        def compute() -> int:
            calls.append(name)
            return value

        return compute

    assert cache.get_or_compute("x", make("x", 1)) == 1
    assert cache.get_or_compute("y", make("y", 2)) == 2
    assert cache.get_or_compute("x", make("x", 9)) == 1  # hit, and x becomes the newest
    assert cache.get_or_compute("z", make("z", 3)) == 3  # evicts y
    assert cache.get_or_compute("y", make("y", 4)) == 4
    assert calls == ["x", "y", "z", "y"] and len(cache) == 2 and cache.stats.evictions == 2
    with pytest.raises(ValueError, match="max_weight"):
        LRUCache(-1)
