"""``scripts/world_eval.judge``: the parser-based scores of one description, including the other-object diagnostic."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def world_eval():  # noqa: ANN201
    sys.path.insert(0, str(SCRIPTS))
    try:
        import world_eval

        yield world_eval
    finally:
        sys.path.remove(str(SCRIPTS))


def _phrase(motion: str) -> str:
    kind, _, arg = motion.partition(":")
    if kind == "still":
        return "stays still"
    if kind == "enter":
        return f"enters from the {arg}"
    return "moves " + {
        "up-right": "up and to the right",
        "up-left": "up and to the left",
        "down-right": "down and to the right",
        "down-left": "down and to the left",
    }.get(arg, arg)


def test_judge_separates_own_other_and_unrelated_motion(world_eval) -> None:  # noqa: ANN001
    from synth import motion_phrases

    for q in world_eval.held_out_queries(seed=4321, num_clips=12):
        own = world_eval.primary_motion(motion_phrases(q.obj, q.clip))
        others = {
            world_eval.primary_motion(motion_phrases(o, q.clip))
            for o in q.clip.objects
            if o.id != q.obj.id and len(o.visible_frames) >= world_eval.MIN_VISIBLE
        } - {own}
        if own is not None and others:
            break
    else:
        pytest.fail("no clip with two differently moving objects in 12 clips")
    subject = f"The {q.obj.colour} {q.obj.shape}"
    right = world_eval.judge(q, f"{subject} {_phrase(own)}.")
    assert right["parsed"] and right["colour_shape"] and right["motion"] and not right["other_motion"]
    other = world_eval.judge(q, f"{subject} {_phrase(sorted(others)[0])}.")
    assert other["colour_shape"] and not other["motion"] and other["other_motion"]
    unrelated = sorted({"still", "move:up", "move:down", "move:left", "move:right"} - others - {own})[0]
    neither = world_eval.judge(q, f"{subject} {_phrase(unrelated)}.")
    assert not neither["motion"] and not neither["other_motion"]
    assert not world_eval.judge(q, "gibberish")["parsed"]


def test_motion_chance_of_a_clip_blind_guesser(world_eval) -> None:  # noqa: ANN001
    rows = [
        {"said_motion": "move:left", "truth_motion": "move:left", "other_motions": ["move:up"]},
        {"said_motion": "move:left", "truth_motion": "move:up", "other_motions": ["move:left"]},
        {"said_motion": "move:up", "truth_motion": "still", "other_motions": []},
        {"said_motion": None, "truth_motion": "still", "other_motions": ["move:left", "move:up"]},
    ]
    own, other = world_eval.motion_chance(rows)
    # said: left 2/3, up 1/3; own: row 1 2/3, row 2 1/3 -> 1/4; other: 1/3 + 2/3 + 0 + 1 -> 1/2
    assert own == pytest.approx(0.25) and other == pytest.approx(0.5)
    assert world_eval.motion_chance([]) == (0.0, 0.0)
