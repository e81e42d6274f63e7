"""Batched generation across records gives the batch-1 answers (float64: greedy ties cannot flip)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from evals.protocol import EvalRecord
from tests.clipgen import noise_frames, write_frames

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("artemis_model.pipeline") is None,
    reason="artemis_model.pipeline is not available",
)

W, H = 40, 30
QUESTIONS = [
    None,
    "What is the <region> doing?",
    "Describe where the <region> goes and what it does after it stops near the edge of the screen.",
    "Where is the <region>?",
]


def _noise_video(folder: Path, n: int, seed: int) -> tuple[Path, ...]:
    return tuple(write_frames(folder, noise_frames(n, W, H, seed)))


def _records(root: Path) -> list[EvalRecord]:
    """8 records over 5 videos (two videos hold two targets), different questions, tracks with gaps."""
    videos = [_noise_video(root / f"v{v}", 6 + v, seed=v) for v in range(5)]
    records = []
    for i, v in enumerate([0, 1, 1, 2, 3, 4, 4, 0]):
        frames = videos[v]
        x = 2 + 3 * i
        track = tuple(
            (f, (float(x + f), 4.0 + i, float(x + f + 12), 20.0 + i)) for f in range(len(frames)) if f % 3
        )
        key_idx, key_box = track[0]
        records.append(
            EvalRecord(
                record_id=f"r{i}",
                video_name=f"v{v}",
                groundtruth="",
                key_frame_idx=key_idx,
                key_box=key_box,
                track=track,
                frame_paths=frames,
                question=QUESTIONS[i % len(QUESTIONS)],
            )
        )
    return records


def test_cross_video_batches_equal_pipeline_batch_1_in_float64(tmp_path, one_thread):
    from artemis_model.pipeline import ArtemisPipeline
    from artemis_model.tiny import tiny_model_and_processor
    from artemis_model.types import GenerationOptions
    from evals.artemis_predictor import ArtemisPredictor

    model, proc = tiny_model_and_processor(seed=3)
    model = model.to(torch.float64)
    records = _records(tmp_path)
    options = GenerationOptions(max_new_tokens=8)
    pipe = ArtemisPipeline(model, proc)

    reference = ArtemisPredictor(pipe, options=options, batching="per_video")
    batch_1 = [reference.predict([r])[0] for r in records]  # the pipeline, one target per call
    assert len(set(batch_1)) > 1 and all(batch_1), batch_1  # a non-trivial oracle

    for size in (4, 8):
        batched = ArtemisPredictor(pipe, options=options, generation_batch_size=size)
        assert batched.predict(records) == batch_1, size
    # The pipeline's own batching (the targets of one video together) agrees too.
    assert reference.predict(records) == batch_1


def test_batching_arguments_are_checked():
    from evals.artemis_predictor import ArtemisPredictor

    with pytest.raises(ValueError, match="batching='sideways'"):
        ArtemisPredictor(object(), batching="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generation_batch_size=0"):
        ArtemisPredictor(object(), generation_batch_size=0)
