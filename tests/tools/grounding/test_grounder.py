from __future__ import annotations

import numpy as np
import pytest

from artemis_model.types import box_iou
from tests.clipgen import Obj, draw, make_clip, random_scene, write_mp4
from tools.grounding import Detection, ground, link_detections, new_track_cache, sample_indices
from tools.grounding.backends import WORLD_GROUNDING
from tools.grounding.offline import hue_name, name_region
from tools.grounding.query import parse_query
from tools.grounding.shapes import shape_name
from tools.video import ArrayVideo


def track_iou(pred_boxes, truth_boxes) -> float:
    """Mean per-frame IoU over the frames where the truth is visible (0 where the prediction is missing)."""
    frames = [f for f, b in enumerate(truth_boxes) if b is not None]
    return float(np.mean([box_iou(pred_boxes[f], truth_boxes[f]) if pred_boxes[f] else 0.0 for f in frames]))


def precision_recall(cases) -> tuple[float, float, int, int, int]:
    """cases: (predicted targets, truth box lists). A prediction matches an unused truth at track IoU >= 0.5."""
    tp = fp = fn = 0
    for preds, truths in cases:
        used: set[int] = set()
        for p in preds:
            scores = [(track_iou(p.boxes, t), k) for k, t in enumerate(truths) if k not in used]
            best = max(scores, default=(0.0, -1))
            if best[0] >= 0.5:
                tp += 1
                used.add(best[1])
            else:
                fp += 1
        fn += len(truths) - len(used)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn


def test_parse_query_reads_colour_shape_size_and_plural():
    q = parse_query("What do the red objects do?")
    assert q.colours == ("red",) and q.shapes == () and q.plural
    q = parse_query("the circle")
    assert q.shapes == ("circle",) and not q.plural
    q = parse_query("all squares and the big grey star")
    assert set(q.shapes) == {"square", "star"} and q.colours == ("gray",) and q.size == "large" and q.plural
    assert parse_query("the face").category == "face"
    assert parse_query("the people walking").category == "person"


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star"])
def test_shape_name_on_drawn_masks(shape):
    rng = np.random.default_rng(1)
    for _ in range(40):
        img = np.zeros((80, 80, 3), np.uint8)
        mask = draw(img, Obj("red", shape, (0, 0), (0, 0), radius=float(rng.uniform(7, 22))), 40.3, 39.6)
        assert shape_name(np.pad(mask.astype(bool), 2))[0] == shape


def test_hue_names_of_primary_colours():
    import cv2

    for name, rgb in {"red": (220, 30, 30), "green": (30, 190, 50), "blue": (30, 70, 230)}.items():
        hue = cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2HSV)[0, 0, 0]
        assert hue_name(float(hue)) == name


def test_link_detections_follows_two_crossing_colours():
    def det(f, x, colour):
        return Detection(f, (x, 10.0, x + 10, 20.0), colour, 1.0, colour=colour, shape="square")

    per_frame = [[det(f, 5 + 4 * f, "red"), det(f, 60 - 4 * f, "blue")] for f in range(10)]
    tracks = link_detections(per_frame, key=lambda d: d.colour)
    assert sorted(len(t) for t in tracks) == [10, 10]
    assert all(len({d.colour for d in t}) == 1 for t in tracks)


def test_sample_indices_cover_first_and_last():
    idx = sample_indices(100, 10)
    assert idx[0] == 0 and idx[-1] == 99 and len(idx) == 10
    assert sample_indices(5, 10) == [0, 1, 2, 3, 4]


def test_plural_query_returns_every_red_object(two_reds_mp4, two_reds_clip):
    targets = ground(two_reds_mp4, "the red objects", settings=WORLD_GROUNDING)
    assert sorted(t.shape for t in targets) == ["circle", "square"]
    for t in targets:
        k = 0 if t.shape == "circle" else 1
        assert track_iou(t.boxes, two_reds_clip.boxes[k]) >= 0.5
        assert t.span == (0, 15) and 0 < t.score <= 1 and t.colour == "red"


def test_singular_shape_query_and_size_word():
    clip = make_clip(
        [
            Obj("green", "circle", (30, 30), (60, 30), radius=8),
            Obj("green", "circle", (120, 90), (90, 90), radius=16),
        ]
    )
    video, cache = ArrayVideo(clip.frames), new_track_cache()
    assert len(ground(video, "the circle", cache=cache, settings=WORLD_GROUNDING)) == 2
    big = ground(video, "the big circle", cache=cache, settings=WORLD_GROUNDING)
    assert len(big) == 1 and track_iou(big[0].boxes, clip.boxes[1]) >= 0.5
    small = ground(video, "the small circle", cache=cache, settings=WORLD_GROUNDING)
    assert len(small) == 1 and track_iou(small[0].boxes, clip.boxes[0]) >= 0.5
    assert ground(video, "the purple star", cache=cache, settings=WORLD_GROUNDING) == []


def test_grounding_precision_recall_on_generated_clips(tmp_path):
    """Colour+shape queries on 12 random clips (half textured, a third through H.264): P and R at IoU 0.5."""
    cases, cache = [], new_track_cache()
    for seed in range(12):
        clip = random_scene(seed, textured=seed % 2 == 1)
        video = write_mp4(clip.frames, tmp_path / f"{seed}.mp4") if seed % 3 == 0 else ArrayVideo(clip.frames)
        for colour, shape in sorted({(o.colour, o.shape) for o in clip.objects}):
            truths = [
                clip.boxes[k] for k, o in enumerate(clip.objects) if (o.colour, o.shape) == (colour, shape)
            ]
            cases.append(
                (ground(video, f"the {colour} {shape}", cache=cache, settings=WORLD_GROUNDING), truths)
            )
    precision, recall, tp, fp, fn = precision_recall(cases)
    print(f"\ngenerated clips: precision {precision:.3f} recall {recall:.3f} (tp {tp} fp {fp} fn {fn})")
    assert precision >= 0.9 and recall >= 0.9


def test_grounding_precision_recall_on_synth_world():
    """The synthetic world's clips (occlusions, entries/exits, textures): P and R at IoU 0.5."""
    world = pytest.importorskip("synth.world")
    cases, cache = [], new_track_cache()
    for seed in range(12):
        clip = world.generate_clip(seed)
        video = ArrayVideo(clip.frames, fps=clip.fps)
        for colour, shape in sorted({(o.colour, o.shape) for o in clip.objects}):
            objs = [o for o in clip.objects if (o.colour, o.shape) == (colour, shape)]
            truths = [
                [b if b is not None and o.visible[f] > 0.5 else None for f, b in enumerate(o.boxes)]
                for o in objs
            ]
            cases.append(
                (ground(video, f"the {colour} {shape}", cache=cache, settings=WORLD_GROUNDING), truths)
            )
    precision, recall, tp, fp, fn = precision_recall(cases)
    print(f"\nsynth world: precision {precision:.3f} recall {recall:.3f} (tp {tp} fp {fp} fn {fn})")
    assert precision >= 0.8 and recall >= 0.8


def test_face_query_uses_the_haar_detector():
    skdata = pytest.importorskip("skimage.data")
    import cv2

    img = cv2.resize(skdata.astronaut(), (256, 256))
    video = ArrayVideo(np.repeat(img[None], 4, axis=0))
    faces = ground(video, "the face", settings=WORLD_GROUNDING)
    assert len(faces) >= 1 and faces[0].label == "face"
    x1, y1, x2, y2 = faces[0].boxes[0]
    assert 60 < (x1 + x2) / 2 < 200 and 20 < (y1 + y2) / 2 < 140  # the astronaut's face is upper-centre


def test_name_region_reads_colour_and_shape(two_reds_clip):
    frame = two_reds_clip.frames[0]
    assert name_region(frame, two_reds_clip.boxes[0][0]) == ("red", "circle")
    assert name_region(frame, two_reds_clip.boxes[2][0]) == ("blue", "star")
