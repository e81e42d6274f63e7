import math

import pytest

from artemis_model.errors import FrameIndexError, InvalidBoxError
from artemis_model.types import Track, box_iou, validate_box, validate_frame_idx


def test_validate_box_clips_partly_outside_box():
    assert validate_box([-5, 10, 50, 200], 100, 120) == (0.0, 10.0, 50.0, 120.0)


@pytest.mark.parametrize(
    "box, word",
    [
        ([1, 2, 3], "4 numbers"),
        ([0, 0, math.nan, 5], "NaN"),
        ([10, 10, 5, 20], "inverted"),
        ([10, 10, 10, 20], "zero area"),
        ([200, 200, 300, 300], "outside"),
        (["a", 0, 1, 1], "4 numbers"),
    ],
)
def test_validate_box_rejects_bad_boxes(box, word):
    with pytest.raises(InvalidBoxError, match=word):
        validate_box(box, 100, 100)


def test_frame_index_range():
    assert validate_frame_idx(3, 4) == 3
    for bad in (-1, 4, 2.0, True):
        with pytest.raises(FrameIndexError):
            validate_frame_idx(bad, 4)


def test_iou_and_track_round_trip():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    track = Track.from_track_list([[1, 1, 5, 5], [], [2, 2, 6, 6]], 10, 10)
    assert track.visible_frames == [0, 2]
    assert track.span == (0, 2)
    assert track.to_track_list() == [[1.0, 1.0, 5.0, 5.0], [], [2.0, 2.0, 6.0, 6.0]]
