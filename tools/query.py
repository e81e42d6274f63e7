"""Parse a referring phrase ("the red objects", "all squares", "the big circle") into attributes."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

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
GENERIC_PLURALS = {"objects", "things", "shapes", "items", "ones", "targets"}
GENERIC_SINGULARS = {"object", "thing", "shape", "item", "one", "target"}
QUANTIFIERS = {"all", "both", "every", "each", "two", "three", "four", "these", "those"}
PLURAL_SHAPES = {w for w, s in SHAPES.items() if w != s and w.endswith("s")} | {"people", "men", "women"}
PLURAL_SHAPES |= {w for w in PEOPLE if w.endswith("s")}

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
