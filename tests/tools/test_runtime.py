"""The runtime object: one opened video per file, shared caches with their limits, forgetting a video."""

from __future__ import annotations

import os

import pytest

from tests.clipgen import Obj, make_clip, write_mp4
from tools import runtime as runtime_module
from tools.describers import HeuristicDescriber, ModelDescriber
from tools.grounding import GroundingSettings, ground
from tools.grounding.backends import WORLD_GROUNDING
from tools.grounding.offline import OfflineBackend
from tools.runtime import Runtime, VideoStore
from tools.video import ArrayVideo


@pytest.fixture(scope="module")
def clip():
    return make_clip([Obj("red", "circle", (25, 25), (130, 30), radius=12)], num_frames=8)


@pytest.fixture
def opens(monkeypatch) -> list[str]:
    """The paths the runtime opens (decoders created)."""
    seen: list[str] = []
    real = runtime_module.open_video

    def counting(path):
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(runtime_module, "open_video", counting)
    return seen


def test_a_file_is_opened_once_by_any_spelling_of_its_path(clip, tmp_path, opens, monkeypatch):
    path = write_mp4(clip.frames, tmp_path / "c.mp4")
    store = VideoStore()
    first = store.open(path)
    monkeypatch.chdir(tmp_path)
    assert store.open("c.mp4") is first and store.open(str(path)) is first
    assert opens == [str(path.resolve())]


def test_a_replaced_file_is_opened_anew(clip, tmp_path, opens):
    path = write_mp4(clip.frames, tmp_path / "c.mp4")
    store = VideoStore()
    first = store.open(path)
    write_mp4(clip.frames[::-1].copy(), path)
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    assert store.open(path) is not first and len(opens) == 2


def test_the_store_keeps_at_most_its_limit_and_passes_opened_videos_through(clip, tmp_path, opens):
    store = VideoStore(max_open=2)
    paths = [write_mp4(clip.frames, tmp_path / f"{i}.mp4") for i in range(3)]
    for p in paths:
        store.open(p)
    assert len(store) == 2
    store.open(paths[0])  # dropped first: opened again
    assert len(opens) == 4
    video = ArrayVideo(clip.frames)
    assert store.open(video) is video and len(store) == 2


def test_named_videos_and_forgetting(clip, tmp_path):
    store = VideoStore()
    video = ArrayVideo(clip.frames)
    store.add("clip-7", video)
    assert "clip-7" in store and store.open("clip-7") is video
    path = write_mp4(clip.frames, tmp_path / "c.mp4")
    store.open(path)
    assert store.forget(video.content_hash) == 1 and "clip-7" not in store  # the file has another content
    path.unlink()  # deleted first (as the service does): found by its path, its content is not read
    assert store.forget("0" * 64, path) == 1 and len(store) == 0


def test_runtime_pieces_and_forget_video(clip):
    rt = Runtime(describer=HeuristicDescriber(), max_track_sets=4, grounding_settings=WORLD_GROUNDING)
    assert isinstance(rt.grounding_backend, OfflineBackend) and rt.summarizer == "merge"
    assert rt.feature_cache is None
    video = ArrayVideo(clip.frames)
    rt.videos.add("c", video)
    found = ground(rt.open_video("c"), "the red circle", backend=rt.grounding_backend, cache=rt.track_cache)
    assert len(found) == 1 and len(rt.track_cache) == 1 and rt.track_cache.max_weight == 4
    rt.forget_video(video.content_hash)
    assert len(rt.track_cache) == 0 and "c" not in rt.videos


def test_runtime_builds_the_backend_its_settings_name(monkeypatch):
    with pytest.raises(ValueError, match="detector_dir"):
        Runtime(describer=HeuristicDescriber(), grounding_settings=GroundingSettings(backend="hf"))
    given = OfflineBackend()
    assert Runtime(describer=HeuristicDescriber(), grounding_backend=given).grounding_backend is given


def test_a_model_describer_shares_its_feature_cache():
    from artemis_model.tiny import tiny_model_and_processor

    model, processor = tiny_model_and_processor(seed=0)
    describer = ModelDescriber(model, processor)
    rt = Runtime(describer=describer)
    assert rt.feature_cache is describer.pipeline.cache
    assert describer.pipeline.static_caches is not ModelDescriber(model, processor).pipeline.static_caches


def test_a_summarizer_name_is_resolved_once(monkeypatch, tmp_path):
    built: list[object] = []

    class FakeSmol:
        def __init__(self, cache_dir):
            built.append(cache_dir)

        def __call__(self, prompt: str) -> str:
            return "summary"

    monkeypatch.setattr("tools.smollm.SmolLM2", FakeSmol)
    rt = Runtime(describer=HeuristicDescriber(), summarizer="smollm2", cache_root=tmp_path)
    assert isinstance(rt.summarizer, FakeSmol) and built == [tmp_path / "smollm2-135m-instruct"]
