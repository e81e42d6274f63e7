"""What the agent's nodes use: the describer, grounding, the summary LLM, the planner and video opening."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from agent.planner import Planner, RulePlanner
from tools.describers import Describer, default_describer
from tools.grounding import GroundingBackend, GroundingSettings
from tools.summarize import TextLLM
from tools.video import VideoLike, load_video


@dataclass
class AgentDeps:
    """Injected into every node. ``describer`` is the seam to ``artemis_model.pipeline.describe``; by default
    the one every entry point gets (:func:`tools.describers.default_describer`: the embedded model when present)."""

    describer: Describer = field(default_factory=default_describer)
    planner: Planner = field(default_factory=RulePlanner)
    summarizer: TextLLM | Literal["auto", "smollm2", "merge"] = "merge"
    grounding_backend: GroundingBackend | None = None
    grounding_settings: GroundingSettings = field(default_factory=GroundingSettings)
    long_video_frames: int = 300
    """Videos longer than this many frames always take the segment-then-summarize path."""
    open_video: Callable[[str], VideoLike] = field(
        default_factory=lambda: functools.lru_cache(maxsize=4)(load_video)
    )
