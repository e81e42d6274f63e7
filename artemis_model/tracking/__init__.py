"""Tracking one box through a video (sam2-style ``Tracker``: init_state / add_box / propagate).

- :mod:`.tracker`: :class:`Tracker`, :class:`TrackerConfig`, :class:`TrackingState`, :func:`track_box`
  (forward and backward from the key frame, shot-cut checks, re-detection after a loss).
- :mod:`.appearance`: colour-histogram appearance, template re-detection and refinement, scene-change measure.
- :mod:`.backends`: the single-object tracker backends registry (OpenCV KCF, CSRT, ...):
  :func:`register_backend`, :func:`available_backends`, :func:`make_backend`.
"""

from __future__ import annotations

from artemis_model.tracking.backends import (
    BackendFactory,
    OpenCVTracker,
    TrackerBackend,
    available_backends,
    make_backend,
    register_backend,
)
from artemis_model.tracking.tracker import Tracker, TrackerConfig, TrackingState, track_box

__all__ = [
    "BackendFactory",
    "OpenCVTracker",
    "Tracker",
    "TrackerBackend",
    "TrackerConfig",
    "TrackingState",
    "available_backends",
    "make_backend",
    "register_backend",
    "track_box",
]
