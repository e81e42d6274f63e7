"""What a caption claims (tools.claims): oracle = the synthetic world's strict caption parser on random captions
of every phrase template; plain-English captions of real footage by hand."""

from __future__ import annotations

import numpy as np
import pytest

from synth.grammar import SIDES, VERBS, MotionPhrase, NounPhrase, parse_caption, render_caption
from synth.motion_truth import primary_motion
from synth.render import COLOURS, SHAPES
from tools.claims import caption_claims, disagreements, first_motion_claim

DIRECTIONS = ("right", "left", "up", "down", "up-right", "up-left", "down-right", "down-left")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _noun(rng: np.random.Generator) -> NounPhrase:
    return NounPhrase(_pick(rng, SHAPES), _pick(rng, COLOURS), _pick(rng, ("small", "large", None)))


def _phrase(rng: np.random.Generator) -> MotionPhrase:
    verb = _pick(rng, VERBS)
    kw = {}
    if verb in ("move", "start_moving"):
        kw = {"direction": _pick(rng, DIRECTIONS), "speed": _pick(rng, (None, "quickly", "slowly"))}
    elif verb in ("enter", "leave"):
        kw = {"side": _pick(rng, SIDES)}
    elif verb == "bounce":
        kw = {"side": _pick(rng, (*SIDES, None))}
    elif verb in ("collide", "follow", "followed_by"):
        kw = {"other": _noun(rng)}
    return MotionPhrase(verb, **kw)


def test_claims_of_world_captions_are_what_the_strict_parser_reads() -> None:
    """Subject colour and shape and the first motion (the world's primary motion) of 3000 random captions:
    every template of every verb, other objects named in later phrases, all openers and connectors."""
    rng = np.random.default_rng(0)
    for _ in range(3000):
        text = render_caption(_noun(rng), [_phrase(rng) for _ in range(int(rng.integers(1, 5)))], rng).text
        parsed = parse_caption(text)
        claims = caption_claims(text)
        assert (claims.colours, claims.shapes) == ((parsed.colour,), (parsed.shape,)), text
        assert claims.first_motion == primary_motion(parsed.motions), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The man walks to the left, then stops.", "move:left"),
        ("A white car is parked and does not move.", "still"),
        ("The dog runs towards the right side of the frame.", "move:right"),
        ("The person is still walking up the stairs.", "move:up"),  # "still" as "yet", not stillness
        ("The ball speeds up and bounces off the top wall.", None),  # a speed change's "up" is no direction
        ("A cyclist comes into view from the right and rides left.", "enter:right"),
        ("The woman stands still, then starts walking down the road.", "still"),
        ("The bus drives down and to the left.", "move:down-left"),
    ],
)
def test_first_motion_of_plain_english_captions(text: str, expected: str | None) -> None:
    assert first_motion_claim(text) == expected


def test_disagreements_name_what_contradicts_and_ignore_what_is_not_said() -> None:
    star = caption_claims("In the video, the little purple star moves down quickly.")
    assert disagreements(star, "purple circle", "move:down") == ["says star, grounding found circle"]
    assert disagreements(star, "purple star", "move:up") == ["first says move:down, the track shows move:up"]
    assert disagreements(star, "purple star", None) == []  # the track's first motion unknown
    assert (
        disagreements(star, "purple star", ("move:down-left", "move:down")) == []
    )  # near a boundary: either
    assert disagreements(star, "purple star", ("move:up", "move:up-left")) == [
        "first says move:down, the track shows move:up or move:up-left"
    ]
    assert disagreements(star, "object", "move:down") == []  # the label names no shape
    man = caption_claims("The man walks to the left.")
    assert man.category == "person"
    assert disagreements(man, "person", "move:left") == []  # "man" is a person
    assert (
        disagreements(man, "car", "move:left") == []
    )  # no colour or person/shape word to compare with a car
    assert disagreements(caption_claims("The red car moves right."), "blue car", None) == [
        "says red, grounding found blue"
    ]
