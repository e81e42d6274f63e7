"""Per-shot tracking rules on a synthetic clip with a scripted detector (fast, no model): low-score detections
continue a track but start none, the tracker extends a track's ends (forward after its last detection, backward
before its first) and fills a missed detection frame, tracks below the start score on the whole are dropped."""

from __future__ import annotations

import numpy as np
import pytest

from artemis_model.types import box_iou
from artemis_model.video import ArrayVideo
from tools.grounding.detection import Detection
from tools.grounding.shot_tracks import EXTEND_FRAMES, KEEP_SCORE, confirmed, shot_tracks

W, H, N, SIDE, SPEED = 160, 120, 40, 30, 2


def _truth(f: int) -> tuple[float, float, float, float]:
    x = 20 + SPEED * f
    return (float(x), 40.0, float(x + SIDE), 40.0 + SIDE)


def _clip() -> ArrayVideo:
    rng = np.random.default_rng(0)
    background = rng.integers(60, 120, size=(H, W, 3), dtype=np.uint8)
    tile = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
    tile[::2, ::2] = tile[1::2, 1::2] = (
        230,
        40,
        40,
    )  # a red and yellow checkerboard: texture for the tracker
    tile[1::2, ::2] = tile[::2, 1::2] = (240, 220, 30)
    frames = np.repeat(background[None], N, axis=0)
    for f in range(N):
        x1, y1, x2, y2 = (int(v) for v in _truth(f))
        frames[f, y1:y2, x1:x2] = tile
    return ArrayVideo(frames, fps=25.0)


def _detector(scores: dict[int, float]):
    """Detects the square on the frames of ``scores`` with that score (its true box), nothing elsewhere."""

    def detect(frames: np.ndarray, indices: list[int]) -> list[list[Detection]]:
        return [
            [Detection(frame_idx=f, box=_truth(f), label="square", score=scores[f])] if f in scores else []
            for f in indices
        ]

    return detect


def _track(scores: dict[int, float], every: int):
    return shot_tracks(
        _clip(), _detector(scores), key=lambda d: d.label, every=every, shot_list=[(0, N)], start_score=0.3
    )


def test_low_score_detections_continue_a_track_and_the_tracker_extends_its_end() -> None:
    scores = {f: 0.5 for f in range(0, 12, 2)} | {f: 0.2 for f in range(12, 22, 2)}  # 0.2: below the start
    [track] = _track(scores, every=2)
    assert [d.frame_idx for d in track.detections] == list(range(0, 22, 2))  # the 0.2 ones are linked
    assert 0.2 >= KEEP_SCORE
    last = 20
    assert sorted(track.boxes) == list(range(0, last + EXTEND_FRAMES + 1))  # 4 frames past the last detection
    for f in range(last + 1, last + EXTEND_FRAMES + 1):
        assert box_iou(track.boxes[f], _truth(f)) >= 0.6, f


def test_low_score_detections_alone_start_no_track() -> None:
    assert _track({f: 0.2 for f in range(0, N, 2)}, every=2) == []


def test_a_new_track_is_extended_back_to_the_previous_detection_frame() -> None:
    [track] = _track({f: 0.5 for f in range(10, N, 5)}, every=5)  # visible from 0, first detected on 10
    assert min(track.boxes) == 10 - EXTEND_FRAMES  # 6..9 by the tracker run backward; 5 was a detection frame
    for f in range(6, 10):
        assert box_iou(track.boxes[f], _truth(f)) >= 0.6, f


def test_the_tracker_fills_a_missed_detection_frame() -> None:
    scores = {f: 0.5 for f in range(0, N, 5) if f != 15}  # the detector misses the square on frame 15
    [track] = _track(scores, every=5)
    assert 15 in track.boxes and all(f in track.boxes for f in range(0, N))
    assert box_iou(track.boxes[15], _truth(15)) >= 0.6


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.5, 0.2, 0.2], False),
        ([0.5, 0.4, 0.2], True),
        ([0.5], True),
        ([0.2, 0.9], False),
        ([0.35, 0.25], False),
    ],
)
def test_confirmed_tracks(scores: list[float], expected: bool) -> None:
    """At least two detections at the start score (one if it has only one) and a mean at the start score."""
    from tools.grounding.shot_tracks import ShotTrack

    t = ShotTrack(0, 0, [Detection(i, (0, 0, 1, 1), "x", s) for i, s in enumerate(scores)])
    assert confirmed(t, 0.3) is expected
