"""Plain typed tools over videos: ground, track, refer, segment, summarize (no LangChain here), and the runtime
object that holds their state between calls (:class:`tools.runtime.Runtime`)."""

from tools.describers import Describer, HeuristicDescriber, ModelDescriber, default_describer
from tools.grounding import GroundingSettings, ground
from tools.refer import refer, refer_segments, refer_targets
from tools.runtime import Runtime
from tools.schemas import Segment, Target, TargetDescription
from tools.segment import segment
from tools.summarize import merge, summarize, validate_summary
from tools.track import track, user_target
from tools.video import ArrayVideo, SubVideo, VideoLike, load_video

__all__ = [
    "ArrayVideo",
    "Describer",
    "GroundingSettings",
    "HeuristicDescriber",
    "ModelDescriber",
    "Runtime",
    "Segment",
    "SubVideo",
    "Target",
    "TargetDescription",
    "VideoLike",
    "default_describer",
    "ground",
    "load_video",
    "merge",
    "refer",
    "refer_segments",
    "refer_targets",
    "segment",
    "summarize",
    "track",
    "user_target",
    "validate_summary",
]
