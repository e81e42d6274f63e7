"""Smoke check of a converted directory: load it, answer one referring question on a generated clip, time it.

The clip is made at run time with numpy (a red square moving left to right over a grey, textured background,
320x240, 16 frames), so the check needs no data download. The box track is known exactly, so no tracker runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from artemis_model.modeling_artemis import ArtemisForConditionalGeneration
from artemis_model.processing_artemis import EVAL_QUESTION, ArtemisProcessor, render_prompt
from artemis_model.selection import choose_track_frames
from artemis_model.types import Box


@dataclass(frozen=True)
class VerifyResult:
    answer: str
    device: str
    dtype: str
    load_s: float
    encode_s: float
    generate_s: float
    new_tokens: int

    def summary(self) -> str:
        rate = self.new_tokens / self.generate_s if self.generate_s > 0 else float("nan")
        return (
            f"device {self.device} ({self.dtype}): load {self.load_s:.1f} s, encode {self.encode_s:.2f} s, "
            f"generate {self.generate_s:.2f} s ({self.new_tokens} tokens, {rate:.1f} tok/s)\n"
            f"answer: {self.answer}"
        )


def synthetic_clip(
    num_frames: int = 16, width: int = 320, height: int = 240, *, seed: int = 0
) -> tuple[np.ndarray, list[Box]]:
    """Frames ``[T, H, W, 3]`` uint8 and the square's pixel ``xyxy`` box on every frame."""
    rng = np.random.default_rng(seed)
    background = (110 + rng.integers(-12, 13, size=(height, width, 3))).astype(np.uint8)
    side = height // 4
    frames, boxes = [], []
    for t in range(num_frames):
        x1 = int(round(10 + (width - side - 20) * t / max(num_frames - 1, 1)))
        y1 = height // 2 - side // 2
        frame = background.copy()
        frame[y1 : y1 + side, x1 : x1 + side] = (220, 30, 30)
        frames.append(frame)
        boxes.append((float(x1), float(y1), float(x1 + side), float(y1 + side)))
    return np.stack(frames), boxes


@torch.inference_mode()
def verify_converted(
    model_dir: str | Path,
    *,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    max_new_tokens: int = 48,
) -> VerifyResult:
    """Load ``model_dir`` and greedily answer the original evaluation question about the square.

    ``device`` defaults to CUDA when available; ``dtype`` to the saved dtype on GPU and float32 on CPU.
    """
    model_dir = Path(model_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    model = ArtemisForConditionalGeneration.from_pretrained(model_dir, dtype=dtype or "auto")
    if dtype is None and torch.device(device).type == "cpu":
        model = model.float()
    model = model.to(device).eval()
    processor = ArtemisProcessor.from_pretrained(model_dir)
    template = processor.prompt_template
    load_s = time.perf_counter() - start

    cfg = model.config
    frames, boxes = synthetic_clip()
    num_frames, height, width = frames.shape[:3]
    start = time.perf_counter()
    global_pixels = processor.preprocess_frames(frames, purpose="global").to(device)  # [T, 3, S, S]
    video_features = model.encode_video_frames(global_pixels)  # [T_max + P, Cv]
    tracked = choose_track_frames(list(range(1, num_frames)), cfg.num_tracked_boxes)
    region_frames = [0, *tracked]
    region_pixels = processor.preprocess_frames(frames[region_frames], purpose="region").to(device)
    boxes_norm = processor.normalize_boxes([boxes[i] for i in region_frames], width, height)  # [1 + n, 4]
    frame_ids = torch.arange(len(region_frames), device=device)[None]  # [1, 1 + n]
    regions = model.build_region_features(region_pixels, frame_ids, boxes_norm[None].to(device))
    inputs = processor(render_prompt(EVAL_QUESTION, template=template)).to(device)
    encode_s = time.perf_counter() - start

    start = time.perf_counter()
    output = model.generate(
        inputs["input_ids"],
        inputs["attention_mask"],
        video_features=video_features[None],
        region_features=regions.tokens,
        max_new_tokens=max_new_tokens,
    )
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    generate_s = time.perf_counter() - start
    new_ids = output[0, inputs["input_ids"].shape[1] :]
    return VerifyResult(
        answer=processor.decode(new_ids),
        device=device,
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
        load_s=load_s,
        encode_s=encode_s,
        generate_s=generate_s,
        new_tokens=int(new_ids.numel()),
    )
