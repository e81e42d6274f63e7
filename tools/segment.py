"""``segment(video, n=4)``: split a video into consecutive frame ranges (long-video describe-then-summarize)."""

from __future__ import annotations

from pathlib import Path

from tools.registry import tool_spec
from tools.schemas import Segment, SegmentArgs, SegmentResult
from tools.video import VideoLike, load_video


def segment(video: VideoLike | str | Path, n: int = 4) -> list[Segment]:
    """``n`` consecutive, near-equal ``[start, end)`` ranges covering every frame (fewer if the video is shorter)."""
    if n < 1:
        raise ValueError(f"number of segments n={n} must be >= 1")
    total = load_video(video).num_frames
    n = min(n, total)
    bounds = [round(k * total / n) for k in range(n + 1)]
    return [Segment(index=k, start=bounds[k], end=bounds[k + 1]) for k in range(n)]


@tool_spec(
    "segment",
    "Split the video into n frame ranges.",
    brief=lambda out: [[s.start, s.end] for s in out.segments],
)
def segment_tool(args: SegmentArgs, *, video: VideoLike) -> SegmentResult:
    """:func:`segment` as a registered tool."""
    return SegmentResult(segments=segment(video, args.n))
