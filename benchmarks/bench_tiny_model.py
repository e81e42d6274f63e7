"""Forward / generate / region-encoder time of the tiny test model (``artemis_model.tiny``), 1 thread.

    .venv/bin/python benchmarks/bench_tiny_model.py

8 random 48x64 frames, the ``eval_original`` referring prompt, 1 key + 8 tracked boxes -> 5 region tokens.
Medians of 20 forwards and 5 ``generate`` calls of exactly 20 new tokens. Not a test.
"""

from __future__ import annotations

import time

import torch

from artemis_model.processing_artemis import EVAL_QUESTION, render_prompt  # noqa: E402
from artemis_model.tiny import tiny_model_and_processor  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[repeats // 2]


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(1)
    model, proc = tiny_model_and_processor(seed=0)
    model.eval()
    frames = torch.randint(
        0, 256, (8, 48, 64, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    pixels = proc.preprocess_frames(frames)
    video = model.encode_video_frames(pixels)[None]
    fused = model.encode_region_frames(pixels)
    boxes = (torch.tensor([[0.1, 0.1, 0.5, 0.5]]).repeat(9, 1) + torch.linspace(0, 0.3, 9)[:, None]).clamp(
        max=1
    )
    frame_ids = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6, 7]])
    regions = model.build_region_features(None, frame_ids, boxes[None], fused_maps=fused).tokens
    enc = proc(render_prompt(EVAL_QUESTION, template="eval_original"))

    def forward() -> None:
        model(**enc, video_features=video, region_features=regions)

    def generate() -> None:
        model.generate(
            **enc, video_features=video, region_features=regions, max_new_tokens=20, min_new_tokens=20
        )

    for _ in range(3):
        forward()
    print(f"forward ({enc['input_ids'].shape[1]}-token prompt): median {_median_ms(forward, 20):.1f} ms")
    print(f"generate 20 tokens: median {_median_ms(generate, 5):.1f} ms")
    print(
        f"encode_region_frames (8 frames): median {_median_ms(lambda: model.encode_region_frames(pixels), 5):.1f} ms"
    )


if __name__ == "__main__":
    main()
