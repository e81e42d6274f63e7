"""Tool-quality metrics against synthetic truth (pure numpy): grounding and tracking.

A *track* is a per-frame sequence of boxes, ``xyxy`` pixels, with ``None`` or ``[]`` where the object is
absent. Tracks compared with each other must have the same length (one entry per frame of the video).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BoxLike = Sequence[float] | None
TrackLike = Sequence[BoxLike]


def _box(b: BoxLike) -> tuple[float, float, float, float] | None:
    if b is None or len(b) == 0:
        return None
    if len(b) != 4:
        raise ValueError(f"box {b!r} must be [x1, y1, x2, y2] or empty")
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def iou(a: BoxLike, b: BoxLike) -> float:
    """IoU of two xyxy boxes; 0.0 when either is absent or empty."""
    ba, bb = _box(a), _box(b)
    if ba is None or bb is None:
        return 0.0
    iw = max(0.0, min(ba[2], bb[2]) - max(ba[0], bb[0]))
    ih = max(0.0, min(ba[3], bb[3]) - max(ba[1], bb[1]))
    inter = iw * ih
    union = (ba[2] - ba[0]) * (ba[3] - ba[1]) + (bb[2] - bb[0]) * (bb[3] - bb[1]) - inter
    return inter / union if union > 0 else 0.0


def track_iou(pred: TrackLike, truth: TrackLike) -> float:
    """Spatio-temporal IoU: mean per-frame IoU over frames where either track has a box."""
    if len(pred) != len(truth):
        raise ValueError(f"tracks differ in length: {len(pred)} vs {len(truth)} frames")
    scores = [
        iou(p, t) for p, t in zip(pred, truth, strict=True) if _box(p) is not None or _box(t) is not None
    ]
    return float(np.mean(scores)) if scores else 0.0


@dataclass(frozen=True)
class GroundingScores:
    recall: float
    precision: float
    matches: tuple[tuple[int, int, float], ...]  # (pred index, truth index, track IoU)


def grounding_scores(
    preds: Sequence[TrackLike], truths: Sequence[TrackLike], iou_threshold: float = 0.5
) -> GroundingScores:
    """Match predicted tracks to truth tracks one-to-one (greedy on track IoU >= ``iou_threshold``).

    recall = matched / len(truths) (1.0 when there is no truth); precision = matched / len(preds)
    (1.0 when both are empty, 0.0 when only the predictions are empty).
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    m = np.array([[track_iou(p, t) for t in truths] for p in preds]).reshape(len(preds), len(truths))
    matches = []
    used_p, used_t = set(), set()
    for flat in np.argsort(-m, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(truths))
        if m[i, j] < iou_threshold:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches.append((i, j, float(m[i, j])))
    recall = len(matches) / len(truths) if truths else 1.0
    precision = len(matches) / len(preds) if preds else (1.0 if not truths else 0.0)
    return GroundingScores(recall, precision, tuple(matches))


@dataclass(frozen=True)
class TrackingScores:
    mean_iou: float  # over frames where the truth is visible (a missing prediction scores 0)
    frames_lost: int  # truth visible and prediction missing or IoU < threshold
    lost_fraction: float
    identity_switches: int  # changes of the object the prediction sits on (target or a distractor)


def tracking_scores(
    pred: TrackLike, truth: TrackLike, *, distractors: Sequence[TrackLike] = (), iou_threshold: float = 0.5
) -> TrackingScores:
    """Score one predicted track against the target's truth; ``distractors`` are the other objects' truths.

    On each frame the prediction is assigned to the object (target = 0, distractor k = k + 1) it overlaps
    best with IoU >= ``iou_threshold``; each change between two consecutive assigned labels is a switch.
    """
    if len(pred) != len(truth) or any(len(d) != len(truth) for d in distractors):
        raise ValueError("prediction, truth and distractor tracks must have one entry per frame")
    visible = [t for t, b in enumerate(truth) if _box(b) is not None]
    ious = [iou(pred[t], truth[t]) for t in visible]
    lost = sum(1 for v in ious if v < iou_threshold)
    labels = []
    for t in range(len(truth)):
        cand = [iou(pred[t], truth[t])] + [iou(pred[t], d[t]) for d in distractors]
        best = int(np.argmax(cand))
        if cand[best] >= iou_threshold:
            labels.append(best)
    switches = sum(1 for a, b in zip(labels[:-1], labels[1:], strict=True) if a != b)
    return TrackingScores(
        mean_iou=float(np.mean(ious)) if ious else 0.0,
        frames_lost=lost,
        lost_fraction=lost / len(visible) if visible else 0.0,
        identity_switches=switches,
    )
