"""``track(video, box, *, frame_idx=0) -> Track``: follow a boxed target over the whole video;
``user_target``: the user's box as a described target."""

from __future__ import annotations

from pathlib import Path

from artemis_model.tracking import track_box
from artemis_model.types import Box, Track, validate_box
from tools.grounding.offline import name_region
from tools.registry import tool_spec
from tools.schemas import BoxArgs, Target, TrackResult
from tools.video import VideoLike, as_video_source, load_video


def track(video: VideoLike | str | Path, box: Box, *, frame_idx: int = 0) -> Track:
    """Boxes of the target boxed by ``box`` (pixels, on frame ``frame_idx``) on every frame
    (:func:`artemis_model.tracking.track_box`, which checks the box and the frame). The box stops at shot
    cuts (the cut test of :mod:`artemis_model.tracking.shots`, as grounding uses) and comes back only where
    re-detection finds the target again by appearance."""
    return track_box(as_video_source(load_video(video)), box, frame_idx=frame_idx)


@tool_spec(
    "track", "Track a box over the video.", brief=lambda out: [b if b is not None else [] for b in out.boxes]
)
def track_tool(args: BoxArgs, *, video: VideoLike) -> TrackResult:
    """:func:`track` as a registered tool."""
    return TrackResult.from_track(track(video, args.box, frame_idx=args.frame_idx))


def user_target(video: VideoLike | str | Path, box: Box, *, frame_idx: int = 0, target_id: int = 0) -> Target:
    """The user's ``box`` (pixels on frame ``frame_idx``) as a target: tracked over the video for the other
    frames, while the box itself, unchanged, on its frame, is the key box (:meth:`Target.key_box`) that the
    describer receives. Named by the colour and shape inside the box."""
    video = load_video(video)
    box = validate_box(box, video.width, video.height)  # clipped: the key box as the describer receives it
    trk = track(video, box, frame_idx=frame_idx)
    boxes = list(trk.boxes)
    boxes[frame_idx] = box  # the tracker may refine the first box; the user's reference stays as drawn
    colour, shape = name_region(video.get_frames([frame_idx])[0], box)
    return Target(
        id=target_id,
        label=" ".join(w for w in (colour, shape) if w) or "boxed object",
        colour=colour,
        shape=shape,
        boxes=boxes,
        width=video.width,
        height=video.height,
        score=1.0,
        source="user_box",
        key_frame=frame_idx,
    )
