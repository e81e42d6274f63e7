"""``refer``: say what a boxed target does, for one box, several targets, or per segment of a long video."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from artemis_model.types import Box, Description, validate_box, validate_frame_idx
from tools.describers import DEFAULT_QUESTION, Describer, accepts_keyword
from tools.registry import tool_spec
from tools.schemas import DescribeArgs, DescribeResult, Segment, Target, TargetDescription
from tools.video import SubVideo, VideoLike, load_video

logger = logging.getLogger(__name__)


def refer(
    video: VideoLike | str | Path,
    box: Box,
    *,
    frame_idx: int = 0,
    question: str | None = None,
    describer: Describer,
) -> Description:
    """Describe the target in ``box`` (pixels on frame ``frame_idx``) over the whole video with ``describer``."""
    video = load_video(video)
    box = validate_box(box, video.width, video.height)
    validate_frame_idx(frame_idx, video.num_frames)
    return describer(video, box, frame_idx=frame_idx, question=question or DEFAULT_QUESTION)


@tool_spec("describe", "Describe what the boxed target does.", brief=lambda out: out.answer)
def describe_tool(args: DescribeArgs, *, video: VideoLike, describer: Describer) -> DescribeResult:
    """:func:`refer` as a registered tool."""
    d = refer(video, args.box, frame_idx=args.frame_idx, question=args.question, describer=describer)
    return DescribeResult.from_description(d)


def refer_targets(
    video: VideoLike | str | Path,
    targets: Sequence[Target],
    *,
    question: str | None = None,
    describer: Describer,
) -> list[TargetDescription]:
    """One description per target, each from its key box (:meth:`Target.key_box`): the user's box on the
    user's frame, unchanged, for a user box; the chosen key detection for a grounded target.

    All targets of a video go to the describer together when it has ``describe_many`` (one frame decode and
    feature pass), with the tracks the targets already carry (grounding or the user-box tracker made them:
    the describer does not track again); otherwise they are described one by one on the same opened video.
    """
    video = load_video(video)
    question = question or DEFAULT_QUESTION
    boxes = [(box, frame) for frame, box in (t.key_box() for t in targets)]
    many = getattr(describer, "describe_many", None)
    if callable(many):
        extra = {"labels": [t.label for t in targets]} if accepts_keyword(many, "labels") else {}
        descs = many(
            video,
            [b for b, _ in boxes],
            frame_idxs=[f for _, f in boxes],
            question=question,
            tracks=[t.track() for t in targets],
            **extra,
        )
    else:
        descs = [describer(video, b, frame_idx=f, question=question) for b, f in boxes]
    return [_to_target_description(t, d, offset=0) for t, d in zip(targets, descs, strict=True)]


def refer_segments(
    video: VideoLike | str | Path,
    target: Target,
    segments: Sequence[Segment],
    *,
    question: str | None = None,
    describer: Describer,
) -> list[TargetDescription]:
    """Describe ``target`` within each segment where it is visible (long-video path); frames stay absolute.

    The key box is the target's own (:meth:`Target.key_box`) in the segment that holds it; in any other segment,
    the box on the segment's visible frame nearest to it (ties: the earlier frame).
    """
    video = load_video(video)
    if all(b is None for b in target.boxes):
        logger.debug("target %d is visible on no frame", target.id)
        return []
    key, _ = target.key_box()
    out = []
    for seg in segments:
        visible = [f for f in range(seg.start, seg.end) if target.box_at(f) is not None]
        if not visible:
            logger.debug("target %d is not visible in segment %d", target.id, seg.index)
            continue
        sub = SubVideo(video, seg.start, seg.end)
        frame = min(visible, key=lambda f: (abs(f - key), f))
        desc = describer(
            sub, target.box_at(frame), frame_idx=frame - seg.start, question=question or DEFAULT_QUESTION
        )
        out.append(_to_target_description(target, desc, offset=seg.start, segment=seg))
    return out


def _to_target_description(
    target: Target, desc: Description, *, offset: int, segment: Segment | None = None
) -> TargetDescription:
    span = target.span if segment is None else _clip_span(target, segment)
    return TargetDescription(
        target_id=target.id,
        label=target.label,
        text=desc.answer,
        span=span,
        frame_idx=desc.frame_idx + offset,
        box=tuple(desc.box),
        selected_frames=[f + offset for f in desc.selected_frames],
        segment=segment,
        source="refer",
    )


def _clip_span(target: Target, seg: Segment) -> tuple[int, int]:
    vis = [f for f in range(seg.start, seg.end) if target.box_at(f) is not None]
    return (vis[0], vis[-1]) if vis else (seg.start, seg.start)
