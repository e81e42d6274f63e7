"""Captions of the synthetic world: a small regular grammar, a generator from truth, and a strict parser.

A caption is one sentence: ``[In this video, ] (The|A) [size] colour shape <phrase> (<connector> <phrase>)* .``
Each phrase is one of the ``PHRASES`` templates (slots ``{dir}``, ``{adv}``, ``{np}``, ``{side}``).
``parse_caption`` accepts exactly this language and returns None for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from synth.render import COLOURS, SHAPES, SIZES
from synth.world import Clip, ObjectTruth

SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "right": ("right", "to the right", "rightwards"),
    "left": ("left", "to the left", "leftwards"),
    "up": ("up", "upwards"),
    "down": ("down", "downwards"),
    "up-right": ("up and to the right", "diagonally up and right"),
    "up-left": ("up and to the left", "diagonally up and left"),
    "down-right": ("down and to the right", "diagonally down and right"),
    "down-left": ("down and to the left", "diagonally down and left"),
}
ADVERB_WORDS: dict[str, tuple[str, ...]] = {"quickly": ("quickly", "fast"), "slowly": ("slowly",)}
SIDES: tuple[str, ...] = ("left", "right", "top", "bottom")
OPENERS: tuple[str, ...] = ("", "in this video, ", "in the video, ")
CONNECTORS: tuple[str, ...] = (", ", " and ", ", then ", " and then ", ", and then ", " then ")
LAST_CONNECTORS: tuple[str, ...] = (" and ", ", and ", " and then ", ", then ", ", and then ")
MAX_PHRASES = 6

# verb -> templates. A template with {adv} is used only when a speed adverb is said.
PHRASES: dict[str, tuple[str, ...]] = {
    "move": (
        "moves {dir}",
        "goes {dir}",
        "travels {dir}",
        "heads {dir}",
        "moves {adv} {dir}",
        "moves {dir} {adv}",
    ),
    "still": ("stays still", "does not move", "remains in place", "stays where it is"),
    "stop": ("stops", "comes to a stop", "halts"),
    "start_moving": ("starts moving {dir}", "begins to move {dir}", "starts moving {adv} {dir}"),
    "turn_back": ("turns back", "turns around", "reverses direction"),
    "bounce": (
        "bounces off the wall",
        "bounces off the {side} wall",
        "hits the {side} wall and bounces back",
    ),
    "speed_up": ("speeds up", "accelerates", "gets faster"),
    "slow_down": ("slows down", "decelerates", "gets slower"),
    "collide": ("collides with {np}", "bumps into {np}", "crashes into {np}"),
    "follow": ("follows {np}", "chases {np}", "trails {np}"),
    "followed_by": ("is followed by {np}", "is chased by {np}"),
    "enter": (
        "enters the frame from the {side}",
        "comes into view from the {side}",
        "enters from the {side}",
    ),
    "leave": ("leaves the frame on the {side}", "exits on the {side}", "goes out of view on the {side}"),
}
VERBS: tuple[str, ...] = tuple(PHRASES)


@dataclass(frozen=True)
class NounPhrase:
    """A reference to an object: shape (or "object" for "another object"), optional colour and size."""

    shape: str
    colour: str | None = None
    size: str | None = None

    def text(self, rng: np.random.Generator, article: str = "the") -> str:
        if self.shape == "object":
            return "another object"
        words = [article]
        if self.size is not None:
            words.append(_pick(rng, SIZE_WORDS[self.size]))
        if self.colour is not None:
            words.append(self.colour)
        words.append(self.shape)
        return " ".join(words)


@dataclass(frozen=True)
class MotionPhrase:
    """One canonical motion statement, e.g. MotionPhrase("move", direction="left", speed="quickly")."""

    verb: str
    direction: str | None = None
    speed: str | None = None
    side: str | None = None
    other: NounPhrase | None = None


@dataclass(frozen=True)
class ParsedCaption:
    subject: NounPhrase
    motions: tuple[MotionPhrase, ...]

    @property
    def colour(self) -> str | None:
        return self.subject.colour

    @property
    def shape(self) -> str:
        return self.subject.shape

    @property
    def size(self) -> str | None:
        return self.subject.size


@dataclass(frozen=True)
class Caption:
    text: str
    content: ParsedCaption


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def noun_phrase(obj: ObjectTruth, *, with_size: bool = True, with_colour: bool = True) -> NounPhrase:
    return NounPhrase(obj.shape, obj.colour if with_colour else None, obj.size if with_size else None)


def motion_phrases(obj: ObjectTruth, clip: Clip | None = None) -> list[MotionPhrase]:
    """The canonical motion statements true of ``obj`` (other objects named fully when ``clip`` is given)."""

    def other(object_id: int | None) -> NounPhrase:
        if clip is None or object_id is None:
            return NounPhrase("object")
        return noun_phrase(clip.object(object_id))

    out: list[MotionPhrase] = []
    if obj.follows is not None:
        out.append(MotionPhrase("follow", other=other(obj.follows)))
    if clip is not None:
        followers = [o.id for o in clip.objects if o.follows == obj.id]
        out += [MotionPhrase("followed_by", other=other(f)) for f in followers]
    enter = next((e for e in obj.events if e.kind == "enter"), None)
    if enter is not None:
        out.append(MotionPhrase("enter", side=enter.side))
    for k, seg in enumerate(obj.segments):
        at = [e for e in obj.events if e.frame == seg.start and e.kind == seg.cause]
        move = MotionPhrase("move", direction=seg.direction, speed=seg.speed_label)
        if k == 0:
            out.append(move if seg.moving else MotionPhrase("still"))
        elif seg.cause == "bounce":
            out += [MotionPhrase("bounce", side=at[0].side if at else None), move]
        elif seg.cause == "collide":
            out += [MotionPhrase("collide", other=other(at[0].other if at else None)), move]
        elif seg.cause == "turn_back":
            out += [MotionPhrase("turn_back"), move]
        elif seg.cause == "start_moving":
            out.append(MotionPhrase("start_moving", direction=seg.direction, speed=seg.speed_label))
        elif seg.cause in ("stop", "speed_up", "slow_down"):
            out.append(MotionPhrase(seg.cause))
        else:  # "turn": a new direction
            out.append(move)
    leave = next((e for e in obj.events if e.kind == "leave"), None)
    if leave is not None:
        out.append(MotionPhrase("leave", side=leave.side))
    return [p for p in out if not (p.verb == "move" and p.direction is None)][:MAX_PHRASES]


def _realise(p: MotionPhrase, rng: np.random.Generator) -> tuple[str, MotionPhrase]:
    """Text for one phrase and the content that text states (optional details may be dropped)."""
    templates = PHRASES[p.verb]
    said = p
    if p.verb in ("move", "start_moving"):
        say_speed = p.speed is not None and rng.random() < 0.5
        pool = [t for t in templates if ("{adv}" in t) == say_speed]
        said = MotionPhrase(p.verb, direction=p.direction, speed=p.speed if say_speed else None)
    elif p.verb == "bounce":
        pool = [t for t in templates if p.side is not None or "{side}" not in t]
    else:
        pool = list(templates)
    template = _pick(rng, pool)
    if p.verb == "bounce" and "{side}" not in template:
        said = MotionPhrase("bounce")
    if p.other is not None:
        with_size = p.other.size is not None and rng.random() < 0.5
        said = MotionPhrase(
            p.verb, other=NounPhrase(p.other.shape, p.other.colour, p.other.size if with_size else None)
        )
    wall = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}
    text = template.format(
        dir=_pick(rng, DIRECTION_WORDS[p.direction]) if p.direction else "",
        adv=_pick(rng, ADVERB_WORDS[p.speed]) if p.speed else "",
        side=wall.get(p.side or "", ""),
        np=said.other.text(rng) if said.other is not None else "",
    )
    return text, said


def render_caption(subject: NounPhrase, phrases: list[MotionPhrase], rng: np.random.Generator) -> Caption:
    """One sentence stating ``phrases`` about ``subject`` with randomly chosen wording."""
    if not phrases:
        raise ValueError("a caption needs at least one motion phrase")
    parts, said = [], []
    for p in phrases:
        text, content = _realise(p, rng)
        parts.append(text)
        said.append(content)
    body = parts[0]
    for i, part in enumerate(parts[1:], start=1):
        body += _pick(rng, LAST_CONNECTORS if i == len(parts) - 1 else CONNECTORS) + part
    opener = _pick(rng, OPENERS)
    article = "the" if opener or rng.random() < 0.8 else "a"
    text = f"{opener}{subject.text(rng, article)} {body}."
    return Caption(text[0].upper() + text[1:], ParsedCaption(subject, tuple(said)))


def caption_for(obj: ObjectTruth, rng: np.random.Generator, clip: Clip | None = None) -> Caption:
    """A true one-sentence caption of what ``obj`` does; pass ``clip`` to name the objects it meets."""
    with_size = rng.random() < 0.75
    return render_caption(noun_phrase(obj, with_size=with_size), motion_phrases(obj, clip), rng)


# ----------------------------------------------------------------------------------------------- parser
def _alt(words: list[str] | tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SIZE_OF = {w: s for s, ws in SIZE_WORDS.items() for w in ws}
_DIR_OF = {w: d for d, ws in DIRECTION_WORDS.items() for w in ws}
_ADV_OF = {w: a for a, ws in ADVERB_WORDS.items() for w in ws}
_NP = (
    rf"(?:another object|(?:the|a) (?:(?P<{{p}}size>{_alt(list(_SIZE_OF))}) )?"
    rf"(?:(?P<{{p}}colour>{_alt(COLOURS)}) )?(?P<{{p}}shape>{_alt(SHAPES)}))"
)
_SUBJECT = re.compile(r"(?:in (?:this|the) video, )?" + _NP.replace("{p}", "s") + " ")
_SLOTS = {
    "{dir}": rf"(?P<dir>{_alt(list(_DIR_OF))})",
    "{adv}": rf"(?P<adv>{_alt(list(_ADV_OF))})",
    "{side}": rf"(?P<side>{_alt(SIDES)})",
    "{np}": _NP.replace("{p}", "o"),
}
_CONNECTORS: tuple[str, ...] = tuple(sorted(set(CONNECTORS + LAST_CONNECTORS), key=lambda c: (-len(c), c)))


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for slot, rx in _SLOTS.items():
        pattern = pattern.replace(re.escape(slot), rx)
    return re.compile(pattern)


_PATTERNS: list[tuple[str, re.Pattern]] = [(verb, _compile(t)) for verb, ts in PHRASES.items() for t in ts]


def _np_from(m: re.Match, prefix: str) -> NounPhrase:
    shape = m.group(f"{prefix}shape")
    if shape is None:
        return NounPhrase("object")
    size = m.group(f"{prefix}size")
    return NounPhrase(shape, m.group(f"{prefix}colour"), _SIZE_OF[size] if size else None)


def _phrase_from(verb: str, m: re.Match) -> MotionPhrase:
    g = m.groupdict()
    return MotionPhrase(
        verb,
        direction=_DIR_OF[g["dir"]] if g.get("dir") else None,
        speed=_ADV_OF[g["adv"]] if g.get("adv") else None,
        side=g.get("side") or None,
        other=_np_from(m, "o") if "oshape" in g else None,
    )


def _parse_phrases(text: str, pos: int) -> list[MotionPhrase] | None:
    """All of text[pos:] as phrase (connector phrase)*; None when impossible (with backtracking)."""
    for verb, pattern in _PATTERNS:
        m = pattern.match(text, pos)
        if m is None:
            continue
        end = m.end()
        if end == len(text):
            return [_phrase_from(verb, m)]
        for conn in _CONNECTORS:
            if text.startswith(conn, end):
                rest = _parse_phrases(text, end + len(conn))
                if rest is not None:
                    return [_phrase_from(verb, m), *rest]
    return None


def parse_caption(text: str) -> ParsedCaption | None:
    """Parse one caption of the grammar into subject + motion phrases; None for any other sentence.

    Case and runs of spaces are ignored and the final period is optional; nothing else is forgiven."""
    norm = " ".join(text.strip().lower().split())
    norm = norm[:-1] if norm.endswith(".") else norm  # the final period is optional
    m = _SUBJECT.match(norm)
    if m is None or m.group("sshape") is None:
        return None
    phrases = _parse_phrases(norm, m.end())
    if phrases is None or len(phrases) > MAX_PHRASES:
        return None
    return ParsedCaption(_np_from(m, "s"), tuple(phrases))


__all__ = [
    "Caption",
    "MotionPhrase",
    "NounPhrase",
    "ParsedCaption",
    "caption_for",
    "motion_phrases",
    "parse_caption",
    "render_caption",
    "SIZES",
]
