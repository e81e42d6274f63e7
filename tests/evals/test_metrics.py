from __future__ import annotations

import pytest

from evals.metrics import (
    LengthFilter,
    dedup_by_key,
    metrics_markdown,
    score_captions,
    spice_unavailable_reason,
)

TOY_ROWS = [
    {
        "video_name": "v1",
        "groundtruth": "The man in black clothes turns and walks to the door.",
        "pred": "A man in black turns around and walks to the door.",
    },
    {
        "video_name": "v2",
        "groundtruth": "A woman in a red dress sits down on the sofa.",
        "pred": "The woman in red sits on the couch.",
    },
    {"video_name": "v3", "groundtruth": "The child runs across the yard and picks up a ball.", "pred": ""},
    {
        "video_name": "v4",
        "groundtruth": "An old man with a cane slowly walks past the car.",
        "pred": "An old man walks slowly. " * 13,  # 325 characters: over-long
    },
    {
        "video_name": "v5",
        "groundtruth": "The dog jumps over the fence and runs away.",
        "pred": "A dog jumps the fence.",
    },
    {
        "video_name": "v2",
        "groundtruth": "A woman in a red dress sits down on the sofa.",
        "pred": "Duplicate that must be ignored.",
    },
]

# Computed once with plain pycocoevalcap 1.2 (PTBTokenizer on refs and preds separately, Bleu(4), Meteor,
# Rouge, Cider) on the first five rows, and on the rows with 5 < len(pred) < 300.
GOLDEN_ALL = {
    "BLEU_1": 0.269663,
    "BLEU_2": 0.195116,
    "BLEU_3": 0.13295,
    "BLEU_4": 0.08839,
    "METEOR": 0.210371,
    "ROUGE_L": 0.425324,
    "CIDEr": 1.898832,
}
GOLDEN_FILTERED = {
    "BLEU_1": 0.591389,
    "BLEU_2": 0.458662,
    "BLEU_3": 0.326864,
    "BLEU_4": 0.242853,
    "METEOR": 0.336621,
    "ROUGE_L": 0.658569,
    "CIDEr": 2.970591,
}


def test_golden_values_counts_and_spice(scorer):
    m = score_captions(TOY_ROWS, scorer=scorer, with_per_item=True)
    assert {k: round(v, 6) for k, v in m.scores.items()} == GOLDEN_ALL
    c = m.counts
    assert (c.records, c.duplicates, c.scored) == (6, 1, 5)
    assert (c.empty_predictions, c.overlong_predictions) == (1, 1)
    assert not c.length_filter_applied and c.length_filter_dropped == 0
    # The empty prediction scores zero on every metric, item-wise.
    assert all(v == 0.0 for v in m.per_item["v3"].values())
    # SPICE: the CoreNLP jars are not installed here, so it is unavailable with a reason, never 0.
    if spice_unavailable_reason() is not None:
        assert "SPICE" not in m.scores
        assert "CoreNLP" in m.unavailable["SPICE"] or "java" in m.unavailable["SPICE"]
        assert "SPICE unavailable" in metrics_markdown(m)
        assert "| n/a |" in metrics_markdown(m)


def test_length_filter_is_explicit_and_reported(scorer):
    m = score_captions(TOY_ROWS, scorer=scorer, length_filter=LengthFilter())
    assert {k: round(v, 6) for k, v in m.scores.items()} == GOLDEN_FILTERED
    assert m.counts.length_filter_applied
    assert m.counts.length_filter_dropped == 2  # the empty and the 325-character prediction
    assert m.counts.scored == 3
    assert m.length_filter == {"min_chars": 5, "max_chars": 300}


def test_dedup_keeps_first():
    kept, dropped = dedup_by_key(TOY_ROWS)
    assert dropped == 1
    assert [r["video_name"] for r in kept] == ["v1", "v2", "v3", "v4", "v5"]
    assert kept[1]["pred"] == "The woman in red sits on the couch."
    with pytest.raises(KeyError, match="video_name"):
        dedup_by_key([{"pred": "x"}])


def test_everything_filtered_reports_unavailable(scorer):
    rows = [{"video_name": "a", "groundtruth": "a man walks", "pred": ""}]
    m = score_captions(rows, scorer=scorer, length_filter=LengthFilter())
    assert m.scores == {}
    assert m.unavailable["CIDEr"] == "no predictions left to score"
