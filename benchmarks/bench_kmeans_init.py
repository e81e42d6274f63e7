"""Benchmark (not a test): how often k-means++ and the original's random initialisation pick other tokens.

Issue #18, point 4. Inputs of the original's shape: per query the 8 tracked region tokens ``[1, 8, 4096]``,
float16 (the original's dtype). Families:

- ``world``: the trained tiny world model (``models/artemis-tiny-world``) encodes synthetic clips (``synth``);
  per object, the key frame is its first visible frame and the 8 tracked frames are chosen uniformly among its
  visible frames (:func:`choose_track_frames`, as the pipeline); its 192-d tokens are zero-padded to 4096
  (an isometry: K-means partitions and the draw are unchanged);
- ``world-short``: the same objects cut to a track of 3-7 visible frames (the last tracked frame repeated to make
  8, as the pipeline and the original do);
- ``trajectory``: 4096-d gaussians along a trajectory ``5 base + 3 t a + 2 sin(6 t) b + s noise``, ``s`` uniform
  in [0, 0.8] (the test inputs of tests/original_behaviour/test_kmeans_init.py);
- ``iid``: i.i.d. standard gaussians (the issue's "random inputs").

Figures per family (fractions of queries):

- ``partition``: the 4-cluster partitions of k-means++ and of the original's init differ;
- ``picks``: the selected 4 token indices differ (our rule: per cluster the member nearest its centroid);
- ``P(orig=pp)`` / ``P(orig=rnd)``: the probability that ONE run of the original (its init, then a random member
  per cluster, ``random.choice``) picks exactly our k-means++ / our original-init indices, computed exactly by
  enumerating the member choices, averaged over queries (torch_kmeans' own float32 partition when installed);
- ``f16 NaN``: queries where torch_kmeans in float16 (as the original ran) empties a cluster and gets NaN centres,
  so every token gets one label and the original repeats one random token 4 times (``-`` without torch_kmeans).

    .venv/bin/python benchmarks/bench_kmeans_init.py [--cases 400] [--clips 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from artemis_model.region_encoder import box_motion  # noqa: E402
from artemis_model.selection import choose_track_frames, kmeans, select_token_indices  # noqa: E402

DIM = 4096
K = 4
WORLD_MODEL = Path(__file__).resolve().parents[1] / "models" / "artemis-tiny-world"


def world_tokens(clips: int, seed: int, *, short: bool) -> torch.Tensor:
    """``[Q, 8, 4096]`` float16 tracked tokens of the world model over ``clips`` synthetic clips."""
    from artemis_model.pipeline import ArtemisPipeline
    from synth import generate_clip

    pipe = ArtemisPipeline.from_pretrained(WORLD_MODEL)
    model, proc = pipe.model, pipe.processor
    rng = np.random.default_rng(seed)
    out = []
    for c in range(clips):
        clip = generate_clip(seed=seed + c)
        for obj in clip.objects:
            visible = [t for t, b in enumerate(obj.boxes) if b is not None]
            if short:
                if len(visible) < 3:
                    continue
                length = int(rng.integers(3, 8))
                start = int(rng.integers(0, len(visible) - min(length, len(visible)) + 1))
                visible = visible[start : start + length]
            elif len(visible) < 8:
                continue
            key = visible[0]
            tracked = choose_track_frames(visible, 8)
            order = [key, *tracked]
            unique = sorted(set(order))
            pixels = proc.preprocess_frames(clip.frames[unique], purpose="region")
            boxes = proc.normalize_boxes([obj.boxes[f] for f in order], clip.width, clip.height)
            frame_ids = torch.tensor([unique.index(f) for f in order])
            with torch.no_grad():
                maps = model.encode_region_frames(pixels)
                motion = box_motion(boxes[None])[0] if model.config.region_motion_embedding else None
                tokens = model.region_tokens(maps, frame_ids, boxes, motion)[1:]  # [8, D]
            out.append(torch.nn.functional.pad(tokens, (0, DIM - tokens.shape[-1])))
    return torch.stack(out).half()


def trajectory_tokens(cases: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, 8)[None, :, None]
    a, b, base = (torch.randn(cases, 1, DIM, generator=gen) for _ in range(3))
    noise = torch.rand(cases, 1, 1, generator=gen) * 0.8
    x = 5 * base + 3 * t * a + 2 * torch.sin(6 * t) * b + noise * torch.randn(cases, 8, DIM, generator=gen)
    return x.half()


def iid_tokens(cases: int, seed: int) -> torch.Tensor:
    return torch.randn(cases, 8, DIM, generator=torch.Generator().manual_seed(seed)).half()


def _groups(labels: list[int]) -> list[list[int]]:
    """Members per label, labels ascending (the original's ``unique`` order)."""
    return [[i for i, lab in enumerate(labels) if lab == value] for value in sorted(set(labels))]


def p_single_original_run(labels: list[int], target: list[int]) -> float:
    """Probability that the original's random member per cluster (then pad, sort) gives ``target``."""
    groups = _groups(labels)
    total = 0.0
    for choice in itertools.product(*groups):
        picks = list(choice) + [choice[-1]] * (K - len(choice))
        if sorted(picks) == target:
            total += float(np.prod([1.0 / len(g) for g in groups]))
    return total


def _partition(labels: list[int]) -> list[tuple[int, ...]]:
    return sorted(tuple(g) for g in _groups(labels))


def measure(tokens: torch.Tensor, chunk: int = 25) -> dict[str, float]:
    try:
        import torch_kmeans
    except ImportError:  # a dev dependency: without it, our original-init partition stands in for its own
        torch_kmeans = None
    oracle = None
    if torch_kmeans is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oracle = torch_kmeans.KMeans(n_clusters=K, max_iter=3, verbose=False)
    partition = picks = nan = 0
    p_pp = p_rnd = 0.0
    for lo in range(0, tokens.shape[0], chunk):
        x = tokens[lo : lo + chunk]
        lab_pp = kmeans(x, K).labels.tolist()
        lab_rnd = kmeans(x, K, init="random").labels.tolist()
        idx_pp = select_token_indices(x, K).tolist()
        idx_rnd = select_token_indices(x, K, init="random").tolist()
        for q in range(x.shape[0]):
            partition += _partition(lab_pp[q]) != _partition(lab_rnd[q])
            picks += idx_pp[q] != idx_rnd[q]
            original = lab_rnd[q]
            if oracle is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    original = oracle(x[q : q + 1].float()).labels[0].tolist()
                    nan += bool(torch.isnan(oracle(x[q : q + 1]).inertia).any())
            p_pp += p_single_original_run(original, idx_pp[q])
            p_rnd += p_single_original_run(original, idx_rnd[q])
    n = tokens.shape[0]
    return {
        "queries": n,
        "partition": partition / n,
        "picks": picks / n,
        "P(orig=pp)": p_pp / n,
        "P(orig=rnd)": p_rnd / n,
        "f16 NaN": nan / n if oracle is not None else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=400, help="queries per gaussian family")
    parser.add_argument("--clips", type=int, default=60, help="synthetic clips for the world families")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    families: dict[str, Callable[[], torch.Tensor]] = {
        "world": lambda: world_tokens(args.clips, args.seed, short=False),
        "world-short": lambda: world_tokens(args.clips, args.seed, short=True),
        "trajectory": lambda: trajectory_tokens(args.cases, args.seed),
        "iid": lambda: iid_tokens(args.cases, args.seed),
    }
    print(
        f"{'family':<12} {'queries':>7} {'partition':>9} {'picks':>7} {'P(orig=pp)':>10} {'P(orig=rnd)':>11} {'f16 NaN':>8}  secs"
    )
    for name, make in families.items():
        start = time.perf_counter()
        row = measure(make())
        print(
            f"{name:<12} {row['queries']:>7d} {row['partition']:>9.1%} {row['picks']:>7.1%} {row['P(orig=pp)']:>10.1%} "
            f"{row['P(orig=rnd)']:>11.1%} {row['f16 NaN']:>8.1%}  {time.perf_counter() - start:.0f}"
        )


if __name__ == "__main__":
    main()
