"""Issue #18, point 4: the K-means can start from the original's initial centres (``kmeans_init="random"``).

Oracle: ``torch_kmeans`` 0.2.0, the library the original called (``KMeans(n_clusters=4, max_iter=3)``: 'rnd'
init, 8 restarts, seed 123, tol 1e-4, best restart by inertia), installed as a dev dependency.

- the draw: our :func:`random_init_indices` gives torch_kmeans' initial indices for every dtype, size and seed;
- the partition: from that draw our float64 Lloyd loop gives torch_kmeans' partition on every one of 320 inputs
  of the real shape ``[1, 8, 4096]`` (i.i.d. and offset gaussians, gaussian clusters, trajectories; float32 and
  float16 tokens), batched or one query at a time (the original clustered each query alone);
- the known limit: tokens repeated when a track has fewer than 8 frames can empty a cluster; torch_kmeans then
  moves its centre to the origin (float32) or to NaN (float16: every token gets one label), we keep the old
  centre. Pinned below: the partitions may then differ, ours never has the larger inertia, and the float16
  original collapses;
- the config: ``"k-means++"`` stays the default (and the assembled models'), the converter writes ``"random"``,
  the model uses the config's choice, bad values are refused naming the allowed ones.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.convert.assemble import build_assembled_config
from artemis_model.convert.keys import build_config
from artemis_model.selection import KMEANS_INITS, kmeans, random_init_indices, select_tokens
from artemis_model.tiny import tiny_config, tiny_model_and_processor

torch_kmeans = pytest.importorskip("torch_kmeans")

DIM = 4096
CASES_PER_FAMILY = 40


def _oracle(**kwargs) -> torch_kmeans.KMeans:
    """The original's K-means object (its defaults, as ``KMeans(n_clusters=4, max_iter=3, verbose=False)``)."""
    options = {"n_clusters": 4, "max_iter": 3, "verbose": False, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script deprecation inside torch_kmeans
        return torch_kmeans.KMeans(**options)


def _partition(labels: torch.Tensor) -> list[tuple[int, ...]]:
    """Labels ``[n]`` -> the partition as sorted tuples of member indices (label names aside)."""
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return sorted(tuple(g) for g in groups.values())


def _inputs(family: str, gen: torch.Generator) -> torch.Tensor:
    """One ``[1, 8, 4096]`` float32 input of a family."""
    if family == "iid":  # the "random inputs"
        return torch.randn(1, 8, DIM, generator=gen)
    if family == "offset":  # a shared large component, as tokens of one target have
        return 4 * torch.randn(1, 1, DIM, generator=gen) + torch.randn(1, 8, DIM, generator=gen)
    if family == "clusters":  # 2-5 gaussian clusters of various spreads
        centres = 3 * torch.randn(1, 5, DIM, generator=gen)
        members = torch.randint(0, int(torch.randint(2, 6, (1,), generator=gen)), (8,), generator=gen)
        spread = float(torch.rand(1, generator=gen)) * 2
        return centres[:, members] + spread * torch.randn(1, 8, DIM, generator=gen)
    if family == "trajectory":  # a smooth drift over the 8 tracked frames plus noise
        t = torch.linspace(0, 1, 8)[None, :, None]
        a, b, base = (torch.randn(1, 1, DIM, generator=gen) for _ in range(3))
        noise = float(torch.rand(1, generator=gen)) * 0.8
        return 5 * base + 3 * t * a + 2 * torch.sin(6 * t) * b + noise * torch.randn(1, 8, DIM, generator=gen)
    raise ValueError(family)


FAMILIES = ("iid", "offset", "clusters", "trajectory")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize(
    "n, k, restarts, seed", [(8, 4, 8, 123), (5, 4, 8, 123), (12, 2, 3, 7), (8, 3, 1, 0)]
)
def test_random_draw_equals_torch_kmeans(dtype, n, k, restarts, seed):
    # Token i is the vector (i, i, i): torch_kmeans' initial centres give back the indices it drew.
    coded = torch.arange(n, dtype=torch.float64)[None, :, None].expand(1, n, 3).to(dtype)
    km = _oracle(n_clusters=k, num_init=restarts, seed=seed)
    centres = km._init_rnd(coded, torch.tensor([k]))  # [1, restarts, k, 3]
    theirs = centres[0, :, :, 0].to(torch.long)
    ours = random_init_indices(n, k, restarts, seed, dtype=dtype, device="cpu")
    assert ours.shape == (restarts, k)
    assert torch.equal(ours, theirs)
    assert all(len(set(row)) == k for row in ours.tolist())  # k distinct tokens per restart


def _cases() -> list[tuple[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2024)
    return [(family, _inputs(family, gen)) for family in FAMILIES for _ in range(CASES_PER_FAMILY)]


def test_partition_equals_torch_kmeans_float32():
    cases = _cases()
    km = _oracle()
    ours_batched = []
    for lo in range(0, len(cases), 20):  # batched as the model calls it (several queries at once)
        batch = torch.cat([x for _, x in cases[lo : lo + 20]])
        ours_batched += list(kmeans(batch, 4, init="random").labels)
    differing = []
    for i, (family, x) in enumerate(cases):
        theirs = km(x).labels[0]
        alone = kmeans(x, 4, init="random").labels[0]
        assert torch.equal(alone, ours_batched[i])  # a query's draw does not depend on its batch
        if _partition(theirs) != _partition(alone):
            differing.append((i, family))
    assert differing == []
    # The initialisation matters: k-means++ gives another partition on some of these inputs.
    plus = sum(_partition(kmeans(x, 4).labels[0]) != _partition(km(x).labels[0]) for family, x in cases[:80])
    assert plus > 0


def test_partition_equals_torch_kmeans_float16_tokens():
    """float16 tokens (the original's dtype): the draw is made in float16 as the original's; torch_kmeans then
    clusters from that draw in float32 (its own float16 arithmetic on the CPU is not the GPU's: the draw is what
    we reproduce, the loop is exact in float64 on our side)."""
    cases = _cases()
    km = _oracle()
    for family, x in cases:
        x16 = x.half()
        init16 = km._init_rnd(x16, torch.tensor([4]))  # the original's draw, in float16
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = km(x16.float(), centers=init16.float()).labels[0]
        ours = kmeans(x16, 4, init="random").labels[0]
        assert _partition(ours) == _partition(theirs), family


def _short_track_tokens(gen: torch.Generator, distinct: int) -> torch.Tensor:
    """8 tokens of a track with ``distinct`` < 8 frames: the last frame repeated (choose_track_frames)."""
    base = 3 * torch.randn(1, 1, DIM, generator=gen) + torch.randn(1, distinct, DIM, generator=gen)
    return base[:, [min(j, distinct - 1) for j in range(8)]]


def test_known_difference_repeated_tokens():
    gen = torch.Generator().manual_seed(5)
    km = _oracle()
    differ = 0
    for i in range(70):
        x = _short_track_tokens(gen, 1 + i % 7)
        theirs, ours = km(x), kmeans(x, 4, init="random")
        if _partition(theirs.labels[0]) != _partition(ours.labels[0]):
            differ += 1  # an emptied cluster: torch_kmeans moved it to the origin, we kept it
            assert float(ours.inertia[0]) <= float(theirs.inertia[0]) * (1 + 1e-6)
    assert 0 < differ < 70
    # float16, as the original ran: an emptied cluster's centre becomes NaN and every token gets one label.
    x = _short_track_tokens(gen, 5).half()
    collapsed = km(x)
    assert torch.isnan(collapsed.inertia).all() and len(set(collapsed.labels[0].tolist())) == 1
    assert len(set(kmeans(x, 4, init="random").labels[0].tolist())) == 4


def test_selection_and_model_use_the_configured_init():
    gen = torch.Generator().manual_seed(11)
    km = _oracle()
    model, _ = tiny_model_and_processor(seed=0, kmeans_init="random")
    assert (model.config.num_tracked_boxes, model.config.num_region_tokens) == (8, 4)
    differences = 0
    for family in FAMILIES:
        for _ in range(8):
            x = _inputs(family, gen)
            result = km(x)
            labels, centres = result.labels[0], result.centers[0].double()
            nearest = []  # per oracle cluster, its members nearest the oracle's final centre (ties: all)
            for cluster in sorted(set(labels.tolist())):
                members = (labels == cluster).nonzero()[:, 0]
                dist = ((x[0, members].double() - centres[cluster]) ** 2).sum(-1)
                nearest.append(set(members[dist <= dist.min() * (1 + 1e-5)].tolist()))
            assert len(nearest) == 4
            chosen, picked = model.select_region_tokens(x)
            picks = picked[0].tolist()
            assert picks == sorted(picks) and torch.equal(chosen[0], x[0, picked[0]])
            # one pick per oracle cluster, among its nearest members (a 2-member cluster's are tied)
            assert sorted(sum(p in group for p in picks) for group in nearest) == [1, 1, 1, 1]
            _, plus = select_tokens(x, 4)  # the default, k-means++
            differences += plus[0].tolist() != picked[0].tolist()
    assert differences > 0  # on some inputs k-means++ chooses other tokens


def test_config_defaults_converter_and_validation():
    assert ArtemisConfig().kmeans_init == "k-means++"
    assert KMEANS_INITS == ("k-means++", "random")
    vision = ArtemisConfig().vision_config  # CLIP ViT-L/14-224 (metadata only, no weights)
    ids = {"<image>": 32000, "<video>": 32001, "<region>": 32002}
    llama = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 32000,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
    }
    converted = build_config(llama, vision, vocab_size=32003, token_ids=ids)
    assert converted.kmeans_init == "random"  # converted original weights: the original's initialisation
    assembled = build_assembled_config(llama, vision, vocab_size=32003, token_ids=ids)
    assert assembled.kmeans_init == "k-means++"  # our trained models keep k-means++
    reloaded = ArtemisConfig.from_dict(converted.to_dict())
    assert reloaded.kmeans_init == "random"
    with pytest.raises(
        ValueError, match=r"kmeans_init 'rnd' is unknown; allowed: \('k-means\+\+', 'random'\)"
    ):
        tiny_config(kmeans_init="rnd")
    with pytest.raises(ValueError, match="'kmeans\\+\\+' is unknown; allowed: 'k-means\\+\\+', 'random'"):
        select_tokens(torch.zeros(1, 8, 4), 4, init="kmeans++")  # type: ignore[arg-type]
