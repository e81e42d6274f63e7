"""Issue #18, point 6: boxes partly outside the frame, clipped for our models, kept for converted weights.

The original normalised the raw box by the frame's W, H without clipping (a box partly outside gives
coordinates below 0 or above 1; RoIAlign samples zeros outside the map). A processor in the original's resize
mode (what the converter writes) keeps that: ``clip_boxes`` is False and the pipeline hands the raw box, key and
tracked, to the region encoder; our ``consistent`` mode clips as before. A box entirely outside the frame,
inverted, empty or NaN is refused in both modes, naming the box. The tracker always gets the clipped key box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from artemis_model.errors import InvalidBoxError
from artemis_model.pipeline import TargetRequest, describe, prepare_targets
from artemis_model.tiny import tiny_model_and_processor, tiny_processor
from artemis_model.types import GenerationOptions, Track, validate_box
from artemis_model.video.array import ArrayVideo
from evals.artemis_predictor import record_track
from evals.protocol import EvalRecord

W, H, T = 64, 48, 12
KEY = 0
KEY_BOX = (-8.0, 4.0, 30.0, 56.0)  # partly outside: left and bottom
TRACK_BOX = (40.0, -6.0, 72.0, 20.0)  # partly outside: top and right
SCALE = torch.tensor([W, H, W, H], dtype=torch.float32)


def _clipped(box):
    return (max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(W)), min(box[3], float(H)))


@pytest.fixture(scope="module")
def video() -> ArrayVideo:
    rng = np.random.default_rng(1)
    return ArrayVideo(rng.integers(0, 255, size=(T, H, W, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def model():
    return tiny_model_and_processor(seed=0)[0]


def test_processor_clips_only_in_the_consistent_mode():
    consistent, original = tiny_processor(), tiny_processor(resize_mode="original")
    assert consistent.clip_boxes and not original.clip_boxes
    raw = torch.tensor([KEY_BOX, TRACK_BOX]) / SCALE
    kept = original.normalize_boxes([KEY_BOX, TRACK_BOX], W, H)
    torch.testing.assert_close(kept, raw, rtol=0, atol=0)
    assert kept[0, 0] < 0 and kept[0, 3] > 1 and kept[1, 1] < 0 and kept[1, 2] > 1
    clipped = consistent.normalize_boxes([KEY_BOX, TRACK_BOX], W, H)
    torch.testing.assert_close(clipped, torch.tensor([_clipped(KEY_BOX), _clipped(TRACK_BOX)]) / SCALE)
    inside = (3.0, 4.0, 30.0, 40.0)
    assert torch.equal(original.normalize_boxes([inside], W, H), consistent.normalize_boxes([inside], W, H))


@pytest.mark.parametrize("mode", ["consistent", "original"])
@pytest.mark.parametrize(
    "box, words",
    [
        ((70.0, 5.0, 90.0, 20.0), "outside the 64x48 frame"),
        ((-30.0, -20.0, 0.0, 10.0), "outside the 64x48 frame"),
        ((float("nan"), 5.0, 20.0, 20.0), "NaN"),
        ((30.0, 5.0, 10.0, 20.0), "inverted"),
    ],
)
def test_bad_boxes_are_refused_in_both_modes(mode, box, words):
    processor = tiny_processor(resize_mode=mode)
    with pytest.raises(InvalidBoxError, match=words):
        processor.normalize_boxes([box], W, H)


def _region_boxes(model, processor, video, monkeypatch) -> torch.Tensor:
    captured = []
    build = model.build_region_features

    def spy(pixel_values, frame_ids, boxes_norm, *, fused_maps=None):
        captured.append(boxes_norm.clone())
        return build(pixel_values, frame_ids, boxes_norm, fused_maps=fused_maps)

    monkeypatch.setattr(model, "build_region_features", spy)
    track = Track(boxes=(KEY_BOX,) + (TRACK_BOX,) * (T - 1), width=W, height=H)  # as given: not clipped
    prepare_targets(model, processor, video, [TargetRequest(box=KEY_BOX, frame_idx=KEY, track=track)])
    monkeypatch.undo()
    return captured[0][0]  # [1 + n, 4] of the one target


def test_pipeline_hands_raw_boxes_to_the_encoder_in_the_original_mode(model, video, monkeypatch):
    original = _region_boxes(model, tiny_processor(model.config, resize_mode="original"), video, monkeypatch)
    # key box then the 8 tracked boxes (frame 0 is tracked too: its box is the raw key box)
    tracked = original[1:]
    torch.testing.assert_close(original[0], torch.tensor(KEY_BOX) / SCALE, rtol=0, atol=0)
    assert all(
        torch.equal(row, torch.tensor(KEY_BOX) / SCALE) or torch.equal(row, torch.tensor(TRACK_BOX) / SCALE)
        for row in tracked
    )
    assert (original < 0).any() and (original > 1).any()
    consistent = _region_boxes(model, tiny_processor(model.config), video, monkeypatch)
    assert consistent.min() >= 0 and consistent.max() <= 1
    torch.testing.assert_close(consistent[0], torch.tensor(_clipped(KEY_BOX)) / SCALE)


def test_partial_box_changes_the_region_token_only_in_the_original_mode(model, video, monkeypatch):
    """End to end: the original mode describes the raw box (another token than the clipped box's)."""
    options = GenerationOptions(max_new_tokens=2)
    captured = []
    build = model.build_region_features

    def spy(*args, **kwargs):
        out = build(*args, **kwargs)
        captured.append(out.tokens.clone())
        return out

    monkeypatch.setattr(model, "build_region_features", spy)
    tokens = {}
    for mode in ("consistent", "original"):
        processor = tiny_processor(model.config, resize_mode=mode)
        for name, box in (("raw", KEY_BOX), ("clipped", _clipped(KEY_BOX))):
            track = Track(boxes=(box,) * T, width=W, height=H)
            describe(model, processor, video, box, frame_idx=KEY, track=track, options=options)
            tokens[mode, name] = captured.pop()
    assert torch.equal(tokens["consistent", "raw"], tokens["consistent", "clipped"])  # clipped: same token
    assert not torch.allclose(tokens["original", "raw"], tokens["original", "clipped"])  # kept: the raw box


def test_tracker_gets_the_clipped_key_box(model, video):
    received = []

    class RecordingTracker:
        def init_state(self, source):
            return self

        def add_box(self, state, frame_idx, box):
            received.append((frame_idx, tuple(box)))

        def propagate(self, state):
            return iter(())

        def to_track(self):
            return Track(boxes=(KEY_BOX,) + (None,) * (T - 1), width=W, height=H)

    processor = tiny_processor(model.config, resize_mode="original")
    d = describe(
        model,
        processor,
        video,
        KEY_BOX,
        frame_idx=KEY,
        tracker=RecordingTracker(),
        options=GenerationOptions(max_new_tokens=1),
    )
    assert received == [(KEY, _clipped(KEY_BOX))]
    assert d.box == KEY_BOX  # the description reports the box the model saw: the raw one


def test_track_sources_keep_raw_boxes():
    kept = Track.from_track_list([list(KEY_BOX), []], W, H, clip=False)
    assert kept.boxes == (KEY_BOX, None)
    assert Track.from_track_list([list(KEY_BOX), []], W, H).boxes == (_clipped(KEY_BOX), None)
    record = EvalRecord(
        record_id="r",
        video_name="v",
        groundtruth="g",
        key_frame_idx=0,
        key_box=KEY_BOX,
        track=((0, KEY_BOX), (2, TRACK_BOX)),
        video_path=Path(__file__),  # any path: record_track does not open it
    )
    track = record_track(record, 3, W, H)
    assert track.boxes == (KEY_BOX, None, TRACK_BOX)  # the pipeline clips per processor, not the eval
    with pytest.raises(InvalidBoxError, match="outside"):
        validate_box((70.0, 5.0, 90.0, 20.0), W, H, clip=False)
