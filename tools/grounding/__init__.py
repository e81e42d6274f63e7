"""Grounding: which objects a phrase names, followed over the video.

- :func:`ground` (:mod:`.grounder`): sampled frames -> a backend's detections -> tracks -> targets that fit the
  query; a :data:`TrackCache` keeps a video's tracks for its next queries.
- :mod:`.backends`: the backend protocol, :class:`GroundingSettings` and the registry backends are chosen from by
  name (``"coco"``, the default for real footage: the COCO-80 detector, :mod:`.coco`; ``"offline"``, the
  synthetic world's: :mod:`.offline` with :mod:`.shapes`; ``"hf"``: open-vocabulary, :mod:`.hf`).
- :mod:`.vocabulary`: phrases -> COCO classes (plurals, synonyms: "the cyclist" -> person, "the van" -> car, truck).
- :mod:`.detection`: :class:`Detection`, what every backend returns.
- :mod:`.linking`: detections into tracks, a track's shape and key detection.
- :mod:`.query`: a phrase into colours, shapes, sizes, people/faces; the referring phrases of a question.
"""

from __future__ import annotations

from tools.grounding.backends import (
    GroundingBackend,
    GroundingSettings,
    available_backends,
    make_backend,
    register_backend,
)
from tools.grounding.detection import Detection
from tools.grounding.grounder import (
    TrackCache,
    all_tracks,
    filter_targets,
    ground,
    new_track_cache,
    sample_indices,
    shot_bounds,
    track_key,
)
from tools.grounding.linking import (
    interpolate_boxes,
    is_whole,
    key_detection,
    link_detections,
    stitch_tracks,
    vote_shape,
)
from tools.grounding.query import ParsedQuery, parse_query, referring_phrases

__all__ = [
    "Detection",
    "GroundingBackend",
    "GroundingSettings",
    "ParsedQuery",
    "TrackCache",
    "all_tracks",
    "available_backends",
    "filter_targets",
    "ground",
    "interpolate_boxes",
    "is_whole",
    "key_detection",
    "link_detections",
    "make_backend",
    "new_track_cache",
    "parse_query",
    "referring_phrases",
    "register_backend",
    "sample_indices",
    "shot_bounds",
    "stitch_tracks",
    "track_key",
    "vote_shape",
]
