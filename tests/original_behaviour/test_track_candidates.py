"""Issue #18, point 6: the tracked frames are chosen only among the frames where the track has a box.

The original picks its 8 tracked frames from the non-empty ``track_list`` entries and never adds the key frame
(artemis_reference.md §1.9); our training does the same (``training/referring_data.py``: candidates are the
non-empty entries). The pipeline used to add the key frame as a candidate when the track lacked it; it now
matches both. A track with no usable box at all (which the original never met: its tracks come from the data
sets) falls back on the key frame and box, with a warning.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from artemis_model.pipeline import TargetRequest, _plan_target, prepare_targets
from artemis_model.selection import choose_track_frames
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.types import Track
from artemis_model.video.array import ArrayVideo
from training.referring_data import ReferringDataset

W, H, T = 64, 48, 30
KEY = 2
KEY_BOX = (5.0, 6.0, 25.0, 30.0)
VISIBLE = range(10, 20)  # the track has boxes on frames 10..19 only; the key frame 2 is not among them


def _box(f: int) -> tuple[float, float, float, float]:
    return (float(f), 8.0, float(f) + 20.0, 30.0)


def _track(visible=VISIBLE) -> Track:
    return Track(boxes=tuple(_box(f) if f in visible else None for f in range(T)), width=W, height=H)


@pytest.fixture(scope="module")
def video() -> ArrayVideo:
    rng = np.random.default_rng(0)
    return ArrayVideo(rng.integers(0, 255, size=(T, H, W, 3), dtype=np.uint8))


def test_tracked_frames_come_only_from_the_track(video):
    target = _plan_target(video, KEY_BOX, KEY, "What is the <region> doing?", _track(), 8)
    assert target.tracked_frames == tuple(choose_track_frames(list(VISIBLE), 8)) == tuple(range(10, 18))
    assert KEY not in target.tracked_frames  # before: key frame 2 added -> (2, 10, 11, ..., 16)
    assert target.tracked_boxes == tuple(_box(f) for f in range(10, 18))
    assert target.frame_idx == KEY and target.box == KEY_BOX  # the key frame and box still come first


def test_inference_choice_equals_the_training_choice(video, tmp_path):
    """The same track_list through the training data set (uniform mode) and the pipeline: same frames."""
    _, processor = tiny_model_and_processor(seed=0)
    for visible in (VISIBLE, range(0, 30, 3), (4, 9, 21)):
        track = _track(visible)
        record = {
            "video": "clip.mp4",
            "caption": "a square",
            "track_list": track.to_track_list(),
            "key_frame_id": KEY,
            "key_frame_box": list(KEY_BOX),
        }
        data = ReferringDataset([record], processor, media_root=tmp_path, track_sampling="uniform")
        _, key, key_box, trained = data.choose(0)
        planned = _plan_target(video, KEY_BOX, KEY, "q", track, 8)
        assert (key, tuple(key_box)) == (KEY, KEY_BOX)
        assert tuple(trained) == planned.tracked_frames
        assert set(trained) <= set(visible)
        # the jittered training mode never adds the key frame either
        jittered = ReferringDataset([record], processor, media_root=tmp_path, track_sampling="average")
        for epoch in range(5):
            jittered.set_epoch(epoch)
            assert set(jittered.choose(0)[3]) <= set(visible)


def test_track_without_any_box_falls_back_on_the_key_frame(video, caplog):
    empty = Track(boxes=(None,) * T, width=W, height=H)
    with caplog.at_level(logging.WARNING, logger="artemis_model.pipeline"):
        target = _plan_target(video, KEY_BOX, KEY, "q", empty, 8)
    assert target.tracked_frames == (KEY,) * 8 and target.tracked_boxes == (KEY_BOX,) * 8
    assert "no usable box in the track: key frame 2" in caplog.text


def test_pipeline_feeds_only_tracked_frames(video, monkeypatch):
    model, processor = tiny_model_and_processor(seed=0)
    captured = []
    build = model.build_region_features

    def spy(pixel_values, frame_ids, boxes_norm, *, fused_maps=None):
        captured.append((frame_ids.clone(), boxes_norm.clone()))
        return build(pixel_values, frame_ids, boxes_norm, fused_maps=fused_maps)

    monkeypatch.setattr(model, "build_region_features", spy)
    request = TargetRequest(box=KEY_BOX, frame_idx=KEY, track=_track())
    (prepared,) = prepare_targets(model, processor, video, [request])
    ((frame_ids, boxes_norm),) = captured
    union = sorted({KEY, *range(10, 18)})  # the frames encoded: key + the 8 tracked ones
    assert [union[i] for i in frame_ids[0].tolist()] == [KEY, *range(10, 18)]
    expected = torch.tensor([KEY_BOX, *(_box(f) for f in range(10, 18))]) / torch.tensor([W, H, W, H])
    torch.testing.assert_close(boxes_norm[0], expected)
    assert prepared.selected_frames[0] == KEY and set(prepared.selected_frames[1:]) <= set(VISIBLE)
