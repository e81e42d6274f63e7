"""HELD-OUT paraphrases of the complex questions: used only by the benchmark (``heldout=True``).

Never use these for training or for tuning prompts; they measure whether a system generalises beyond the
wording of ``synth.questions.TEMPLATES``. Keys and slots are the same as there ({verbs}: third person, {verb}: base form).
"""

from __future__ import annotations

HELDOUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "describe": ("Tell me how the {a} behaves.", "Can you explain the movement of the {a}?"),
    "multi_target": ("Tell me how each of the {group} moves.", "What are all the {group} up to?"),
    "comparison_speed": (
        "Between the {a} and the {b}, which one is quicker?",
        "Is the {a} or the {b} the speedier one?",
    ),
    "temporal_first": (
        "Out of all the objects, which is the first that {verbs}?",
        "Which one {verbs} earliest?",
    ),
    "when": ("At what moment does the {a} {verb}?", "Tell me the time at which the {a} {verbs}."),
    "ambiguous": ("Could you describe the motion of the {a}?", "Explain what the {a} is doing."),
    "resolve": ("I was asking about the {which} one.", "The one on the {which}, please."),
    "follow_up": ("How about the {a}?", "Now the {a}: what does it do?"),
    "follow_up_compare": ("Of those two, which one is quicker?", "Comparing them, which is faster?"),
    "long_part": (
        "During which section of the video can the {a} be seen?",
        "When in the video does the {a} show up?",
    ),
}
