""":func:`ground` as a registered tool (:mod:`tools.registry`)."""

from __future__ import annotations

from tools.grounding import GroundingBackend, GroundingSettings, TrackCache, ground, make_backend
from tools.grounding.backends import miss_reason
from tools.registry import tool_spec
from tools.schemas import GroundArgs, GroundResult
from tools.video import VideoLike


def _brief(out: GroundResult) -> list[dict]:
    """Per target: id, label, span, score and three key boxes (not every frame's box)."""
    return [
        {
            "id": t.id,
            "label": t.label,
            "span": list(t.span),
            "score": t.score,
            "key_boxes": [[f, list(t.box_at(f))] for f in t.key_frames(3)],
        }
        for t in out.targets
    ]


@tool_spec("ground", "Find and track the objects a phrase names.", brief=_brief)
def ground_tool(
    args: GroundArgs,
    *,
    video: VideoLike,
    grounding_backend: GroundingBackend | None,
    grounding_settings: GroundingSettings | None,
    track_cache: TrackCache | None,
) -> GroundResult:
    backend = grounding_backend or make_backend(grounding_settings or GroundingSettings())
    targets = ground(video, args.query, backend=backend, settings=grounding_settings, cache=track_cache)
    return GroundResult(targets=targets, reason=None if targets else miss_reason(backend, args.query))
