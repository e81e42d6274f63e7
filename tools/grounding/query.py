"""Parse a referring phrase ("the red objects", "all squares", "the big circle") into attributes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from tools.grounding.vocabulary import GENERIC_PLURALS, GENERIC_SINGULARS, OBJECT_NOUNS, PLURAL_NOUNS

COLOURS: dict[str, str] = {
    "red": "red",
    "crimson": "red",
    "scarlet": "red",
    "orange": "orange",
    "yellow": "yellow",
    "gold": "yellow",
    "golden": "yellow",
    "green": "green",
    "lime": "green",
    "cyan": "cyan",
    "teal": "cyan",
    "turquoise": "cyan",
    "blue": "blue",
    "navy": "blue",
    "purple": "purple",
    "violet": "purple",
    "magenta": "pink",
    "pink": "pink",
    "white": "white",
    "black": "black",
    "gray": "gray",
    "grey": "gray",
}
SHAPES: dict[str, str] = {
    "circle": "circle",
    "circles": "circle",
    "disc": "circle",
    "discs": "circle",
    "disk": "circle",
    "disks": "circle",
    "ball": "circle",
    "balls": "circle",
    "dot": "circle",
    "dots": "circle",
    "square": "square",
    "squares": "square",
    "box": "square",
    "boxes": "square",
    "rectangle": "rectangle",
    "rectangles": "rectangle",
    "triangle": "triangle",
    "triangles": "triangle",
    "star": "star",
    "stars": "star",
}
PEOPLE: dict[str, str] = {
    "person": "person",
    "people": "person",
    "persons": "person",
    "man": "person",
    "men": "person",
    "woman": "person",
    "women": "person",
    "pedestrian": "person",
    "pedestrians": "person",
    "human": "person",
    "humans": "person",
    "face": "face",
    "faces": "face",
}
SIZES: dict[str, str] = {
    "big": "large",
    "bigger": "large",
    "biggest": "large",
    "large": "large",
    "larger": "large",
    "largest": "large",
    "huge": "large",
    "small": "small",
    "smaller": "small",
    "smallest": "small",
    "little": "small",
    "tiny": "small",
    "medium": "medium",
}
QUANTIFIERS = {"all", "both", "every", "each", "two", "three", "four", "these", "those"}
PLURAL_SHAPES = {w for w, s in SHAPES.items() if w != s and w.endswith("s")} | {"people", "men", "women"}
PLURAL_SHAPES |= {w for w in PEOPLE if w.endswith("s")} | PLURAL_NOUNS

_WORD = re.compile(r"[a-z]+")


class ParsedQuery(BaseModel):
    """The attributes a phrase asks for; ``None`` means "any"."""

    model_config = ConfigDict(frozen=True)

    text: str
    colours: tuple[str, ...] = ()
    shapes: tuple[str, ...] = ()
    category: str | None = None
    """'person' or 'face' for the people detectors, None for coloured shapes."""
    size: str | None = None
    plural: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.colours or self.shapes or self.category or self.size)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def parse_query(text: str) -> ParsedQuery:
    """Read colour, shape, size, person/face words and plurality from ``text``."""
    toks = words(text)
    colours = tuple(dict.fromkeys(COLOURS[t] for t in toks if t in COLOURS))
    shapes = tuple(dict.fromkeys(SHAPES[t] for t in toks if t in SHAPES))
    category = next((PEOPLE[t] for t in toks if t in PEOPLE), None)
    size = next((SIZES[t] for t in toks if t in SIZES), None)
    plural = any(t in PLURAL_SHAPES or t in GENERIC_PLURALS or t in QUANTIFIERS for t in toks)
    if "each" in toks and not any(t in GENERIC_PLURALS or t in PLURAL_SHAPES for t in toks):
        plural = True
    return ParsedQuery(text=text, colours=colours, shapes=shapes, category=category, size=size, plural=plural)


def mentioned_colours(text: str) -> set[str]:
    return {COLOURS[t] for t in words(text) if t in COLOURS}


def mentioned_shapes(text: str) -> set[str]:
    return {SHAPES[t] for t in words(text) if t in SHAPES}


# ------------------------------------------------------------------------------------ referring phrases
DETERMINERS = {"the", "a", "an", "this", "these", "those"}
POSITIVE_SIZES = {w for w in SIZES if not w.endswith(("er", "est"))}
RELATION_WORDS = {
    "follow", "follows", "following", "followed",
    "chase", "chases", "chasing", "chased",
    "trail", "trails", "trailing", "trailed",
    "collide", "collides", "colliding", "collided",
    "bump", "bumps", "bumping", "bumped",
    "crash", "crashes", "crashing", "crashed",
    "hit", "hits", "hitting", "meet", "meets", "meeting", "touch", "touches", "touching",
    "near", "behind", "beside", "next", "toward", "towards", "from", "above", "below", "under", "over",
    "past", "around", "passes", "passing",
}  # fmt: skip
"""Words that make the phrase after them a landmark of the one before ("the circle that follows the star")."""
COORDINATORS = {"and", "or", "nor"}
_HEADS = set(SHAPES) | set(PEOPLE) | GENERIC_PLURALS | GENERIC_SINGULARS | (OBJECT_NOUNS - set(COLOURS))
_NP_WORDS = DETERMINERS | QUANTIFIERS | set(SIZES) | set(COLOURS) | _HEADS


def referring_phrases(text: str, *, landmarks: bool = False) -> list[str]:
    """The noun phrases of ``text`` that name objects: ``"Which is faster, the red circle or the big square?"``
    -> ``["the red circle", "the big square"]``.

    A phrase is a run of determiners, quantifiers, sizes, colours and a head noun (a shape, person, face or
    "object"/"one"...) that names a colour, a shape, a person or face, or a plain size ("the big one").
    "the red and blue circles" gives "the red circles" and "blue circles". Phrases after a relation word
    ("follows", "near", "collides with"...) are landmarks of an earlier phrase and left out unless
    ``landmarks`` (or unless no other phrase is left).
    """
    toks = _TOKEN.findall(text.lower())
    runs: list[_Run] = []
    current: list[str] = []
    start, related = 0, False
    for i, tok in enumerate(toks):
        starts_new = bool(current) and (
            current[-1] in _HEADS or (tok in DETERMINERS | QUANTIFIERS and current[-1] not in QUANTIFIERS)
        )
        if tok in _NP_WORDS and not starts_new:
            current.append(tok)
            continue
        if current:
            runs.append(_Run(current, start, i, related))
            related = False
        current, start = ([tok], i) if tok in _NP_WORDS else ([], i + 1)
        related = related or tok in RELATION_WORDS
    if current:
        runs.append(_Run(current, start, len(toks), related))
    for a, b in reversed(
        list(zip(runs, runs[1:], strict=False))
    ):  # right to left: "red, green and blue stars"
        between = set(toks[a.end : b.start])
        joined = between and between <= COORDINATORS | {","}
        if joined and a.words[-1] not in _HEADS and b.words[-1] in _HEADS and _has_adjective(a.words):
            a.words.append(b.words[-1])
    kept = [r for r in runs if _names_something(r.words)]
    out = [" ".join(r.words) for r in kept if landmarks or not r.related]
    return out or [" ".join(r.words) for r in kept]


_TOKEN = re.compile(r"[a-z]+|[,;:?.!]")


@dataclass
class _Run:
    words: list[str]
    start: int
    end: int
    related: bool


def _has_adjective(run: list[str]) -> bool:
    return any(t in COLOURS or t in POSITIVE_SIZES for t in run)


def _names_something(run: list[str]) -> bool:
    if any(t in COLOURS or t in SHAPES or t in PEOPLE or t in OBJECT_NOUNS for t in run):
        return True
    return any(t in POSITIVE_SIZES for t in run) and run[-1] in GENERIC_SINGULARS | GENERIC_PLURALS


NOT_OBJECTS = {
    "video", "videos", "clip", "clips", "scene", "scenes", "frame", "frames", "camera", "shot", "shots",
    "picture", "image", "screen", "background", "foreground", "end", "start", "beginning", "middle", "moment",
    "time", "way", "same", "other", "others", "rest", "first", "second", "third", "last", "next", "previous",
    "left", "right", "top", "bottom", "front", "back", "side", "most", "least", "fastest", "slowest",
    "faster", "slower", "quicker", "quickest", "speedier", "speediest", "further", "furthest", "farther",
    "farthest", "tinier", "tiniest",
    "whole", "entire", "overall", "following", "question", "answer", "box", "boxes", "color", "colour",
    "size", "speed", "direction", "motion", "movement", "path", "number", "action", "actions", "story", "bbox",
    "pair", "greater", "greatest", "higher", "highest", "lower", "lowest", "earliest", "latest", "wall", "walls", "edge", "edges", "border", "borders", "corner", "corners", "course", "reason", "part",
    "parts", "section", "sections", "segment", "segments", "portion", "half", "quarter", "clip's", "video's",
    "it", "its", "them", "they", "their", "what", "which", "who", "where", "when", "how", "why",
    "is", "are", "was", "were", "do", "does", "did", "has", "have", "and", "or", "of", "in", "on", "at",
}  # fmt: skip
"""Words after a determiner that do not name an object to find ("the video", "the end", "the first one", "the
quickest")."""


def unknown_phrases(text: str) -> list[str]:
    """Phrases of ``text`` that look like an object ("the unicorn", "a fluffy rabbit": a determiner, then
    colours/sizes, then a word) but whose word is no noun grounding knows (shapes, people, faces, the COCO
    classes and their synonyms, generic nouns, :data:`NOT_OBJECTS`): ``"What is the unicorn doing?"`` ->
    ``["the unicorn"]``."""
    toks = words(text)
    known = set(_NP_WORDS) | NOT_OBJECTS | QUANTIFIERS
    out = []
    for i, tok in enumerate(toks):
        if tok not in DETERMINERS:
            continue
        j = i + 1
        while j < len(toks) and (toks[j] in COLOURS or toks[j] in SIZES):
            j += 1
        # "the speedier one": a word before a generic noun is its adjective
        adjective = j + 1 < len(toks) and toks[j + 1] in GENERIC_SINGULARS | GENERIC_PLURALS
        if j < len(toks) and len(toks[j]) > 2 and toks[j] not in known and not adjective:
            out.append(" ".join(toks[i : j + 1]))
    return out
