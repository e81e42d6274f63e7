"""describe / describe_many: one decode pass, no frame encoded twice, batched == separate calls, prefix sharing
== batched, a second question encodes nothing, typed errors for bad input, save/load round trip."""

from __future__ import annotations

import json

import pytest
import torch

from artemis_model.errors import (
    ArtemisInputError,
    FrameIndexError,
    InvalidBoxError,
    NotAnArtemisModelError,
    VideoDecodeError,
)
from artemis_model.features import FeatureCache
from artemis_model.pipeline import ArtemisPipeline, describe, describe_many
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.types import GenerationOptions, Track
from artemis_model.video import open_video, sample_global_indices
from artemis_model.video.array import ArrayVideo
from tests.clipgen import make_squares, write_squares_mp4

OPTS = GenerationOptions(max_new_tokens=8)
KEY = 3


@pytest.fixture(scope="module")
def model_proc():
    return tiny_model_and_processor(seed=0)


@pytest.fixture(scope="module")
def clip():
    return make_squares(num_frames=40, num_targets=4)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory, clip):
    return write_squares_mp4(clip, tmp_path_factory.mktemp("v") / "clip.mp4")


def _tracks(clip):
    h, w = clip.frames.shape[1:3]
    return [Track(boxes=tuple(b), width=w, height=h) for b in clip.boxes]


def test_describe_many_one_pass_no_frame_twice_and_equal_to_separate_calls(
    model_proc, clip, mp4, monkeypatch
):
    model, proc = model_proc
    tracks = _tracks(clip)
    boxes = [t.boxes[KEY] for t in tracks]
    captured = []
    original = model.build_region_features

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        captured.append(out.tokens)
        return out

    monkeypatch.setattr(model, "build_region_features", spy)
    video = open_video(mp4)
    cache = FeatureCache()
    many = describe_many(model, proc, video, boxes, frame_idx=KEY, tracks=tracks, cache=cache, options=OPTS)
    assert video.stats.decode_calls == 1 and cache.stats.decode_passes == 1
    roi = {f for d in many for f in _roi_frames(d, model.config.num_tracked_boxes)}
    global_idx = set(sample_global_indices(video.num_frames, model.config.num_temporal_tokens))
    assert cache.stats.vision_frames == len(global_idx | roi)  # every distinct frame through CLIP once
    assert cache.stats.region_frames == len(roi)  # every RoI frame through the fuse once
    tokens = captured[0]  # [4, 1 + K, D]
    assert tokens.shape[0] == 4
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(tokens[a], tokens[b])  # the targets' region tokens differ
    for k in range(4):  # separate calls, cache disabled, fresh decoding of the same file
        single = describe(model, proc, mp4, boxes[k], frame_idx=KEY, track=tracks[k], options=OPTS)
        assert single.answer == many[k].answer
        assert single.selected_frames == many[k].selected_frames
        assert torch.allclose(captured[k + 1][0], tokens[k], atol=1e-5)
    for d, t in zip(many, tracks, strict=True):
        assert d.selected_frames[0] == KEY and len(d.selected_frames) == 1 + model.config.num_region_tokens
        assert list(d.selected_frames[1:]) == sorted(d.selected_frames[1:])
        assert d.track is t and d.box == t.boxes[KEY]


def _roi_frames(description, n):
    from artemis_model.selection import choose_track_frames

    return [description.frame_idx, *choose_track_frames(description.track.visible_frames, n)]


def test_second_question_encodes_no_frame(model_proc, clip):
    model, proc = model_proc
    tracks = _tracks(clip)
    video = ArrayVideo(clip.frames)
    cache = FeatureCache()
    first = describe(
        model, proc, video, tracks[0].boxes[KEY], frame_idx=KEY, track=tracks[0], cache=cache, options=OPTS
    )
    before = (cache.stats.vision_frames, cache.stats.region_frames, video.stats.decode_calls)
    second = describe(
        model,
        proc,
        video,
        tracks[0].boxes[KEY],
        frame_idx=KEY,
        track=tracks[0],
        cache=cache,
        question="What colour is the <region>?",
        options=OPTS,
    )
    assert (cache.stats.vision_frames, cache.stats.region_frames, video.stats.decode_calls) == before
    assert second.question != first.question and second.selected_frames == first.selected_frames


def test_prefix_sharing_equals_batched(model_proc, clip):
    model, proc = model_proc
    tracks = _tracks(clip)
    video = ArrayVideo(clip.frames)
    cache = FeatureCache()
    kwargs = dict(frame_idx=KEY, tracks=tracks, cache=cache, options=OPTS)
    boxes = [t.boxes[KEY] for t in tracks]
    batched = describe_many(model, proc, video, boxes, **kwargs)
    prefix = describe_many(model, proc, video, boxes, strategy="prefix", **kwargs)
    assert [d.answer for d in prefix] == [d.answer for d in batched]


def test_snapping_reuses_shared_frames(model_proc, clip):
    model, proc = model_proc
    full = _tracks(clip)
    # Target k is visible from frame 3k on: the uniform picks differ, snapping moves them onto shared frames.
    tracks = [
        Track(
            boxes=tuple(b if f >= 3 * k else None for f, b in enumerate(t.boxes)),
            width=t.width,
            height=t.height,
        )
        for k, t in enumerate(full)
    ]
    frames = [3 * k + 1 for k in range(4)]
    boxes = [t.boxes[f] for t, f in zip(tracks, frames, strict=True)]
    plain, snapped = FeatureCache(), FeatureCache()
    video = ArrayVideo(clip.frames)
    kwargs = dict(frame_idx=frames, tracks=tracks, options=OPTS)
    describe_many(model, proc, video, boxes, cache=plain, **kwargs)
    out = describe_many(model, proc, video, boxes, cache=snapped, snap=True, **kwargs)
    assert snapped.stats.region_frames < plain.stats.region_frames
    for d in out:
        assert all(d.track.boxes[f] is not None for f in d.selected_frames)


def test_tracker_runs_when_no_track_given(model_proc, clip):
    model, proc = model_proc
    truth = _tracks(clip)[0]
    d = describe(model, proc, ArrayVideo(clip.frames), truth.boxes[KEY], frame_idx=KEY, options=OPTS)
    assert d.track.num_frames == clip.frames.shape[0]
    assert d.track.boxes[KEY] is not None and d.answer == d.answer.strip()


def test_bad_inputs_raise_typed_errors(model_proc, clip, tmp_path):
    model, proc = model_proc
    video = ArrayVideo(clip.frames)  # 64 x 48, 40 frames
    track = _tracks(clip)[0]
    call = dict(track=track, options=OPTS)
    for box, words in [
        ((70, 50, 90, 60), "outside"),
        ((30, 20, 10, 40), "inverted"),
        ((float("nan"), 0, 10, 10), "NaN"),
        ((10, 10, 10, 30), "inverted|zero area"),
    ]:
        with pytest.raises(InvalidBoxError, match=words):
            describe(model, proc, video, box, **call)
    with pytest.raises(FrameIndexError, match="40"):
        describe(model, proc, video, (1, 1, 9, 9), frame_idx=40, **call)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01 not a video " * 64)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (corrupt, empty, tmp_path / "missing.mp4"):
        with pytest.raises(VideoDecodeError, match=path.name):
            describe(model, proc, path, (1, 1, 9, 9), options=OPTS)
    with pytest.raises(ArtemisInputError, match="2 <region>"):
        describe(model, proc, video, (1, 1, 9, 9), question="Is <region> near <region>?", **call)
    with pytest.raises(ArtemisInputError, match="does not fit"):
        describe(model, proc, video, (1, 1, 9, 9), track=Track(boxes=(None,) * 3, width=64, height=48))
    not_model = tmp_path / "not_model"
    not_model.mkdir()
    with pytest.raises(NotAnArtemisModelError, match="no config.json"):
        ArtemisPipeline.from_pretrained(not_model)
    (not_model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(NotAnArtemisModelError, match="'llama'"):
        ArtemisPipeline.from_pretrained(not_model)


def test_from_pretrained_round_trip(model_proc, clip, tmp_path):
    model, proc = model_proc
    model.save_pretrained(tmp_path / "m")
    proc.save_pretrained(tmp_path / "m")
    pipe = ArtemisPipeline.from_pretrained(tmp_path / "m", dtype=torch.float32)
    track = _tracks(clip)[1]
    video = ArrayVideo(clip.frames)
    loaded = pipe.describe(video, track.boxes[KEY], frame_idx=KEY, track=track, options=OPTS)
    direct = describe(model, proc, video, track.boxes[KEY], frame_idx=KEY, track=track, options=OPTS)
    assert loaded.answer == direct.answer and pipe.cache.stats.vision_frames > 0
