"""The real-footage benchmark: labels load and match their clips, bad labels are refused, metrics on a hand-made
case, and the measured figures on bikes.mp4 (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.real import (
    CLIPS_DIR,
    LABELS_DIR,
    ClipLabels,
    LabelError,
    PredTrack,
    evaluate_clip,
    load_all,
    load_labels,
    run_real,
)

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / CLIPS_DIR


def _needs_clips() -> None:
    if not all((ASSETS / n).is_file() for n in ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")):
        pytest.skip(f"clips absent from {ASSETS} (make test-assets)")


def test_labels_load_without_clips() -> None:
    labels = load_all(LABELS_DIR)
    assert {lab.clip for lab in labels} == {"bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"}
    assert sum(len(lab.questions) for lab in labels) >= 20
    bikes = next(lab for lab in labels if lab.clip == "bikes.mp4")
    assert bikes.cuts == [30, 76, 137, 187, 242]
    assert {o.coco_class for o in bikes.objects} == {"person", "bicycle", "car"}


def test_labels_match_their_clips() -> None:
    _needs_clips()
    assert len(load_all(LABELS_DIR, ASSETS)) == 3


def _bikes_json() -> dict:
    return json.loads((LABELS_DIR / "bikes.json").read_text())


def test_wrong_sha256_is_refused_naming_the_file(tmp_path: Path) -> None:
    _needs_clips()
    data = _bikes_json()
    data["sha256"] = "0" * 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(LabelError, match=r"bad\.json.*sha256"):
        load_labels(bad, ASSETS)


def test_box_outside_the_frame_is_refused_naming_it(tmp_path: Path) -> None:
    data = _bikes_json()
    data["objects"][0]["boxes"]["30"] = [160, 5, 700, 266]
    bad = tmp_path / "outside.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(LabelError, match=r"(?s)outside\.json.*man_suit.*frame 30"):
        load_labels(bad)


def _tiny() -> ClipLabels:
    return ClipLabels.model_validate(
        {
            "clip": "tiny.mp4",
            "sha256": "a" * 64,
            "source": {"package": "none", "version": "0", "path": "tiny.mp4"},
            "fps": 10.0,
            "width": 100,
            "height": 100,
            "num_frames": 40,
            "cuts": [20],
            "box_tolerance_px": 0,
            "made": "by hand in the test",
            "objects": [
                {
                    "id": "a",
                    "coco_class": "person",
                    "description": "a",
                    "boxes": {0: [0, 0, 10, 10], 10: [0, 0, 10, 10], 20: None, 30: None},
                },
                {
                    "id": "b",
                    "coco_class": "person",
                    "description": "b",
                    "boxes": {0: [50, 50, 60, 60], 10: None},
                },
            ],
            "questions": [
                {"id": "n", "kind": "count", "question": "how many?", "coco_class": "person", "answer": 2},
                {
                    "id": "t",
                    "kind": "temporal",
                    "question": "when a?",
                    "object": "a",
                    "answer": [0, 10],
                    "tolerance": 2,
                },
                {"id": "s", "kind": "shot", "question": "shot of a?", "object": "a", "answer": 0},
                {
                    "id": "p",
                    "kind": "presence",
                    "question": "person at 35?",
                    "coco_class": "person",
                    "frame": 35,
                    "answer": False,
                },
            ],
        }
    )


def test_metrics_on_a_hand_made_case() -> None:
    labels = _tiny()
    boxes_a: list = [None] * 40
    boxes_a[0] = (0, 0, 10, 10)  # IoU 1
    boxes_a[10] = (0, 0, 10, 20)  # IoU 0.5
    boxes_a[20] = (0, 0, 10, 10)  # present while labelled absent, after the cut
    # b's track picks up a on frame 10 better than a's own track: one identity switch for a
    boxes_b: list = [None] * 40
    boxes_b[0] = (50, 50, 60, 60)
    boxes_b[10] = (0, 0, 10, 11)
    res = evaluate_clip(labels, {"person": [PredTrack(7, boxes_a), PredTrack(8, boxes_b)]})
    a, b = res.objects
    assert a.track_id == 7 and b.track_id == 8
    assert a.mean_iou == pytest.approx(0.75)
    assert a.hit_fraction == 1.0
    assert a.id_switches == 1
    assert a.false_present == 1
    assert a.crosses_cut is True and b.crosses_cut is False
    assert (
        b.mean_iou == pytest.approx(1.0) and b.false_present == 1
    )  # b's track is on frame 10, labelled absent
    assert res.clips[0].tracks_crossing_cuts == 1
    answers = {x.id: x for x in res.answers}
    assert answers["n"].correct and answers["p"].correct
    assert answers["t"].predicted == [0, 20] and not answers["t"].correct
    assert answers["s"].predicted == [0, 1] and not answers["s"].correct
    assert res.goals()["tracks_crossing_cuts"] == 1


def _needs_detector() -> None:
    _needs_clips()
    from tools.grounding.coco import DEFAULT_TARBALL

    if not DEFAULT_TARBALL.is_file():
        pytest.skip(f"{DEFAULT_TARBALL} is absent (make test-assets)")


def test_the_driver_is_tracked_on_every_labelled_frame(tmp_path: Path) -> None:
    """carphone_pristine.mp4 (120 frames, 176 x 144): the one person, IoU >= 0.5 on all 12 labelled frames
    (measured: 0.91-0.95; 0.82-0.89 before the detector kept the aspect), one track, no false second person."""
    _needs_detector()
    res = run_real(LABELS_DIR, ASSETS, tmp_path, only=["carphone_pristine.mp4"], answers="grounding")
    [driver] = res.objects
    assert driver.hit_fraction == 1.0 and driver.mean_iou >= 0.85
    assert res.clips[0].tracks == {"person": 1}


@pytest.mark.slow
def test_end_to_end_on_bikes(tmp_path: Path) -> None:
    """The figures the benchmark reports for bikes.mp4 (COCO backend), with a margin. Measured: IoU >= 0.5 on 18
    of 19 person/vehicle frames (the walker on frame 200, boxed by a second track, is the miss); 13 of 14
    answers (the count: 5 person tracks — the walker split in two and a false "person" in a motorcycle
    helmet — for 3 people)."""
    _needs_detector()
    res = run_real(LABELS_DIR, ASSETS, tmp_path, only=["bikes.mp4"])
    objs = {o.object: o for o in res.objects}
    assert objs["dark_car_right"].mean_iou >= 0.65 and objs["dark_car_right"].hit_fraction == 1.0
    assert objs["cyclist"].mean_iou >= 0.75 and objs["cyclist"].hit_fraction == 1.0
    assert objs["cyclist"].false_present == 0  # hidden by the car on frames 90 and 100: no box there
    assert objs["man_suit"].hit_fraction == 1.0  # frame 40: a detection below the start score continues it
    assert objs["parked_bicycle"].hit_fraction == 1.0  # found since the detector keeps the frame's aspect
    assert objs["walker"].hit_fraction >= 0.5
    assert all(not o.crosses_cut for o in res.objects)
    assert res.clips[0].tracks_crossing_cuts == 0
    goals = res.goals()
    assert goals["person_vehicle_hit_fraction"] >= 0.9
    assert sum(a.correct for a in res.answers) >= 12
    assert (tmp_path / "real.json").is_file() and (tmp_path / "real.md").is_file()
