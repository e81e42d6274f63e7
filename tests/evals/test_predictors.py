from __future__ import annotations

import pytest

from evals.predictors import build_from_factory, generation_options, load_object
from evals.protocol import Predictor
from tests.evals.helpers import CountingPredictor


def test_greedy_by_default_sampling_only_on_request():
    greedy = generation_options(sample=False)
    assert greedy.do_sample is False and greedy.seed is None
    assert greedy.max_new_tokens == 1024  # the original's limit: long answers are not cut
    sampled = generation_options(sample=True, seed=7)
    assert sampled.do_sample is True and sampled.temperature == 0.2 and sampled.seed == 7
    assert (sampled.top_p, sampled.top_k, sampled.max_new_tokens) == (1.0, 50, 1024)  # transformers' defaults
    assert generation_options(sample=False, max_new_tokens=32).max_new_tokens == 32


def test_factories_and_protocol():
    assert isinstance(CountingPredictor(), Predictor)
    made = build_from_factory("tests.evals.helpers:CountingPredictor")
    assert isinstance(made, CountingPredictor)
    with pytest.raises(ValueError, match="module:attribute"):
        load_object("no_colon")
    with pytest.raises(ValueError, match="has no attribute"):
        load_object("tests.evals.helpers:Nope")
