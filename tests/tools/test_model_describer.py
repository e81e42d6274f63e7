"""The agent's model seam: ModelDescriber over the real pipeline with a tiny model."""

import numpy as np
import pytest

from artemis_model.tiny import tiny_model_and_processor
from tools.describers import ModelDescriber
from tools.refer import refer_targets
from tools.schemas import Target
from tools.video import ArrayVideo


@pytest.fixture(scope="module")
def describer():
    model, processor = tiny_model_and_processor(seed=0)
    return ModelDescriber(model.eval(), processor)


def _clip() -> ArrayVideo:
    rng = np.random.default_rng(0)
    frames = np.full((12, 64, 80, 3), 90, np.uint8)
    frames += rng.integers(0, 20, frames.shape, dtype=np.uint8)
    for t in range(12):
        frames[t, 10:26, 5 + 3 * t : 21 + 3 * t] = (220, 30, 30)
        frames[t, 40:56, 60 - 2 * t : 76 - 2 * t] = (30, 30, 220)
    return ArrayVideo(frames, fps=10.0)


def test_describe_many_matches_single_calls_and_shares_frames(describer):
    video = _clip()
    boxes = [(5.0, 10.0, 21.0, 26.0), (60.0, 40.0, 76.0, 56.0)]
    cache = describer.pipeline.cache
    cache.clear()
    cache.reset_stats()
    many = describer.describe_many(video, boxes, frame_idxs=[0, 0], question=None)
    encoded_once = cache.stats.region_misses
    singles = [describer(video, b, frame_idx=0, question=None) for b in boxes]
    assert [d.answer for d in many] == [d.answer for d in singles]
    # The follow-up single calls hit the cache: no frame went through the region encoder twice.
    assert cache.stats.region_misses == encoded_once
    assert many[0].track.boxes != many[1].track.boxes


def test_refer_targets_uses_describe_many(describer, monkeypatch):
    video = _clip()
    calls = []
    original = describer.describe_many

    def spy(*args, **kwargs):
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(describer, "describe_many", spy)
    boxes = [(5.0, 10.0, 21.0, 26.0), (60.0, 40.0, 76.0, 56.0)]
    targets = [
        Target(id=i, label=f"t{i}", boxes=[box] + [None] * 11, width=80, height=64, score=1.0, source="test")
        for i, box in enumerate(boxes)
    ]
    out = refer_targets(video, targets, question=None, describer=describer)
    assert calls == [2]
    assert [d.target_id for d in out] == [0, 1]
    assert [d.box for d in out] == boxes
    assert all(d.text for d in out)


def test_given_tracks_are_used_not_recomputed(describer):
    """Targets from grounding carry tracks: describe_many uses them instead of running the tracker again."""
    from artemis_model.types import Track

    video = _clip()
    boxes = [(5.0, 10.0, 21.0, 26.0), (60.0, 40.0, 76.0, 56.0)]
    given = [Track(boxes=(b,) + (None,) * 11, width=80, height=64) for b in boxes]
    out = describer.describe_many(video, boxes, frame_idxs=[0, 0], question=None, tracks=given)
    assert [d.track for d in out] == given
    tracked = describer.describe_many(video, boxes, frame_idxs=[0, 0], question=None)
    assert all(len(d.track.visible_frames) > 1 for d in tracked)  # the tracker follows them otherwise


def test_sampling_gives_other_hypotheses_reproducibly(describer):
    """``sampling=``: the same seed and inputs give the same captions; several seeds give other hypotheses than the
    greedy one (a random tiny model is far from confident); the describer says it can sample."""
    from tools.describers import Sampling, can_sample

    video = _clip()
    boxes = [(5.0, 10.0, 21.0, 26.0)] * 4
    kwargs = {"frame_idxs": [0] * 4, "question": None}
    greedy = [d.answer for d in describer.describe_many(video, boxes, **kwargs)]
    assert len(set(greedy)) == 1  # greedy: four copies, one caption
    one = [d.answer for d in describer.describe_many(video, boxes, **kwargs, sampling=Sampling(seed=1))]
    assert one == [
        d.answer for d in describer.describe_many(video, boxes, **kwargs, sampling=Sampling(seed=1))
    ]
    sampled = set(one) | {
        d.answer
        for s in (2, 3)
        for d in describer.describe_many(video, boxes, **kwargs, sampling=Sampling(seed=s))
    }
    assert sampled - set(greedy)
    assert describer.options.do_sample is False  # the describer's own options untouched
    assert can_sample(describer)
