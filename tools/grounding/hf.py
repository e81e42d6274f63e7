"""Open-vocabulary detection (OWLv2 / Grounding DINO) from a local checkpoint directory, per sampled frame.

The ``"hf"`` grounding backend. Loaded lazily on first use through ``AutoModelForZeroShotObjectDetection`` +
``AutoProcessor``; nothing is downloaded. Detections are linked into tracks by
:func:`tools.grounding.link_detections`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from tools.grounding.detection import Detection
from tools.grounding.query import ParsedQuery

logger = logging.getLogger(__name__)


def query_labels(query: ParsedQuery) -> list[str]:
    """Text prompts for the detector: one per colour x shape asked for, else the phrase itself."""
    nouns = list(query.shapes) or ([query.category] if query.category else ["object"])
    colours = list(query.colours) or [""]
    labels = [f"{c} {n}".strip() for c in colours for n in nouns]
    return labels if (query.colours or query.shapes or query.category) else [query.text.strip() or "object"]


class HFDetectorBackend:
    """Zero-shot detection with a transformers checkpoint in ``model_dir`` (or an injected model/processor).

    Args:
        threshold: minimum detection score.
        batch_size: frames per forward pass.
        device: where to run; default the model's device.
    """

    name = "hf"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        threshold: float = 0.3,
        batch_size: int = 8,
        model=None,
        processor=None,
        device: str | None = None,
    ) -> None:
        if model_dir is None and (model is None or processor is None):
            raise ValueError("HFDetectorBackend needs model_dir or both model and processor")
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.threshold = threshold
        self.batch_size = batch_size
        self._model, self._processor, self._device = model, processor, device

    @functools.cached_property
    def _loaded(self):
        if self._model is not None:
            return self._model.eval(), self._processor
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"detector directory {str(self.model_dir)!r} does not exist")
        model = AutoModelForZeroShotObjectDetection.from_pretrained(self.model_dir).eval()
        if self._device is not None:
            model = model.to(self._device)
        return model, AutoProcessor.from_pretrained(self.model_dir)

    def query_key(self, query: ParsedQuery) -> tuple[str, ...]:
        """What detection reads of ``query``: the text labels it prompts the detector with."""
        return tuple(query_labels(query))

    def detect(
        self, frames: np.ndarray, frame_indices: list[int], query: ParsedQuery
    ) -> list[list[Detection]]:
        import torch

        model, processor = self._loaded
        labels = query_labels(query)
        height, width = frames.shape[1:3]
        out: list[list[Detection]] = []
        for start in range(0, len(frames), self.batch_size):
            batch = list(frames[start : start + self.batch_size])
            idxs = frame_indices[start : start + self.batch_size]
            text = self._text(model, labels, len(batch))
            inputs = processor(text=text, images=batch, return_tensors="pt").to(
                next(model.parameters()).device
            )
            with torch.inference_mode():
                outputs = model(**inputs)
            results = processor.post_process_grounded_object_detection(
                outputs,
                threshold=self.threshold,
                target_sizes=[self._target_size(model, height, width)] * len(batch),
                **self._post_kwargs(model, inputs, labels, len(batch)),
            )
            for f, res in zip(idxs, results, strict=True):
                out.append(self._to_detections(f, res, labels, width, height))
        return out

    @staticmethod
    def _text(model, labels: list[str], n: int):
        if model.config.model_type == "grounding-dino":
            return [". ".join(labels) + "."] * n
        return [labels] * n

    @staticmethod
    def _target_size(model, height: int, width: int) -> tuple[int, int]:
        # OWLv2 pads images to a square before resizing: its boxes are relative to the padded square.
        if model.config.model_type == "owlv2":
            side = max(height, width)
            return (side, side)
        return (height, width)

    @staticmethod
    def _post_kwargs(model, inputs, labels: list[str], n: int) -> dict:
        if model.config.model_type == "grounding-dino":
            return {"input_ids": inputs["input_ids"], "text_threshold": 0.25, "text_labels": None}
        return {"text_labels": [labels] * n}

    @staticmethod
    def _to_detections(
        frame_idx: int, res: dict, labels: list[str], width: int, height: int
    ) -> list[Detection]:
        dets = []
        names = res.get("text_labels") or [
            labels[int(i)] if int(i) < len(labels) else "object" for i in res["labels"]
        ]
        for box, score, name in zip(res["boxes"].tolist(), res["scores"].tolist(), names, strict=True):
            x1, y1 = max(0.0, box[0]), max(0.0, box[1])
            x2, y2 = min(float(width), box[2]), min(float(height), box[3])
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            words = str(name).split()
            dets.append(
                Detection(
                    frame_idx=frame_idx,
                    box=(x1, y1, x2, y2),
                    label=str(name),
                    score=float(score),
                    colour=words[0] if len(words) > 1 else None,
                    shape=words[-1] if words else None,
                    area_frac=(x2 - x1) * (y2 - y1) / float(width * height),
                )
            )
        return dets
