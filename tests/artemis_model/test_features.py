"""The feature cache: oracle against the model's own encoders, one decode pass, no frame encoded twice,
safetensors round trip, LRU bound, eviction, invalidation when weights change."""

from __future__ import annotations

import pytest
import torch

from artemis_model.features import FeatureCache, stack_region_maps
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.video import open_video, sample_global_indices
from artemis_model.video.array import ArrayVideo
from tests.clipgen import make_squares, write_squares_mp4


@pytest.fixture(scope="module")
def model_proc():
    return tiny_model_and_processor(seed=0)


@pytest.fixture(scope="module")
def clip():
    return make_squares(num_frames=24)


@pytest.fixture()
def mp4(tmp_path, clip):
    return write_squares_mp4(clip, tmp_path / "clip.mp4")


def test_global_features_match_model_encoder(model_proc, clip):
    model, proc = model_proc
    video = ArrayVideo(clip.frames)
    feats = FeatureCache().get_video_features(model, proc, video)
    idx = sample_global_indices(video.num_frames, model.config.num_temporal_tokens)
    with torch.no_grad():
        expected = model.encode_video_frames(proc.preprocess_frames(clip.frames[idx], purpose="global"))
    assert feats.shape == (model.config.num_video_tokens, model.config.vision_config.hidden_size)
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-6)


def test_region_maps_match_model_encoder(model_proc, clip):
    model, proc = model_proc
    frames = [0, 5, 23]
    maps = FeatureCache().get_region_maps(model, proc, ArrayVideo(clip.frames), frames)
    with torch.no_grad():
        expected = model.encode_region_frames(proc.preprocess_frames(clip.frames[frames], purpose="region"))
    got = stack_region_maps(maps, frames)
    assert len(got) == len(expected) == 4
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_one_decode_pass_each_frame_once_then_all_hits(model_proc, mp4):
    model, proc = model_proc
    video = open_video(mp4)
    cache = FeatureCache()
    global_idx = set(sample_global_indices(video.num_frames, model.config.num_temporal_tokens))
    roi = [0, 1, 2, 9, 23]
    out = cache.get_features(model, proc, video, roi)
    assert video.stats.decode_calls == 1
    assert cache.stats.decode_passes == 1
    assert cache.stats.vision_frames == len(global_idx | set(roi))  # shared frames run once
    assert cache.stats.region_frames == len(roi)
    assert out.video_features is not None and sorted(out.region_maps) == roi
    # A second request (another question) encodes nothing and decodes nothing.
    before = (cache.stats.vision_frames, cache.stats.region_frames, video.stats.decode_calls)
    again = cache.get_features(model, proc, video, roi[:3])
    assert (cache.stats.vision_frames, cache.stats.region_frames, video.stats.decode_calls) == before
    assert torch.equal(again.video_features, out.video_features)
    # Only the missing frame is computed.
    cache.get_region_maps(model, proc, video, [0, 4])
    assert cache.stats.region_frames == before[1] + 1 and cache.stats.vision_frames == before[0] + 1


def test_original_resize_mode_encodes_global_and_roi_pixels_separately(clip):
    model, _ = tiny_model_and_processor(seed=0)
    from artemis_model.tiny import tiny_processor

    proc = tiny_processor(model.config, resize_mode="original")
    cache = FeatureCache()
    video = ArrayVideo(clip.frames)
    global_idx = set(sample_global_indices(video.num_frames, model.config.num_temporal_tokens))
    cache.get_features(model, proc, video, [0, 1])
    assert cache.stats.vision_frames == len(global_idx) + 2
    assert cache.stats.decode_passes == 1


def test_disk_round_trip_is_identical(model_proc, mp4, tmp_path):
    model, proc = model_proc
    disk = tmp_path / "features"
    first = FeatureCache(disk_dir=disk, region_maps_on_disk=True)
    feats = first.get_video_features(model, proc, mp4)
    maps = first.get_region_maps(model, proc, mp4, [3, 7])
    files = sorted(p.name for p in disk.rglob("*") if p.is_file())
    assert files == ["global.safetensors", "region_0000003.safetensors", "region_0000007.safetensors"]
    second = FeatureCache(disk_dir=disk, region_maps_on_disk=True)
    feats2 = second.get_video_features(model, proc, mp4)
    maps2 = second.get_region_maps(model, proc, mp4, [3, 7])
    assert second.stats.vision_frames == 0 and second.stats.disk_reads == 3
    assert torch.equal(feats, feats2)
    for f in (3, 7):
        assert all(torch.equal(a, b) for a, b in zip(maps[f], maps2[f], strict=True))


def test_lru_bound_and_evict_video(model_proc, clip, tmp_path):
    model, proc = model_proc
    video = ArrayVideo(clip.frames)
    probe = FeatureCache()
    one_frame = sum(t.numel() * t.element_size() for t in probe.get_region_maps(model, proc, video, [0])[0])
    cache = FeatureCache(max_bytes=3 * one_frame, disk_dir=tmp_path / "f")
    cache.get_region_maps(model, proc, video, [0, 1, 2, 3, 4])
    assert cache.memory_bytes <= 3 * one_frame and cache.stats.evictions == 2
    assert cache.cached_region_frames(model, proc, video) == {2, 3, 4}  # least recently used went first
    cache.get_video_features(model, proc, video)  # bigger than the bound: disk only
    assert (tmp_path / "f" / video.content_hash).is_dir()
    removed = cache.evict_video(video.content_hash)
    assert removed == 3 and len(cache) == 0 and not (tmp_path / "f" / video.content_hash).exists()
    with pytest.raises(ValueError, match="hex"):
        cache.evict_video("../etc")


def test_changed_weights_invalidate(clip):
    model, proc = tiny_model_and_processor(seed=1)
    video = ArrayVideo(clip.frames)
    cache = FeatureCache()
    before = cache.get_video_features(model, proc, video)
    with torch.no_grad():
        next(model.vision_tower.parameters()).mul_(1.0)  # in place, same values: still a hit
    cache.get_video_features(model, proc, video)
    assert cache.stats.global_hits == 1
    with torch.no_grad():
        for p in model.vision_tower.parameters():
            p.add_(0.05)
    after = cache.get_video_features(model, proc, video)
    assert cache.stats.global_misses == 2 and not torch.allclose(before, after)
