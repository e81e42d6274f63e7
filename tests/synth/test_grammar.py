"""Captions: generated from truth, parsed back exactly; sentences outside the grammar are refused."""

from __future__ import annotations

import numpy as np
import pytest

from synth.grammar import MotionPhrase, NounPhrase, caption_for, motion_phrases, parse_caption, render_caption
from synth.world import generate_clip


@pytest.fixture(scope="module")
def captions() -> list:
    rng = np.random.default_rng(123)
    out = []
    seed = 0
    while len(out) < 500:
        clip = generate_clip(seed)
        out += [(clip, o, caption_for(o, rng, clip)) for o in clip.objects]
        seed += 1
    return out


def test_parser_recovers_generated_captions(captions) -> None:
    recovered = sum(parse_caption(c.text) == c.content for _, _, c in captions)
    assert recovered / len(captions) >= 0.99
    for _, obj, cap in captions:
        parsed = parse_caption(cap.text)
        assert parsed is not None
        assert (parsed.colour, parsed.shape) == (obj.colour, obj.shape)
        assert parsed.size in (None, obj.size)


def test_captions_are_true_of_the_object(captions) -> None:
    for clip, obj, cap in captions:
        dirs = {s.direction for s in obj.segments if s.direction}
        for p in parse_caption(cap.text).motions:
            if p.verb in ("move", "start_moving"):
                assert p.direction in dirs
            if p.verb == "still":
                assert obj.segments[0].direction is None
            if p.verb in (
                "enter",
                "leave",
                "stop",
                "speed_up",
                "slow_down",
                "turn_back",
                "bounce",
                "collide",
            ):
                kind = "start_moving" if p.verb == "start_moving" else p.verb
                assert kind in {e.kind for e in obj.events}
            if p.verb == "collide":
                others = [clip.object(e.other) for e in obj.events if e.kind == "collide"]
                assert any((o.colour, o.shape) == (p.other.colour, p.other.shape) for o in others)


def test_wording_varies_but_content_is_fixed() -> None:
    clip = generate_clip(4)
    obj = clip.objects[0]
    texts = {caption_for(obj, np.random.default_rng(s), clip).text for s in range(30)}
    assert len(texts) > 10
    assert motion_phrases(obj, clip) == motion_phrases(obj, clip)


@pytest.mark.parametrize(
    "sentence",
    [
        "The red circle dances.",
        "The pink circle moves left.",
        "The red hexagon moves left.",
        "The red circle moves sideways.",
        "The red circle moves left and",
        "The red circle moves left and and stops.",
        "Red circle moves left.",
        "The red circle moves left..",
        "The red circle moves left and then it explodes.",
        "A dog runs across the park.",
        "",
        "Another object moves left.",
        "The huge red circle moves left.",
    ],
)
def test_parser_refuses_sentences_outside_the_grammar(sentence: str) -> None:
    assert parse_caption(sentence) is None


def test_parser_refuses_corrupted_generated_captions(captions) -> None:
    for _, _, cap in captions[:100]:
        assert parse_caption(cap.text[:-1] + " slowly sideways.") is None
        assert parse_caption(cap.text.replace(".", " and sings.")) is None
        words = cap.text[:-1].split()
        assert parse_caption(" ".join(words[:-1] + ["banana"]) + ".") is None


def test_handwritten_sentences_parse() -> None:
    p = parse_caption(
        "In this video, the big blue square moves quickly to the left, bounces off the left wall and stops."
    )
    assert p is not None
    assert p.subject == NounPhrase("square", "blue", "large")
    assert p.motions == (
        MotionPhrase("move", direction="left", speed="quickly"),
        MotionPhrase("bounce", side="left"),
        MotionPhrase("stop"),
    )
    assert parse_caption("the  RED circle moves left") == parse_caption("The red circle moves left.")
    q = parse_caption("A yellow star collides with the small red circle, then moves up and to the right.")
    assert q.motions[0] == MotionPhrase("collide", other=NounPhrase("circle", "red", "small"))
    assert q.motions[1] == MotionPhrase("move", direction="up-right")
    with pytest.raises(ValueError):
        render_caption(NounPhrase("circle", "red"), [], np.random.default_rng(0))
