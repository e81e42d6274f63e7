"""Metrics against hand-computed oracles."""

from __future__ import annotations

import pytest

from synth.metrics import grounding_scores, iou, track_iou, tracking_scores
from synth.world import generate_clip


def test_iou_oracles() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)  # shifted by half the width
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([0, 0, 10, 10], []) == 0.0 and iou(None, [0, 0, 1, 1]) == 0.0
    with pytest.raises(ValueError, match="x1"):
        iou([0, 0, 1], [0, 0, 1, 1])


def test_track_iou_counts_frames_where_either_has_a_box() -> None:
    truth = [[0, 0, 10, 10], [0, 0, 10, 10], [], []]
    pred = [[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 4, 4], []]
    assert track_iou(pred, truth) == pytest.approx((1.0 + 1 / 3 + 0.0) / 3)
    with pytest.raises(ValueError, match="length"):
        track_iou(pred[:2], truth)


def test_grounding_perfect_partial_and_empty() -> None:
    clip = generate_clip(11, num_objects=4)
    truths = [list(o.boxes) for o in clip.objects]
    perfect = grounding_scores(truths[::-1], truths)
    assert (perfect.recall, perfect.precision) == (1.0, 1.0)
    assert sorted((p, t) for p, t, _ in perfect.matches) == [(i, 3 - i) for i in range(4)]
    # two right, one duplicate of a right one, one wrong (shifted far away)
    far = [[b[0] + 1000, b[1], b[2] + 1000, b[3]] if b else None for b in truths[3]]
    s = grounding_scores([truths[0], truths[1], truths[1], far], truths[:3])
    assert s.recall == pytest.approx(2 / 3) and s.precision == pytest.approx(2 / 4)
    assert grounding_scores([], truths).recall == 0.0 and grounding_scores([], truths).precision == 0.0
    assert grounding_scores([], []).precision == 1.0 and grounding_scores([truths[0]], []).precision == 0.0


def test_grounding_threshold_on_shifted_boxes() -> None:
    truth = [[[0, 0, 10, 10]] * 3]
    shifted = [[[2, 0, 12, 10]] * 3]  # IoU 80/120 = 2/3
    assert grounding_scores(shifted, truth).matches[0][2] == pytest.approx(2 / 3)
    assert grounding_scores(shifted, truth, iou_threshold=0.7).recall == 0.0
    assert grounding_scores(shifted, truth, iou_threshold=0.6).recall == 1.0


def test_tracking_perfect_lost_and_identity_switch() -> None:
    a = [[0, 0, 10, 10]] * 6
    b = [[50, 50, 60, 60]] * 6
    perfect = tracking_scores(a, a, distractors=[b])
    assert (perfect.mean_iou, perfect.frames_lost, perfect.identity_switches) == (1.0, 0, 0)
    # jumps to the distractor on frames 2-3, comes back: 2 switches, 2 frames lost
    pred = [a[0], a[0], b[0], b[0], a[0], a[0]]
    s = tracking_scores(pred, a, distractors=[b])
    assert s.identity_switches == 2 and s.frames_lost == 2
    assert s.mean_iou == pytest.approx(4 / 6) and s.lost_fraction == pytest.approx(2 / 6)
    # missing predictions are lost frames but not switches
    gone = [a[0], None, None, [], a[0], [5, 0, 15, 10]]
    g = tracking_scores(gone, a, distractors=[b])
    assert g.identity_switches == 0 and g.frames_lost == 4
    assert g.mean_iou == pytest.approx((1 + 1 + 1 / 3) / 6)
