from __future__ import annotations

import json

import pytest

from evals.runner import Shard, merge_shards, read_jsonl, run_resumable, shard_output_path


def test_shard_bounds_partition_in_order():
    items = list(range(10))
    parts = [Shard(3, i).select(items) for i in range(3)]
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [Shard(4, i).select([1, 2]) for i in range(4)] == [[1], [2], [], []]
    with pytest.raises(ValueError, match="shard_id"):
        Shard(3, 3)
    with pytest.raises(ValueError, match="num_shards"):
        Shard(0, 0)


def test_resume_skips_done_ids_and_repairs_truncated_tail(tmp_path):
    out = tmp_path / "p.jsonl"
    asked: list[int] = []

    def predict(batch):
        asked.extend(batch)
        return [{"value": x * x} for x in batch]

    s1 = run_resumable(list(range(5)), item_id=str, predict_batch=predict, output=out, batch_size=2)
    assert (s1.predicted, s1.skipped) == (5, 0)
    # Simulate a run killed mid-write: a truncated last line.
    with out.open("a") as fh:
        fh.write('{"id": "5", "val')
    asked.clear()
    s2 = run_resumable(list(range(7)), item_id=str, predict_batch=predict, output=out, batch_size=2)
    assert asked == [5, 6]
    assert (s2.predicted, s2.skipped) == (2, 5)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [str(i) for i in range(7)]
    assert [r["value"] for r in rows] == [i * i for i in range(7)]


def test_merge_reports_missing_shards_and_ids(tmp_path):
    for i in range(2):
        p = shard_output_path(tmp_path, "p", Shard(3, i))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"id": str(i)}) + "\n")
    with pytest.raises(FileNotFoundError, match="shard-002-of-003"):
        merge_shards(tmp_path, "p", 3)
    shard_output_path(tmp_path, "p", Shard(3, 2)).write_text(json.dumps({"id": "0"}) + "\n")
    with pytest.raises(ValueError, match="no prediction"):
        merge_shards(tmp_path, "p", 3, order=["1", "0", "9"])
    summary = merge_shards(tmp_path, "p", 3, order=["1", "0", "9"], allow_missing=True)
    assert summary.duplicates == 1 and summary.missing_ids == ("9",)
    assert [r["id"] for r in read_jsonl(summary.output)] == ["1", "0"]
