"""Sub-pixel positions of flat-colour objects through H.264: the offline backend's centre of coverage and the
rigid boxes placed by it (:func:`tools.grounding.linking.rigid_boxes`), and the stops the memory finds with them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from artemis_model.types import box_iou
from tools.grounding import Detection
from tools.grounding.backends import WORLD_GROUNDING
from tools.grounding.grounder import ground
from tools.grounding.linking import rigid_boxes
from tools.grounding.offline import OfflineBackend
from tools.grounding.query import parse_query
from tools.memory import build_memory
from tools.video import ArrayVideo, load_video


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def test_coverage_centres_follow_the_object_through_h264(tmp_path) -> None:
    """Per detection of a whole object, the centre of coverage measured on the H.264-decoded frame is within
    0.2 px of the one on the frame as generated (mean), and at most half as far off as the box centre (whose
    edges snap to the 2x2 chroma grid)."""
    from evals.tools_eval import generated_cases
    from synth.video_io import write_mp4

    query, centre_err, box_err = parse_query("the objects"), [], []
    for case in generated_cases(6, seed=21, num_frames=12):
        frames = case.video.get_frames(range(case.video.num_frames))
        decoded = load_video(write_mp4(frames, tmp_path / f"{case.name}.mp4"))
        decoded = decoded.get_frames(range(decoded.num_frames))
        idx = list(range(len(frames)))
        raw_dets = OfflineBackend().detect(frames, idx, query)
        dec_dets = OfflineBackend().detect(decoded, idx, query)
        for raw, dec in zip(raw_dets, dec_dets, strict=True):
            for r in raw:
                if r.partial or r.centre is None:
                    continue
                same = [
                    d for d in dec if d.colour == r.colour and box_iou(d.box, r.box) >= 0.5 and not d.partial
                ]
                if len(same) != 1 or same[0].centre is None:
                    continue
                centre_err.append(np.abs(np.subtract(same[0].centre, r.centre)).max())
                box_err.append(np.abs(_centre(same[0].box) - _centre(r.box)).max())
    assert len(centre_err) >= 100, len(centre_err)
    assert np.mean(centre_err) <= 0.2, np.mean(centre_err)
    assert np.mean(centre_err) <= 0.5 * np.mean(box_err), (np.mean(centre_err), np.mean(box_err))


def _snapped(f: int, x: float, *, centre_offset: float = 0.7, area_frac: float = 0.012) -> Detection:
    """An object 15 px wide moving along x, its box snapped out to even pixels (as through yuv420p), its
    centre of coverage exact (``centre_offset`` left of its box centre, as a shape's centre of mass may be)."""
    x1, x2 = 2 * np.floor(x / 2), 2 * np.ceil((x + 15) / 2)
    return Detection(f, (x1, 40.0, x2, 55.0), "orange triangle", 0.9, "orange", "triangle", area_frac,
                     centre=(x + 7.5 - centre_offset, 47.5))  # fmt: skip


def test_rigid_boxes_put_snapped_boxes_back_on_the_path() -> None:
    xs = [20.0 + 0.5 * f for f in range(12)]
    dets = [_snapped(f, x) for f, x in enumerate(xs)]
    before = np.array([_centre(d.box)[0] for d in dets]) - (np.array(xs) + 7.5)
    assert np.abs(before).max() >= 0.5  # the snapped boxes jitter around the path
    placed = rigid_boxes(dets, 160, 120)
    centres = np.array([_centre(d.box)[0] for d in placed])
    err = centres - (np.array(xs) + 7.5)
    assert np.abs(err - err.mean()).max() <= 0.05, err  # on the path up to a constant
    assert abs(err.mean()) <= 0.5
    assert all(abs((d.box[2] - d.box[0]) - placed[0].box[2] + placed[0].box[0]) < 1e-6 for d in placed)


def test_rigid_boxes_leave_cut_hidden_and_short_tracks_alone() -> None:
    dets = [_snapped(f, 20.0 + 0.5 * f) for f in range(8)]
    dets[2] = _snapped(2, 21.0, area_frac=0.008)  # a third of it hidden inside its box
    dets[3] = Detection(3, (0.0, 40.0, 14.0, 55.0), "orange triangle", 0.9, "orange", "triangle", 0.01,
                        centre=(7.0, 47.5))  # fmt: skip  # at the frame's border
    dets[4] = Detection(4, (22.0, 40.0, 44.0, 55.0), "orange triangle", 0.9, "orange", "triangle", 0.02,
                        centre=(33.0, 47.5))  # fmt: skip  # merged with a neighbour: 22 px wide
    placed = rigid_boxes(dets, 160, 120)
    assert [placed[k].box for k in (2, 3, 4)] == [dets[k].box for k in (2, 3, 4)]
    assert placed[5].box != dets[5].box
    assert rigid_boxes(dets[:2], 160, 120) == dets[:2]  # too few whole detections to know the object's size
    growing = [replace(d, box=(d.box[0], d.box[1] - f, d.box[2] + f, d.box[3])) for f, d in enumerate(dets)]
    assert rigid_boxes(growing, 160, 120) == growing  # an object that comes closer keeps its boxes
    exact = [replace(d, box=(d.centre[0] - 6.8, 40.0, d.centre[0] + 8.2, 55.0)) for d in dets]
    assert rigid_boxes(exact, 160, 120) == exact  # boxes that already move with their centres: as rendered
    no_centre = [
        Detection(d.frame_idx, d.box, d.label, d.score, d.colour, d.shape, d.area_frac) for d in dets
    ]
    assert rigid_boxes(no_centre, 160, 120) == no_centre


def test_a_stop_is_found_on_grounded_tracks_through_h264(tmp_path) -> None:
    """A world clip (seed 4242, the agent benchmark's) where an orange triangle moving ~1 px/frame stops at frame
    13: through H.264 its box edges snapped to even pixels and the memory said it never stopped ("When does the
    orange triangle stop?" answered "never"); the memory of the grounded tracks now finds the stop within 2
    frames."""
    clip_index, colour, stop_frame = 15, "orange", 13
    from synth import generate_clip
    from synth.build import clip_seeds
    from synth.video_io import read_mp4, write_mp4

    clip = generate_clip(clip_seeds(4242, clip_index + 1)[clip_index])
    truth = [e.frame for o in clip.objects if o.colour == colour for e in o.events if e.kind == "stop"]
    assert any(abs(f - stop_frame) <= 1 for f in truth), truth  # the world's own event
    frames = read_mp4(write_mp4(clip, tmp_path / "clip.mp4"))
    targets = ground(ArrayVideo(frames, fps=clip.fps), "", settings=WORLD_GROUNDING)
    targets = [t.model_copy(update={"id": i}) for i, t in enumerate(targets)]
    memory = build_memory("clip", targets, num_frames=len(frames), fps=clip.fps, width=clip.width,
                          height=clip.height)  # fmt: skip
    stops = [e.frame for e in memory.events if e.kind == "stop" and targets[e.target_id].colour == colour]
    assert any(abs(f - stop_frame) <= 2 for f in stops), (stops, [t.label for t in targets])


def test_coverage_centre_of_an_object_on_its_own_colour_is_none() -> None:
    """An object whose colour the background has (no contrast to measure coverage by) has no centre, not a NaN;
    on a grey background the centre of a 1-pixel-offset square is exact."""
    from tools.grounding.offline import coverage_centre

    frame = np.full((40, 40, 3), 120, np.uint8)
    frame[10:21, 13:24] = (230, 40, 40)  # a red square, pixels x 13..23, y 10..20: centre (18.5, 15.5)
    labels = np.zeros((40, 40), np.int32)
    labels[10:21, 13:24] = 1
    assert coverage_centre(frame, labels, 1, (10, 21, 13, 24)) == pytest.approx((18.5, 15.5), abs=1e-6)
    red = np.full_like(frame, (230, 40, 40))
    assert coverage_centre(frame, labels, 1, (10, 21, 13, 24), background=red) == pytest.approx((18.5, 15.5))
    assert coverage_centre(red, labels, 1, (10, 21, 13, 24)) is None
