"""Original behaviour, point 3: the referring evaluation does not cut answers, and says how many hit the limit.

The original generated up to 1024 new tokens; our evaluation defaults to the same limit and records, per answer,
whether it reached the limit before ``</s>`` (``hit_token_limit``), counted in the scores and on the command line.
The evaluation also renders the prompt with the template the weights expect (the processor's), not ours.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from artemis_model import pipeline as pipeline_module
from artemis_model.pipeline import ArtemisPipeline, TargetRequest, generate_answers, prepare_targets
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.types import GenerationOptions, Track
from artemis_model.video.array import ArrayVideo
from evals.artemis_predictor import ArtemisPredictor
from evals.referring import load_referring_eval, predict_rows, run_referring, score_referring
from evals.runner import read_jsonl
from tests.evals.helpers import write_hcstvg


@pytest.fixture(scope="module")
def tiny():
    return tiny_model_and_processor(seed=0)


def _prepared(tiny):
    model, processor = tiny
    frames = np.random.default_rng(0).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    requests = [
        TargetRequest(box=box, frame_idx=f, track=Track(boxes=(box,) * 6, width=48, height=40))
        for box, f in (((8, 6, 30, 28), 0), ((4, 4, 20, 30), 2))
    ]
    return prepare_targets(model, processor, ArrayVideo(frames), requests)


def test_an_answer_without_eos_at_the_limit_is_flagged(tiny):
    model, processor = tiny
    prepared = _prepared(tiny)
    options = GenerationOptions(max_new_tokens=5)
    cut = generate_answers(model, processor, prepared, options, extra_generate_kwargs={"min_new_tokens": 5})
    assert [(a.num_tokens, a.hit_limit) for a in cut] == [(5, True), (5, True)]
    # Same limit, but </s> forced as the last token: the answer ended, it was not cut.
    eos = processor.tokenizer.eos_token_id
    ended = generate_answers(
        model,
        processor,
        prepared,
        options,
        extra_generate_kwargs={"min_new_tokens": 4, "forced_eos_token_id": eos},
    )
    assert [(a.num_tokens, a.hit_limit) for a in ended] == [(5, False), (5, False)]


def test_the_evaluation_records_and_counts_the_hits(tmp_path, tiny):
    model, processor = tiny
    path, root = write_hcstvg(tmp_path, n_videos=2)
    records = load_referring_eval(path, root)
    predictor = ArtemisPredictor(
        ArtemisPipeline(model, processor), options=GenerationOptions(max_new_tokens=3)
    )
    rows = predict_rows(predictor, records)
    assert all(isinstance(r["hit_token_limit"], bool) for r in rows)
    out = tmp_path / "run"
    run_referring(records, predictor, out, batch_size=4)
    saved = read_jsonl(out / "predictions.jsonl")
    hits = sum(r["hit_token_limit"] for r in saved)
    assert hits == sum(r["hit_token_limit"] for r in rows)  # deterministic (greedy)
    score_referring(out)
    assert json.loads((out / "metrics.json").read_text())["hit_token_limit"] == hits
    # A random tiny model rarely says </s> within 3 tokens: the count is not trivially 0.
    assert hits > 0


@pytest.mark.parametrize("batching", ["across_videos", "per_video"])
def test_the_evaluation_uses_the_processors_template(tmp_path, monkeypatch, batching):
    model, processor = tiny_model_and_processor(seed=0)
    processor.prompt_template = "eval_original"  # as a converted model's processor
    seen: list[str] = []
    real_generate = pipeline_module.generate_answers

    def recording(model_, processor_, targets, *args, **kwargs):
        seen.extend(t.prompt for t in targets)
        return real_generate(model_, processor_, targets, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "generate_answers", recording)
    path, root = write_hcstvg(tmp_path, n_videos=1)
    predictor = ArtemisPredictor(
        ArtemisPipeline(model, processor), options=GenerationOptions(max_new_tokens=2), batching=batching
    )
    predictor.predict(load_referring_eval(path, root))
    assert seen and all(p.startswith("A chat between a curious human") for p in seen)
    assert all("This is the region's video tracking list: <region>" in p for p in seen)
