"""refer_checked: a caption that contradicts its target's label or its track's first motion is replaced by the
first of the describer's own sampled captions that agrees; the words are never edited."""

from __future__ import annotations

import pytest

from artemis_model.types import Description
from tools.describers import can_sample
from tools.grounding import ground
from tools.grounding.backends import WORLD_GROUNDING
from tools.refer import refer_checked
from tools.video import ArrayVideo


class ScriptedDescriber:
    """Greedy captions per target index (a describer that cannot sample)."""

    def __init__(self, greedy: list[str]) -> None:
        self.greedy = greedy

    @staticmethod
    def _desc(text: str, box, frame: int) -> Description:
        return Description(
            answer=text, question="q", frame_idx=frame, box=tuple(box), track=None, selected_frames=(frame,)
        )

    def __call__(self, video, box, *, frame_idx, question):  # pragma: no cover - describe_many is used
        raise AssertionError("describe_many expected")

    def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None):
        return [
            self._desc(self.greedy[i], b, f) for i, (b, f) in enumerate(zip(boxes, frame_idxs, strict=True))
        ]


class SamplingDescriber(ScriptedDescriber):
    """Also sampled captions per seed, in the order of the boxes asked; records (seed, boxes asked)."""

    def __init__(self, greedy: list[str], samples: dict[int, list[str]]) -> None:
        super().__init__(greedy)
        self.samples = samples
        self.sample_calls: list[tuple[int, int]] = []

    def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None, sampling=None):
        if sampling is None:
            return super().describe_many(
                video, boxes, frame_idxs=frame_idxs, question=question, tracks=tracks
            )
        self.sample_calls.append((sampling.seed, len(boxes)))
        texts = self.samples[sampling.seed]
        return [self._desc(t, b, f) for t, b, f in zip(texts, boxes, frame_idxs, strict=True)]


@pytest.fixture()
def reds(two_reds_clip):
    video = ArrayVideo(two_reds_clip.frames)
    targets = sorted(ground(video, "the red objects", settings=WORLD_GROUNDING), key=lambda t: t.label)
    assert [t.label for t in targets] == ["red circle", "red square"]
    return video, targets


def test_contradicted_captions_are_replaced_by_the_first_agreeing_sample(reds) -> None:
    video, targets = reds
    greedy = ["The red star moves to the right.", "The red square moves to the right."]  # shape; first motion
    left = "The red square moves to the left, then stops."
    samples = {  # per round: the captions of the boxes asked, each target's copies side by side
        1: ["The red star moves right.", "The red star moves up.", left, "The red square moves left."],
        2: [
            "The big red circle moves right quickly.",
            "The red circle moves right.",
        ],  # only the circle is left
        3: ["unused"],
    }
    describer = SamplingDescriber(greedy, samples)
    descs, checks = refer_checked(
        video, targets, first_motions=["move:right", "move:left"], describer=describer, samples=6, batch=2
    )
    assert [d.text for d in descs] == [
        "The big red circle moves right quickly.",
        left,
    ]  # first agreeing, unedited
    assert describer.sample_calls == [(1, 4), (2, 2)]  # every pending target per round; stops once all agree
    assert [(c.conflicts, c.sample, c.tried) for c in checks] == [
        (("says star, grounding found circle",), 3, 3),
        (("first says move:right, the track shows move:left",), 1, 1),
    ]
    assert "kept sample 3 of 3" in checks[0].text


def test_no_agreeing_sample_keeps_the_first_caption_and_says_so(reds) -> None:
    video, targets = reds
    greedy = ["The red star moves to the right.", "The red square moves to the left."]
    samples = {s: ["The little red star moves right."] * (2 if s < 3 else 1) for s in (1, 2, 3)}
    describer = SamplingDescriber(greedy, samples)
    descs, checks = refer_checked(
        video, targets, first_motions=["move:right", "move:left"], describer=describer, samples=5, batch=2
    )
    assert [d.text for d in descs] == greedy
    assert describer.sample_calls == [(1, 2), (2, 2), (3, 1)]  # 2 + 2 + 1 = samples
    assert checks[0].sample is None and checks[0].tried == 5 and "none of 5 samples agreed" in checks[0].text
    assert checks[1].conflicts == () and checks[1].text.endswith("consistent with its label and track")


def test_a_describer_that_cannot_sample_keeps_its_captions(reds) -> None:
    video, targets = reds
    greedy = ["The red star moves to the right.", "The red square moves to the left."]
    describer = ScriptedDescriber(greedy)
    assert not can_sample(describer) and can_sample(SamplingDescriber(greedy, {}))
    descs, checks = refer_checked(video, targets, first_motions=[None, None], describer=describer)
    assert [d.text for d in descs] == greedy
    assert checks[0].conflicts and checks[0].tried == 0
    with pytest.raises(ValueError, match="1 first motions for 2 targets"):
        refer_checked(video, targets, first_motions=[None], describer=describer)
    with pytest.raises(ValueError, match="batch=0"):
        refer_checked(video, targets, first_motions=[None, None], describer=describer, batch=0)
