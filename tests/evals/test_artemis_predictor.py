"""The HC-STVG path end to end with the real (tiny, random) Artemis model through the pipeline."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("artemis_model.pipeline") is None,
    reason="artemis_model.pipeline is not available",
)


def test_referring_end_to_end_with_tiny_model(tmp_path, scorer):
    from artemis_model.pipeline import ArtemisPipeline
    from artemis_model.tiny import tiny_model_and_processor
    from artemis_model.types import GenerationOptions
    from evals.artemis_predictor import ArtemisPredictor
    from evals.referring import load_referring_eval, run_referring, score_referring
    from evals.runner import read_jsonl
    from tests.evals.helpers import write_hcstvg

    path, root = write_hcstvg(tmp_path, n_videos=2)
    records = load_referring_eval(path, root)
    model, proc = tiny_model_and_processor(seed=0)
    predictor = ArtemisPredictor(ArtemisPipeline(model, proc), options=GenerationOptions(max_new_tokens=6))
    first = predictor.predict(records)
    assert predictor.predict(records) == first  # greedy: deterministic
    run_referring(records, predictor, tmp_path / "run", batch_size=2)
    rows = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    assert [r["pred"] for r in rows] == first
    metrics = score_referring(tmp_path / "run", scorer=scorer)
    assert metrics.counts.scored == 2 and "CIDEr" in metrics.scores


def test_bench_q_describer_is_the_tiny_model(tmp_path):
    import json

    from artemis_model.pipeline import ArtemisPipeline
    from artemis_model.tiny import tiny_model_and_processor
    from artemis_model.types import GenerationOptions
    from evals.artemis_predictor import ArtemisPredictor
    from evals.runner import read_jsonl
    from evals.videorefer.bench_q import run_bench_q
    from evals.videorefer.data import load_bench_q
    from tests.evals.helpers import write_frames
    from tests.evals.test_videorefer_data import H, W, bench_q_raw
    from tests.evals.test_videorefer_runs import FakeAnswerer

    path = tmp_path / "q.json"
    path.write_text(json.dumps([bench_q_raw()]))
    recs, _ = load_bench_q(path)
    write_frames(tmp_path / "frames" / recs[0].video, 12, size=(W, H))
    model, proc = tiny_model_and_processor(seed=0)
    describer = ArtemisPredictor(ArtemisPipeline(model, proc), options=GenerationOptions(max_new_tokens=4))
    run_bench_q(recs, describer, FakeAnswerer(), tmp_path / "frames", tmp_path / "q", mode="multi")
    (row,) = read_jsonl(tmp_path / "q" / "predictions.jsonl")
    assert len(row["descriptions"]) == 2 and all(isinstance(d["text"], str) for d in row["descriptions"])
    assert row["trace"][0].startswith("region 1 <object3>:") and row["trace"][1].startswith(
        "region 2 <object1>:"
    )
