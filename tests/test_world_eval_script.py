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


def test_judge_separates_own_other_and_unrelated_motion(world_eval) -> None:  # noqa: ANN001
    """Captions rendered by the world's grammar from the query's phrases, another object's, or a made-up one."""
    import numpy as np

    from synth import MotionPhrase, motion_phrases
    from synth.grammar import noun_phrase, render_caption

    for q in world_eval.held_out_queries(seed=4321, num_clips=12):
        own = world_eval.primary_motion(motion_phrases(q.obj, q.clip))
        other = next(
            (
                o
                for o in q.clip.objects
                if o.id != q.obj.id
                and len(o.visible_frames) >= world_eval.MIN_VISIBLE
                and world_eval.primary_motion(motion_phrases(o, q.clip)) not in (own, None)
            ),
            None,
        )
        if own is not None and other is not None:
            break
    else:
        pytest.fail("no clip with two differently moving objects in 12 clips")
    rng = np.random.default_rng(0)
    subject = noun_phrase(q.obj)

    def said(phrases: list) -> dict:  # noqa: ANN001
        return world_eval.judge(q, render_caption(subject, phrases, rng).text)

    right = said(motion_phrases(q.obj, q.clip))
    assert right["parsed"] and right["colour_shape"] and right["motion"] and not right["other_motion"]
    wrong = said(motion_phrases(other, q.clip))
    assert wrong["colour_shape"] and not wrong["motion"] and wrong["other_motion"]
    assert wrong["said_motion"] in wrong["other_motions"] and own not in wrong["other_motions"]
    taken = {own, *wrong["other_motions"]}
    direction = next(d for d in ("up", "down", "left", "right") if f"move:{d}" not in taken)
    neither = said([MotionPhrase("move", direction=direction)])
    assert neither["said_motion"] == f"move:{direction}"
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
