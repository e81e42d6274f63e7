"""Tracking: holds IoU >= 0.7 through a same-coloured distractor, forward and backward from a middle key
frame; reports the target absent after a shot cut and behind a full occlusion; API shape and plug-ins."""

from __future__ import annotations

import numpy as np
import pytest

from artemis_model.tracking import Tracker, TrackerConfig, TrackingState, track_box
from artemis_model.tracking.backends import OpenCVTracker, available_backends, register_backend
from artemis_model.types import Box, Track, box_iou
from artemis_model.video import open_video
from tests.artemis_model.synthetic_clips import Clip, cut_clip, distractor_clip, occlusion_clip

MIN_IOU = 0.7


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    directory = tmp_path_factory.mktemp("tracking")
    return {
        "distractor": distractor_clip(directory),
        "cut": cut_clip(directory),
        "occlusion": occlusion_clip(directory),
    }


def check_track(track: Track, clip: Clip) -> None:
    """IoU >= 0.7 where the target is visible, absent (None) where it is not; partial occlusions skipped."""
    assert track.num_frames == len(clip.truth)
    for i, (box, truth) in enumerate(zip(track.boxes, clip.truth, strict=True)):
        if i in clip.ignore:
            continue
        if truth is None:
            assert box is None, f"frame {i}: target absent but tracked at {box}"
        else:
            assert box is not None, f"frame {i}: target visible at {truth} but reported absent"
            assert box_iou(box, truth) >= MIN_IOU, f"frame {i}: {box} vs truth {truth}"


def test_same_coloured_distractor_crossing_forward_and_backward(clips: dict[str, Clip]) -> None:
    clip = clips["distractor"]
    key = len(clip.truth) // 2
    track = track_box(clip.path, clip.truth[key], frame_idx=key)
    check_track(track, clip)
    assert track.boxes[key] == clip.truth[key]
    assert track.span == (0, len(clip.truth) - 1)


def test_target_absent_after_a_shot_cut(clips: dict[str, Clip]) -> None:
    clip = clips["cut"]
    key = 20
    track = track_box(clip.path, clip.truth[key], frame_idx=key)
    check_track(track, clip)
    assert track.span == (0, 39)  # the cut is at frame 40
    assert all(b is None for b in track.boxes[40:])


def test_full_occlusion_reports_absent_then_reacquires(clips: dict[str, Clip]) -> None:
    clip = clips["occlusion"]
    hidden = [i for i, t in enumerate(clip.truth) if t is None]
    assert len(hidden) >= 5
    track = track_box(clip.path, clip.truth[10], frame_idx=10)
    check_track(track, clip)
    after = [i for i in range(hidden[-1] + 1, len(clip.truth)) if i not in clip.ignore]
    assert after and all(track.boxes[i] is not None for i in after)


def test_backward_from_the_last_frame_across_the_cut(clips: dict[str, Clip]) -> None:
    """Key frame in the second scene is not the target: start before the cut and go backward only."""
    clip = clips["cut"]
    tracker = Tracker()
    state = tracker.init_state(clip.path)
    tracker.add_box(state, 39, clip.truth[39])
    frames = [idx for idx, _ in tracker.propagate(state, direction="backward")]
    assert frames == list(range(39, -1, -1))
    for idx in frames:
        assert box_iou(state.boxes[idx], clip.truth[idx]) >= MIN_IOU


def test_propagate_order_and_typed_state(clips: dict[str, Clip]) -> None:
    clip = clips["distractor"]
    tracker = Tracker("kcf")
    state = tracker.init_state(clip.path)
    assert isinstance(state, TrackingState)
    tracker.add_box(state, 30, clip.truth[30])
    order = [idx for idx, _ in tracker.propagate(state)]
    n = len(clip.truth)
    assert order == [30, *range(31, n), *range(29, -1, -1)]
    assert sorted(state.boxes) == list(range(n))
    assert state.to_track().num_frames == n


def test_second_prompt_restarts_propagation(clips: dict[str, Clip]) -> None:
    clip = clips["cut"]
    tracker = Tracker()
    state = tracker.init_state(clip.path)
    tracker.add_box(state, 5, clip.truth[5])
    far = (200.0, 150.0, 240.0, 190.0)  # a deliberate (wrong) prompt in the second scene
    tracker.add_box(state, 60, far)
    results = dict(tracker.propagate(state, direction="forward"))
    assert results[5] == clip.truth[5] and results[60] == far
    assert sorted(results) == list(range(5, len(clip.truth)))
    assert all(box_iou(results[i], clip.truth[i]) >= MIN_IOU for i in range(5, 40))


def test_stride_with_interpolation_still_holds(clips: dict[str, Clip]) -> None:
    clip = clips["distractor"]
    video = open_video(clip.path)
    track = track_box(video, clip.truth[35], frame_idx=35, tracker=Tracker(stride=3))
    check_track(track, clip)
    # every third frame (and the ends) goes to the tracker: far fewer frames decoded than tracked
    assert video.stats.frames_decoded < 0.5 * len(clip.truth)


def test_reduced_tracking_resolution_reports_original_pixels(clips: dict[str, Clip]) -> None:
    clip = clips["distractor"]
    tracker = Tracker(max_side=160, min_target_side=20)
    state = tracker.init_state(clip.path)
    tracker.add_box(state, 35, clip.truth[35])
    for _ in tracker.propagate(state):
        pass
    assert state.track_size == (160, 120)
    assert min(box_iou(state.boxes[i], clip.truth[i]) for i in range(len(clip.truth))) >= 0.6


def test_boxes_are_clipped_to_the_frame(clips: dict[str, Clip]) -> None:
    clip = clips["distractor"]
    tracker = Tracker()
    state = tracker.init_state(clip.path)
    clipped = tracker.add_box(state, 0, (-15.0, 90.0, 60.0, 140.0))
    assert clipped == (0.0, 90.0, 60.0, 140.0)
    for _, box in tracker.propagate(state, direction="forward"):
        if box is not None:
            assert 0 <= box[0] < box[2] <= 320 and 0 <= box[1] < box[3] <= 240


@pytest.mark.parametrize("backend", ["csrt", "mil"])
def test_other_opencv_backends_hold_and_detect_the_cut(clips: dict[str, Clip], backend: str) -> None:
    clip = clips["cut"]
    track = track_box(clip.path, clip.truth[30], frame_idx=30, tracker=Tracker(backend))
    check_track(track, clip)


def test_plugged_in_backend_is_used(clips: dict[str, Clip]) -> None:
    calls = {"init": 0, "update": 0}

    class StillBackend:
        """Claims the target never moves; the refinement and the checks must do the rest."""

        def init(self, frame: np.ndarray, box: Box) -> None:
            calls["init"] += 1
            self.box = box

        def update(self, frame: np.ndarray) -> Box | None:
            calls["update"] += 1
            return self.box

    register_backend("still-test", StillBackend)
    assert "still-test" in available_backends()
    clip = clips["distractor"]
    track = track_box(clip.path, clip.truth[35], frame_idx=35, tracker=Tracker("still-test"))
    assert calls["update"] > 0 and calls["init"] >= 2
    check_track(track, clip)

    # Without refinement and re-detection, the stuck box is dropped by the appearance check once the
    # target has left it, instead of following the background.
    stuck = Tracker(StillBackend, refine=False, redetect=False)
    track = track_box(clip.path, clip.truth[35], frame_idx=35, tracker=stuck)
    assert track.boxes[36] == clip.truth[35]
    assert all(box is None for box in track.boxes[50:])
    assert all(box is None for box in track.boxes[:20])


def test_bad_settings_name_the_allowed_values(clips: dict[str, Clip]) -> None:
    with pytest.raises(ValueError, match="kcf"):
        Tracker("nope")
    with pytest.raises(ValueError, match="stride"):
        Tracker(strid=2)
    with pytest.raises(ValueError, match="stride"):
        TrackerConfig(stride=0)
    with pytest.raises(ValueError, match="csrt"):
        OpenCVTracker("boosting")
    tracker = Tracker()
    state = tracker.init_state(clips["distractor"].path)
    with pytest.raises(ValueError, match="add_box"):
        next(tracker.propagate(state))
    with pytest.raises(ValueError, match="direction"):
        tracker.add_box(state, 0, (1, 1, 20, 20))
        next(tracker.propagate(state, direction="sideways"))  # type: ignore[arg-type]
