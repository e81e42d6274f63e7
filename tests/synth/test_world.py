"""The synthetic world: determinism, truth consistent with pixels (raw and decoded mp4), motion truth."""

from __future__ import annotations

import numpy as np
import pytest

from synth import render
from synth.motion import DIRECTIONS
from synth.video_io import read_mp4, write_frames, write_mp4
from synth.world import generate_clip

SEEDS = range(12)


def test_same_seed_same_truth_and_frames() -> None:
    for seed in (0, 7, 123):
        a, b = generate_clip(seed), generate_clip(seed)
        assert a.truth_json().encode() == b.truth_json().encode()
        assert np.array_equal(a.frames, b.frames)


def test_different_seeds_differ() -> None:
    truths = {generate_clip(s).truth_json() for s in range(10)}
    assert len(truths) == 10
    assert not np.array_equal(generate_clip(1, num_frames=20).frames, generate_clip(2, num_frames=20).frames)


def test_arguments_are_honoured_and_checked() -> None:
    clip = generate_clip(5, num_objects=4, width=128, height=96, num_frames=25, background="textured")
    assert clip.frames.shape == (25, 96, 128, 3) and clip.frames.dtype == np.uint8
    assert len(clip.objects) == 4 and clip.background == "textured" and clip.texture != "none"
    assert len({o.name for o in clip.objects}) == 4  # full descriptions are unique
    with pytest.raises(ValueError, match="even"):
        generate_clip(0, width=127)
    with pytest.raises(ValueError, match="background"):
        generate_clip(0, background="stars")


def _isolated(clip, obj, t: int) -> bool:
    """The object's box overlaps no other object's box on frame t."""
    b = obj.boxes[t]
    for o in clip.objects:
        ob = o.boxes[t] if o.id != obj.id else None
        if ob is not None and min(b[2], ob[2]) > max(b[0], ob[0]) and min(b[3], ob[3]) > max(b[1], ob[1]):
            return False
    return True


def _check_pixels(clip, frames: np.ndarray, tol: float, slack: int) -> int:
    """Colour dominant inside each unoccluded box, absent outside (dilated by ``slack``) all its boxes."""
    checked = 0
    all_labels = render.nearest_palette(frames, tol)  # [T, H, W]
    for colour in {o.colour for o in clip.objects}:
        cm = all_labels == render.COLOURS.index(colour)  # [T, H, W]
        owners = [o for o in clip.objects if o.colour == colour]
        for t in range(clip.num_frames):
            allowed = np.zeros(cm.shape[1:], dtype=bool)
            for o in owners:
                b = o.boxes[t]
                if b is not None:
                    allowed[max(0, b[1] - slack) : b[3] + slack, max(0, b[0] - slack) : b[2] + slack] = True
            assert not (cm[t] & ~allowed).any(), f"seed {clip.seed} frame {t}: {colour} outside its boxes"
            for o in owners:
                b = o.boxes[t]
                if b is None or o.visible[t] < o.in_frame[t] or not _isolated(clip, o, t):
                    continue
                inside = cm[t, b[1] : b[3], b[0] : b[2]]
                shape_px = o.in_frame[t] * np.count_nonzero(render.shape_mask(o.shape, o.radius))
                assert inside.sum() >= (1.0 if slack == 0 else 0.7) * shape_px - 0.5
                labels = all_labels[t, b[1] : b[3], b[0] : b[2]]
                counts = np.bincount(labels[labels >= 0], minlength=len(render.COLOURS))
                assert counts.argmax() == render.COLOURS.index(colour)
                if slack == 0:  # the box is the tight box of the colour
                    ys, xs = np.nonzero(inside)
                    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (
                        0,
                        0,
                        b[2] - b[0],
                        b[3] - b[1],
                    )
                checked += 1
    return checked


def test_truth_matches_raw_pixels() -> None:
    clips = [generate_clip(s) for s in SEEDS]
    checked = sum(_check_pixels(c, c.frames, tol=0, slack=0) for c in clips)
    assert checked > 300


def test_truth_matches_decoded_mp4_and_frame_folders(tmp_path) -> None:
    checked = 0
    for s in range(6):
        clip = generate_clip(s)
        decoded = read_mp4(write_mp4(clip, tmp_path / f"{s}.mp4"))
        assert decoded.shape == clip.frames.shape
        checked += _check_pixels(clip, decoded, tol=70, slack=2)
    assert checked > 100
    clip = generate_clip(3)
    names = write_frames(clip, tmp_path / "frames", ext="png")
    from PIL import Image

    assert len(names) == clip.num_frames
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frames" / names[4])), clip.frames[4])


def test_box_visibility_and_segments_are_consistent() -> None:
    for s in range(40):
        clip = generate_clip(s)
        for o in clip.objects:
            for t, b in enumerate(o.boxes):
                assert (b is None) == (o.visible[t] == 0.0)
                if b is not None:
                    assert 0 <= b[0] < b[2] <= clip.width and 0 <= b[1] < b[3] <= clip.height
                assert 0.0 <= o.visible[t] <= o.in_frame[t] <= 1.0
            segs = o.segments
            assert segs[0].start == 0 and segs[-1].end == clip.num_frames - 1
            c = np.asarray(o.centres)
            for a, b in zip(segs[:-1], segs[1:], strict=True):
                assert a.end == b.start
            for seg in segs:
                step = (c[seg.end] - c[seg.start]) / (seg.end - seg.start)
                if seg.direction is None:
                    assert np.allclose(step, 0)
                else:
                    assert np.allclose(step / np.linalg.norm(step), DIRECTIONS[seg.direction], atol=1e-6)
                    assert np.isclose(np.linalg.norm(step), seg.speed, atol=1e-3)


def test_interactions_and_edge_events_are_true() -> None:
    seen = set()
    for s in range(60):
        clip = generate_clip(s)
        for inter in clip.interactions:
            seen.add(inter["kind"])
            if inter["kind"] == "collide":
                a, b = clip.object(inter["a"]), clip.object(inter["b"])
                ta = [e.frame for e in a.events if e.kind == "collide" and e.other == b.id]
                tb = [e.frame for e in b.events if e.kind == "collide" and e.other == a.id]
                assert ta and ta == tb
                ca, cb = np.asarray(a.centres), np.asarray(b.centres)
                gap = np.linalg.norm(ca - cb, axis=1)
                assert gap[ta[0] + 2] > gap[ta[0]]  # they move apart after colliding
            else:
                f, ld = clip.object(inter["follower"]), clip.object(inter["leader"])
                lag = inter["lag"]
                assert np.allclose(np.asarray(f.centres)[lag:], np.asarray(ld.centres)[:-lag])
        for o in clip.objects:
            kinds = {e.kind for e in o.events}
            if "enter" in kinds:
                seen.add("enter")
                assert o.in_frame[0] < 1.0 and max(o.in_frame) == 1.0
            if "leave" in kinds:
                seen.add("leave")
                assert o.in_frame[-1] == 0.0 and o.boxes[-1] is None
            if o.behaviour == "bounce":
                assert "bounce" in kinds
    assert seen >= {"collide", "follow", "enter", "leave"}


def test_backgrounds_hold_no_object_colour() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        for kind in render.BACKGROUNDS:
            bg, _ = render.make_background(kind, 64, 48, rng)
            assert (render.nearest_palette(bg, tol=70) == -1).all()


def test_occlusion_is_reported_and_matches_pixels() -> None:
    occluded = 0
    for s in range(30):
        clip = generate_clip(s)
        for o in clip.objects:
            area = np.count_nonzero(render.shape_mask(o.shape, o.radius))
            for t, b in enumerate(o.boxes):
                if b is None or o.visible[t] >= o.in_frame[t]:
                    continue
                occluded += 1
                box = clip.frames[t, b[1] : b[3], b[0] : b[2]]
                own = np.all(box == np.array(o.rgb, dtype=np.uint8), axis=-1).sum()
                assert own >= round(o.visible[t] * area)  # at least its visible pixels show its colour
    assert occluded > 20


def test_the_same_clip_encodes_to_the_same_video(tmp_path) -> None:
    """The world's MP4s are reproducible: the issue's benchmark set, written twice from one seed, held 7 of 93
    videos with different bytes, 4 with different frames (x264's macroblock-tree rate control), and the agent
    answered 7 turns differently."""
    from synth.build import clip_seeds

    for k in (54, 78, 11):  # clips of seed 31337 that came out differently
        clip = generate_clip(clip_seeds(31337, 80)[k])
        encoded = {write_mp4(clip, tmp_path / f"{k}_{i}.mp4").read_bytes() for i in range(4)}
        assert len(encoded) == 1, k
