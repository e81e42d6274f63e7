"""The referring question of Artemis, for inference and training alike.

Our models (template ``"train"``, reference §1.11): ``"<video>\\n" + question + " " + note + "<region>" * K + "."``
where the question holds one ``<region>`` (the key-frame box) and ``note`` is one of :data:`TRACKING_NOTES`
(the first at inference). Converted original weights (``"eval_original"``): the released evaluation text
:data:`~artemis_model.processing_artemis.EVAL_QUESTION` layout, ``question + " " + note + " " + "<region>" * K``
(space after the colon, no final period).
"""

from __future__ import annotations

from artemis_model.errors import ArtemisInputError
from artemis_model.processing_artemis import BBOX_ALIAS, IMAGE_TOKEN, REGION_TOKEN, TEMPLATES, VIDEO_TOKEN

DEFAULT_QUESTION = "What is the <region> doing in this video?"
TRACKING_NOTES = (
    "This is the region's video tracking list:",
    "There is the region's video tracking list:",
    "You are provided the region's video tracking list:",
)


def normalize_question(question: str | None) -> str:
    """The user's question with exactly one ``<region>`` (``<bbox>`` accepted); one is added when absent.

    Raises :class:`ArtemisInputError` for an empty question, several targets, or ``<video>``/``<image>``.
    """
    if question is None:
        return DEFAULT_QUESTION
    if not isinstance(question, str) or not question.strip():
        raise ArtemisInputError(f"question {question!r} must be a non-empty string")
    text = question.strip().replace(BBOX_ALIAS, REGION_TOKEN)
    for token in (VIDEO_TOKEN, IMAGE_TOKEN):
        if token in text:
            raise ArtemisInputError(
                f"question {question!r} must not contain {token}: the video is added for you"
            )
    count = text.count(REGION_TOKEN)
    if count > 1:
        raise ArtemisInputError(
            f"question {question!r} has {count} <region> placeholders; at most one (the boxed target) is allowed"
        )
    if count == 0:
        text = f"Regarding the {REGION_TOKEN}: {text}"
    return text


def referring_prompt(question: str, num_region_tokens: int, *, template: str = "train", note: int = 0) -> str:
    """The user message (before :func:`render_prompt`) for a normalised ``question``."""
    if template not in TEMPLATES:
        raise ValueError(f"template {template!r} is unknown; allowed: {sorted(TEMPLATES)}")
    tracked = REGION_TOKEN * num_region_tokens
    if template == "eval_original":
        return f"{VIDEO_TOKEN}\n{question} {TRACKING_NOTES[note]} {tracked}"
    return f"{VIDEO_TOKEN}\n{question} {TRACKING_NOTES[note]}{tracked}."
