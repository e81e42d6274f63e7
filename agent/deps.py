"""What the agent's nodes use: the runtime (opened videos, caches, describer, grounding, summary LLM), the planner
and when a video counts as long."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from agent.planner import Planner, RulePlanner
from tools.describers import Describer
from tools.grounding import GroundingBackend, GroundingSettings, TrackCache
from tools.refer import CHECK_SAMPLES
from tools.runtime import Runtime
from tools.summarize import TextLLM
from tools.video import VideoLike


@dataclass(frozen=True)
class AgentDeps:
    """Injected into every node (never mutated: :func:`agent.graph.build_agent` replaces what it overrides).

    ``runtime``: by default one with the describer every entry point gets
    (:func:`tools.describers.default_describer`: the track describer unless a model is given). The properties below are the
    runtime's pieces the registered tools ask for by name (:data:`tools.registry.NEEDS`).
    """

    runtime: Runtime = field(default_factory=Runtime)
    planner: Planner = field(default_factory=RulePlanner)
    long_video_frames: int = 300
    """Videos longer than this many frames always take the segment-then-summarize path."""
    max_targets: int = 8
    """The most objects one turn describes: more found ("What do the people do?" in a crowd) are cut to the most
    prominent (seen longest and largest), and the answer says so. Questions the object memory answers are not
    cut (they cost no describer call per object)."""

    check_samples: int = CHECK_SAMPLES
    """Sampled captions asked for at most per target whose caption contradicts its label or what its track does
    first (:func:`tools.refer.refer_checked`; describers that sample only); 0: captions are not checked."""

    def __post_init__(self) -> None:
        if self.check_samples < 0:
            raise ValueError(f"check_samples must be >= 0, got {self.check_samples}")
        if self.max_targets < 1:
            raise ValueError(f"max_targets must be >= 1, got {self.max_targets}")

    @property
    def describer(self) -> Describer:
        return self.runtime.describer

    @property
    def summarizer(self) -> TextLLM | str:
        return self.runtime.summarizer

    @property
    def grounding_backend(self) -> GroundingBackend:
        return self.runtime.grounding_backend

    @property
    def grounding_settings(self) -> GroundingSettings:
        return self.runtime.grounding_settings

    @property
    def track_cache(self) -> TrackCache:
        return self.runtime.track_cache

    def open_video(self, source: str | os.PathLike | VideoLike) -> VideoLike:
        """The runtime's opened video of ``source``."""
        return self.runtime.open_video(source)
