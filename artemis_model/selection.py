"""Choosing which tracked frames feed the model, and which of their region tokens are kept.

- :func:`choose_track_frames`: ``n`` frames out of the frames where the target was tracked (uniform at
  inference, jittered "average" mode for training; the last frame is repeated when there are fewer than ``n``).
- :func:`kmeans`: a deterministic batched K-means (Lloyd in float64 on the CPU, several restarts, best
  inertia), seeded by a local generator: it never touches the global RNGs, so the same input gives the same
  partition whatever the global seeds and the thread count. Two initialisations (``KMEANS_INITS``):

  * ``"k-means++"`` (default; our trained models): k-means++ seeding, drawn in float64 on the CPU;
  * ``"random"`` (converted original weights): the original's -- ``torch_kmeans.KMeans`` ``init_method='rnd'``
    (original_checkpoint.md §5.6): per restart ``k`` distinct tokens drawn uniformly, all restarts in one
    ``torch.multinomial`` call without replacement over a ``[restarts, n]`` matrix of ``1 / n`` in the tokens'
    dtype, from a fresh generator on the tokens' device seeded with ``seed``. The original clustered each query
    alone (batch 1), so the draw is made for one query and shared by every query of a batch. The draw depends
    on ``(n, k, restarts, seed)``, dtype and device, never on the tokens: every query starts from the same 8
    index sets. From those centres our Lloyd loop gives torch_kmeans' partition
    (tests/original_behaviour/test_kmeans_init.py) unless a cluster empties (tokens repeated for a track of
    fewer than 8 frames): we keep its centroid, torch_kmeans moves it to the origin in float32 and to NaN in
    float16 (then every token gets one label). ``benchmarks/bench_kmeans_init.py`` measures how often the two
    initialisations pick other tokens.
- :func:`select_tokens`: K-means over the tracked region tokens, then per cluster the member NEAREST its
  centroid (the original picked a random member), padded by repeating the last pick, sorted by frame order.
  The tokens are gathered, so gradients flow to the chosen ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

KMeansInit = Literal["k-means++", "random"]
KMEANS_INITS: tuple[str, ...] = ("k-means++", "random")


@dataclass(frozen=True)
class KMeansResult:
    """Labels ``[B, n]``, centroids ``[B, k, D]`` (float64, CPU) and inertia ``[B]`` of the best restart."""

    labels: torch.Tensor
    centroids: torch.Tensor
    inertia: torch.Tensor


TrackFrameMode = Literal["uniform", "front", "average"]
TRACK_FRAME_MODES: tuple[str, ...] = ("uniform", "front", "average")
FRONT_STEP = 2
"""``mode="front"``: the second tracked frame is this many candidates after the first."""


def choose_track_frames(
    candidates: list[int],
    n: int = 8,
    *,
    mode: str = "uniform",
    generator: torch.Generator | None = None,
) -> list[int]:
    """Pick ``n`` frame indices (sorted) from ``candidates`` (the frames where the target is tracked).

    ``mode="uniform"`` (inference, deterministic): ``[cand[i * interval] for i in range(n)]`` with
    ``interval = len(cand) // n``. ``mode="front"`` (deterministic; **not in the paper**, the tiny world
    model's): the first candidate, the one :data:`FRONT_STEP` later, then ``n - 2`` uniform over the
    candidates after it, so that the first two boxes show how the target starts to move even when it turns
    soon after (their displacement is what ``region_motion_embedding`` embeds); ``"uniform"`` with fewer than
    ``n + FRONT_STEP`` candidates. ``mode="average"`` (training): a random start in ``[0, interval)``, steps of
    ``interval``, each jittered by a uniform integer in ``[-interval // 4, interval // 4]`` and clamped; it needs
    ``generator``. With fewer than ``n`` candidates all are used and the last one is repeated.
    """
    if n < 1:
        raise ValueError(f"n {n} must be >= 1")
    cand = sorted(int(c) for c in candidates)
    if not cand:
        raise ValueError("candidates is empty: the target is not tracked on any frame")
    if mode not in TRACK_FRAME_MODES:
        raise ValueError(f"mode {mode!r} is unknown; allowed: {', '.join(map(repr, TRACK_FRAME_MODES))}")
    if len(cand) < n:
        return cand + [cand[-1]] * (n - len(cand))
    if mode == "front" and n >= 3 and len(cand) >= n + FRONT_STEP:
        rest = cand[FRONT_STEP:]
        step = len(rest) // (n - 1)
        return [cand[0]] + [rest[i * step] for i in range(n - 1)]
    interval = len(cand) // n
    if mode in ("uniform", "front"):
        return [cand[i * interval] for i in range(n)]
    if generator is None:
        raise ValueError("mode 'average' needs a torch.Generator (seeds are arguments)")
    start = int(torch.randint(0, interval, (1,), generator=generator))
    jitter_max = interval // 4
    picks = []
    for i in range(n):
        jitter = (
            int(torch.randint(-jitter_max, jitter_max + 1, (1,), generator=generator)) if jitter_max else 0
        )
        picks.append(cand[min(max(start + i * interval + jitter, 0), len(cand) - 1)])
    return sorted(picks)


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``[..., n, D] x [..., k, D] -> [..., n, k]`` (direct differences, no matmul)."""
    return ((x[..., :, None, :] - c[..., None, :, :]) ** 2).sum(-1)


def _kmeanspp_init(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding for every row of ``x`` ``[R, n, D]`` -> centroids ``[R, k, D]``."""
    rows, n, _ = x.shape
    arange = torch.arange(rows)
    first = torch.randint(0, n, (rows,), generator=generator)
    centroids = [x[arange, first]]  # k x [R, D]
    closest = _sq_dist(x, centroids[0][:, None])[..., 0]  # [R, n]
    for _ in range(1, k):
        total = closest.sum(-1, keepdim=True)
        probs = torch.where(total > 0, closest / total.clamp_min(1e-300), torch.full_like(closest, 1.0 / n))
        pick = torch.multinomial(probs, 1, generator=generator)[:, 0]  # [R]
        centroids.append(x[arange, pick])
        closest = torch.minimum(closest, _sq_dist(x, centroids[-1][:, None])[..., 0])
    return torch.stack(centroids, dim=1)  # [R, k, D]


def check_kmeans_init(init: str) -> str:
    """``init`` if it is one of :data:`KMEANS_INITS`, else a ``ValueError`` naming the allowed values."""
    if init not in KMEANS_INITS:
        raise ValueError(f"kmeans init {init!r} is unknown; allowed: {', '.join(map(repr, KMEANS_INITS))}")
    return init


def random_init_indices(
    n: int, k: int, restarts: int, seed: int, *, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """The original's initial centres for ONE query of ``n`` tokens: ``LongTensor[restarts, k]`` token indices.

    ``torch_kmeans`` ``init_method='rnd'``: a new generator on ``device`` seeded with ``seed``, then one
    uniform draw of ``k`` distinct indices per restart -- a single ``torch.multinomial`` without replacement
    over a ``[restarts, n]`` matrix filled with ``1 / n`` in ``dtype`` (the dtype of the clustered tokens).
    Row ``r`` holds restart ``r``'s centres in draw order. The device and dtype take part in the draw: pass
    those of the tokens to see what the original saw on them.
    """
    if not 1 <= k <= n:
        raise ValueError(f"k {k} must be in [1, n={n}]")
    if restarts < 1:
        raise ValueError(f"restarts {restarts} must be >= 1")
    generator = torch.Generator(device=device).manual_seed(seed)
    weights = torch.full((restarts, n), 1.0 / n, dtype=dtype, device=device)
    return torch.multinomial(weights, k, replacement=False, generator=generator).cpu()  # [R, k]


def kmeans(
    x: torch.Tensor,
    k: int,
    *,
    iters: int = 3,
    restarts: int = 8,
    seed: int = 123,
    init: KMeansInit = "k-means++",
) -> KMeansResult:
    """Deterministic batched K-means of ``x`` ``[B, n, D]`` into ``k`` clusters (Lloyd, best of ``restarts``).

    ``init``: ``"k-means++"`` or ``"random"`` (the original's; see the module docstring). An emptied cluster
    keeps its previous centroid.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be [B, n, D], got shape {tuple(x.shape)}")
    check_kmeans_init(init)
    batch, n, dim = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"k {k} must be in [1, n={n}]")
    if iters < 1 or restarts < 1:
        raise ValueError(f"iters {iters} and restarts {restarts} must be >= 1")
    data = x.detach().to(device="cpu", dtype=torch.float64)
    data = data[:, None].expand(batch, restarts, n, dim).reshape(batch * restarts, n, dim)  # [B*R, n, D]
    if init == "random":
        picks = random_init_indices(n, k, restarts, seed, dtype=x.dtype, device=x.device)  # [R, k]
        picks = picks[None].expand(batch, restarts, k).reshape(batch * restarts, k)  # same draw per query
        centroids = data[torch.arange(batch * restarts)[:, None], picks]  # [B*R, k, D]
    else:
        centroids = _kmeanspp_init(data, k, torch.Generator(device="cpu").manual_seed(seed))  # [B*R, k, D]
    for _ in range(iters):
        labels = _sq_dist(data, centroids).argmin(-1)  # [B*R, n]
        onehot = torch.nn.functional.one_hot(labels, k).to(data.dtype)  # [B*R, n, k]
        counts = onehot.sum(1)  # [B*R, k]
        sums = onehot.transpose(1, 2) @ data  # [B*R, k, D]
        centroids = torch.where(counts[..., None] > 0, sums / counts.clamp_min(1)[..., None], centroids)
    dist = _sq_dist(data, centroids)  # [B*R, n, k]
    labels = dist.argmin(-1)
    inertia = dist.gather(-1, labels[..., None])[..., 0].sum(-1)  # [B*R]
    best = inertia.view(batch, restarts).argmin(-1)  # first restart among equals
    arange = torch.arange(batch)
    return KMeansResult(
        labels=labels.view(batch, restarts, n)[arange, best],
        centroids=centroids.view(batch, restarts, k, dim)[arange, best],
        inertia=inertia.view(batch, restarts)[arange, best],
    )


def select_token_indices(
    tokens: torch.Tensor,
    k: int,
    *,
    iters: int = 3,
    restarts: int = 8,
    seed: int = 123,
    init: KMeansInit = "k-means++",
) -> torch.Tensor:
    """Indices ``[B, k]`` (sorted) of the tokens ``[B, n, D]`` nearest each K-means centroid."""
    check_kmeans_init(init)
    batch, n, _ = tokens.shape
    if n <= k:
        pad = torch.full((k - n,), n - 1, dtype=torch.long)
        row = torch.cat([torch.arange(n), pad])
        return row.expand(batch, k).to(tokens.device).clone()
    result = kmeans(tokens, k, iters=iters, restarts=restarts, seed=seed, init=init)
    data = tokens.detach().to(device="cpu", dtype=torch.float64)
    dist = _sq_dist(data, result.centroids)  # [B, n, k]
    out = []
    for b in range(batch):
        picks: list[int] = []
        for cluster in range(k):  # ascending label order, as the original
            members = (result.labels[b] == cluster).nonzero()[:, 0]
            if members.numel():
                nearest = members[dist[b, members, cluster].argmin()]  # first index among equals
                picks.append(int(nearest))
        picks += [picks[-1]] * (k - len(picks))
        out.append(sorted(picks))
    return torch.tensor(out, dtype=torch.long, device=tokens.device)


def select_tokens(
    tokens: torch.Tensor,
    k: int,
    *,
    iters: int = 3,
    restarts: int = 8,
    seed: int = 123,
    init: KMeansInit = "k-means++",
) -> tuple[torch.Tensor, torch.Tensor]:
    """K-means selection: ``[B, n, D]`` -> (chosen tokens ``[B, k, D]`` with gradients, indices ``[B, k]``).

    ``init`` picks the K-means initialisation (``"k-means++"`` or the original's ``"random"``)."""
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be [B, n, D], got shape {tuple(tokens.shape)}")
    indices = select_token_indices(tokens, k, iters=iters, restarts=restarts, seed=seed, init=init)
    chosen = tokens.gather(1, indices[..., None].expand(-1, -1, tokens.shape[-1]))  # [B, k, D]
    return chosen, indices
