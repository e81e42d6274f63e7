"""``evals.world``: the parser-based scores of one description, including the other-object diagnostic."""

from __future__ import annotations

import numpy as np
import pytest

from evals import world as world_eval
from synth import MotionPhrase, motion_phrases
from synth.grammar import noun_phrase, render_caption
from synth.held_out import HELD_OUT_COMBOS
from synth.motion_truth import primary_motion


def test_judge_separates_own_other_and_unrelated_motion() -> None:
    """Captions rendered by the world's grammar from the query's phrases, another object's, or a made-up one."""
    for q in world_eval.held_out_queries(seed=4321, num_clips=12):
        own = primary_motion(motion_phrases(q.obj, q.clip))
        other = next(
            (
                o
                for o in q.clip.objects
                if o.id != q.obj.id
                and len(o.visible_frames) >= world_eval.MIN_VISIBLE
                and primary_motion(motion_phrases(o, q.clip)) not in (own, None)
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


def test_motion_chance_of_a_clip_blind_guesser() -> None:
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


def test_combo_queries_are_held_out_combinations_beyond_the_held_out_clips() -> None:
    queries = world_eval.combo_queries(seed=9999, start=250, count=2)
    assert len(queries) == 2
    for q in queries:
        assert q.combo in HELD_OUT_COMBOS and int(q.name.split("_")[1]) >= 250


def test_summary_drops_rows_and_write_result_keeps_them(tmp_path) -> None:  # noqa: ANN001
    result = {"queries": 1, "rows": [{"pred": "x"}], "combo_rows": []}
    assert world_eval.summary(result) == {"queries": 1}
    path = world_eval.write_result(result, tmp_path / "runs" / "eval.json")
    assert path.read_text().count('"pred"') == 1
