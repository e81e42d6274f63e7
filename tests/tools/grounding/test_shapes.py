"""Shape naming robust to H.264: smoothed chroma masks, prototype features, per-track votes, partial flags."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from artemis_model.types import box_iou
from tests.clipgen import Obj, draw, make_clip, write_mp4
from tools.grounding import Detection, ground, new_track_cache, vote_shape
from tools.grounding.backends import WORLD_GROUNDING
from tools.grounding.offline import OfflineBackend
from tools.grounding.query import parse_query
from tools.grounding.shapes import label_objects, shape_features, shape_name, smooth_chroma_mask
from tools.video import load_video

SMALL = [  # small objects (16-18 px across), the ones H.264's 2x2 chroma blocks used to turn into circles
    Obj("red", "star", (20, 20), (60, 30), radius=9),
    Obj("blue", "triangle", (140, 25), (100, 35), radius=9),
    Obj("green", "circle", (25, 95), (70, 90), radius=8),
    Obj("yellow", "square", (135, 95), (95, 85), radius=7),
    Obj("purple", "star", (80, 60), (80, 40), radius=8),
]


def _mean_iou(pred, truth) -> float:
    return float(np.mean([box_iou(p, t) if p is not None else 0.0 for p, t in zip(pred, truth, strict=True)]))


@pytest.mark.parametrize("textured", [False, True])
def test_small_shapes_survive_h264(tmp_path, textured):
    """Every small object is found by its colour and shape through H.264 (crf 18, yuv420p), one target each."""
    clip = make_clip(SMALL, num_frames=12, textured=textured, seed=3)
    video, cache = load_video(write_mp4(clip.frames, tmp_path / "small.mp4")), new_track_cache()
    for k, obj in enumerate(SMALL):
        found = ground(video, f"the {obj.colour} {obj.shape}", cache=cache, settings=WORLD_GROUNDING)
        assert len(found) == 1, (
            obj,
            [
                t.label
                for t in ground(video, f"the {obj.colour} objects", cache=cache, settings=WORLD_GROUNDING)
            ],
        )
        assert _mean_iou(found[0].boxes, clip.boxes[k]) >= 0.5


@pytest.mark.parametrize("textured", [False, True])
def test_per_frame_names_on_decoded_small_shapes(tmp_path, textured):
    """Per frame (before any vote), >= 95% of the small objects' detections carry the right shape."""
    clip = make_clip(SMALL, num_frames=12, textured=textured, seed=5)
    video = load_video(write_mp4(clip.frames, tmp_path / "s.mp4"))
    frames = video.get_frames(range(video.num_frames))
    per_frame = OfflineBackend().detect(frames, list(range(len(frames))), parse_query("the objects"))
    right = total = 0
    for t, dets in enumerate(per_frame):
        for k, obj in enumerate(SMALL):
            hits = [d for d in dets if d.colour == obj.colour and box_iou(d.box, clip.boxes[k][t]) >= 0.5]
            total += 1
            right += bool(hits) and hits[0].shape == obj.shape
    assert right >= 0.95 * total, (right, total)


def test_object_queries_on_h264_synth_world(tmp_path):
    """The synthetic world's clips through H.264 (as ``artemis data synth`` writes them): object queries
    ("the <colour> <shape>") keep recall and precision >= 0.85 (per-frame naming used to give ~0.75)."""
    from evals.tools_eval import ToolCase, evaluate_tools, generated_cases
    from synth.video_io import write_mp4 as write_world_mp4

    cases = []
    for case in generated_cases(16, seed=11, num_frames=16):
        frames = case.video.get_frames(range(case.video.num_frames))
        path = write_world_mp4(frames, tmp_path / f"{case.name}.mp4")
        cases.append(ToolCase(case.name, load_video(path), case.objects))
    m = evaluate_tools(cases, tracking=False)
    obj = m.grounding.by_kind["object"]
    assert obj["mean_recall"] >= 0.85 and obj["mean_precision"] >= 0.85, m.to_markdown()


def test_objects_joined_by_a_thin_bridge_stay_apart_and_keep_their_tips():
    """Two squares joined by a 1-px line (one blob) are two objects; a small star's tips, which the opening
    cuts, grow back; specks go."""
    mask = np.zeros((40, 70), bool)
    mask[10:26, 5:21] = mask[10:26, 40:56] = True
    mask[17, 21:40] = True  # the bridge
    mask[35, 65] = True  # a speck
    n, labels = label_objects(mask)
    assert n - 1 == 2 and labels[35, 65] == 0 and 0 < labels[12, 7] != labels[12, 50] > 0
    assert labels[17, 21] == labels[12, 7] and labels[17, 39] == labels[12, 50]  # bridge ends grow back
    frame = np.zeros((40, 40, 3), np.uint8)
    star = draw(frame, Obj("red", "star", (0, 0), (0, 0), radius=9), 20, 20).astype(bool)
    _, star_labels = label_objects(star)
    opened = cv2.morphologyEx(star.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    assert (star_labels > 0).sum() > opened.sum() and (star_labels > 0).sum() >= 0.95 * star.sum()
    assert shape_name(star_labels > 0)[0] == "star"


def test_smoothing_keeps_objects_and_drops_specks():
    """Discs (exact or seen through 2x2 blocks, as yuv420p chroma) stay; single pixels and 1-px lines go."""
    disc = np.zeros((41, 39), np.uint8)  # odd sizes on purpose
    cv2.circle(disc, (19, 21), 9, 1, -1)
    disc = disc.astype(bool)
    blocks = np.pad(disc, ((0, 1), (0, 1))).reshape(21, 2, 20, 2).mean(axis=(1, 3)) >= 0.5  # -> [21, 20]
    blocky = blocks.repeat(2, axis=0).repeat(2, axis=1)[:41, :39]  # nearest upsampling, like decoded chroma

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    for mask in (disc, blocky):
        smooth = smooth_chroma_mask(mask)
        assert smooth.shape == mask.shape and iou(smooth, disc) > 0.85
    specks = np.zeros((40, 40), bool)
    specks[5, 5] = specks[30, 8] = True
    specks[20, 10:30] = True
    assert not smooth_chroma_mask(specks).any()


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star"])
def test_shape_name_on_rotated_and_blocky_masks(shape):
    """Rotation-invariant features; blocky (half-resolution) masks after smoothing keep their names."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        r = float(rng.uniform(9, 20))
        img = np.zeros((64, 64, 3), np.uint8)
        mask = draw(img, Obj("red", shape, (0, 0), (0, 0), radius=r), 32.0, 32.0).astype(np.uint8)
        angle = float(rng.uniform(0, 360))
        rot = cv2.getRotationMatrix2D((32.0, 32.0), angle, 1.0)
        rotated = cv2.warpAffine(mask, rot, (64, 64), flags=cv2.INTER_NEAREST).astype(bool)
        assert shape_name(rotated)[0] == shape, (r, angle)
        blocks = rotated.reshape(32, 2, 32, 2).mean(axis=(1, 3)) >= 0.5  # [64, 64] -> [32, 32]
        blocky = blocks.repeat(2, axis=0).repeat(2, axis=1)
        assert shape_name(smooth_chroma_mask(blocky))[0] == shape, (r, angle)


def test_tiny_and_empty_masks_are_blobs():
    assert shape_name(np.zeros((10, 10), bool)) == ("blob", 0.0)
    tiny = np.zeros((10, 10), bool)
    tiny[4:7, 4:7] = True
    assert shape_name(tiny) == ("blob", 0.0)
    square = np.zeros((30, 30), bool)
    square[5:25, 5:25] = True
    feats = shape_features(square)
    assert feats is not None and feats.solidity == 1.0 and feats.extent > 0.9 and feats.aspect == 1.0


def _det(shape: str, score: float, partial: bool = False, area: float = 0.01) -> Detection:
    box = (0.0, 0.0, 1.0, 1.0)
    return Detection(0, box, shape, 1.0, shape=shape, area_frac=area, shape_score=score, partial=partial)


def test_vote_weighs_confidence_and_skips_partial_frames():
    assert vote_shape([_det("star", 0.9), _det("circle", 0.2), _det("circle", 0.2)]) == "star"
    assert (
        vote_shape([_det("star", 0.1), _det("circle", 0.9, partial=True), _det("circle", 0.9, True)])
        == "star"
    )
    assert (
        vote_shape([_det("circle", 0.3, True), _det("star", 0.1, True)]) == "circle"
    )  # all partial: all vote
    assert vote_shape([_det("square", 0.0), _det("square", 0.0), _det("star", 0.0)]) == "square"
    # never whole (leaving the frame): the frames showing more of it count more
    leaving = [
        _det("circle", 0.8, True, area=0.02),
        _det("triangle", 0.3, True, 0.008),
        _det("star", 0.3, True, 0.006),
    ]
    assert vote_shape(leaving) == "circle"
    # a circle coming out from behind another object: many 70 %-visible views look like stars, three fuller ones
    # are circles; the share seen counts squared (star 10 x 0.3 x 0.49 = 1.47 < circle 3 x 0.6 = 1.8; linear
    # weights gave the star 2.1)
    hidden = [_det("star", 0.3, True, area=0.007)] * 10 + [_det("circle", 0.6, True, area=0.01)] * 3
    assert vote_shape(hidden) == "circle"


def test_partial_flags_border_and_touching_objects():
    frame = np.full((60, 80, 3), 120, np.uint8)
    draw(frame, Obj("red", "square", (0, 0), (0, 0), radius=6), 20, 20)
    draw(frame, Obj("blue", "circle", (0, 0), (0, 0), radius=6), 33, 20)  # touches the red square
    draw(frame, Obj("green", "circle", (0, 0), (0, 0), radius=7), 3, 45)  # cut by the left border
    draw(frame, Obj("yellow", "triangle", (0, 0), (0, 0), radius=9), 60, 40)  # alone
    dets = OfflineBackend(achromatic=False).detect(frame[None], [0], parse_query("the objects"))[0]
    partial = {d.colour: d.partial for d in dets}
    assert partial == {"red": True, "blue": True, "green": True, "yellow": False}


@pytest.mark.parametrize(("h264", "at_least"), [(False, 0.95), (True, 0.85)])
def test_boxes_keep_the_tips_of_stars_and_triangles(tmp_path, h264, at_least):
    """The box of a detection covers its object's one-pixel tips (the smoothed mask drops them): per shape, the
    median IoU with the world's true box is >= 0.95 on the world's frames as generated (before: stars 0.77,
    triangles 0.88, circles 0.89) and >= 0.85 through H.264 (crf 12, as ``artemis data synth`` writes them)."""
    from evals.tools_eval import generated_cases
    from synth.video_io import write_mp4 as write_world_mp4

    ious: dict[str, list[float]] = {}
    for case in generated_cases(6, seed=21, num_frames=8):
        frames = case.video.get_frames(range(case.video.num_frames))
        if h264:
            decoded = load_video(write_world_mp4(frames, tmp_path / f"{case.name}.mp4"))
            frames = decoded.get_frames(range(decoded.num_frames))
        per_frame = OfflineBackend().detect(frames, list(range(len(frames))), parse_query("the objects"))
        for t, dets in enumerate(per_frame):
            for obj in case.objects:
                if obj.boxes[t] is not None and dets:
                    best = max(box_iou(d.box, obj.boxes[t]) for d in dets)
                    if best >= 0.3:
                        ious.setdefault(obj.shape, []).append(best)
    assert set(ious) == {"circle", "square", "triangle", "star"}, sorted(ious)
    medians = {shape: float(np.median(v)) for shape, v in ious.items()}
    assert min(medians.values()) >= at_least, medians


def test_an_entering_object_is_found_while_only_its_tip_shows():
    """A star entering from the left edge: its track starts on the first frame that shows three pixels of it or
    more (a tip smaller than the smallest object kept inside the frame), earlier than with no border allowance,
    and every box matches the visible part."""
    star = Obj("red", "star", (-8.0, 60.0), (40.0, 60.0), radius=9)
    clip = make_clip([star], num_frames=25, seed=2)
    frames, idx = clip.frames, list(range(25))
    widths = [b[2] - b[0] if b is not None else 0 for b in clip.boxes[0]]
    first = next(t for t, w in enumerate(widths) if w >= 3)

    def first_found(backend: OfflineBackend) -> int:
        per_frame = backend.detect(frames, idx, parse_query("the objects"))
        found = [t for t, dets in enumerate(per_frame) if any(d.colour == "red" for d in dets)]
        for t in found:
            best = max(box_iou(d.box, clip.boxes[0][t]) for d in per_frame[t] if d.colour == "red")
            assert best >= 0.5, (t, best)
        return found[0]

    assert first_found(OfflineBackend()) <= first + 1
    assert first_found(OfflineBackend(border_area_factor=1.0)) > first_found(OfflineBackend())
