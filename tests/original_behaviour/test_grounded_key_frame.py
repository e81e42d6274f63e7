"""Issue #18, point 7 (grounded targets): the key frame is chosen, not the first frame where a track starts.

Rule (:func:`tools.grounding.key_detection`, README "Which box the describer gets"): the highest detection score
among the detections where the object is whole (not marked partial by the backend, box at least 1 px from every
border); when it is never whole, the highest score among all; ties go to the earliest frame.
"""

from __future__ import annotations

import pytest

from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from tests.clipgen import Obj, make_clip, write_mp4
from tests.original_behaviour.recording import RecordingBatchDescriber
from tools.grounding import Detection, ground, key_detection
from tools.grounding.backends import WORLD_GROUNDING
from tools.refer import refer_targets
from tools.runtime import Runtime
from tools.schemas import Target
from tools.video import load_video

W, H = 160, 120


def det(frame_idx: int, score: float, box=(40.0, 40.0, 60.0, 60.0), partial: bool = False) -> Detection:
    return Detection(frame_idx=frame_idx, box=box, label="red square", score=score, partial=partial)


def test_key_detection_is_the_most_confident_whole_detection():
    dets = [
        det(0, 0.99, box=(0.0, 40.0, 20.0, 60.0)),  # cut by the left border
        det(1, 0.97, partial=True),  # touching another object
        det(2, 0.80),
        det(3, 0.90),
        det(4, 0.90),  # a tie with frame 3: the earlier wins
        det(5, 0.95, box=(140.0, 40.0, 160.0, 60.0)),  # touches the right border
    ]
    assert key_detection(dets, W, H).frame_idx == 3


def test_key_detection_falls_back_to_the_most_confident_when_never_whole():
    dets = [det(0, 0.5, partial=True), det(1, 0.7, box=(0.0, 0.0, 30.0, 30.0)), det(2, 0.7, partial=True)]
    assert key_detection(dets, W, H).frame_idx == 1
    with pytest.raises(ValueError, match="at least one detection"):
        key_detection([], W, H)


def test_a_key_frame_without_a_box_is_refused_with_the_visible_frames():
    boxes = [None, (1.0, 1.0, 5.0, 5.0), (2.0, 1.0, 6.0, 5.0), None]
    with pytest.raises(ValueError, match=r"key_frame 3 has no box; the target is visible on frames 1-2"):
        Target(id=0, label="x", boxes=boxes, width=8, height=8, score=1.0, source="test", key_frame=3)


@pytest.fixture(scope="module")
def entering_square(tmp_path_factory):
    """A red square entering from the left border (cut on frames 0-1) and a blue circle."""
    clip = make_clip(
        [
            Obj("red", "square", (2, 60), (120, 60), radius=12),
            Obj("blue", "circle", (130, 30), (40, 100), radius=11),
        ],
        num_frames=16,
    )
    return write_mp4(clip.frames, tmp_path_factory.mktemp("grounded") / "enter.mp4")


def _is_whole(box) -> bool:
    x1, y1, x2, y2 = box
    return x1 >= 1 and y1 >= 1 and x2 <= W - 1 and y2 <= H - 1


def test_grounded_target_is_described_from_a_whole_confident_frame(entering_square):
    video = load_video(entering_square)
    [square] = ground(video, "the red square", settings=WORLD_GROUNDING)
    assert square.first_frame == 0 and not _is_whole(square.box_at(0)), "starts cut by the border"
    key, box = square.key_box()
    assert key == square.key_frame and key > square.first_frame and _is_whole(box)
    describer = RecordingBatchDescriber()
    [out] = refer_targets(video, [square], describer=describer)
    assert describer.received == [(key, box)] and (out.frame_idx, out.box) == (key, box)


def test_agent_describes_grounded_targets_from_their_key_frames(entering_square, tmp_path):
    describer = RecordingBatchDescriber()
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=describer)),
        checkpointer=sqlite_checkpointer(tmp_path / "g.db"),
    )
    list(ask(graph, "t", "What does the red square do?", video=str(entering_square)))
    [square] = final_state(graph, "t")["targets"]
    [(frame, box)] = describer.received
    assert (frame, box) == square.key_box() and frame > square.first_frame and _is_whole(box)
