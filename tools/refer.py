"""``refer``: say what a boxed target does, for one box, several targets, or per segment of a long video."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from artemis_model.types import Box, Description, validate_box, validate_frame_idx
from tools.claims import caption_claims, disagreements
from tools.describers import DEFAULT_QUESTION, Describer, Sampling, accepts_keyword, can_sample
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


CHECK_SAMPLES = 24
"""Sampled captions :func:`refer_checked` asks for at most, per target whose first caption is contradicted."""
CHECK_BATCH = 8
"""Sampled captions per contradicted target in one describer call (one round)."""


class CaptionCheck(BaseModel):
    """How one target's caption fared against what the agent knows of it (:func:`refer_checked`)."""

    model_config = ConfigDict(frozen=True)

    target_id: int
    conflicts: tuple[str, ...] = ()
    """What the describer's first (greedy) caption contradicted; empty: nothing."""
    sample: int | None = None
    """The number (1, 2, ...) of the sampled caption kept instead; ``None``: the first caption was kept."""
    tried: int = 0
    """Sampled captions read for this target (up to the one kept)."""

    @property
    def text(self) -> str:
        if not self.conflicts:
            return f"#{self.target_id}: consistent with its label and track"
        why = "; ".join(self.conflicts)
        if self.sample is not None:
            return f"#{self.target_id}: first caption {why}; kept sample {self.sample} of {self.tried}, which agrees"
        return (
            f"#{self.target_id}: first caption {why}; none of {self.tried} samples agreed, first caption kept"
        )


def refer_checked(
    video: VideoLike | str | Path,
    targets: Sequence[Target],
    *,
    first_motions: Sequence[str | Sequence[str] | None],
    question: str | None = None,
    describer: Describer,
    samples: int = CHECK_SAMPLES,
    batch: int = CHECK_BATCH,
) -> tuple[list[TargetDescription], list[CaptionCheck]]:
    """:func:`refer_targets`, each caption checked against what the agent already knows of its target.

    Known: the target's label (grounding's colour and kind) and ``first_motions`` (one per target: what its
    track does first, the names :func:`tools.memory.first_motions` allows; ``None`` or empty: unknown). A
    caption that contradicts either (:func:`tools.claims.disagreements`) is re-asked: sampled captions of the
    same model on the same inputs, ``batch`` per contradicted target in one ``describer.describe_many`` call per
    round (``sampling=Sampling(seed=<the round's number>)``, every contradicted target in it), at most
    ``samples`` per target, until one agrees; the first that agrees (in sample order) replaces it; when none
    does, the first caption stays. The describer's words are never edited, only chosen among its own
    hypotheses. A describer that cannot sample (:func:`tools.describers.can_sample`) keeps its captions.
    """
    if samples < 0 or batch < 1:
        raise ValueError(f"samples must be >= 0 and batch >= 1, got samples={samples}, batch={batch}")
    video = load_video(video)
    if len(first_motions) != len(targets):
        raise ValueError(f"{len(first_motions)} first motions for {len(targets)} targets")
    descs = refer_targets(video, targets, question=question, describer=describer)
    conflicts = [
        tuple(disagreements(caption_claims(d.text), t.label, m))
        for d, t, m in zip(descs, targets, first_motions, strict=True)
    ]
    kept: dict[int, int] = {}  # target index -> number of the sampled caption kept
    drawn: dict[int, int] = {}  # target index -> sampled captions drawn for it
    pending = [i for i, c in enumerate(conflicts) if c]
    sampling = can_sample(describer)
    if pending and not sampling:
        logger.debug(
            "%s cannot sample: %d contradicted captions kept", type(describer).__name__, len(pending)
        )
    keys = {i: targets[i].key_box() for i in pending}  # the inputs of every round
    tracks = {i: targets[i].track() for i in pending}
    rounds = 0
    while pending and sampling and rounds * batch < samples:
        n = min(batch, samples - rounds * batch)
        rounds += 1
        order = [i for i in pending for _ in range(n)]  # each target's n copies side by side: one call
        outs = describer.describe_many(  # type: ignore[attr-defined]
            video,
            [keys[i][1] for i in order],
            frame_idxs=[keys[i][0] for i in order],
            question=question or DEFAULT_QUESTION,
            tracks=[tracks[i] for i in order],
            sampling=Sampling(seed=rounds),
        )
        for k, (i, d) in enumerate(zip(order, outs, strict=True)):
            if i in kept:
                continue
            drawn[i] = (rounds - 1) * batch + k % n + 1
            if not disagreements(caption_claims(d.answer), targets[i].label, first_motions[i]):
                descs[i] = _to_target_description(targets[i], d, offset=0)
                kept[i] = drawn[i]
        pending = [i for i in pending if i not in kept]
    checks = [
        CaptionCheck(target_id=t.id, conflicts=c, sample=kept.get(i), tried=drawn.get(i, 0))
        for i, (t, c) in enumerate(zip(targets, conflicts, strict=True))
    ]
    return descs, checks


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
