"""Referring records on grounding's tracks (``training.world.grounded``): a real round trip on H.264 world clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artemis_model.types import box_iou
from synth.build import write_dataset
from training.world.data import filter_dataset
from training.world.grounded import write_grounded


def test_grounded_records_carry_grounding_tracks_of_the_same_objects(tmp_path) -> None:  # noqa: ANN001
    root = tmp_path / "world"
    write_dataset(root, 4, seed=3, num_long_videos=0)
    filter_dataset(root)
    source = {r["id"]: r for r in json.loads((root / "stage3_world" / "synth_ref.json").read_text())}
    path = write_grounded(root, 3)
    grounded = json.loads(path.read_text())
    videos = sorted({r["video_name"] for r in source.values()})[:3]
    asked = [r for r in source.values() if r["video_name"] in videos]
    assert 0.6 * len(asked) <= len(grounded) <= len(asked)
    for g in grounded:
        r = source[g["id"].removesuffix("_grounded")]
        assert (g["caption"], g["video"], g.get("question")) == (r["caption"], r["video"], r.get("question"))
        assert "frame_id" not in g and len(g["track_list"]) == len(r["track_list"])
        visible = [f for f, b in enumerate(r["track_list"]) if b]
        ious = [
            box_iou(g["track_list"][f], r["track_list"][f]) if g["track_list"][f] else 0.0 for f in visible
        ]
        assert np.mean(ious) >= 0.5
        assert g["track_list"][g["key_frame_id"]] == g["key_frame_box"]
        assert g["track_list"] != r["track_list"]  # grounding's boxes, not the world's


def test_grounded_refuses_records_without_a_video_and_zero_clips(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "stage3_world").mkdir()
    (tmp_path / "stage3_world" / "synth_ref.json").write_text(json.dumps([{"id": "a", "video_name": "v"}]))
    with pytest.raises(ValueError, match="has no 'video'"):
        write_grounded(tmp_path, 1)
    with pytest.raises(ValueError, match="clips must be >= 1"):
        write_grounded(tmp_path, 0)
