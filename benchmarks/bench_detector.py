"""Offline COCO detector speed (a command, not a test).

    .venv/bin/python benchmarks/bench_detector.py [--repeats 5] [--device cpu] [--dtype float32] [--threads N]

Per-frame milliseconds at 512 x 512 (the model's input size: no resize) for

- ``bare``: the TFJS graph module called directly on a ready float input, batch 1, full graph
  (``graph.run({images}, [detections])``): what a bare inference session would cost;
- ``detect b1`` / ``detect b4``: :meth:`CocoDetector.detect` on uint8 frames, batch 1 and 4 (preprocessing, the
  convolutional part in forward passes of the detector's ``batch_size`` -- 1 on CPU, 8 elsewhere --, per-frame
  top-k decoding, score threshold, per-class NMS included); on CPU also batch 4 in one forward pass of 4.

Goal (issue #20): the batched detector path within 1.3x of the bare session per frame. Each figure is the
median of ``--repeats`` rounds (the three take turns in each) after two warm-up rounds (oneDNN builds its kernels
on the first calls).
Needs ``.cache/vladmandic-human-3.3.6.tgz`` (``make test-assets``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from tools.grounding.coco.detector import INPUT_NAME, OUTPUT_NAME, CocoDetector

logger = logging.getLogger("bench_detector")


def timed(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each ``fn()`` over ``repeats`` rounds after ``warmup`` untimed ones; the functions
    take turns within a round, so a busy machine slows them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default torch's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    detector = CocoDetector.load(device=args.device, dtype=getattr(torch, args.dtype))
    load_s = time.perf_counter() - t0
    from skimage import data

    image = data.astronaut()  # 512 x 512 RGB
    frames4 = np.stack([image, image[:, ::-1], image[::-1], image[::-1, ::-1]])
    ready = torch.from_numpy(image[None].astype(np.float32)).to(detector.device, detector.dtype)

    def bare() -> None:
        with torch.inference_mode():
            detector.graph.run({INPUT_NAME: ready}, [OUTPUT_NAME])

    forced4 = CocoDetector(detector.graph, batch_size=4)
    secs = timed(
        {
            "bare": bare,
            "b1": lambda: detector.detect(frames4[:1]),
            "b4": lambda: detector.detect(frames4),
            "forced4": lambda: forced4.detect(frames4),
        },
        args.repeats,
    )
    bare_ms, b1_ms = secs["bare"] * 1000, secs["b1"] * 1000
    b4_ms, forced4_ms = secs["b4"] * 1000 / 4, secs["forced4"] * 1000 / 4
    logger.info(
        "device %s, dtype %s, %d torch threads, torch %s; load %.2f s",
        detector.device, args.dtype, torch.get_num_threads(), torch.__version__, load_s,
    )  # fmt: skip
    logger.info("per frame at 512x512 (median of %d):", args.repeats)
    logger.info("  bare graph, batch 1   %7.1f ms", bare_ms)
    logger.info("  detect, batch 1       %7.1f ms  (%.2fx bare)", b1_ms, b1_ms / bare_ms)
    logger.info(
        "  detect, batch 4       %7.1f ms  (%.2fx bare; goal <= 1.3x; forward passes of %d)",
        b4_ms, b4_ms / bare_ms, detector.batch_size,
    )  # fmt: skip
    if detector.batch_size != 4:
        logger.info(
            "  detect, batch 4, one forward pass of 4: %.1f ms (%.2fx bare)", forced4_ms, forced4_ms / bare_ms
        )


if __name__ == "__main__":
    main()
