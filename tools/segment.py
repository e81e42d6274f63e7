"""``segment(video, n=4)``: split a video into consecutive frame ranges (long-video describe-then-summarize).

A video with shot cuts is split **at its cuts**: one segment per shot, a shot shorter than ``min_shot_s`` seconds
joining the segment before it (the first shot: the one after it), and a shot longer than ``ceil(total / n)``
frames split into near-equal parts no longer than that. A video without cuts is split into ``n`` near-equal parts.
The cuts come from ``cuts=`` or, when not given, :func:`video_cuts`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from artemis_model.tracking import shots
from tools.registry import tool_spec
from tools.schemas import Segment, SegmentArgs, SegmentResult
from tools.video import VideoLike, as_video_source, load_video

logger = logging.getLogger(__name__)

MIN_SHOT_S = 1.0
"""Shots shorter than this (seconds) join a neighbouring segment."""


def video_cuts(video: VideoLike) -> list[int]:
    """The first frames of the video's new shots (``artemis_model.tracking.shots.detect_cuts``; computed once
    per opened video)."""
    return [int(c) for c in shots.detect_cuts(as_video_source(video))]


def segment(
    video: VideoLike | str | Path,
    n: int = 4,
    *,
    cuts: Sequence[int] | None = None,
    min_shot_s: float = MIN_SHOT_S,
) -> list[Segment]:
    """Consecutive ``[start, end)`` ranges covering every frame: at the shot cuts when there are any (module
    docstring), else ``n`` near-equal parts (fewer if the video is shorter).

    ``cuts``: first frames of new shots (default: :func:`video_cuts`). Raises ``ValueError`` for ``n < 1``, a
    negative ``min_shot_s`` or a cut outside ``1..num_frames - 1``.
    """
    if n < 1:
        raise ValueError(f"number of segments n={n} must be >= 1")
    if min_shot_s < 0:
        raise ValueError(f"min_shot_s={min_shot_s} must be >= 0")
    video = load_video(video)
    total = video.num_frames
    if cuts is None:
        cuts = video_cuts(video) or []
    bad = [c for c in cuts if not 0 < int(c) < total]
    if bad:
        raise ValueError(f"cuts {bad} must lie in 1..{total - 1} (first frames of new shots)")
    if not cuts:
        n = min(n, total)
        bounds = [round(k * total / n) for k in range(n + 1)]
        return [Segment(index=k, start=bounds[k], end=bounds[k + 1]) for k in range(n)]
    return _shot_segments(total, sorted({int(c) for c in cuts}), n, min_shot_s * float(video.fps))


def _shot_segments(total: int, cuts: list[int], n: int, min_len: float) -> list[Segment]:
    ranges = [[a, b] for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    merged: list[list[int]] = []
    for r in ranges:
        if merged and (r[1] - r[0] < min_len or merged[-1][1] - merged[-1][0] < min_len):
            merged[-1][1] = r[1]  # a short shot joins the one before; a short first shot takes the next
        else:
            merged.append(r)
    max_len = math.ceil(total / n)
    parts: list[tuple[int, int]] = []
    for a, b in merged:
        k = math.ceil((b - a) / max_len)
        bounds = [a + round(j * (b - a) / k) for j in range(k + 1)]
        parts.extend(zip(bounds, bounds[1:], strict=False))
    logger.debug("%d cuts -> %d segments", len(cuts), len(parts))
    return [Segment(index=i, start=a, end=b) for i, (a, b) in enumerate(parts)]


@tool_spec(
    "segment",
    "Split the video into frame ranges: at its shot cuts when it has any, else n equal parts.",
    brief=lambda out: [[s.start, s.end] for s in out.segments],
)
def segment_tool(args: SegmentArgs, *, video: VideoLike) -> SegmentResult:
    """:func:`segment` as a registered tool."""
    return SegmentResult(segments=segment(video, args.n))
