from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from artemis_model.errors import ArtemisInputError, VideoDecodeError
from evals.videorefer.data import (
    bench_q_object_records,
    decode_segmentation,
    load_bench_d,
    load_bench_q,
    mask_to_box,
)
from tests.evals.helpers import write_frames

H, W = 24, 32


def rle(mask: np.ndarray) -> dict:
    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in enc["size"]], "counts": enc["counts"].decode("ascii")}


def rect(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """Mask with pixels [x1, x2) x [y1, y2) set."""
    m = np.zeros((H, W), np.uint8)
    m[y1:y2, x1:x2] = 1
    return m


def test_mask_to_box_is_exact():
    assert mask_to_box(rect(3, 5, 10, 9)) == (3.0, 5.0, 10.0, 9.0)
    assert mask_to_box(rect(0, 0, W, H)) == (0.0, 0.0, float(W), float(H))
    one = np.zeros((H, W), np.uint8)
    one[7, 11] = 1
    assert mask_to_box(one) == (11.0, 7.0, 12.0, 8.0)
    assert mask_to_box(np.zeros((H, W), np.uint8)) is None
    assert mask_to_box(None) is None
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random((H, W)) > 0.97).astype(np.uint8)
        if not m.any():
            continue
        x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m))).tolist()
        assert mask_to_box(decode_segmentation(rle(m))) == (x, y, x + w, y + h)


def test_rle_forms_round_trip():
    m = rect(2, 3, 9, 11)
    assert np.array_equal(decode_segmentation(rle(m)), m)
    # Uncompressed RLE (counts as a list, column-major runs).
    flat = m.flatten(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    assert np.array_equal(decode_segmentation({"size": [H, W], "counts": runs}), m)
    poly = [[2, 3, 9, 3, 9, 11, 2, 11]]
    assert mask_to_box(decode_segmentation(poly, (H, W))) is not None
    assert decode_segmentation(None) is None


def bench_q_raw(n_frames: int = 12) -> dict:
    obj_a = {  # keys deliberately out of order; a null and an empty mask
        "10": {"segmentation": rle(rect(1, 1, 5, 6))},
        "0": {"segmentation": rle(rect(2, 2, 8, 8))},
        "4": {"segmentation": None},
        "7": {"segmentation": rle(np.zeros((H, W), np.uint8))},
        "2": {"segmentation": rle(rect(3, 4, 12, 10))},
    }
    obj_b = {
        "2": {"segmentation": rle(rect(20, 10, 30, 20))},
        "5": {"segmentation": rle(rect(21, 11, 31, 21))},
    }
    return {
        "id": 7,
        "video": "DAVIS/JPEGImages/480p/clip",
        "Question": "Where does <object3><region> go relative to <object1><region>?",
        "type": "Relationship Questions",
        "options": ["(A) left", "(B) right", "(C) up", "(D) down"],
        "Answer": "(B) right",
        "frame_idx": "2",
        "annotation": [obj_a, obj_b],
    }


def test_bench_q_loader_order_absent_frames_and_modes(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps([bench_q_raw()]))
    (rec,), report = load_bench_q(path)
    a, b = rec.objects
    assert a.keys == (0, 2, 4, 7, 10)  # numeric order, not JSON order
    assert a.box_at(2) == (3.0, 4.0, 12.0, 10.0) and b.box_at(2) == (20.0, 10.0, 30.0, 20.0)
    assert a.box_at(4) is None and a.box_at(7) is None  # null and empty masks: absent, never [0,0,0,0]
    assert (report.null_masks, report.empty_masks) == (1, 1)
    assert a.boxes("single", 2) == ((2, (3.0, 4.0, 12.0, 10.0)),)
    assert [f for f, _ in a.boxes("multi", 2)] == [0, 2, 10]
    assert report.per_type == {"Relationship Questions": 1} and report.objects_per_record == {2: 1}

    root = tmp_path / "frames"
    write_frames(root / rec.video, 12, size=(W, H))
    single = bench_q_object_records(rec, root, "single")
    assert [r.record_id for r in single] == ["7/obj0", "7/obj1"]  # <region> order
    assert single[0].key_box == (3.0, 4.0, 12.0, 10.0) and single[1].key_box == (20.0, 10.0, 30.0, 20.0)
    multi = bench_q_object_records(rec, root, "multi")
    assert [f for f, _ in multi[0].track] == [0, 2, 10] and multi[0].frame_paths[10].name == "00010.jpg"


def test_bench_q_structural_errors_and_missing_frames(tmp_path):
    raw = bench_q_raw()
    raw["Question"] = "What is <region> doing?"
    path = tmp_path / "q.json"
    path.write_text(json.dumps([raw]))
    with pytest.raises(ArtemisInputError, match="1 <region> but annotation has 2"):
        load_bench_q(path)
    path.write_text(json.dumps([bench_q_raw()]))
    (rec,), _ = load_bench_q(path)
    with pytest.raises(VideoDecodeError, match="DAVIS/JPEGImages/480p/clip"):
        bench_q_object_records(rec, tmp_path / "nowhere")


def test_bench_d_loader(tmp_path):
    raw = {
        "id": 0,
        "video": "abc_0:00:01.000_0:00:04.000.mp4",
        "caption": "A cub walks.",
        "frame_idx": "6",
        "annotation": [{"6": {"segmentation": rle(rect(4, 4, 9, 9))}, "2": {"segmentation": None}}],
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps([raw]))
    (rec,), report = load_bench_d(path)
    assert rec.object.keys == (2, 6) and rec.object.box_at(6) == (4.0, 4.0, 9.0, 9.0)
    assert report.null_masks == 1 and report.issues == []
    raw["annotation"].append(raw["annotation"][0])
    path.write_text(json.dumps([raw]))
    with pytest.raises(ArtemisInputError, match="exactly 1"):
        load_bench_d(path)


def test_mask_size_must_match_frames(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps([bench_q_raw()]))
    (rec,), _ = load_bench_q(path)
    root = tmp_path / "frames"
    write_frames(root / rec.video, 12, size=(W + 8, H))
    with pytest.raises(ArtemisInputError, match=r"mask size \(H, W\)=\(24, 32\) differs"):
        bench_q_object_records(rec, root)
    short = tmp_path / "short"
    write_frames(short / rec.video, 8, size=(W, H))
    with pytest.raises(IndexError, match="mask key 10 is beyond the 8 frames"):
        bench_q_object_records(rec, short)
