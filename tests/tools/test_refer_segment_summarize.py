from __future__ import annotations

import cv2
import numpy as np
import pytest

from artemis_model.errors import InvalidBoxError
from artemis_model.types import Description, box_iou
from tools.annotate import annotate_frames
from tools.describers import HeuristicDescriber, motion_phrase
from tools.grounding import ground
from tools.grounding.backends import WORLD_GROUNDING
from tools.refer import refer, refer_segments, refer_targets
from tools.schemas import TargetDescription
from tools.segment import segment
from tools.summarize import merge, summarize, validate_summary
from tools.track import track
from tools.video import ArrayVideo, SubVideo, load_video


def test_load_video_from_mp4(two_reds_mp4, two_reds_clip):
    video = load_video(two_reds_mp4)
    assert (video.num_frames, video.width, video.height) == (16, 160, 120)
    diff = np.abs(video.get_frames([3])[0].astype(int) - two_reds_clip.frames[3].astype(int)).mean()
    assert diff < 8


def test_track_follows_the_boxed_square(two_reds_clip):
    video = ArrayVideo(two_reds_clip.frames)
    trk = track(video, two_reds_clip.boxes[1][5], frame_idx=5)
    assert trk.num_frames == 16
    for f in (0, 10, 15):
        assert box_iou(trk.boxes[f], two_reds_clip.boxes[1][f]) >= 0.3  # flat squares make trackers drift


def test_segment_covers_every_frame_once():
    video = ArrayVideo(np.zeros((30, 8, 8, 3), np.uint8))
    segs = segment(video, n=4)
    assert [s.index for s in segs] == [0, 1, 2, 3]
    assert segs[0].start == 0 and segs[-1].end == 30
    assert all(a.end == b.start for a, b in zip(segs, segs[1:], strict=False))
    assert len(segment(ArrayVideo(np.zeros((3, 8, 8, 3), np.uint8)), n=4)) == 3
    with pytest.raises(ValueError, match="n=0"):
        segment(video, n=0)


def test_refer_with_heuristic_describer_reports_motion(two_reds_clip):
    video = ArrayVideo(two_reds_clip.frames)
    desc = refer(video, two_reds_clip.boxes[0][0], frame_idx=0, describer=HeuristicDescriber())
    assert isinstance(desc, Description)
    assert desc.answer == "The red circle moves to the right."
    desc = refer(video, two_reds_clip.boxes[2][0], describer=HeuristicDescriber())
    assert "blue star" in desc.answer and "down" in desc.answer
    with pytest.raises(InvalidBoxError):
        refer(video, (10, 10, 5, 5), describer=HeuristicDescriber())


def test_refer_targets_uses_describe_many_when_available(two_reds_clip):
    video = ArrayVideo(two_reds_clip.frames)
    targets = ground(video, "the red objects", settings=WORLD_GROUNDING)
    calls = []

    class Batched(HeuristicDescriber):
        def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None):
            calls.append(len(boxes))
            assert tracks == [t.track() for t in targets]  # the grounded tracks, not re-tracked
            return [
                self(video, b, frame_idx=f, question=question) for b, f in zip(boxes, frame_idxs, strict=True)
            ]

    out = refer_targets(video, targets, question="What does it do?", describer=Batched())
    assert calls == [2]
    assert [d.target_id for d in out] == [t.id for t in targets]
    assert all(d.label.split()[1] in d.text for d in out)


def test_refer_segments_describes_each_segment_with_absolute_frames(two_reds_clip):
    video = ArrayVideo(two_reds_clip.frames)
    target = ground(video, "the red circle", settings=WORLD_GROUNDING)[0]
    seen = []

    def describer(v, box, *, frame_idx, question):
        seen.append((v.num_frames, frame_idx))
        return HeuristicDescriber()(v, box, frame_idx=frame_idx, question=question)

    segs = segment(video, 4)
    out = refer_segments(video, target, segs, describer=describer)
    assert [d.segment.index for d in out] == [0, 1, 2, 3]
    assert seen == [(4, 0)] * 4  # each call sees only its 4-frame segment
    assert [d.frame_idx for d in out] == [0, 4, 8, 12]
    assert all(box_iou(d.box, two_reds_clip.boxes[0][d.frame_idx]) >= 0.5 for d in out)


def test_subvideo_maps_frames():
    frames = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(3, -1).repeat(2, 1).repeat(2, 2)
    sub = SubVideo(ArrayVideo(frames), 4, 8)
    assert sub.num_frames == 4 and int(sub.get_frames([0, 3])[1, 0, 0, 0]) == 7


def _descs():
    kw = {"frame_idx": 0, "box": (1.0, 1.0, 9.0, 9.0)}
    return [
        TargetDescription(
            target_id=0, label="red circle", text="The red circle moves right.", span=(0, 15), **kw
        ),
        TargetDescription(
            target_id=1, label="red square", text="The red square moves left.", span=(2, 15), **kw
        ),
    ]


def test_merge_mentions_every_target_and_passes_validation():
    out = merge(_descs())
    assert "red circle" in out and "red square" in out and "frames 2-15" in out
    assert validate_summary(out, _descs()) == []
    assert merge(["A moves.", "A moves.", "B stops"]) == "A moves. B stops."


def test_hallucinating_llm_summary_falls_back_to_merge():
    prompts = []

    def hallucinating(prompt: str) -> str:
        prompts.append(prompt)
        return "The red circle chases a green triangle while the red square waits."

    out = summarize(_descs(), "What do the red objects do?", llm=hallucinating)
    assert out == merge(_descs()) and len(prompts) == 1
    assert "target 0 (red circle" in prompts[0]


def test_faithful_llm_summary_is_kept_and_omissions_are_rejected():
    good = "The red circle moves right while the red square moves left."
    assert summarize(_descs(), "?", llm=lambda p: good) == good
    assert summarize(_descs(), "?", llm=lambda p: "The red circle moves right.") == merge(_descs())
    problems = validate_summary("Target 7 is a blue star.", _descs())
    assert any("not mentioned" in p for p in problems)
    assert (
        any("blue" in p for p in problems)
        and any("star" in p for p in problems)
        and any("7" in p for p in problems)
    )


def test_summarize_plain_texts_and_rejects_unknown_llm():
    assert summarize(["It moves.", "It stops."], "?", llm="merge") == "It moves. It stops."
    with pytest.raises(ValueError, match="'merge'"):
        summarize(["x"], "?", llm="gpt")


def test_annotate_frames_draws_boxes(two_reds_clip, tmp_path):
    video = ArrayVideo(two_reds_clip.frames)
    targets = ground(video, "the red objects", settings=WORLD_GROUNDING)
    paths = annotate_frames(video, targets, tmp_path / "ev")
    assert len(paths) >= 3 and all(p.suffix == ".jpg" for p in paths)
    frame_idx = int(paths[0].stem.split("_")[1])
    img = cv2.imread(str(paths[0]))[..., ::-1].astype(int)  # BGR -> RGB
    x1, y1, x2, y2 = (int(round(v)) for v in targets[0].boxes[frame_idx])
    yellow = np.array([255, 255, 0])
    drawn = np.abs(img[y1, x1 + 3 : x2 - 3] - yellow).sum(axis=1).mean()
    before = (
        np.abs(two_reds_clip.frames[frame_idx][y1, x1 + 3 : x2 - 3].astype(int) - yellow).sum(axis=1).mean()
    )
    assert drawn < 0.5 * before  # the box edge is drawn in yellow


def test_motion_phrase_still_target():
    from artemis_model.types import Track

    assert (
        motion_phrase(Track(boxes=((0, 0, 10, 10), (1, 0, 11, 10)), width=20, height=20)) == "stays in place"
    )
