"""What a caption claims about its subject: its colour, its kind, and what it does first.

A describer's caption is plain English ("In the video, the large green circle moves down quickly, then bounces
off the bottom wall"; "The man walks to the left"). :func:`caption_claims` reads, without any model:

* the **subject**: the first noun phrase (words from its determiner up to its first verb), read as a referring
  phrase (:func:`tools.grounding.query.parse_query`: colours, shapes, person/face);
* the **first motion**: the first clause (clauses split at commas and "then"/"and") that states one, in the
  object memory's terms (:func:`tools.memory.first_motion`): ``"still"`` (stays still, does not move, remains in
  place; *starts moving* also says it was still first), ``"enter:<side>"`` (enters / comes into view from a
  side), or ``"move:<direction>"`` (a motion verb with one of the 8 directions). Clauses about speed changes,
  bounces, other objects, leaving or turning state no first motion and are skipped.

Claims the caption does not make are ``None`` / empty: a check (:func:`disagreements`) only disputes what was said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tools.grounding.query import COLOURS, DETERMINERS, PEOPLE, SHAPES, parse_query
from tools.grounding.vocabulary import OBJECT_NOUNS

MOTION_VERBS = (
    "move", "moves", "moving", "go", "goes", "going", "travel", "travels", "travelling", "traveling", "head",
    "heads", "heading", "drift", "drifts", "glide", "glides", "slide", "slides", "walk", "walks", "walking",
    "run", "runs", "running", "drive", "drives", "driving", "roll", "rolls", "fly", "flies", "ride", "rides",
    "swim", "swims", "crawl", "crawls", "jog", "jogs", "continue", "continues", "proceeds", "proceed",
)  # fmt: skip
"""Verbs after which a direction word says where the subject moves."""
STILL = re.compile(
    r"\b(?:stays?|remains?|stands?|sits?|keeps?|is|stays?\s+completely)\s+"
    r"(?:still(?!\s+(?:mov|go|travel|head|walk|driv|run))|stationary|motionless|in place|where it is|put|in the same place|static)\b"
    r"|\b(?:does not|doesn't|did not|never)\s+move\b|\bnot moving\b"
    r"|\b(?:starts?|begins?)\s+(?:to\s+)?mov(?:e|ing)\b"
)
"""Clauses that say the subject is still first (starting to move says it stood still before)."""
ENTER = re.compile(
    r"\b(?:enters?|entering|comes? into (?:view|the frame)|appears?)\b.*?\bfrom the (left|right|top|bottom)\b"
)
SKIP = re.compile(
    r"\b(?:bounces?|hits?|collides?|bumps?|crash(?:es)?|follow(?:s|ed)?|chases?|chased|trails?|leaves?|exits?"
    r"|out of view|turns?|reverses?|speeds? up|slows? down|accelerates?|decelerates?|faster|slower|stops?"
    r"|halts?|comes? to a stop)\b"
)
"""Clauses that state no first motion (a bounce's side or a speed change's "up" is no direction)."""
_DIAGONAL = re.compile(
    r"\b(?:diagonally\s+)?(up|down)(?:wards)?\s+and\s+(?:to(?:wards)?\s+the\s+)?(left|right)(?:wards)?\b"
)
_SINGLE = re.compile(r"\b(?:to(?:wards)?\s+the\s+)?(left|right|up|down)(?:wards)?\b")
_CLAUSE_SPLIT = re.compile(r",|\bthen\b|\band\b(?!\s+(?:to(?:wards)?\s+the\s+)?(?:left|right)\b)")
_OPENER = re.compile(r"^\s*(?:in|throughout)\s+(?:this|the)\s+(?:video|clip)\s*,?\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z']+")
_VERB_LIKE = {"is", "are", "was", "does", "doesn't", "stays", "remains", "enters", "comes", "has", "can"}


@dataclass(frozen=True)
class Claims:
    """What a caption says of its subject (empty / ``None``: not said)."""

    colours: tuple[str, ...] = ()
    shapes: tuple[str, ...] = ()
    category: str | None = None
    first_motion: str | None = None


def subject_phrase(text: str) -> str:
    """The caption's first noun phrase: from its first determiner to its head noun (a shape, person or object
    noun of the grounding vocabulary), or to the word before its first verb, at most 5 words."""
    body = _OPENER.sub("", text.strip().lower())
    toks = _WORD.findall(body.split(",")[0])
    if toks and toks[0] in DETERMINERS:
        toks = toks[1:]
    out: list[str] = []
    for w in toks:
        if out and (w in MOTION_VERBS or w in _VERB_LIKE):
            break
        out.append(w)
        if (w not in COLOURS and (w in SHAPES or w in PEOPLE or w in OBJECT_NOUNS)) or len(out) >= 5:
            break  # the head noun ends the phrase ("the red star chases the blue circle")
    return " ".join(out)


def first_motion_claim(text: str) -> str | None:
    """The caption's first stated motion (``"still"``, ``"enter:<side>"``, ``"move:<dir>"``) or ``None``."""
    body = _OPENER.sub("", text.strip().lower())
    for clause in _CLAUSE_SPLIT.split(body):
        clause = clause.strip()
        if not clause:
            continue
        if STILL.search(clause):
            return "still"
        m = ENTER.search(clause)
        if m:
            return f"enter:{m.group(1)}"
        if SKIP.search(clause):
            continue
        toks = set(_WORD.findall(clause))
        if not toks & set(MOTION_VERBS):
            continue
        m = _DIAGONAL.search(clause)
        if m:
            return f"move:{m.group(1)}-{m.group(2)}"
        m = _SINGLE.search(clause)
        if m:
            return f"move:{m.group(1)}"
    return None


def caption_claims(text: str) -> Claims:
    """The subject's colours, shapes, person/face category and its first motion, as far as ``text`` says them."""
    subject = parse_query(subject_phrase(text))
    return Claims(
        colours=subject.colours,
        shapes=subject.shapes,
        category=subject.category,
        first_motion=first_motion_claim(text),
    )


def disagreements(claims: Claims, label: str, first_motion: str | Sequence[str] | None) -> list[str]:
    """Where ``claims`` contradict what the agent knows: the target's ``label`` (grounding's colours and kind)
    and what its track does first (``first_motion``: one name or the names a measure near a boundary allows,
    :func:`tools.memory.first_motions`). Only what both sides state is compared; an empty list: no conflict."""
    known = parse_query(label)
    allowed = (first_motion,) if isinstance(first_motion, str) else tuple(first_motion or ())
    out = []
    if claims.colours and known.colours and not set(claims.colours) & set(known.colours):
        out.append(f"says {'/'.join(claims.colours)}, grounding found {'/'.join(known.colours)}")
    if claims.shapes and known.shapes and not set(claims.shapes) & set(known.shapes):
        out.append(f"says {'/'.join(claims.shapes)}, grounding found {'/'.join(known.shapes)}")
    if claims.category and known.category and claims.category != known.category:
        out.append(f"says {claims.category}, grounding found {known.category}")
    if claims.first_motion and allowed and claims.first_motion not in allowed:
        out.append(f"first says {claims.first_motion}, the track shows {' or '.join(allowed)}")
    return out


__all__ = ["Claims", "caption_claims", "disagreements", "first_motion_claim", "subject_phrase"]
