from __future__ import annotations

import json

import pytest

from artemis_model.errors import ArtemisInputError, VideoDecodeError
from evals.referring import load_referring_eval, merge_referring, run_referring, score_referring
from evals.runner import Shard, read_jsonl
from tests.evals.helpers import CountingPredictor, write_frames, write_hcstvg


def test_hcstvg_format_loads_with_empty_track_entries(tmp_path):
    path, root = write_hcstvg(tmp_path, n_videos=2)
    recs = load_referring_eval(path, root)
    assert [r.record_id for r in recs] == ["vid0", "vid1"]
    r0, r1 = recs
    assert [f for f, _ in r0.track] == [0, 2, 5]  # empty entries are absent frames
    assert r0.key_frame_idx == 2 and r0.key_box == (4.0, 4.0, 22.0, 20.0)
    # No key frame given: the first tracked frame, deterministically.
    assert r1.key_frame_idx == 0 and r1.key_box == (3.0, 3.0, 20.0, 18.0)
    assert r0.frame_paths[3] == root / "frames" / "vid0" / "00003.jpg"
    assert r0.track_list(6)[1] == [] and r0.track_list(6)[5] == [5.0, 5.0, 25.0, 21.0]


def test_missing_frames_and_bad_boxes_are_named(tmp_path):
    path, root = write_hcstvg(tmp_path, n_videos=1)
    (root / "frames" / "vid0" / "00004.jpg").unlink()
    with pytest.raises(VideoDecodeError, match="00004.jpg"):
        load_referring_eval(path, root)
    data = json.loads(path.read_text())
    data[0]["track_list"][0] = [10, 10, 5, 20]
    path.write_text(json.dumps(data))
    with pytest.raises(ArtemisInputError, match=r"track_list\[0\]"):
        load_referring_eval(path, root, check_files=False)


def test_raw_video_format(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    path = tmp_path / "eval.jsonl"
    path.write_text(
        json.dumps({"video": "a.mp4", "box": [1, 2, 10, 12], "frame_idx": 3, "caption": "x"}) + "\n"
    )
    (rec,) = load_referring_eval(path, tmp_path)
    assert rec.video_name == "a" and rec.video_path == tmp_path / "a.mp4"
    assert rec.track == ((3, (1.0, 2.0, 10.0, 12.0)),)


def test_end_to_end_sharded_equals_single_and_resume(tmp_path, scorer):
    path, root = write_hcstvg(tmp_path, n_videos=7)
    recs = load_referring_eval(path, root)

    single = tmp_path / "single"
    run_referring(recs, CountingPredictor(), single, batch_size=2)
    sharded = tmp_path / "sharded"
    for i in range(3):
        run_referring(recs, CountingPredictor(), sharded, shard=Shard(3, i), batch_size=2)
    merged = merge_referring(sharded, 3, recs)
    assert merged.read_text() == (single / "predictions.jsonl").read_text()
    rows = read_jsonl(merged)
    assert [r["video_name"] for r in rows] == [f"vid{i}" for i in range(7)]
    assert set(rows[0]) == {"id", "video_name", "groundtruth", "pred"}

    # Resume: finished ids are never sent to the model again.
    again = CountingPredictor()
    summary = run_referring(recs, again, single, batch_size=2)
    assert again.calls == 0 and summary.skipped == 7 and summary.predicted == 0
    lines = (single / "predictions.jsonl").read_text().splitlines()
    (single / "predictions.jsonl").write_text("\n".join(lines[:4]) + "\n")
    partial = CountingPredictor()
    run_referring(recs, partial, single, batch_size=2)
    assert partial.seen == ["vid4", "vid5", "vid6"] and partial.calls == 2
    assert (single / "predictions.jsonl").read_text() == merged.read_text()

    metrics = score_referring(single, scorer=scorer)
    saved = json.loads((single / "metrics.json").read_text())
    assert saved["counts"]["scored"] == 7
    assert saved["scores"]["BLEU_1"] == pytest.approx(metrics.scores["BLEU_1"])
    assert 0 < metrics.scores["BLEU_1"] < 1 and "SPICE" in saved["unavailable"]
    assert "| BLEU_1 |" in (single / "metrics.md").read_text()


def test_unknown_format_is_rejected(tmp_path):
    write_frames(tmp_path / "f", 1)
    path = tmp_path / "e.json"
    path.write_text(json.dumps([{"caption": "x", "frames": "f"}]))
    with pytest.raises(ArtemisInputError, match="unknown format"):
        load_referring_eval(path, tmp_path)
