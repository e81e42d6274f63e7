"""Questions answered from the targets' tracks alone, the same way on the synthetic world and on real footage:

* **counting** ("How many cars are there?"): the number of targets (tracks) found, each with its frames, seconds
  and shots. On real footage a track never crosses a shot cut, so an object seen in two shots counts once per
  shot: the answer says "tracks" and names the shots;
* **when** ("When does the cyclist appear?", "When does the red circle leave the frame?"): the intervals where
  the target has a box, in seconds and frames (gaps of at most ``MERGE_GAP_S`` joined), or the last frame it is
  seen for a leaving question;
* **first / last** ("Who leaves first?", "Which object appears first?"): the target whose track ends (leave) or
  starts (appear) earliest (first) or latest (last).

:func:`track_question_asked` reads the kind from the question; :func:`answer_track_question` answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tools.grounding.query import words
from tools.schemas import Target

Kind = Literal["count", "when_appear", "when_leave", "appear_order", "leave_order"]
APPEAR_WORDS = {"appear", "appears", "appearing", "enter", "enters", "arrive", "arrives", "seen", "visible"}
LEAVE_WORDS = {"leave", "leaves", "leaving", "exit", "exits", "disappear", "disappears", "vanish", "vanishes"}
MERGE_GAP_S = 0.2
"""Gaps in a track at most this long (missed detections) are joined into one visible interval."""


class TrackAnswer(BaseModel):
    """The answer to a track question: the kind, the target it picks (order questions) and the text."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    first: bool = True
    winner_id: int | None = None
    text: str


def track_question_asked(question: str) -> tuple[Kind, bool] | None:
    """(kind, first) of a track question, or None. ``first`` is False for "... last?" order questions."""
    toks = words(question)
    for a, b in zip(toks, toks[1:], strict=False):
        if a == "how" and b in {"many", "much"}:
            return "count", True
    order = "first" in toks or "last" in toks
    first = "last" not in toks
    leave = any(t in LEAVE_WORDS for t in toks) or ("goes" in toks and "away" in toks)
    appear = any(t in APPEAR_WORDS for t in toks) or ("shows" in toks and "up" in toks)
    if order and toks and toks[0] in {"who", "which", "what"}:
        if leave:
            return "leave_order", first
        if appear:
            return "appear_order", first
    if "when" in toks:
        if leave:
            return "when_leave", True
        if appear:
            return "when_appear", True
    return None


def intervals(target: Target, fps: float) -> list[tuple[int, int]]:
    """Inclusive (first, last) frame runs where ``target`` has a box; gaps of at most ``MERGE_GAP_S`` joined."""
    vis = [f for f, b in enumerate(target.boxes) if b is not None]
    gap = max(1, round(MERGE_GAP_S * fps))
    runs: list[tuple[int, int]] = []
    for f in vis:
        if runs and f - runs[-1][1] <= gap + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def _secs(a: int, b: int, fps: float) -> str:
    if a == b:
        return f"{a / fps:.1f} s (frame {a} only)"
    return f"{a / fps:.1f}–{(b + 1) / fps:.1f} s (frames {a}–{b})"


def _shots(target: Target, cuts: Sequence[int] | None) -> str:
    if cuts is None:
        return ""
    bounds = [0, *cuts, len(target.boxes)]
    vis = [f for f, b in enumerate(target.boxes) if b is not None]
    ks = [k + 1 for k in range(len(bounds) - 1) if any(bounds[k] <= f < bounds[k + 1] for f in vis)]
    if not ks:
        return ""
    return f", shot{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))} of {len(bounds) - 1}"


IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "buses": "bus"}


def _singular(noun: str) -> str:
    *rest, last = noun.split()
    one = IRREGULAR.get(last, last[:-1] if last.endswith("s") and not last.endswith("ss") else last)
    return " ".join([*rest, one])


def _name(t: Target) -> str:
    return f"{t.label} #{t.id}"


def answer_track_question(
    targets: Sequence[Target],
    kind: Kind,
    first: bool = True,
    *,
    fps: float,
    cuts: Sequence[int] | None = None,
    noun: str | None = None,
) -> TrackAnswer:
    """Answer ``kind`` from ``targets``' boxes (``fps``: of the video; ``cuts``: first frames of its shots, None
    when unknown; ``noun``: what was counted, e.g. "cars")."""
    if fps <= 0:
        raise ValueError(f"fps={fps} must be > 0")
    seen = [t for t in targets if any(b is not None for b in t.boxes)]
    if kind == "count":
        n = len(seen)
        what = (noun or "objects") if n != 1 else _singular(noun or "objects")
        head = f"I count {n} {what}" + (
            " (one track per object per shot: tracks stop at cuts)" if cuts else ""
        )
        parts = [
            f"{_name(t)} at " + ", ".join(_secs(a, b, fps) for a, b in intervals(t, fps)) + _shots(t, cuts)
            for t in sorted(seen, key=lambda t: (t.span[0], t.id))
        ]
        return TrackAnswer(kind=kind, text=head + (": " + "; ".join(parts) if parts else "") + ".")
    if not seen:
        return TrackAnswer(kind=kind, first=first, text="No target is seen in the video.")
    if kind in ("when_appear", "when_leave"):
        parts = []
        for t in seen:
            runs = intervals(t, fps)
            if kind == "when_appear":
                parts.append(
                    f"The {_name(t)} is seen at "
                    + ", ".join(_secs(a, b, fps) for a, b in runs)
                    + _shots(t, cuts)
                )
            else:
                last = runs[-1][1]
                end = "is seen until the video ends" if last == len(t.boxes) - 1 else "is last seen"
                parts.append(f"The {_name(t)} {end} at {last / fps:.1f} s (frame {last})")
        return TrackAnswer(kind=kind, text=". ".join(parts) + ".")
    leave = kind == "leave_order"
    key = (lambda t: t.span[1]) if leave else (lambda t: t.span[0])
    ordered = sorted(seen, key=lambda t: (key(t), t.id), reverse=not first)
    win = ordered[0]
    verb = "leaves" if leave else "appears"
    when = "last seen" if leave else "first seen"
    others = ", ".join(f"{_name(t)} {key(t) / fps:.1f} s" for t in ordered[1:])
    text = (
        f"The {_name(win)} {verb} {'first' if first else 'last'} ({when} at {key(win) / fps:.1f} s, frame "
        f"{key(win)}{_shots(win, cuts)}" + (f"; others: {others}" if others else "") + ")."
    )
    return TrackAnswer(kind=kind, first=first, winner_id=win.id, text=text)


__all__ = ["TrackAnswer", "answer_track_question", "intervals", "track_question_asked"]
