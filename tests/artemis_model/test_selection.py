"""K-means selection: sklearn agreement, determinism, gradients; choice of tracked frames."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from artemis_model.selection import FRONT_STEP, choose_track_frames, kmeans, select_tokens


def _blobs(seed: int, n_per: int = 16, k: int = 4, dim: int = 4096) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 10
    truth = np.repeat(np.arange(k), n_per)
    x = centres[truth] + rng.normal(size=(k * n_per, dim))
    perm = rng.permutation(len(x))
    return torch.tensor(x[perm], dtype=torch.float32), truth[perm]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partition_equals_sklearn(seed):
    x, truth = _blobs(seed)
    ours = kmeans(x[None], 4, iters=3, restarts=8, seed=123).labels[0].numpy()
    theirs = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(x.numpy())
    assert adjusted_rand_score(theirs, ours) == 1.0
    assert adjusted_rand_score(truth, ours) == 1.0


def test_picks_member_nearest_each_centroid_in_frame_order():
    # 8 tracked tokens in 4 pairs; within each pair the second is nearer the pair's mean + an outlier pull.
    base = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    tokens = torch.stack(
        [base[0], base[0] + 0.1, base[1] + 0.1, base[1], base[2], base[2] + 0.1, base[3] + 0.1, base[3]]
    )
    tokens = torch.cat([tokens, tokens[:2] * 0 + torch.tensor([[0.3, 0.3], [0.05, 0.05]])])  # cluster 0 grows
    chosen, idx = select_tokens(tokens[None], 4, iters=10)
    # cluster {0,1,8,9} centroid (0.1125, 0.1125): nearest is 1 (0.1, 0.1); pairs: equal distances -> lower index.
    assert idx.tolist() == [[1, 2, 4, 6]]
    torch.testing.assert_close(chosen[0], tokens[idx[0]])


def test_fewer_distinct_clusters_repeat_last_pick():
    tokens = torch.tensor([[0.0, 0.0]] * 4 + [[5.0, 5.0]] * 4)  # only 2 distinct points for k=4
    _, idx = select_tokens(tokens[None], 4)
    assert idx.shape == (1, 4) and idx[0].tolist() == sorted(idx[0].tolist())
    assert len(set(idx[0].tolist())) == 2
    assert {int(tokens[i, 0]) for i in idx[0]} == {0, 5}


def test_deterministic_under_global_rng_and_threads():
    x, _ = _blobs(5, n_per=2, dim=256)  # 8 tokens, like the 8 tracked boxes
    x = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(3)) * 5  # overlapping: init matters
    results = []
    threads = torch.get_num_threads()
    try:
        for seed, n_threads in [(0, 1), (1, 2), (12345, 1)]:
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            torch.set_num_threads(n_threads)
            torch.rand(100)  # disturb the global stream
            results.append(select_tokens(x[None], 4)[1])
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(r, results[0]) for r in results)


def test_gradients_flow_to_chosen_tokens_only():
    x, _ = _blobs(7, n_per=2, dim=32)
    x = x[None].clone().requires_grad_(True)
    chosen, idx = select_tokens(x, 4)
    chosen.sum().backward()
    grad_rows = x.grad[0].abs().sum(-1) > 0
    assert grad_rows.nonzero()[:, 0].tolist() == sorted(set(idx[0].tolist()))


def test_batched_rows_are_independent():
    a, _ = _blobs(1, n_per=2, dim=64)
    b, _ = _blobs(2, n_per=2, dim=64)
    _, both = select_tokens(torch.stack([a, b]), 4)
    _, only_b = select_tokens(b[None], 4)
    assert torch.equal(both[1:], only_b)


def test_choose_track_frames_uniform_and_short_tracks():
    cand = list(range(0, 100, 2))  # 50 candidates
    assert choose_track_frames(cand, 8) == [cand[i * 6] for i in range(8)]
    assert choose_track_frames([3, 9, 4, 12, 20], 8) == [3, 4, 9, 12, 20, 20, 20, 20]
    five = choose_track_frames(list(range(10, 15)), n=5)
    assert five == [10, 11, 12, 13, 14]


def test_choose_track_frames_front_mode_shows_the_first_motion():
    cand = list(range(5, 35))  # 30 visible frames
    # the first frame, the one FRONT_STEP later, then uniform over the rest (28 frames, step 9)
    assert FRONT_STEP == 2 and choose_track_frames(cand, 4, mode="front") == [5, 7, 16, 25]
    assert choose_track_frames(cand, 4) == [
        5,
        12,
        19,
        26,
    ]  # uniform: a bounce at frame 9 falls between 5 and 12
    assert choose_track_frames(list(range(5)), 4, mode="front") == [0, 1, 2, 3]  # too short: uniform
    assert choose_track_frames([1, 2], 4, mode="front") == [1, 2, 2, 2]
    with pytest.raises(ValueError, match="'front'"):
        choose_track_frames(cand, 4, mode="first")


def test_the_model_config_names_its_inference_track_frames():
    from artemis_model.configuration_artemis import ArtemisConfig

    assert ArtemisConfig().track_frame_mode == "uniform"  # the paper's (and the converted weights')
    with pytest.raises(ValueError, match="track_frame_mode 'average'"):
        ArtemisConfig(track_frame_mode="average")  # a training mode: random at inference


def test_choose_track_frames_average_mode_is_seeded():
    cand = list(range(100))
    a = choose_track_frames(cand, 8, mode="average", generator=torch.Generator().manual_seed(0))
    b = choose_track_frames(cand, 8, mode="average", generator=torch.Generator().manual_seed(0))
    c = choose_track_frames(cand, 8, mode="average", generator=torch.Generator().manual_seed(1))
    assert a == b and a == sorted(a) and len(a) == 8 and a != c
    for i, frame in enumerate(a):  # start in [0, 12), step 12, jitter within +-3
        assert i * 12 - 3 <= frame <= i * 12 + 11 + 3
    with pytest.raises(ValueError, match="Generator"):
        choose_track_frames(cand, 8, mode="average")
    with pytest.raises(ValueError, match="empty"):
        choose_track_frames([], 8)


def test_five_tracked_frames_through_selection():
    # n=5 tracked boxes (fewer than 8): the frame helper repeats the last; selection still returns K=4 sorted.
    frames = choose_track_frames([2, 5, 7, 11, 13], n=8)
    assert frames == [2, 5, 7, 11, 13, 13, 13, 13]
    tokens = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    tracked = tokens[[0, 1, 2, 3, 4, 4, 4, 4]][None]  # [1, 8, 16]
    _, idx = select_tokens(tracked, 4)
    assert idx.shape == (1, 4) and idx[0].tolist() == sorted(idx[0].tolist())
    # n <= K: no clustering, all used and the last repeated
    _, idx_small = select_tokens(tokens[:3][None], 4)
    assert idx_small.tolist() == [[0, 1, 2, 2]]
