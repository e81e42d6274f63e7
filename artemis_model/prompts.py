"""The referring question of Artemis, for inference and training alike.

Our models (template ``"train"``, reference §1.11): ``"<video>\\n" + question + " " + note + "<region>" * K + "."``
where the question holds one ``<region>`` (the key-frame box) and ``note`` is one of our :data:`TRACKING_NOTES`
(random in training, the first at inference: training and inference share this module, so the default prompt is
one the model was trained on). Converted original weights (``"eval_original"``): the released evaluation text
:data:`~artemis_model.processing_artemis.EVAL_QUESTION` layout, ``question + " " + note + " " + "<region>" * K``
with :data:`ORIGINAL_TRACKING_NOTE` (space after the colon, no final period).
"""

from __future__ import annotations

from artemis_model.errors import ArtemisInputError
from artemis_model.processing_artemis import BBOX_ALIAS, IMAGE_TOKEN, REGION_TOKEN, TEMPLATES, VIDEO_TOKEN

# Our own wording (one <region> each), shared by training and inference; the first is the default question.
QUESTION_TEMPLATES: tuple[str, ...] = (
    "What is the <region> doing in this video?",
    "What does the <region> do over the course of the video?",
    "Describe the actions of the <region> in this clip.",
    "How does the <region> behave throughout the video?",
    "Tell me what the <region> is up to in this video.",
    "What happens with the <region> from start to end?",
    "Can you explain the movement of the <region> in the video?",
    "Summarize the activity of the <region> across the clip.",
    "What is the <region> busy with during this video?",
    "Give an account of what the <region> does in this footage.",
    "Describe how the <region> moves in this video.",
    "What action is carried out by the <region> in the clip?",
    "Explain what the <region> is doing over time.",
    "In this video, what does the <region> do?",
    "Please describe the behaviour of the <region> in the video.",
    "What can you say about the motion of the <region>?",
    "Narrate the events involving the <region> in this clip.",
    "What is going on with the <region> in this video?",
    "Over the whole video, how does the <region> act?",
    "Report what the <region> does from the first frame to the last.",
    "Which activity does the <region> perform in the video?",
    "How would you describe what the <region> does here?",
    "Follow the <region> through the video: what does it do?",
    "Characterize the movements of the <region> in this clip.",
)

TRACKING_NOTES: tuple[str, ...] = (
    "Here are the tracked views of the region across the video:",
    "The region is followed through the video at these moments:",
    "These are glimpses of the region from its track in the video:",
)


DEFAULT_QUESTION = QUESTION_TEMPLATES[0]
ORIGINAL_TRACKING_NOTE = "This is the region's video tracking list:"
"""The released weights' evaluation wording (template ``"eval_original"`` only)."""


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
        return f"{VIDEO_TOKEN}\n{question} {ORIGINAL_TRACKING_NOTE} {tracked}"
    if not 0 <= note < len(TRACKING_NOTES):
        raise ValueError(f"note {note} is out of range: {len(TRACKING_NOTES)} tracking notes")
    return f"{VIDEO_TOKEN}\n{question} {TRACKING_NOTES[note]}{tracked}."
